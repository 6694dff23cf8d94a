// The gateway behind `wg-netstack serve`: one WireGuard server whose peers come from the
// config folder (polled, so `peer add` / `peer remove` apply while it runs), every TCP
// connection and UDP flow forwarded to where the client sent it, DNS to the gateway's
// own tunnel address relayed to a real resolver, one log line per flow.

import { readFileSync } from "node:fs";
import type { PeerOptions } from "../config.js";
import { startServer, type Server, type ServerOptions, type ServerStats } from "../host/server.js";
import { endpointText, formatIp, parseCidr, type Endpoint, unmappedEndpoint } from "../ip.js";
import { pubkey } from "../keys.js";
import { qrCode } from "../qr.js";
import { reachableHost } from "../client-config.js";
import type { Runtime } from "../runtime/types.js";
import type { ConfigStore, PeerRecord } from "./config-store.js";
import { dial, type UpstreamProxy } from "./dial.js";
import type { FlowBytes, FlowLog, FlowRecord, OpenFlow } from "./flow-log.js";
import { forwardTcp } from "./forward.js";
import type { PcapWriter } from "./pcap.js";
import { router } from "./route.js";
import { UdpRelay } from "./udp-relay.js";

export const DEFAULT_PORT = 51820;
/**
 * TCP connections, and UDP flows, each peer may have open: every one holds a socket of
 * this host, so one busy peer must not take them all. The server enforces it for TCP (a SYN
 * past it gets RST), the UDP relay for UDP (a datagram past it gets ICMP port unreachable).
 */
export const DEFAULT_MAX_FLOWS_PER_PEER = 1024;
/**
 * The server's own count of a peer's UDP flows keeps one until it has been quiet for the
 * flow timeout, even a DNS flow the relay ended at its answer: its limit is set above the
 * relay's, at least this (its default), so that a peer's stream of lookups is not refused.
 */
const SERVER_UDP_FLOWS_PER_PEER = 4096;
/** A UDP flow ends after this long without a datagram: in the server's count and here, its socket. */
const UDP_FLOW_TIMEOUT_MS = 60_000;

export interface GatewayOptions {
  store: ConfigStore;
  /** peer1 … peerN are created when missing. */
  peers: number;
  /** The UDP address to listen on; without a host every address, IPv6 and IPv4; default port 51820. */
  listen?: { host?: string; port: number };
  /** The address written into client configs; default a guess at this machine's address, and the listening port. */
  endpoint?: { host: string; port?: number };
  /** Inner MTU, for the server and the client configs. */
  mtu?: number;
  /** Relayed TCP goes through this proxy. */
  via?: UpstreamProxy;
  /** Where DNS queries to the gateway's tunnel address go. */
  dnsUpstream: Endpoint;
  /** Let peers reach this host's loopback (127.0.0.0/8, ::1); default no: such flows are denied and logged. */
  allowLoopback?: boolean;
  /** Let peers reach link-local addresses (169.254.0.0/16, fe80::/10), where cloud metadata services answer; default no. */
  allowLinkLocal?: boolean;
  /** TCP connections, and UDP flows, each peer may have open; default {@link DEFAULT_MAX_FLOWS_PER_PEER}. */
  maxFlowsPerPeer?: number;
  /** Decrypted packets are written here. */
  pcap?: PcapWriter;
  log: FlowLog;
  /** Told of every flow as it opens (the web page's live table); the log, and `onFlowEnd`, get it when it ends. */
  onFlowOpen?(flow: OpenFlow, bytes: FlowBytes): void;
  onFlowEnd?(record: FlowRecord): void;
  /** Lets `tap()` add packet listeners while running (the web page's captures): every packet is then copied out of the engine. */
  taps?: boolean;
  /** Shows a peer's config and QR code (stdout for people, stderr with --json). */
  show(text: string): void;
  /** How often the config folder is read for added or removed peers; default 1 s. */
  pollMs?: number;
  /** A UDP flow without a datagram for this long ends (1000 ms or more); default 60 s. */
  udpIdleMs?: number;
  /** The UDP socket and clock; by default the runtime's. Tests pass one they can break. */
  runtime?: Runtime;
  /** The engine's threads, as `startServer`'s `threads`: 0 (default) or 1, the engine and its UDP socket in a worker. */
  threads?: 0 | 1;
}

/** Listens to decrypted packets, both ways; `peer` is the peer's public key. */
export type PacketListener = (packet: Uint8Array, peer: string) => void;

export interface Gateway {
  /** The UDP address the server listens on. */
  readonly address: Endpoint;
  readonly publicKey: string;
  /** Where clients reach the gateway, as written into their configs ("host:port"). */
  readonly endpoint: string;
  /** The peers being served, by name. */
  peers(): PeerRecord[];
  /** Each peer's endpoint, last handshake and bytes, and the server's counters. */
  stats(): ServerStats;
  /** Applies the peers added to or removed from the config folder now, rather than at the next poll. */
  syncPeers(): void;
  /** A peer's wg-quick config: the file in the folder, written first if missing. */
  clientConfig(peer: PeerRecord): string;
  /** Adds a packet listener (needs the `taps` option or a pcap); returns its removal. */
  tap(listener: PacketListener): () => void;
  /** Resolves if the server fails on its own (the wasm engine trapped, its socket closed): nothing is forwarded any more. */
  readonly failed: Promise<Error>;
  /** Ends every flow (logged as "shutdown"), closes the server and the pcap file, writes the summary. */
  stop(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { store, log } = options;
  const serverRecord = store.server();
  const ownHosts = serverRecord.address.map((cidr) => formatIp(parseCidr(cidr)!));
  const serverKey = pubkey(serverRecord.privateKey);
  const gatewayHosts = [`${ownHosts[0]}/32`, `${ownHosts[1]}/128`];
  const initial = compatible(store.ensurePeers(options.peers), new Map(), serverKey, gatewayHosts, (name) => store.peerPath(name));
  const startProblems = initial.problems;
  for (const message of startProblems) log.event("warning", `warning: ${message}`, { message });
  let active = new Map(initial.peers.map((peer) => [peer.publicKey, peer])); // public key → peer
  // Names outlive removal: a removed peer's last flows end after it is gone.
  const names = new Map([...active].map(([publicKey, peer]) => [publicKey, peer.name]));
  const peerName = (publicKey: string) => names.get(publicKey) ?? publicKey;
  const { pcap } = options;
  const listeners = new Set<PacketListener>();
  if (pcap) listeners.add((packet) => pcap.write(packet));
  const flowEnded = (record: FlowRecord) => {
    log.flow(record);
    options.onFlowEnd?.(record);
  };

  const shutdown = new AbortController();
  const tcpFlows = new Set<Promise<void>>();
  const route = router({
    ownHosts,
    subnets: serverRecord.address,
    dnsUpstream: options.dnsUpstream,
    allowLoopback: options.allowLoopback ?? false,
    allowLinkLocal: options.allowLinkLocal ?? false,
  });
  const udpIdleMs = options.udpIdleMs ?? UDP_FLOW_TIMEOUT_MS;
  const maxFlows = options.maxFlowsPerPeer ?? DEFAULT_MAX_FLOWS_PER_PEER;
  const udp = new UdpRelay({
    send: (data, from, to) => server.sendUdp(data, from, to),
    ...(options.onFlowOpen ? { onFlowOpen: options.onFlowOpen } : {}),
    onFlowEnd: flowEnded,
    peerName,
    idleMs: udpIdleMs,
    maxFlowsPerPeer: maxFlows,
  });

  let server: Server;
  const start = (host: string, port: number) =>
    startServer({
      privateKey: serverRecord.privateKey,
      host,
      port,
      ...(options.mtu === undefined ? {} : { mtu: options.mtu }),
      ...(options.runtime ? { runtime: options.runtime } : {}),
      ...(options.threads === undefined ? {} : { threads: options.threads }),
      address: serverRecord.address,
      peers: [...active.values()].map(peerOptions),
      tcpMaxConnectionsPerPeer: maxFlows,
      udpMaxFlowsPerPeer: Math.max(maxFlows, SERVER_UDP_FLOWS_PER_PEER),
      udpFlowTimeout: udpIdleMs,
      onTcp: (conn) => {
        const flow = forwardTcp(conn, {
          route,
          // The resolver is local to the host; only other traffic goes through --via.
          dial: (target) => dial(target, { signal: shutdown.signal, ...(options.via && target !== options.dnsUpstream ? { via: options.via } : {}) }),
          peerName,
          ...(options.onFlowOpen ? { onFlowOpen: options.onFlowOpen } : {}),
          onFlowEnd: flowEnded,
          signal: shutdown.signal,
        });
        tcpFlows.add(flow);
        void flow.finally(() => tcpFlows.delete(flow));
        return flow;
      },
      onUdp: (packet) => {
        if (!shutdown.signal.aborted) udp.relay(packet, route);
      },
      onUnknownPeer: ({ publicKey, endpoint }) => log.unknownPeer(publicKey, unmappedEndpoint(endpoint)),
      ...(pcap || options.taps
        ? {
            tap: (packet: Uint8Array, { peer }: { peer: string }) => {
              for (const listener of listeners) listener(packet, peer);
            },
          }
        : {}),
      onError: (error) => {
        // The server's own failure is not logged here: it ends the gateway, whose caller says why.
        if (error !== server?.error) log.event("error", `error: ${error.message}`, { message: error.message });
      },
    } satisfies ServerOptions);
  server = await listen(start, options.listen);
  const failed = new Promise<Error>((resolve) => void server.closed.then(() => server.error && resolve(server.error)));

  const endpoint = configEndpoint(server.address, options.endpoint);
  store.saveEndpoint(endpoint);
  const writeConfig = (peer: PeerRecord) => store.writeClientConfig(peer, { endpoint, ...(options.mtu === undefined ? {} : { mtu: options.mtu }) });
  const showPeer = async (peer: PeerRecord) => {
    const { path, text } = writeConfig(peer);
    options.show(`peer ${peer.name} (${path}):\n\n${text}\n${await qrCode(text, "terminal")}`);
  };

  for (const peer of active.values()) await showPeer(peer);
  if (active.size > 0) options.show("Import a config into a WireGuard client, or scan its QR code with the phone app. Each flow is logged below when it ends; Ctrl-C stops.\n");
  // Last: once this line is out, the configs are written and the gateway is ready.
  log.event("listening", `wg-netstack gateway on udp ${endpointText(server.address)}, public key ${server.publicKey}, configs in ${store.dir}`, {
    address: server.address,
    publicKey: server.publicKey,
    endpoint,
    configDir: store.dir,
  });

  // Peers added, removed or edited in the folder (by `peer add` / `peer remove`, or by hand)
  // apply now. A file that does not read, or clashes with another, is said once (until it
  // changes) and left out; the rest apply all the same.
  let problems = new Set(startProblems);
  const say = (now: string[]) => {
    for (const message of now) if (!problems.has(message)) log.event("warning", `warning: ${message}`, { message });
    problems = new Set(now);
  };
  const syncPeers = () => {
    if (shutdown.signal.aborted) return;
    let scan: ReturnType<ConfigStore["scanPeers"]>;
    try {
      scan = store.scanPeers();
    } catch (error) {
      return say([(error as Error).message]); // the folder itself: keep the peers we have
    }
    // A peer whose file no longer reads stays as it was served: a half-saved edit cuts no one off.
    const kept = [...active.values()].filter((peer) => scan.broken.some((file) => file.name === peer.name));
    const servable = compatible([...scan.peers, ...kept], active, serverKey, gatewayHosts, (name) => store.peerPath(name));
    const now = [...scan.broken.map((file) => file.error.message), ...servable.problems];
    const current = new Map(servable.peers.map((peer) => [peer.publicKey, peer]));
    for (const [publicKey, peer] of active) {
      if (samePeer(current.get(publicKey), peer)) continue;
      server.removePeer(publicKey);
      udp.endPeer(publicKey, "peer removed");
      log.event("peer-removed", `peer removed: ${peer.name}`, { peer: peer.name, publicKey });
    }
    for (const [publicKey, peer] of current) {
      if (samePeer(active.get(publicKey), peer)) continue;
      try {
        server.addPeer(peerOptions(peer));
      } catch (error) {
        now.push(`peer ${peer.name}: ${(error as Error).message}`);
        current.delete(publicKey);
        continue;
      }
      names.set(publicKey, peer.name);
      log.event("peer-added", `peer added: ${peer.name} ${peer.address.join(" ")}`, { peer: peer.name, publicKey, address: peer.address });
      showPeer(peer).catch((error: Error) => log.event("error", `error: ${error.message}`, { message: error.message }));
    }
    active = current;
    say(now);
  };
  const poll = setInterval(syncPeers, options.pollMs ?? 1000);
  void server.closed.then(() => clearInterval(poll)); // a closed server takes no peers

  return {
    address: server.address,
    publicKey: server.publicKey,
    endpoint,
    peers: () => [...active.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    stats: () => server.stats(),
    syncPeers,
    clientConfig(peer) {
      try {
        return readFileSync(store.clientConfigPath(peer.name), "utf8");
      } catch {
        return writeConfig(peer).text;
      }
    },
    tap(listener) {
      if (!pcap && !options.taps) throw new Error("this gateway was started without taps");
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    failed,
    async stop() {
      clearInterval(poll);
      shutdown.abort(); // open TCP flows reset both ways, dials give up
      udp.close();
      await server.close();
      await Promise.allSettled([...tcpFlows]);
      if (pcap) {
        await pcap.close();
        if (pcap.error) log.event("warning", `warning: pcap: ${pcap.error.message}`, { message: `pcap: ${pcap.error.message}` });
        if (pcap.dropped > 0) log.event("warning", `warning: pcap: ${pcap.dropped} packets not written (the disk fell behind)`, { pcapDropped: pcap.dropped });
      }
      log.summary();
    },
  };
}

/**
 * The peers that can be served together, those `served` now first (then by name): a peer
 * whose key is the server's or another's, or with an address the gateway or another peer
 * holds, is left out, and the problem names its file and field. (WireGuard would hand the
 * address to the later peer, and take it from both when that one goes.)
 */
function compatible(peers: PeerRecord[], served: Map<string, PeerRecord>, serverKey: string, gatewayHosts: string[], file: (name: string) => string): { peers: PeerRecord[]; problems: string[] } {
  const isServed = (peer: PeerRecord) => served.get(peer.publicKey)?.name === peer.name;
  const ordered = [...peers.filter(isServed), ...peers.filter((peer) => !isServed(peer))];
  const keys = new Map<string, string>(); // public key → peer name
  const addresses = new Map(gatewayHosts.map((host) => [host, "the gateway"])); // address → its holder
  const ok: PeerRecord[] = [];
  const problems: string[] = [];
  for (const peer of ordered) {
    const taken = peer.address.find((address) => addresses.has(address));
    let problem: string | undefined;
    if (peer.publicKey === serverKey) problem = "privateKey: the gateway's own key";
    else if (keys.has(peer.publicKey)) problem = `privateKey: the same key as ${keys.get(peer.publicKey)}'s`;
    else if (taken) problem = `address: ${taken} is ${addresses.get(taken)}'s`;
    if (problem) {
      problems.push(`${file(peer.name)}: ${problem}`);
      continue;
    }
    keys.set(peer.publicKey, peer.name);
    for (const address of peer.address) addresses.set(address, peer.name);
    ok.push(peer);
  }
  return { peers: ok, problems };
}

const samePeer = (a: PeerRecord | undefined, b: PeerRecord) => a !== undefined && a.name === b.name && a.address.join() === b.address.join();

function peerOptions(peer: PeerRecord): PeerOptions {
  return { publicKey: peer.publicKey, allowedIps: peer.address };
}

/** Listens where asked; without a host on every IPv6 and IPv4 address, or IPv4 only where the host has no IPv6. */
async function listen(start: (host: string, port: number) => Promise<Server>, where: { host?: string; port: number } | undefined): Promise<Server> {
  const port = where?.port ?? DEFAULT_PORT;
  if (where?.host) return start(where.host, port);
  try {
    return await start("::", port);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL") throw error;
    return start("0.0.0.0", port);
  }
}

/** "host:port" for client configs: --endpoint, else a guess at an address of this machine that clients reach. */
function configEndpoint(bound: Endpoint, chosen: { host: string; port?: number } | undefined): string {
  // Listening on every address (IPv4 and IPv6): guess an IPv4 one, which most networks route.
  const host = chosen?.host ?? reachableHost(bound.host === "::" ? "0.0.0.0" : bound.host);
  return endpointText({ host, port: chosen?.port ?? bound.port });
}
