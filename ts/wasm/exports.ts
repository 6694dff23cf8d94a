// The C ABI of crates/engine/src/ffi.rs, as TypeScript sees it.

export interface EngineExports {
  memory: WebAssembly.Memory;
  wgn_scratch(len: number): number;
  wgn_result_ptr(): number;
  wgn_result_len(): number;
  wgn_events_ptr(): number;
  wgn_events_len(): number;
  wgn_commands_area(len: number): number;
  wgn_new(nowMs: number, mtu: number, receiveBuffer: number, sendBuffer: number, acceptTcp: number): number;
  wgn_tcp_limits(perPeer: number, total: number, halfOpenPerPeer: number, bufferedBytes: number): number;
  wgn_tcp_timeouts(halfOpenMs: number, finWait2Ms: number, keepaliveMs: number, userTimeoutMs: number): number;
  wgn_udp_limits(maxFlowsPerPeer: number, flowIdleMs: number): number;
  wgn_add_peer(persistentKeepalive: number, hasPresharedKey: number, hasEndpoint: number): number;
  wgn_allow(peer: number, prefixLen: number): number;
  wgn_remove_peer(): number;
  wgn_keepalive(nowMs: number, peer: number): number;
  wgn_ping(nowMs: number, ident: number, seq: number): number;
  wgn_set_tap(on: number): number;
  wgn_pump(nowMs: number, eventsSeen: number, commandsLen: number, datagramsLen: number): number;
  wgn_tcp_connect(nowMs: number): number;
  wgn_tcp_stats(id: number): number;
  wgn_udp_send(nowMs: number, len: number): number;
  wgn_stats(): number;
  wgn_public_key(): number;
  wgn_abi_selftest(): number;
}

