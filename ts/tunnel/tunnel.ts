// connectTunnel: the client role as a library. Joins a WireGuard network from a wg-quick
// config and dials into it: a client-role server (`startServer` with our `address` and the
// peers' endpoints) underneath, sockets, a resolver and HTTP on top.

import type http from "node:http";
import type https from "node:https";
import type { Dispatcher } from "undici";
import { ConfigError, isRecord } from "../config.js";
import { startServer, type Server, type ServerStats, type UdpUnreachable } from "../host/server.js";
import type { TcpConnection } from "../host/tcp-connection.js";
import type { UdpPacket } from "../host/udp-packet.js";
import { cidrCovers, endpointText, formatIp, parseCidr, parseHostEndpoint, parseIp, type Cidr, type Endpoint, type IpFamily } from "../ip.js";
import { lookupHost } from "../runtime/system.js";
import { parseConfig, type TunnelConfig } from "./config.js";
import { DnsResolver, type ResolveOptions } from "./dns.js";
import { abortError, asTunnelError, checkPort, codedError, TunnelError, untilAborted } from "./errors.js";
import { tunnelDispatcher, tunnelFetch, tunnelHttpAgent, tunnelHttpsAgent } from "./http.js";
import { TunnelSocket, type Dialer, type TunnelConnectOptions, type TunnelSocketOptions } from "./socket.js";
import { TunnelUdpSocket, type UdpListener } from "./udp.js";

/** Options of {@link connectTunnel}, beside the config. */
export interface TunnelOptions {
  /** Milliseconds to wait for the first WireGuard handshake before rejecting with `ETIMEDOUT`; default 10,000. */
  handshakeTimeout?: number;
  /** Milliseconds a `connect()` may take when it gives no `timeout`; default 20,000. */
  connectTimeout?: number;
  /**
   * Resolves an Endpoint's host name to one IP address; default the system's resolver
   * (`dns.lookup`), as wg-quick does. Not used for names inside the tunnel (see `resolve()`).
   */
  lookup?: (hostname: string) => Promise<string>;
  /** Called when the tunnel fails and closes (the engine failed, the UDP socket closed). Default: `console.error`. */
  onError?: (error: Error) => void;
  /** Sees every decrypted inner packet, both ways (as `startServer`'s `tap`): for a pcap file. It must not keep the packet. */
  tap?: (packet: Uint8Array) => void;
  /** The engine's threads, as `startServer`'s `threads`: 0 (default) or 1, the engine and its UDP socket in a worker. */
  threads?: 0 | 1;
  /** Gives up joining when it fires (before the first handshake): rejects with an `AbortError` (code `ABORT_ERR`), nothing left open. */
  signal?: AbortSignal;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
/** How often the handshake is looked for while connecting. */
const HANDSHAKE_POLL_MS = 20;

/**
 * Joins a WireGuard network: starts a client-role endpoint from a wg-quick config (the text,
 * or {@link parseConfig}'s result), resolves Endpoint names with the system's resolver, starts
 * a handshake with every peer that has an endpoint and resolves once the first one completed.
 * Rejects (never throws) with a `ConfigError` for a bad config, or a {@link TunnelError}:
 * `ENOTFOUND` for an Endpoint name, `ETIMEDOUT` when no handshake completes within
 * `handshakeTimeout`, `ABORT_ERR` when `signal` fired first.
 *
 * @example
 * ```ts
 * const tunnel = await connectTunnel(fs.readFileSync("wg0.conf", "utf8"));
 * const socket = tunnel.connect(5432, "db.internal");
 * const response = await tunnel.fetch("http://10.0.0.1/status");
 * await tunnel.close();
 * ```
 */
export async function connectTunnel(config: string | TunnelConfig, options: TunnelOptions = {}): Promise<Tunnel> {
  const parsed = typeof config === "string" ? parseConfig(config) : config;
  if (!isRecord(parsed) || !Array.isArray(parsed.peers) || !Array.isArray(parsed.address)) {
    throw new ConfigError("config", "expected the text of a wg-quick config or parseConfig()'s result");
  }
  const handshakeTimeout = timeoutOption(options.handshakeTimeout, "handshakeTimeout", DEFAULT_HANDSHAKE_TIMEOUT_MS);
  const connectTimeout = timeoutOption(options.connectTimeout, "connectTimeout", DEFAULT_CONNECT_TIMEOUT_MS);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw codedError("ERR_INVALID_ARG_TYPE", `signal must be an AbortSignal, got ${typeof signal}`, { Class: TypeError });
  if (signal?.aborted) throw abortError(signal);

  const lookupName = options.lookup ?? lookupHost;
  const resolving = Promise.all(parsed.peers.map((peer, i) => resolveEndpoint(peer.endpoint, `peers[${i}].endpoint`, lookupName)));
  // The system's resolver cannot be aborted: the wait for it can.
  const endpoints = signal ? await untilAborted(resolving, signal, () => abortError(signal)) : await resolving;
  // One socket for every peer: dual-stack when an endpoint is IPv6.
  const host = endpoints.some((endpoint) => endpoint && parseIp(endpoint.host)!.family === 6) ? "::" : "0.0.0.0";
  const tunnel = new Tunnel(parsed, connectTimeout);
  const server = await startServer({
    privateKey: parsed.privateKey,
    address: parsed.address,
    host,
    port: parsed.listenPort ?? 0,
    ...(parsed.mtu === undefined ? {} : { mtu: parsed.mtu }),
    peers: parsed.peers.map((peer, i) => ({
      publicKey: peer.publicKey,
      allowedIps: peer.allowedIps,
      ...(endpoints[i] ? { endpoint: endpoints[i] } : {}),
      ...(peer.presharedKey ? { presharedKey: peer.presharedKey } : {}),
      ...(peer.persistentKeepalive ? { persistentKeepalive: peer.persistentKeepalive } : {}),
    })),
    onUdp: (packet) => tunnel[RECEIVE_UDP](packet),
    onUdpUnreachable: (info) => tunnel[RECEIVE_UDP_UNREACHABLE](info),
    onTcp: (connection) => tunnel[RECEIVE_TCP](connection),
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.tap ? { tap: options.tap } : {}),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  });
  try {
    await tunnel[START](server, handshakeTimeout, signal);
  } catch (error) {
    await server.close();
    throw error;
  }
  return tunnel;
}

const START = Symbol("start");
const RECEIVE_UDP = Symbol("receive udp");
const RECEIVE_UDP_UNREACHABLE = Symbol("receive udp unreachable");
const RECEIVE_TCP = Symbol("receive tcp");

/** What `tunnel.listen()` returns. */
export interface TunnelListener {
  /** The port listened on, on every tunnel address of ours. */
  readonly port: number;
  /** Stops accepting: later connections to the port are refused (RST); open ones go on. */
  close(): void;
}

/**
 * A joined WireGuard network, made by {@link connectTunnel}: dial TCP with `connect()` or
 * `socket()`, resolve names with `resolve()`. Close it with `close()`.
 */
export class Tunnel {
  readonly #config: TunnelConfig;
  readonly #routes: { cidr: Cidr; peer: string }[];
  readonly #dialer: Dialer;
  readonly #resolver: DnsResolver;
  readonly #udpListeners = new Map<string, UdpListener>();
  readonly #tcpListeners = new Map<number, { onConnection: (socket: TunnelSocket) => void; options: TunnelSocketOptions }>();
  #server!: Server;
  #dispatcher: Dispatcher | undefined;
  #httpAgent: http.Agent | undefined;
  #httpsAgent: https.Agent | undefined;

  /** @internal Use {@link connectTunnel}. */
  constructor(config: TunnelConfig, connectTimeout: number) {
    this.#config = config;
    this.#dialer = { connectTimeout, dial: (host, port, family, signal, resolved) => this.#dial(host, port, family, signal, resolved) };
    this.#routes = config.peers.flatMap((peer) => peer.allowedIps.map((text) => ({ cidr: parseCidr(text)!, peer: peer.publicKey })));
    this.#resolver = new DnsResolver(config.dns, {
      localAddress: (family) => this.#localAddress(family),
      sendUdp: (data, from, to) => this.#server.sendUdp(data, from, to),
      listenUdp: (local, listener) => this.#listenUdp([local], listener),
      connectTcp: (to) => this.#open(to),
    }, config.dnsSearch ?? []);
  }

  /** @internal */
  async [START](server: Server, handshakeTimeout: number, signal: AbortSignal | undefined): Promise<void> {
    this.#server = server;
    const dialed = this.#config.peers.filter((peer) => peer.endpoint !== undefined);
    if (dialed.length === 0) return; // nobody to dial: the peers will call us
    for (const peer of dialed) server.keepalive(peer.publicKey);
    const deadline = Date.now() + handshakeTimeout;
    while (!server.stats().peers.some((peer) => peer.sinceHandshakeMs !== undefined)) {
      if (server.error) throw server.error;
      if (signal?.aborted) throw abortError(signal);
      if (Date.now() >= deadline) {
        const where = dialed.map((peer) => peer.endpoint).join(", ");
        throw new TunnelError("ETIMEDOUT", `no WireGuard handshake with ${where} within ${handshakeTimeout} ms (is the Endpoint right, is it up, and does it know our public key ${server.publicKey}?)`, {
          syscall: "handshake",
        });
      }
      await new Promise((resolve) => setTimeout(resolve, HANDSHAKE_POLL_MS));
    }
  }

  /** Our public key (base64): what the peers must have in their config. */
  get publicKey(): string {
    return this.#server.publicKey;
  }

  /** Our tunnel addresses, as in the config's `Address`. */
  get addresses(): string[] {
    return [...this.#config.address];
  }

  /** Resolves when the tunnel has closed: by `close()`, or because it failed. */
  get closed(): Promise<void> {
    return this.#server.closed;
  }

  /** Peers (endpoint, last handshake, bytes), dropped packets and TCP totals, as `server.stats()` gives them. */
  stats(): ServerStats {
    return this.#server.stats();
  }

  /**
   * Opens a TCP connection through the tunnel, as `net.connect` does: `connect(port, host)`
   * or `connect({ port, host, timeout, signal, family })`. The host is an IP in the
   * network, or a name resolved with {@link resolve}. The socket emits `'connect'`, or
   * `'error'` with a coded {@link TunnelError}.
   */
  connect(options: TunnelConnectOptions & TunnelSocketOptions, onConnect?: () => void): TunnelSocket;
  connect(port: number, host: string, onConnect?: () => void): TunnelSocket;
  connect(portOrOptions: number | (TunnelConnectOptions & TunnelSocketOptions), host?: string | (() => void), onConnect?: () => void): TunnelSocket {
    if (typeof portOrOptions === "object" && portOrOptions !== null) {
      return this.socket({ allowHalfOpen: portOrOptions.allowHalfOpen ?? false }).connect(portOrOptions, typeof host === "function" ? host : onConnect);
    }
    return this.socket().connect(portOrOptions, host as string, onConnect);
  }

  /** An unconnected socket whose `connect(port, host)` dials later, as pg's `stream` option wants. */
  socket(options: TunnelSocketOptions = {}): TunnelSocket {
    return new TunnelSocket(this.#dialer, options);
  }

  /**
   * The addresses of a name, asked of the config's DNS servers through the tunnel (A and
   * AAAA over UDP, TCP when truncated; cached for their TTL). Rejects with `ENOTFOUND` or
   * `ETIMEDOUT`.
   */
  resolve(name: string, options: ResolveOptions = {}): Promise<string[]> {
    return this.#resolver.resolve(name, options);
  }

  /**
   * `fetch` through the tunnel: `http:` and `https:` (TLS over the tunnel socket, verified
   * as the runtime's own HTTPS is), names resolved through the tunnel's DNS, streaming
   * bodies both ways. Runs on npm's `undici` (7 or later), which must be installed.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    try {
      return tunnelFetch(this.dispatcher, input, init);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** An undici `Dispatcher` whose connections go through the tunnel: `fetch(url, { dispatcher })` with npm's undici, and undici's `request`. */
  get dispatcher(): Dispatcher {
    return (this.#dispatcher ??= tunnelDispatcher(this));
  }

  /** An `http.Agent` (keep-alive) whose sockets are tunnel sockets: `http.get(url, { agent: tunnel.httpAgent })`. */
  get httpAgent(): http.Agent {
    return (this.#httpAgent ??= tunnelHttpAgent(this));
  }

  /** An `https.Agent` (keep-alive) whose TLS runs over tunnel sockets. */
  get httpsAgent(): https.Agent {
    return (this.#httpsAgent ??= tunnelHttpsAgent(this));
  }

  /** Closes the tunnel: every connection is reset, the UDP socket closed. */
  async close(): Promise<void> {
    this.#httpAgent?.destroy();
    this.#httpsAgent?.destroy();
    await this.#dispatcher?.destroy().catch(() => {});
    await this.#server.close();
  }

  /**
   * Accepts TCP connections that peers open to `port` on our tunnel addresses, as
   * `TunnelSocket`s; `http.createServer(handler).emit("connection", socket)` serves HTTP
   * into the network with them. Connections to ports nobody listens on are refused (RST).
   * Throws `EADDRINUSE` (a TunnelError-like Error) if the port is taken.
   */
  listen(port: number, onConnection: (socket: TunnelSocket) => void, options: TunnelSocketOptions = {}): TunnelListener {
    checkPort(port);
    if (typeof onConnection !== "function") throw new TypeError("onConnection must be a function");
    if (this.#tcpListeners.has(port)) throw codedError("EADDRINUSE", `listen EADDRINUSE: port ${port} of the tunnel is already listened on`, { syscall: "listen" });
    const entry = { onConnection, options };
    this.#tcpListeners.set(port, entry);
    return {
      port,
      close: () => {
        if (this.#tcpListeners.get(port) === entry) this.#tcpListeners.delete(port);
      },
    };
  }

  /** @internal A peer opens a connection to us: to a listened port of one of our addresses, or refused. */
  async [RECEIVE_TCP](connection: TcpConnection): Promise<void> {
    const listener = this.#tcpListeners.get(connection.local.port);
    const ours = this.#config.address.some((text) => formatIp(parseCidr(text)!) === connection.local.host);
    if (!listener || !ours) return connection.refuse();
    await connection.accept();
    const socket = TunnelSocket.accepted(this.#dialer, connection, listener.options);
    try {
      listener.onConnection(socket);
    } catch (error) {
      socket.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  /**
   * Pings a host (an IP, or a name resolved through the tunnel) with an ICMP echo request
   * and resolves to the round trip in milliseconds. Rejects with `ETIMEDOUT` after `timeout`
   * (default 5,000 ms), `ENETUNREACH`, or `ENOTFOUND`.
   */
  async ping(host: string, options: { timeout?: number } = {}): Promise<number> {
    const address = parseIp(host) ? host : await this.#resolveRoutable(host);
    const unroutable = this.#routeError(address);
    if (unroutable) throw new TunnelError("ENETUNREACH", `ping ENETUNREACH ${address}: ${unroutable}`, { syscall: "ping", address });
    try {
      return await this.#server.ping(address, options);
    } catch (error) {
      const code = (error as { code?: string }).code === "ETIMEDOUT" ? "ETIMEDOUT" : "ECONNABORTED";
      throw new TunnelError(code, (error as Error).message, { syscall: "ping", address, cause: error });
    }
  }

  /** The address of a name to use: one we can route and have an address for, else the first. */
  async #resolveRoutable(name: string): Promise<string> {
    const addresses = await this.#resolver.resolve(name, { family: this.#addressFamily(0) });
    return addresses.find((address) => this.#routeError(address) === undefined) ?? addresses[0]!;
  }

  /** A UDP socket through the tunnel, used as a `node:dgram` socket is (see {@link TunnelUdpSocket}). */
  udp(): TunnelUdpSocket {
    return new TunnelUdpSocket({
      localAddress: (family) => this.#localAddress(family),
      resolve: async (host) => (parseIp(host) ? host : this.#resolveRoutable(host)),
      send: (data, from, to) => {
        const unroutable = this.#routeError(to.host);
        if (unroutable) throw new TunnelError("ENETUNREACH", `send ENETUNREACH ${endpointText(to)}: ${unroutable}`, { syscall: "send", address: to.host, port: to.port });
        this.#server.sendUdp(data, from, to);
      },
      bind: (port, listener) =>
        this.#listenUdp(
          this.#config.address.map((text) => ({ host: formatIp(parseCidr(text)!), port })),
          listener,
        ),
    });
  }

  /** Routes datagrams for these local endpoints (and ICMP errors about ours from them) to `listener`; throws EADDRINUSE when one is taken. Returns the undo. */
  #listenUdp(locals: Endpoint[], listener: UdpListener): () => void {
    const keys = locals.map(endpointText);
    const taken = keys.find((key) => this.#udpListeners.has(key));
    if (taken) throw codedError("EADDRINUSE", `bind EADDRINUSE ${taken}: already bound in the tunnel`, { syscall: "bind" });
    for (const key of keys) this.#udpListeners.set(key, listener);
    return () => {
      for (const key of keys) if (this.#udpListeners.get(key) === listener) this.#udpListeners.delete(key);
    };
  }

  /** @internal Datagrams that arrive for us: a DNS answer, say. One for a port nothing is bound to is answered as a host does (RFC 1122 4.1.3.1). */
  [RECEIVE_UDP](packet: UdpPacket): void {
    const listener = this.#udpListeners.get(endpointText(packet.dst));
    if (listener) listener.message(packet.data, packet.src);
    else packet.refuse("port");
  }

  /** @internal A peer's side could not deliver a datagram of ours. */
  [RECEIVE_UDP_UNREACHABLE](info: UdpUnreachable): void {
    this.#udpListeners.get(endpointText(info.local))?.unreachable?.(info.remote, info.code);
  }

  /** Resolves a name if need be, then opens the connection. */
  async #dial(host: string, port: number, family: 0 | 4 | 6, signal: AbortSignal, resolved: (address: string) => void): Promise<TcpConnection> {
    let ip = parseIp(host) ? host : undefined;
    if (!ip) {
      const addresses = await this.#resolver.resolve(host, { family: this.#addressFamily(family) });
      // Prefer what we can route and have an address for (a v6 answer without a v6 address is no use).
      ip = addresses.find((address) => this.#routeError(address) === undefined) ?? addresses[0]!;
      resolved(ip);
    }
    if (signal.aborted) throw signal.reason;
    return this.#open({ host: ip, port });
  }

  /** Opens a TCP connection to an IP; every failure is a TunnelError. */
  async #open(to: Endpoint): Promise<TcpConnection> {
    const unroutable = this.#routeError(to.host);
    if (unroutable) throw new TunnelError("ENETUNREACH", `connect ENETUNREACH ${endpointText(to)}: ${unroutable}`, { syscall: "connect", address: to.host, port: to.port });
    try {
      return await this.#server.connect(to);
    } catch (error) {
      const coded = asTunnelError(error, { syscall: "connect", address: to.host, port: to.port });
      throw new TunnelError(coded.code, `connect ${coded.code} ${endpointText(to)}: ${coded.message}`, { syscall: "connect", address: to.host, port: to.port, cause: error });
    }
  }

  /** Why `host` cannot be reached through the tunnel, or undefined if it can. */
  #routeError(host: string): string | undefined {
    const ip = parseIp(host)!;
    if (!this.#routes.some((route) => cidrCovers(route.cidr, ip))) return "no peer's AllowedIPs cover it";
    if (!this.#localAddress(ip.family)) return `we have no IPv${ip.family} tunnel address (Address in the config)`;
    return undefined;
  }

  /**
   * The family to ask a name's records of for a dial: as net.connect's ADDRCONFIG hint, only
   * the one we have a tunnel address of when we have one family (no AAAA question, answered
   * empty and so never cached, before every connect of an IPv4-only tunnel).
   */
  #addressFamily(family: 0 | 4 | 6): 0 | 4 | 6 {
    if (family !== 0) return family;
    const v4 = this.#localAddress(4) !== undefined;
    const v6 = this.#localAddress(6) !== undefined;
    return v4 === v6 ? 0 : v4 ? 4 : 6;
  }

  #localAddress(family: IpFamily): string | undefined {
    for (const text of this.#config.address) {
      const cidr = parseCidr(text)!;
      if (cidr.family === family) return formatIp(cidr);
    }
    return undefined;
  }
}

/** An Endpoint with its name resolved by the system's resolver (the outer network's). */
async function resolveEndpoint(text: string | undefined, field: string, lookupName: (hostname: string) => Promise<string>): Promise<Endpoint | undefined> {
  if (text === undefined) return undefined;
  const endpoint = parseHostEndpoint(text);
  if (!endpoint) throw new ConfigError(field, `${JSON.stringify(text)} is not host:port`);
  if (parseIp(endpoint.host)) return endpoint;
  let address: string;
  try {
    address = await lookupName(endpoint.host);
  } catch (error) {
    throw new TunnelError("ENOTFOUND", `Endpoint ${text}: ${endpoint.host} does not resolve (${(error as Error).message})`, { syscall: "getaddrinfo", address: endpoint.host, cause: error });
  }
  const ip = parseIp(address);
  if (!ip) throw new TunnelError("ENOTFOUND", `Endpoint ${text}: ${endpoint.host} resolved to ${JSON.stringify(address)}, not an IP address`, { syscall: "getaddrinfo", address: endpoint.host });
  return { host: formatIp(ip), port: endpoint.port };
}

function timeoutOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new ConfigError(name, `expected a positive number of milliseconds, got ${String(value)}`);
  return value;
}
