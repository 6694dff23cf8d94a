// Generated from crates/engine/src/abi.rs by `node build.mjs`: do not edit.
// The contract with the wasm engine; what each record and call means is documented there
// and in crates/engine/src/ffi.rs.

export const ADDRESS_SIZE = 19;

/** The byte that opens each event in the log. */
export const EVENT = {
  DATAGRAM: 1,
  TCP_INCOMING: 2,
  TCP_DATA: 3,
  TCP_EOF: 4,
  TCP_WRITABLE: 5,
  TCP_CLOSED: 6,
  UDP: 7,
  TCP_ESTABLISHED: 8,
  UNKNOWN_PEER: 9,
  INNER_PACKET: 10,
  ECHO_REPLY: 11,
  UDP_UNREACHABLE: 12,
} as const;

/** The byte that opens each command the host writes. */
export const COMMAND = {
  SEND: 1,
  CONSUMED: 2,
  ACCEPT: 3,
  REFUSE: 4,
  SHUTDOWN: 5,
  ABORT: 6,
  DISCARD: 7,
  UDP_SEND: 8,
  PING: 9,
  KEEPALIVE: 10,
  UDP_REFUSE: 11,
} as const;

/** Negative returns of the engine's calls. */
export const ERROR = {
  INVALID: -1,
  UNKNOWN_CONNECTION: -2,
  NOT_WRITABLE: -3,
  UNADDRESSABLE: -4,
  NO_ROUTE: -5,
  TOO_BIG: -6,
  NOT_STARTED: -7,
  LIMIT: -8,
} as const;

/** What the host says when it refuses a UDP send or ping itself, in the engine's words. */
export const REQUEST_MESSAGE = {
  NO_ROUTE: "no peer's allowedIps hold the destination",
  MIXED_FAMILIES: "source and destination are of different address families",
  TOO_BIG: "datagram is larger than the MTU allows",
} as const;

/** How a TCP connection ended, by the number in TCP_CLOSED. */
export const CLOSE_REASONS = ["closed", "reset", "refused", "aborted", "timeout", "host-unreachable", "net-unreachable"] as const;

/** What an ICMP destination unreachable said, by the number in UDP_UNREACHABLE. */
export const UNREACHABLE_REASONS = ["net", "host", "port"] as const;

/** The dropped-packet counters, in the order the stats hold them. */
export const DROP_REASONS = ["malformed", "authFailed", "unknownPeer", "replay", "noSession", "underLoad", "sourceNotAllowed", "innerMalformed", "unsupported", "noRoute", "noEndpoint", "icmpRateLimited"] as const;

/** The numbers of a peer's stats record, in order. */
export const PEER_STATS = ["sinceHandshakeMs", "txBytes", "rxBytes"] as const;

/** The server's TCP numbers, in order. */
export const TCP_TOTALS = ["refusedOverLimit", "refusedNotAccepting", "resetUnknown", "retransmittedSegments", "timeouts", "bufferedBytes", "meanRttMs"] as const;

/** The server's UDP numbers, in order. */
export const UDP_TOTALS = ["flows", "refusedOverLimit"] as const;

/** One connection's numbers, in order. */
export const CONNECTION_STATS = ["retransmittedSegments", "timeouts", "tailProbes", "rttMs", "congestionWindow", "bytesInFlight", "bandwidth", "pacingRate", "peerWindow"] as const;

/** The numeric options: the range the host accepts and the default (timeouts in milliseconds). */
export const OPTIONS = {
  mtu: { min: 1280, max: 65535, default: 1420 },
  tcpReceiveBuffer: { min: 4096, max: 67108864, default: 4194304 },
  tcpSendBuffer: { min: 4096, max: 67108864, default: 4194304 },
  tcpMaxConnectionsPerPeer: { min: 1, max: 1048576, default: 16384 },
  tcpMaxConnections: { min: 1, max: 1048576, default: 65536 },
  tcpMaxHalfOpenPerPeer: { min: 1, max: 1048576, default: 4096 },
  maxBufferedBytes: { min: 1048576, max: 2147483648, default: 268435456 },
  udpMaxFlowsPerPeer: { min: 1, max: 1048576, default: 4096 },
  tcpHalfOpenTimeout: { min: 1000, max: 3600000, default: 20000 },
  tcpFinWait2Timeout: { min: 1000, max: 3600000, default: 60000 },
  tcpKeepalive: { min: 1000, max: 86400000, default: 60000 },
  tcpUserTimeout: { min: 1000, max: 86400000, default: 60000 },
  udpFlowTimeout: { min: 1000, max: 86400000, default: 60000 },
} as const;

/** The engine's C ABI (crates/engine/src/ffi.rs), as TypeScript sees it. */
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
  wgn_set_tap(on: number): number;
  wgn_pump(nowMs: number, eventsSeen: number, commandsLen: number, datagramsLen: number): number;
  wgn_tcp_connect(nowMs: number): number;
  wgn_tcp_stats(id: number): number;
  wgn_stats(): number;
  wgn_public_key(): number;
  wgn_abi_selftest(commandsLen: number): number;
}

/** The parameters of each export, by name: the module must export exactly these, each taking as many. */
export const EXPORT_PARAMS = {
  wgn_scratch: ["len"],
  wgn_result_ptr: [],
  wgn_result_len: [],
  wgn_events_ptr: [],
  wgn_events_len: [],
  wgn_commands_area: ["len"],
  wgn_new: ["nowMs", "mtu", "receiveBuffer", "sendBuffer", "acceptTcp"],
  wgn_tcp_limits: ["perPeer", "total", "halfOpenPerPeer", "bufferedBytes"],
  wgn_tcp_timeouts: ["halfOpenMs", "finWait2Ms", "keepaliveMs", "userTimeoutMs"],
  wgn_udp_limits: ["maxFlowsPerPeer", "flowIdleMs"],
  wgn_add_peer: ["persistentKeepalive", "hasPresharedKey", "hasEndpoint"],
  wgn_allow: ["peer", "prefixLen"],
  wgn_remove_peer: [],
  wgn_set_tap: ["on"],
  wgn_pump: ["nowMs", "eventsSeen", "commandsLen", "datagramsLen"],
  wgn_tcp_connect: ["nowMs"],
  wgn_tcp_stats: ["id"],
  wgn_stats: [],
  wgn_public_key: [],
  wgn_abi_selftest: ["commandsLen"],
} as const;

/** What `readEvent` hands each event's fields to, in the order of the record; `A` is how the host holds an address. */
export interface EventFields<A> {
  /** Send this UDP datagram to a peer. */
  datagram(to: A, bytes: Uint8Array): void;
  /** A SYN: accept or refuse it. */
  tcpIncoming(conn: number, peer: number, remote: A, local: A): void;
  /** Bytes the connection received, in order. */
  tcpData(conn: number, bytes: Uint8Array): void;
  /** The remote sent FIN and all its data was delivered. */
  tcpEof(conn: number): void;
  /** The host may write `room` more bytes (added to what it had). */
  tcpWritable(conn: number, room: number): void;
  /** The connection ended; `reason` is the index of its name in `CLOSE_REASONS`. */
  tcpClosed(conn: number, reason: number): void;
  /** A UDP datagram from a peer, to any destination. */
  udp(peer: number, src: A, dst: A, payload: Uint8Array): void;
  /** The handshake completed (either direction). */
  tcpEstablished(conn: number, peer: number): void;
  /** A handshake from a public key we do not know. */
  unknownPeer(publicKey: Uint8Array, from: A): void;
  /** With the tap on, an inner packet: `direction` 0 from a peer, 1 to it. */
  innerPacket(direction: number, peer: number, bytes: Uint8Array): void;
  /** An answer to our ping (`from` has port 0). */
  echoReply(peer: number, from: A, ident: number, seq: number): void;
  /** An ICMP (v6) destination unreachable from `peer` about a UDP datagram we sent from `local` to `remote`; `reason` is the index of its name in `UNREACHABLE_REASONS`. */
  udpUnreachable(peer: number, local: A, remote: A, reason: number): void;
}

/** The event log as `readEvent` sees it. */
export interface EventLog<A> {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** The address at `at` (ADDRESS_SIZE bytes). */
  address(at: number): A;
}

/**
 * Reads the event at `at` and hands its fields to `fields`; returns where the next one starts.
 * Payloads are views of the log, valid until the next call into the engine.
 */
export function readEvent<A>(log: EventLog<A>, at: number, fields: EventFields<A>): number {
  switch (log.bytes[at]) {
    case 1: {
      // DATAGRAM
      const len = log.view.getUint32(at + 20, true);
      fields.datagram(log.address(at + 1), log.bytes.subarray(at + 24, at + 24 + len));
      return at + 24 + len;
    }
    case 2: {
      // TCP_INCOMING
      fields.tcpIncoming(log.view.getUint32(at + 1, true), log.view.getUint32(at + 5, true), log.address(at + 9), log.address(at + 28));
      return at + 47;
    }
    case 3: {
      // TCP_DATA
      const len = log.view.getUint32(at + 5, true);
      fields.tcpData(log.view.getUint32(at + 1, true), log.bytes.subarray(at + 9, at + 9 + len));
      return at + 9 + len;
    }
    case 4: {
      // TCP_EOF
      fields.tcpEof(log.view.getUint32(at + 1, true));
      return at + 5;
    }
    case 5: {
      // TCP_WRITABLE
      fields.tcpWritable(log.view.getUint32(at + 1, true), log.view.getUint32(at + 5, true));
      return at + 9;
    }
    case 6: {
      // TCP_CLOSED
      fields.tcpClosed(log.view.getUint32(at + 1, true), log.bytes[at + 5]!);
      return at + 6;
    }
    case 7: {
      // UDP
      const len = log.view.getUint32(at + 43, true);
      fields.udp(log.view.getUint32(at + 1, true), log.address(at + 5), log.address(at + 24), log.bytes.subarray(at + 47, at + 47 + len));
      return at + 47 + len;
    }
    case 8: {
      // TCP_ESTABLISHED
      fields.tcpEstablished(log.view.getUint32(at + 1, true), log.view.getUint32(at + 5, true));
      return at + 9;
    }
    case 9: {
      // UNKNOWN_PEER
      fields.unknownPeer(log.bytes.slice(at + 1, at + 33), log.address(at + 33));
      return at + 52;
    }
    case 10: {
      // INNER_PACKET
      const len = log.view.getUint32(at + 6, true);
      fields.innerPacket(log.bytes[at + 1]!, log.view.getUint32(at + 2, true), log.bytes.subarray(at + 10, at + 10 + len));
      return at + 10 + len;
    }
    case 11: {
      // ECHO_REPLY
      fields.echoReply(log.view.getUint32(at + 1, true), log.address(at + 5), log.view.getUint32(at + 24, true), log.view.getUint32(at + 28, true));
      return at + 32;
    }
    case 12: {
      // UDP_UNREACHABLE
      fields.udpUnreachable(log.view.getUint32(at + 1, true), log.address(at + 5), log.address(at + 24), log.bytes[at + 43]!);
      return at + 44;
    }
  }
  throw new Error(`unknown engine event kind ${log.bytes[at]}`);
}

/** Where the `write` functions below put commands; `A` is how the host holds an address. */
export interface CommandArea<A> {
  /** Makes room for `len` more bytes; returns where to write them, in `bytes` and `view` as they are after the call. */
  reserve(len: number): number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Writes `address` at `at` (ADDRESS_SIZE bytes). */
  address(at: number, address: A): void;
}

/** SEND: Data to send: at most what TCP_WRITABLE granted. */
export function writeSend<A>(area: CommandArea<A>, conn: number, bytes: Uint8Array): void {
  const at = area.reserve(9 + bytes.length);
  area.bytes[at] = 1;
  area.view.setUint32(at + 1, conn, true);
  area.view.setUint32(at + 5, bytes.length, true);
  area.bytes.set(bytes, at + 9);
}

/** CONSUMED: The host read `bytes` of TCP_DATA: the window opens by as much. */
export function writeConsumed<A>(area: CommandArea<A>, conn: number, bytes: number): void {
  const at = area.reserve(9);
  area.bytes[at] = 2;
  area.view.setUint32(at + 1, conn, true);
  area.view.setUint32(at + 5, bytes, true);
}

/** ACCEPT: Complete the handshake of a TCP_INCOMING (send the SYN-ACK). */
export function writeAccept<A>(area: CommandArea<A>, conn: number): void {
  const at = area.reserve(5);
  area.bytes[at] = 3;
  area.view.setUint32(at + 1, conn, true);
}

/** REFUSE: Turn down a TCP_INCOMING: `how` 0 with RST, 1 with ICMP unreachable. */
export function writeRefuse<A>(area: CommandArea<A>, conn: number, how: number): void {
  const at = area.reserve(6);
  area.bytes[at] = 4;
  area.view.setUint32(at + 1, conn, true);
  area.bytes[at + 5] = how;
}

/** SHUTDOWN: FIN after what was sent. */
export function writeShutdown<A>(area: CommandArea<A>, conn: number): void {
  const at = area.reserve(5);
  area.bytes[at] = 5;
  area.view.setUint32(at + 1, conn, true);
}

/** ABORT: RST. */
export function writeAbort<A>(area: CommandArea<A>, conn: number): void {
  const at = area.reserve(5);
  area.bytes[at] = 6;
  area.view.setUint32(at + 1, conn, true);
}

/** DISCARD: Drop what arrives from now on, keeping the window open. */
export function writeDiscard<A>(area: CommandArea<A>, conn: number): void {
  const at = area.reserve(5);
  area.bytes[at] = 7;
  area.view.setUint32(at + 1, conn, true);
}

/** UDP_SEND: A UDP datagram into the tunnel, to the peer whose allowedIps hold `dst`. The host has checked the families and the MTU; no route is counted as dropped (noRoute). */
export function writeUdpSend<A>(area: CommandArea<A>, src: A, dst: A, payload: Uint8Array): void {
  const at = area.reserve(43 + payload.length);
  area.bytes[at] = 8;
  area.address(at + 1, src);
  area.address(at + 20, dst);
  area.view.setUint32(at + 39, payload.length, true);
  area.bytes.set(payload, at + 43);
}

/** PING: An ICMP (v6) echo request (ports ignored); the answer is an ECHO_REPLY event. */
export function writePing<A>(area: CommandArea<A>, src: A, dst: A, ident: number, seq: number): void {
  const at = area.reserve(47);
  area.bytes[at] = 9;
  area.address(at + 1, src);
  area.address(at + 20, dst);
  area.view.setUint32(at + 39, ident, true);
  area.view.setUint32(at + 43, seq, true);
}

/** KEEPALIVE: A keepalive to the peer now, starting a handshake with no session; a peer with no endpoint is counted as dropped (noEndpoint). */
export function writeKeepalive<A>(area: CommandArea<A>, peer: number): void {
  const at = area.reserve(5);
  area.bytes[at] = 10;
  area.view.setUint32(at + 1, peer, true);
}

/** UDP_REFUSE: Answer a datagram `from` a peer's side `to` us with an ICMP (v6) destination unreachable, as a closed port does; `why` is the index of its name in `UNREACHABLE_REASONS`. No route is counted as dropped (noRoute). */
export function writeUdpRefuse<A>(area: CommandArea<A>, from: A, to: A, why: number): void {
  const at = area.reserve(40);
  area.bytes[at] = 11;
  area.address(at + 1, from);
  area.address(at + 20, to);
  area.bytes[at + 39] = why;
}
