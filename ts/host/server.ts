// startServer: owns the UDP socket, the clock and the one timer, and pumps the engine.
//
// The pump runs in batches: the connections' requests (writes, reads, accepts, closes)
// queued since the last run and every datagram that arrived go into the engine in one
// call, and what it queued (datagrams, TCP events, UDP packets) is dispatched. User
// actions only queue commands and schedule a pump, so a burst of them costs one
// boundary crossing.

import {
  ConfigError,
  decodeKey,
  encodeKey,
  type OPTION_NAMES,
  validateConfig,
  validatePeer,
  type Config,
  type ConfigInput,
  type ListsAll,
  type MustBeTrue,
  type PeerConfig,
  type PeerOptions,
} from "../config.js";
import { Engine, EngineError, type CloseReason, type EngineStats, type Datagram, type EventHandler, type TcpTotals, type UdpTotals, type UnreachableReason } from "../wasm/engine.js";
import { ERROR, REQUEST_MESSAGE } from "../wasm/abi.js";
import { endpointText, formatIp, parseIp, type Endpoint, type Ip } from "../ip.js";
import { defaultRuntime } from "../runtime/index.js";
import type { DatagramSocket, Runtime } from "../runtime/types.js";
import { Routes } from "./routes.js";
import { closeError, ConnectionError, TcpConnection, type ConnectionLink } from "./tcp-connection.js";
import { UdpPacket } from "./udp-packet.js";
import { ThreadedEngine } from "./worker/threaded-engine.js";

/** Everything `startServer` takes: the WireGuard and TCP settings plus the handlers. */
export interface ServerOptions extends ConfigInput {
  /**
   * Called when a client opens a TCP connection, to any destination, as its SYN arrives.
   * The handshake completes when the handler calls `connection.accept()`, first reads or
   * writes, or returns (or its promise settles), whichever comes first; `connection.refuse()`
   * turns it down. Returning does not close it: the connection stays open until you close
   * it, the client resets it, or a timeout ends it. A throw or rejection resets the
   * connection. Without `onTcp`, every connection is refused (RST).
   */
  onTcp?: (connection: TcpConnection) => void | Promise<void>;
  /** Called for each UDP datagram a client sends, to any destination. */
  onUdp?: (packet: UdpPacket) => void | Promise<void>;
  /** Called when a handler throws, or when the server fails and closes. Default: `console.error`. */
  onError?: (error: Error) => void;
  /** Called when a handshake comes from a key no peer has (someone tries a config we do not have): at most once a minute per key. */
  onUnknownPeer?: (info: { publicKey: string; endpoint: Endpoint }) => void;
  /**
   * Called when a client's side answers a datagram we sent it (`sendUdp`, `UdpPacket.reply`)
   * with an ICMP or ICMPv6 destination unreachable: no one listens on that port, say.
   */
  onUdpUnreachable?: (info: UdpUnreachable) => void;
  /** Called with every decrypted inner packet (an IPv4 or IPv6 packet), both ways: for a capture. It costs a copy per packet. */
  tap?: (packet: Uint8Array, info: { direction: "in" | "out"; peer: string }) => void;
  /** The UDP socket and clock to use; by default the best one for Node, Deno or Bun. Tests pass an in-memory network with virtual time. */
  runtime?: Runtime;
  /**
   * Engine threads besides the main thread; 0 or 1, anything else is a `ConfigError`.
   *
   * - 0 (the default): the engine, the UDP socket and your code share the main thread.
   * - 1: the engine (decryption, TCP, encryption) and its UDP socket run in a worker; your
   *   handlers, `TcpConnection`s and `UdpPacket`s stay on the main thread and behave the same.
   *   `close()` ends the worker; a trap in it fails the server as with 0.
   *
   * 1 pays only when a core is free for it: on a two-core machine it measured 1.1× the
   * single thread with both ends of a transfer in one process, and 0.9× with the other core
   * busy (docs/threads.md), so it is not the default. Not with a custom `runtime`.
   */
  threads?: 0 | 1;
}

/** What `onUdpUnreachable` is told. */
export interface UdpUnreachable {
  /** Where the datagram was sent from. */
  local: Endpoint;
  /** Where it was sent: what cannot be reached. */
  remote: Endpoint;
  /** The public key of the peer whose side answered. */
  peer: string;
  /**
   * What a connected `node:dgram` socket would say: `ECONNREFUSED` when no one listens on
   * the port, `EHOSTUNREACH` for the host (or a filter on the way), `ENETUNREACH` for the network.
   */
  code: (typeof UNREACHABLE_CODES)[keyof typeof UNREACHABLE_CODES];
}

/** The code Linux gives a UDP socket for each kind of ICMP destination unreachable. */
export const UNREACHABLE_CODES = { net: "ENETUNREACH", host: "EHOSTUNREACH", port: "ECONNREFUSED" } as const;

// Checked by tsc: validateConfig refuses an option OPTION_NAMES does not list, as misspelt.
// biome-ignore lint/correctness/noUnusedVariables: never used, only checked by tsc
type OptionNamesListed = MustBeTrue<ListsAll<ServerOptions, typeof OPTION_NAMES>>;

/** One peer's state, as `wg show` would tell it. */
export interface PeerStats {
  /** The peer's public key (base64). */
  publicKey: string;
  /** Where the peer's datagrams come from now (it follows roaming). */
  endpoint: Endpoint | undefined;
  /** Milliseconds since the current session's handshake; undefined before the first one. */
  sinceHandshakeMs: number | undefined;
  /** Inner bytes sent to the peer. */
  txBytes: number;
  /** Inner bytes received from the peer. */
  rxBytes: number;
}

/** A snapshot of the server, from `server.stats()`. */
export interface ServerStats {
  /** One entry per configured peer, in the order given. */
  peers: PeerStats[];
  /**
   * Dropped packets by reason: malformed, authFailed, unknownPeer, replay, noSession, underLoad,
   * sourceNotAllowed, innerMalformed, unsupported, noRoute, noEndpoint, icmpRateLimited (ICMP
   * errors held back: a peer gets ten at once, then one per 100 ms), and queueFull: with
   * `threads: 1`, datagrams the worker could not keep while the main thread was behind, and UDP
   * and pings sent while the worker was behind (past 1 MiB of commands waiting for it); always 0
   * on one thread, which has no queue between threads.
   */
  dropped: Record<string, number>;
  /** Open TCP connections. */
  connections: number;
  /** TCP over the server's life: refusals, retransmissions and timeouts, bytes held, mean RTT. */
  tcp: TcpTotals;
  /** UDP flows open, and datagrams refused over the flow limit. */
  udp: UdpTotals;
  /** Bytes of WebAssembly memory the engine holds: stays bounded under load. */
  memoryBytes: number;
}

/** Options for `server.connect()`. */
export interface ConnectOptions {
  /** Our tunnel address (and port; 0 or absent picks one). Defaults to the first `address` of the right family. */
  from?: Endpoint | string;
}

/** Starts a WireGuard server. Resolves once the UDP socket is listening. */
export async function startServer(options: ServerOptions): Promise<Server> {
  const config = validateConfig(options);
  const runtime = options.runtime ?? defaultRuntime();
  const server = new Server(config, options, runtime);
  await server[START]();
  return server;
}

const START = Symbol("start");
/** How many connections close() resets at a time, a millisecond apart (see close()). */
const RESETS_PER_MS = 32;
/** @internal Reaches the server's engine, for tests. Not exported from the package. */
export const INTERNALS = Symbol("wg-netstack internals");

/** A running WireGuard server: one UDP socket, one wasm engine. Made by {@link startServer}. */
export class Server {
  readonly #config: Config;
  readonly #options: ServerOptions;
  readonly #runtime: Runtime;
  /** The engine, made at start: here (threads: 0), or in a worker behind a ThreadedEngine (threads: 1). */
  #engine!: Engine | ThreadedEngine;
  #publicKey = "";
  #socket: DatagramSocket | undefined;
  #inbound: Datagram[] = [];
  #scheduled = false;
  #timer: unknown;
  #connections = new Map<number, TcpConnection>();
  /** The engine's peer ids, to their base64 public keys. */
  #peerKeys = new Map<number, string>();
  /** Peers configured with an endpoint (one learned from the peer only the engine knows). */
  #peersWithEndpoint = new Set<number>();
  /** The engine's allowedIps, to refuse a UDP send or ping with no route where it is made. */
  readonly #routes = new Routes();
  /** Connections we opened, until established; `room` is what they may write already. */
  #connecting = new Map<number, { remote: Endpoint; local: Endpoint; room: number; resolve(conn: TcpConnection): void; reject(error: Error): void }>();
  /** Pings waiting for their echo reply, by "address seq"; called with the time it came. */
  #pings = new Map<string, (at: number) => void>();
  /** Our ICMP echo identifier, random per server; and the last sequence number used. */
  readonly #pingIdent = Math.floor(Math.random() * 0x10000);
  #pingSeq = 0;
  #closing = false;
  #closed = false;
  #error: Error | undefined;
  #whenClosed: Promise<void>;
  #markClosed!: () => void;

  /** @internal Use `startServer`. */
  constructor(config: Config, options: ServerOptions, runtime: Runtime) {
    this.#config = config;
    this.#options = options;
    this.#runtime = runtime;
    this.#whenClosed = new Promise((resolve) => (this.#markClosed = resolve));
  }

  /** @internal */
  async [START](): Promise<void> {
    if (this.#config.threads === 1) return this.#startThreaded();
    const config = this.#config;
    const engine = new Engine();
    this.#engine = engine;
    engine.start({
      nowMs: this.#runtime.clock.now(),
      privateKey: config.privateKey,
      mtu: config.mtu,
      tcpReceiveBuffer: config.tcpReceiveBuffer,
      tcpSendBuffer: config.tcpSendBuffer,
      acceptTcp: this.#options.onTcp !== undefined,
      limits: config.limits,
    });
    this.#publicKey = encodeKey(engine.publicKey(config.privateKey));
    for (const [index, peer] of config.peers.entries()) this.#addPeer(peer, `peers[${index}]`);
    if (this.#options.tap) engine.setTap(true);
    // A socket closed under us fails the server; its other errors are only reported.
    const onSocketError = (error: Error, fatal: boolean) => (fatal ? void this.#fail(error) : this.#report(error));
    this.#socket = await this.#runtime.bindUdp(config.host, config.port, (data, from) => {
      this.#inbound.push({ data, from });
      this.#schedule();
    }, onSocketError);
    this.#pump();
  }

  /** The engine and its socket in a worker; this thread keeps the connections and the handlers. */
  async #startThreaded(): Promise<void> {
    const config = this.#config;
    let engine: ThreadedEngine;
    try {
      engine = await ThreadedEngine.start({
        privateKey: config.privateKey,
        host: config.host,
        port: config.port,
        mtu: config.mtu,
        tcpReceiveBuffer: config.tcpReceiveBuffer,
        tcpSendBuffer: config.tcpSendBuffer,
        acceptTcp: this.#options.onTcp !== undefined,
        tap: this.#options.tap !== undefined,
        limits: config.limits,
        peers: config.peers.map((peer) => ({
          publicKey: peer.publicKey,
          presharedKey: peer.presharedKey,
          persistentKeepalive: peer.persistentKeepalive,
          endpoint: peer.endpoint,
          allowedIps: peer.allowedIps,
        })),
      });
    } catch (error) {
      const index = (error as { peerIndex?: number }).peerIndex;
      if (index !== undefined) throw new ConfigError(`peers[${index}].publicKey`, (error as Error).message);
      throw error;
    }
    this.#engine = engine;
    this.#publicKey = encodeKey(engine.publicKeyBytes);
    for (const [index, peer] of config.peers.entries()) this.#peerAdded(engine.peerIds[index]!, peer);
    engine.onFailure = (error) => void this.#fail(error);
    void this.#takeWorkerEvents(engine);
  }

  /**
   * The worker's events wake this thread, and the wake pumps at once: not through `defer`
   * (setImmediate). Bun runs a batch of immediates from a copy of its queue; when one of them
   * lets code go on that waits for a promise in a nested event loop (bun:test's
   * `expect(p).rejects` does), the rest of that batch waits until it returns. A wake-up queued
   * behind it never came, and the event that would have settled `p` stayed in the ring.
   */
  async #takeWorkerEvents(engine: ThreadedEngine): Promise<void> {
    const clock = this.#runtime.clock;
    while (!this.#closed) {
      await engine.eventsReady(1000);
      if (this.#closed) break;
      this.#pump();
      if (!engine.eventsPending) continue;
      // The worker wrote more while this thread took the last: let I/O and timers in first.
      // A timer as well as the immediate, so that Bun's stalled batch (above) cannot stall this.
      await new Promise<void>((resolve) => {
        let timer: unknown;
        const go = () => {
          if (timer === undefined) return;
          clock.clearTimer(timer);
          timer = undefined;
          resolve();
        };
        timer = clock.setTimer(1, go);
        clock.defer(go);
      });
    }
  }

  /** @internal */
  get [INTERNALS](): { engine: Engine | ThreadedEngine } {
    return { engine: this.#engine };
  }

  /** The UDP address the server listens on. */
  get address(): Endpoint {
    return this.#engine instanceof ThreadedEngine ? this.#engine.address : this.#socket!.address;
  }

  /** The server's public key (base64). */
  get publicKey(): string {
    return this.#publicKey;
  }

  /** Resolves when the server has closed, by `close()` or because it failed (see `error`). */
  get closed(): Promise<void> {
    return this.#whenClosed;
  }

  /** Why the server closed on its own, if it did. */
  get error(): Error | undefined {
    return this.#error;
  }

  /**
   * Sends a UDP datagram through the tunnel, `from` any address to a client address (the peer
   * is chosen by `allowedIps`). Throws when no peer's allowedIps hold `to`, the families
   * differ, or the datagram does not fit the MTU; it goes out at the next pump.
   */
  sendUdp(data: Uint8Array | string, from: Endpoint, to: Endpoint): void {
    this.#assertOpen();
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const src = checkAddress(from, "from");
    const dst = checkAddress(to, "to");
    // What the engine would refuse, refused here, in its order and with its codes and words.
    this.#checkRoute(dst.endpoint.host);
    checkFamilies(src.ip, dst.ip);
    if ((src.ip.family === 4 ? 20 : 40) + 8 + bytes.length > this.#config.mtu) {
      throw new EngineError(ERROR.TOO_BIG, REQUEST_MESSAGE.TOO_BIG);
    }
    if (this.#datagramGoes()) this.#link.command((commands) => commands.udpSend(src.endpoint, dst.endpoint, bytes));
  }

  /** Opens a TCP connection through the tunnel to a client-side address (the peer is chosen by `allowedIps`). */
  connect(to: Endpoint, options: ConnectOptions = {}): Promise<TcpConnection> {
    // A promise API: every failure is a rejection, never a throw.
    try {
      this.#assertOpen();
      const remote = checkEndpoint(to, "to");
      const local = this.#localEndpoint(remote, options.from);
      const opened = this.#call(() => this.#engine.tcpConnect(this.#runtime.clock.now(), local, remote));
      this.#schedule();
      return new Promise((resolve, reject) => this.#connecting.set(opened.id, { remote, local: opened.local, room: 0, resolve, reject }));
    } catch (error) {
      if (error instanceof EngineError && error.code === ERROR.NO_ROUTE) {
        const unreachable = new Error(`connect ENETUNREACH ${endpointText(to)}: no peer's allowedIps cover it`, { cause: error });
        return Promise.reject(Object.assign(unreachable, { code: "ENETUNREACH" }));
      }
      return Promise.reject(error);
    }
  }

  /**
   * Pings an address through the tunnel (ICMP or ICMPv6 echo, from our `address` of its
   * family or `from`) and resolves to the round trip in milliseconds. Rejects with an Error
   * whose `code` is `ETIMEDOUT` when no answer comes within `timeout` (default 5,000 ms),
   * or `ENETUNREACH` when no peer's allowedIps cover the address.
   */
  ping(host: string, options: { from?: string; timeout?: number } = {}): Promise<number> {
    try {
      this.#assertOpen();
      const to = checkEndpoint({ host, port: 0 }, "host").host;
      const from = this.#localEndpoint({ host: to, port: 0 }, options.from).host;
      const timeout = options.timeout ?? 5_000;
      this.#checkRoute(to);
      checkFamilies(parseIp(from)!, parseIp(to)!);
      const seq = (this.#pingSeq = (this.#pingSeq + 1) & 0xffff);
      const key = `${to} ${seq}`;
      const started = this.#runtime.clock.now();
      // A ping dropped for the worker's backlog is lost as on the wire: it times out.
      if (this.#datagramGoes()) this.#link.command((commands) => commands.ping(from, to, this.#pingIdent, seq));
      return new Promise((resolve, reject) => {
        const timer = this.#runtime.clock.setTimer(timeout, () => {
          this.#pings.delete(key);
          reject(Object.assign(new Error(`ping ETIMEDOUT ${to}: no echo reply within ${timeout} ms`), { code: "ETIMEDOUT" }));
        });
        this.#pings.set(key, (at) => {
          this.#runtime.clock.clearTimer(timer);
          resolve(at - started);
        });
      });
    } catch (error) {
      if (error instanceof EngineError && error.code === ERROR.NO_ROUTE) {
        return Promise.reject(Object.assign(new Error(`ping ENETUNREACH ${host}: no peer's allowedIps cover it`, { cause: error }), { code: "ENETUNREACH" }));
      }
      return Promise.reject(error);
    }
  }

  /**
   * Adds a peer while the server runs (checked as in `peers`; `allowedIps` is required
   * unless it is the only peer). Throws a `ConfigError` naming `peer.<field>`.
   */
  addPeer(peer: PeerOptions): void {
    this.#assertOpen();
    this.#addPeer(validatePeer(peer, "peer", this.#peerKeys.size === 0), "peer");
  }

  /**
   * Removes a peer at once: its sessions end, its addresses route nowhere, its TCP
   * connections close (reset) and its UDP flows end. Returns false if there was no such peer.
   */
  removePeer(publicKey: string): boolean {
    this.#assertOpen();
    const key = decodeKey(publicKey, "publicKey");
    let id: number;
    try {
      id = this.#engine.removePeer(key);
    } catch (error) {
      if (error instanceof EngineError) return false;
      throw this.#failNow(error);
    }
    this.#peerKeys.delete(id);
    this.#peersWithEndpoint.delete(id);
    this.#routes.removePeer(id);
    this.#schedule(); // the closed connections' events
    return true;
  }

  /**
   * Sends a peer a keepalive now, which starts a handshake when there is no session yet, as
   * `wg` does when PersistentKeepalive is set (WireGuard whitepaper 6.5): a client brings its
   * tunnel up before its first packet. Returns false when no peer has this key, or it has
   * no endpoint to send to.
   */
  keepalive(publicKey: string): boolean {
    this.#assertOpen();
    const key = encodeKey(decodeKey(publicKey, "publicKey"));
    const id = [...this.#peerKeys].find(([, text]) => text === key)?.[0];
    if (id === undefined) return false;
    // An endpoint learned from the peer is only in the engine: ask it (rare: one call per tunnel start at most).
    if (!this.#peersWithEndpoint.has(id) && !this.#call(() => this.#engine.stats()).peers.some((peer) => peer.id === id && peer.endpoint)) return false;
    this.#link.command((commands) => commands.keepalive(id));
    return true;
  }

  /** Peers (endpoint, last handshake, bytes), dropped packets by reason, open connections, memory. */
  stats(): ServerStats {
    this.#assertOpen();
    const stats: EngineStats = this.#call(() => this.#engine.stats());
    return {
      peers: stats.peers.map(({ id, ...peer }) => ({ publicKey: this.#peerKey(id), ...peer })),
      // One thread has no queue to overflow: queueFull is 0 there, so the keys are the same either way.
      dropped: { ...stats.dropped, queueFull: stats.dropped.queueFull ?? 0 },
      connections: stats.connections,
      tcp: stats.tcp,
      udp: stats.udp,
      memoryBytes: this.#engine.memoryBytes,
    };
  }

  /**
   * Resets every open connection (each client gets a RST, 32 a millisecond) and refuses new
   * ones, then closes the socket and releases the engine. Safe to call from a handler.
   */
  async close(): Promise<void> {
    if (this.#closing) return this.#whenClosed;
    this.#closing = true;
    try {
      // Never from inside the pump: a handler may call close() while the pump dispatches a
      // batch. Let the batch finish (its new connections are refused).
      await new Promise<void>((resolve) => this.#runtime.clock.defer(resolve));
      // A few RSTs a millisecond: Debian's wireguard-go, with the kernel's default socket
      // buffer, lost a third of 3,000 RSTs sent at once, and some at 64 a millisecond.
      const ids = [...this.#connections.keys(), ...this.#connecting.keys()];
      for (let i = 0; i < ids.length && !this.#closed; i += RESETS_PER_MS) {
        if (i > 0) await new Promise<void>((resolve) => this.#runtime.clock.setTimer(1, resolve));
        for (const id of ids.slice(i, i + RESETS_PER_MS)) this.#engine.commands.abort(id);
        this.#pumpNow();
      }
    } catch {
      // Closing anyway.
    }
    // What a connection still open here learns: that we aborted it (as on one thread, where each
    // abort's close event got to it first), not news for its handler to report.
    await this.#shutdown(new ConnectionError("server closed", "ECONNABORTED"));
  }

  // ---- the pump ----

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    this.#runtime.clock.defer(() => this.#pump());
  }

  #pump(): void {
    this.#scheduled = false;
    if (this.#closed) return;
    try {
      this.#pumpNow();
    } catch (error) {
      void this.#fail(error);
    }
  }

  /** One batch: commands and datagrams in, events out, the timer re-armed. */
  #pumpNow(): void {
    const clock = this.#runtime.clock;
    const now = clock.now();
    const batch = this.#inbound;
    this.#inbound = [];
    const deadline = this.#engine.pump(now, batch);
    this.#engine.takeEvents(this.#events);
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    this.#timer = undefined;
    if (deadline === Number.POSITIVE_INFINITY) {
      // The engine is in a worker, which keeps its deadlines; its events wake this thread.
    } else if (deadline <= now) {
      // More to send at once (a poll's budget ran out): after the I/O that is ready, so ACKs get in.
      this.#schedule();
    } else {
      this.#timer = clock.setTimer(deadline - now, () => {
        this.#timer = undefined;
        this.#pump();
      });
    }
  }

  readonly #events: EventHandler = {
    datagram: (to, bytes) => this.#socket?.send(bytes, to),
    tcpIncoming: (conn, peer, remote, local) => {
      const connection = new TcpConnection(conn, this.#link, remote, local, this.#peerKey(peer), true);
      this.#connections.set(conn, connection);
      // A closing server takes no new connections (close() was called earlier in this batch).
      if (this.#closing) return connection.refuse();
      this.#handle(() => this.#options.onTcp?.(connection), connection, () => connection.acceptIfPending());
    },
    tcpEstablished: (conn, peer) => {
      const connecting = this.#connecting.get(conn);
      if (!connecting) return this.#connections.get(conn)?.onEstablished();
      this.#connecting.delete(conn);
      const connection = new TcpConnection(conn, this.#link, connecting.remote, connecting.local, this.#peerKey(peer), false);
      this.#connections.set(conn, connection);
      connection.onWritable(connecting.room);
      connecting.resolve(connection);
    },
    tcpData: (conn, bytes) => this.#connections.get(conn)?.onData(bytes),
    tcpEof: (conn) => this.#connections.get(conn)?.onEof(),
    tcpWritable: (conn, room) => {
      const connecting = this.#connecting.get(conn);
      if (connecting) connecting.room += room;
      else this.#connections.get(conn)?.onWritable(room);
    },
    tcpClosed: (conn, reason) => {
      const connecting = this.#connecting.get(conn);
      if (connecting) {
        this.#connecting.delete(conn);
        connecting.reject(connectFailure(reason, connecting.remote));
      }
      this.#connections.get(conn)?.onClosed(reason);
      this.#connections.delete(conn);
    },
    unknownPeer: (publicKey, endpoint) => this.#handle(() => this.#options.onUnknownPeer?.({ publicKey: encodeKey(publicKey), endpoint })),
    echoReply: (_peer, host, ident, seq) => {
      if (ident !== this.#pingIdent) return;
      const key = `${host} ${seq}`;
      const answered = this.#pings.get(key);
      this.#pings.delete(key);
      answered?.(this.#runtime.clock.now());
    },
    udpUnreachable: (peer, local, remote, reason) =>
      this.#handle(() => this.#options.onUdpUnreachable?.({ local, remote, peer: this.#peerKey(peer), code: UNREACHABLE_CODES[reason] })),
    innerPacket: (direction, peer, packet) => this.#handle(() => this.#options.tap?.(packet, { direction, peer: this.#peerKey(peer) })),
    udp: (peer, src, dst, payload) => {
      const packet = new UdpPacket(payload, src, dst, this.#peerKey(peer), (data) => this.sendUdp(data, dst, src), (why) => this.#refuseUdp(src, dst, why));
      this.#handle(() => this.#options.onUdp?.(packet));
    },
  };

  /** What connections call: their requests become commands for the next pump. */
  readonly #link: ConnectionLink = {
    command: (write) => {
      if (this.#closed) return;
      try {
        write(this.#engine.commands);
      } catch (error) {
        throw this.#failNow(error); // the engine could not grow its command area
      }
      this.#schedule();
    },
    stats: (conn) => {
      if (this.#closed) return undefined;
      try {
        return this.#engine.tcpStats(conn);
      } catch (error) {
        if (error instanceof EngineError && error.code === ERROR.UNKNOWN_CONNECTION) return undefined;
        throw this.#failNow(error);
      }
    },
  };

  /** Runs a user handler; a throw or rejection is reported and its connection reset.
   * `settled` runs when the handler returns, or its promise settles. */
  #handle(handler: () => void | Promise<void>, connection?: TcpConnection, settled?: () => void): void {
    const report = (error: unknown) => {
      connection?.abort();
      // A handler that fails because its connection reset or closed already knows; not news.
      if (error instanceof ConnectionError) return;
      this.#report(error instanceof Error ? error : new Error(String(error)));
    };
    try {
      const result = handler();
      if (result && typeof result.then === "function") result.then(settled, report);
      else settled?.();
    } catch (error) {
      report(error);
    }
  }

  #report(error: Error): void {
    if (this.#options.onError) this.#options.onError(error);
    else console.error("wg-netstack:", error);
  }

  /** Calls the engine from a user action; a refusal is thrown to the caller, a trap fails the server. */
  #call<T>(action: () => T): T {
    try {
      return action();
    } catch (error) {
      if (error instanceof EngineError || error instanceof TypeError) throw error;
      throw this.#failNow(error);
    }
  }

  #failNow(error: unknown): Error {
    void this.#fail(error);
    return this.#error!;
  }

  /** The engine trapped (or something else went badly wrong): report it and close; the process lives on. */
  async #fail(error: unknown): Promise<void> {
    if (this.#closed) return;
    const detail = this.#engine.stderr.trim();
    const cause = error instanceof Error ? error.message : String(error);
    this.#error = new Error(`wg-netstack server failed: ${cause}${detail ? ` (${detail})` : ""}`, { cause: error });
    this.#report(this.#error);
    await this.#shutdown(this.#error);
  }

  async #shutdown(reason: Error): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    if (this.#timer !== undefined) this.#runtime.clock.clearTimer(this.#timer);
    for (const connection of this.#connections.values()) connection.onServerClosed(reason);
    for (const connecting of this.#connecting.values()) connecting.reject(reason);
    this.#connections.clear();
    this.#connecting.clear();
    // The last datagrams (close()'s RSTs) may still be on their way into the socket: node:dgram
    // sends on the next tick, and a socket closed first drops them.
    await new Promise<void>((resolve) => this.#runtime.clock.defer(resolve));
    if (this.#engine instanceof ThreadedEngine) await this.#engine.stop();
    await this.#socket?.close();
    this.#markClosed();
  }

  /** The base64 public key of the peer with this id in the engine. */
  #peerKey(id: number): string {
    return this.#peerKeys.get(id) ?? "";
  }

  #addPeer(peer: PeerConfig, path: string): void {
    let id: number;
    try {
      id = this.#engine.addPeer(peer.publicKey, peer.presharedKey, peer.persistentKeepalive, peer.endpoint);
    } catch (error) {
      // What validation alone cannot know: a peer with the server's own key, or one we have.
      throw new ConfigError(`${path}.publicKey`, (error as Error).message);
    }
    for (const cidr of peer.allowedIps) this.#engine.allow(id, cidr, cidr.prefix);
    this.#peerAdded(id, peer);
  }

  /** Notes a peer the engine has, with its allowedIps routed to it there. */
  #peerAdded(id: number, peer: PeerConfig): void {
    this.#peerKeys.set(id, peer.publicKeyText);
    if (peer.endpoint) this.#peersWithEndpoint.add(id);
    for (const cidr of peer.allowedIps) this.#routes.allow(id, cidr);
  }

  /** Throws the engine's no-route error when no peer's allowedIps hold `host`. */
  #checkRoute(host: string): void {
    if (!this.#routes.reaches(host)) throw new EngineError(ERROR.NO_ROUTE, REQUEST_MESSAGE.NO_ROUTE);
  }

  /** False for a datagram the worker's backlog drops (threads: 1; ThreadedEngine.takesDatagram). */
  /** Answers a datagram `from` a client `to` an address with an ICMP destination unreachable. */
  #refuseUdp(from: Endpoint, to: Endpoint, why: UnreachableReason): void {
    this.#assertOpen();
    if (this.#datagramGoes()) this.#link.command((commands) => commands.udpRefuse(from, to, why));
  }

  #datagramGoes(): boolean {
    return !(this.#engine instanceof ThreadedEngine) || this.#engine.takesDatagram();
  }

  #assertOpen(): void {
    if (this.#closing) throw this.#error ?? new Error("server is closed");
  }

  #localEndpoint(remote: Endpoint, from: Endpoint | string | undefined): Endpoint {
    if (typeof from === "string") return checkEndpoint({ host: from, port: 0 }, "from");
    if (from) return checkEndpoint(from, "from");
    const family = parseIp(remote.host)!.family;
    const own = this.#config.addresses.find((cidr) => cidr.family === family);
    if (!own) throw new Error(`no IPv${family} tunnel address: set the server's \`address\` option or pass \`from\``);
    return { host: formatIp(own), port: 0 };
  }
}

/** Why a connection we opened never got established, with Node's code for it. */
function connectFailure(reason: CloseReason, remote: Endpoint): ConnectionError {
  return closeError(reason, remote) ?? new ConnectionError("connection closed", "ECONNRESET");
}

function checkEndpoint(endpoint: Endpoint, name: string): Endpoint {
  return checkAddress(endpoint, name).endpoint;
}

/** The endpoint in canonical form, and its address parsed; a TypeError naming `name` if it is none. */
function checkAddress(endpoint: Endpoint, name: string): { endpoint: Endpoint; ip: Ip } {
  const ip = typeof endpoint?.host === "string" ? parseIp(endpoint.host) : undefined;
  if (!ip) throw new TypeError(`${name}.host must be an IP address, got ${JSON.stringify(endpoint?.host)}`);
  if (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 65535) {
    throw new TypeError(`${name}.port must be an integer 0..65535, got ${JSON.stringify(endpoint.port)}`);
  }
  return { endpoint: { host: formatIp(ip), port: endpoint.port }, ip };
}

/** The engine's refusal of a packet from one family to the other. */
function checkFamilies(src: Ip, dst: Ip): void {
  if (src.family !== dst.family) throw new EngineError(ERROR.UNADDRESSABLE, REQUEST_MESSAGE.MIXED_FAMILIES);
}
