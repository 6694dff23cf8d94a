// Local port forwards into the tunnel: a TCP listener whose connections are relayed to a
// tunnel socket each, and a UDP socket whose clients each get a tunnel UDP socket.

import { createSocket, type Socket as DatagramSocket } from "node:dgram";
import { type EventEmitter, once } from "node:events";
import net from "node:net";
import type { Duplex } from "node:stream";
import type { FlowEnd, FlowLog } from "../gateway/flow-log.js";
import { cidrCovers, endpointText, parseCidr, parseIp, type Endpoint } from "../ip.js";
import type { Tunnel } from "../tunnel/tunnel.js";
import type { TunnelSocket } from "../tunnel/socket.js";
import { relay, reset, type RelayResult } from "./relay.js";
import { relayUdpFlows } from "./udp-flows.js";

/** A local listener that leads into the tunnel. */
export interface Door {
  /** A forward's protocol, a proxy's kind, a reverse forward's (it listens on our tunnel address), or --stdio's. */
  protocol: "tcp" | "udp" | "socks5" | "http" | "reverse-tcp" | "reverse-udp" | "stdio";
  /** Where it listens, as HOST:PORT ("stdio" for --stdio). */
  address: string;
  /** Where it leads, as HOST:PORT. */
  target: string;
  /** For the "tunnel up" line. */
  description: string;
  /** Stops listening and waits for its flows to be logged (the shutdown signal ends them). */
  close(): Promise<void>;
}

/** What each door's flow records need: the log, and which WireGuard peer an address goes through. */
export interface FlowContext {
  log: FlowLog;
  /** The public key of the peer whose AllowedIPs hold `host` ("-" when none do). */
  peerOf(host: string): string;
}

export interface ForwardOptions extends FlowContext {
  tunnel: Tunnel;
  listen: Endpoint;
  target: Endpoint;
  /** Fires at shutdown: every flow is reset and logged as "shutdown". */
  signal: AbortSignal;
}

/** The door a flow came through, for its record's `via`: `socks5 127.0.0.1:1080`, `forward 127.0.0.1:8080`. */
export function viaText(kind: "tcp" | "udp" | "socks5" | "http" | "reverse", address: string): string {
  return `${kind === "tcp" || kind === "udp" ? "forward" : kind} ${address}`;
}

/** A lookup of the peer an address routes to, as WireGuard routes: the longest AllowedIPs prefix that holds it. */
export function peerLookup(peers: { publicKey: string; allowedIps: string[] }[]): (host: string) => string {
  const routes = peers
    .flatMap((peer) => peer.allowedIps.map((text) => ({ cidr: parseCidr(text)!, peer: peer.publicKey })))
    .sort((a, b) => b.cidr.prefix - a.cidr.prefix);
  return (host) => {
    const ip = parseIp(host);
    return (ip && routes.find((route) => cidrCovers(route.cidr, ip))?.peer) ?? "-";
  };
}


/** Where a local socket really listens (port 0 becomes the port picked). */
function boundText(host: string, port: number): string {
  return endpointText({ host, port });
}

export function startTcpForward(options: ForwardOptions): Promise<Door> {
  const targetText = endpointText(options.target);
  const door = (address: string) => ({ protocol: "tcp" as const, target: targetText, description: `tcp ${address} -> ${targetText}` });
  // Paused until the tunnel side is dialled: nothing is read that could not be passed on.
  return openTcpDoor(options.listen, (client, via) => forwardConnection(client, via, options), door, { pauseOnConnect: true });
}

/**
 * Listens on `listen` and runs `serve` for each client (with the door's `via` text); the door's
 * close() stops listening and waits for every flow to end and be logged.
 */
export async function openTcpDoor(
  listen: Endpoint,
  serve: (client: net.Socket, via: string) => Promise<void>,
  label: (address: string) => Pick<Door, "target" | "description"> & { protocol: "tcp" | "socks5" | "http" },
  { pauseOnConnect = false } = {},
): Promise<Door> {
  const flows = new Set<Promise<void>>();
  let via = ""; // set once listening (the port is known then), before any client can arrive
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect }, (client) => {
    const flow = serve(client, via).finally(() => flows.delete(flow));
    flows.add(flow);
  });
  server.listen(listen.port, listen.host);
  await listening(server);
  const address = boundText(listen.host, (server.address() as net.AddressInfo).port);
  const labels = label(address);
  via = viaText(labels.protocol, address);
  return {
    ...labels,
    address,
    close: async () => {
      server.close();
      await Promise.all(flows);
    },
  };
}

/** Resolves once a server or datagram socket listens; rejects with the error if binding fails. */
export function listening(emitter: EventEmitter): Promise<unknown> {
  return Promise.race([once(emitter, "listening"), once(emitter, "error").then(([error]) => Promise.reject(error))]);
}

/** Dials the target through the tunnel, then relays; a failed dial resets the client (as a refused connect would look). */
async function forwardConnection(client: net.Socket, via: string, options: ForwardOptions): Promise<void> {
  const { tunnel, target, signal } = options;
  const flow = new TcpFlow(client, via, target, options);
  const dialed = await flow.dial(tunnel, signal);
  if ("end" in dialed) {
    reset(client);
    return flow.done({ up: 0, down: 0, ...dialed });
  }
  client.resume();
  await flow.relay(dialed.socket, signal);
}

/** One proxied TCP connection's record: started when the client connected, logged once when done. */
export class TcpFlow {
  readonly #start = Date.now();
  readonly #src: Endpoint;
  #dst: Endpoint;

  /** `client`: a local socket, or --stdio's stdin and stdout (no address: "?"). */
  constructor(
    readonly client: Duplex & Partial<Pick<net.Socket, "remoteAddress" | "remotePort">>,
    readonly via: string,
    readonly target: Endpoint,
    readonly context: FlowContext,
  ) {
    this.#src = { host: client.remoteAddress ?? "?", port: client.remotePort ?? 0 };
    this.#dst = target;
    client.on("error", () => {}); // told through the relay's result, or irrelevant once reset
  }

  /** Dials the target (dialTunnel); from the moment a name resolves, the record names its address and so its peer. */
  dial(tunnel: Tunnel, signal: AbortSignal): ReturnType<typeof dialTunnel> {
    return dialTunnel(tunnel, this.target, signal, (address) => (this.#dst = { host: address, port: this.target.port }));
  }

  /** Relays the client to the connected `upstream` until both are done, and logs it; `early` as for relay(). */
  async relay(upstream: TunnelSocket, signal: AbortSignal, early?: Uint8Array): Promise<RelayResult> {
    const result = await relay(this.client, upstream, signal, early);
    this.done({ up: result.up, down: result.down, end: result.end, ...(result.error ? { error: result.error.message } : {}) });
    return result;
  }

  done({ up, down, end, error }: { up: number; down: number; end: FlowEnd; error?: string }): void {
    const named = parseIp(this.target.host) ? {} : { name: this.target.host };
    const dst = this.#dst;
    // Still a name: it never resolved, and the failure is that.
    const why = error === undefined ? {} : { error: parseIp(dst.host) ? error : `did not resolve: ${error}` };
    this.context.log.flow({ start: this.#start, durationMs: Date.now() - this.#start, peer: this.context.peerOf(dst.host), via: this.via, protocol: "tcp", src: this.#src, dst, up, down, end, ...why, ...named });
  }
}

/**
 * Waits for a dialled socket's 'connect'. Resolves with its error if it failed, with "aborted" if
 * `signal` fired first, or with undefined once connected.
 */
export async function connected(socket: EventEmitter, signal: AbortSignal): Promise<(Error & { code?: string }) | "aborted" | undefined> {
  return await new Promise((resolve) => {
    const aborted = () => resolve("aborted");
    socket.once("connect", () => {
      signal.removeEventListener("abort", aborted);
      resolve(undefined);
    });
    socket.once("error", resolve);
    if (signal.aborted) return resolve("aborted");
    signal.addEventListener("abort", aborted, { once: true });
  });
}

/**
 * Opens a half-open tunnel socket to `target`, or says how it failed (with the tunnel's error
 * code); `resolved` hears the address a name resolved to, before the connect.
 */
async function dialTunnel(
  tunnel: Tunnel,
  target: Endpoint,
  signal: AbortSignal,
  resolved: (address: string) => void,
): Promise<{ socket: TunnelSocket } | { end: FlowEnd; error?: string; code?: string }> {
  let upstream: TunnelSocket;
  try {
    upstream = tunnel.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    upstream.once("lookup", (_error: Error | null, address: string) => resolved(address));
  } catch (error) {
    // A target connect() will not take (a proxy client's port 0, or a name that is no host
    // name): a dial that failed, answered and logged as one.
    return { end: "unreachable", error: (error as Error).message, ...(error instanceof TypeError ? { code: "ENOTFOUND" } : {}) };
  }
  const failure = await connected(upstream, signal);
  if (failure === "aborted") {
    upstream.destroy();
    return { end: "shutdown" };
  }
  if (failure) {
    upstream.destroy();
    return { end: failure.code === "ECONNREFUSED" ? "refused" : "unreachable", error: failure.message, ...(failure.code ? { code: failure.code } : {}) };
  }
  upstream.on("error", () => {}); // until the relay listens
  return { socket: upstream };
}

export async function startUdpForward(options: ForwardOptions): Promise<Door> {
  const { tunnel, target, log, signal, peerOf } = options;
  const family = parseIp(options.listen.host)?.family === 6 ? "udp6" : "udp4";
  const local: DatagramSocket = createSocket({ type: family });
  local.bind(options.listen.port, options.listen.host);
  await listening(local);
  const address = boundText(options.listen.host, local.address().port);
  const via = viaText("udp", address);
  local.on("error", () => {}); // a send to a client that went away (ICMP) must not crash us
  const named = parseIp(target.host) ? {} : { name: target.host };
  const endAll = relayUdpFlows({
    listener: local,
    target,
    open: () => tunnel.udp(),
    signal,
    record: (flow, end, error) => {
      const dst = flow.dst ?? target;
      log.flow({ start: flow.start, durationMs: Date.now() - flow.start, peer: peerOf(dst.host), via, protocol: "udp", src: flow.src, dst, up: flow.up, down: flow.down, end, ...(error ? { error } : {}), ...named });
    },
  });

  const targetText = endpointText(target);
  return {
    protocol: "udp",
    address,
    target: targetText,
    description: `udp ${address} -> ${targetText}`,
    close: async () => {
      endAll();
      await new Promise<void>((resolve) => local.close(() => resolve()));
    },
  };
}
