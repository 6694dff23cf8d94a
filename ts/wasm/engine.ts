// The binding to one wasm instance of the engine: writes arguments into its scratch
// buffer, calls the C ABI, turns negative returns into errors. Traffic crosses in
// batches, both ways straight in wasm memory: the host writes its requests into the
// command area (crates/engine/src/commands.rs) and the datagrams into scratch, one pump
// applies them and runs TCP, and the host walks the event log
// it leaves. The records' layouts, the exports' typings and every number of the contract
// come from abi.ts, which the build generates from the engine (crates/engine/src/abi.rs).

import { decodeAddress, encodeAddress, parseIp, type Endpoint, type Ip } from "../ip.js";
import type { Limits } from "../config.js";
import { engineWasm } from "../runtime/system.js";
import {
  ADDRESS_SIZE,
  CLOSE_REASONS,
  UNREACHABLE_REASONS,
  CONNECTION_STATS,
  DROP_REASONS,
  EVENT,
  type CommandArea,
  type EngineExports,
  type EventFields,
  type EventLog,
  PEER_STATS,
  readEvent,
  TCP_TOTALS,
  UDP_TOTALS,
  writeAbort,
  writeAccept,
  writeConsumed,
  writeDiscard,
  writeKeepalive,
  writeUdpRefuse,
  writePing,
  writeRefuse,
  writeSend,
  writeShutdown,
  writeUdpSend,
} from "./abi.js";
import { wasiImports, type WasiOutput } from "./wasi.js";

/** A negative return from the engine: a refused request, not a failure of the engine. */
export class EngineError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

/** What the host does with each event; the order is the order they happened. */
export interface EventHandler {
  datagram(to: Endpoint, bytes: Uint8Array): void;
  /** A client's SYN: accept or refuse it. */
  tcpIncoming(conn: number, peer: number, remote: Endpoint, local: Endpoint): void;
  /** The handshake completed (either direction), through `peer`. */
  tcpEstablished(conn: number, peer: number): void;
  tcpData(conn: number, bytes: Uint8Array): void;
  tcpEof(conn: number): void;
  /** The connection may take `room` more bytes (added to what it was granted before). */
  tcpWritable(conn: number, room: number): void;
  tcpClosed(conn: number, reason: CloseReason): void;
  udp(peer: number, src: Endpoint, dst: Endpoint, payload: Uint8Array): void;
  /** A handshake from a key no peer has. */
  unknownPeer(publicKey: Uint8Array, from: Endpoint): void;
  /** With the tap on: an inner packet from a peer ("in") or to it ("out"). */
  innerPacket(direction: "in" | "out", peer: number, packet: Uint8Array): void;
  /** An answer to our `ping`: from `host`, with its identifier and sequence number. */
  echoReply(peer: number, host: string, ident: number, seq: number): void;
  /** An ICMP (v6) destination unreachable from `peer` about our UDP datagram from `local` to `remote`. */
  udpUnreachable(peer: number, local: Endpoint, remote: Endpoint, reason: UnreachableReason): void;
}

export type CloseReason = (typeof CLOSE_REASONS)[number];
export type UnreachableReason = (typeof UNREACHABLE_REASONS)[number];

/** TCP counts for the whole server. */
export interface TcpTotals {
  /** Connections refused because a limit was reached. */
  refusedOverLimit: number;
  /** SYNs refused because there is no `onTcp` handler. */
  refusedNotAccepting: number;
  /** Segments for no connection, answered with RST. */
  resetUnknown: number;
  /** Segments sent again after a loss, over the server's life. */
  retransmittedSegments: number;
  /** Retransmission timeouts, over the server's life. */
  timeouts: number;
  /** Bytes all connections hold: unacknowledged, waiting behind a loss, or given to you and not yet read. */
  bufferedBytes: number;
  /** Mean smoothed round-trip time over open connections, in milliseconds (0 before any). */
  meanRttMs: number;
}

/** One connection's TCP state, from `connection.stats()`. */
export interface TcpConnectionStats {
  /** Segments sent again after a loss. */
  retransmittedSegments: number;
  /** Retransmission timeouts (a loss found only by waiting). */
  timeouts: number;
  /** Tail-loss probes sent. */
  tailProbes: number;
  /** Smoothed round-trip time, in milliseconds (0 before a sample). */
  rttMs: number;
  /** Congestion window, in bytes. */
  congestionWindow: number;
  /** Bytes sent and not yet acknowledged or known lost. */
  bytesInFlight: number;
  /** The path's bottleneck bandwidth as measured from deliveries, bytes per second (0 before a sample). */
  bandwidth: number;
  /** The rate segments are released at, bytes per second. */
  pacingRate: number;
  /** The client's receive window: the most it lets be in flight towards it, in bytes. */
  peerWindow: number;
}

export interface EngineStats {
  peers: { id: number; sinceHandshakeMs: number | undefined; txBytes: number; rxBytes: number; endpoint: Endpoint | undefined }[];
  dropped: Record<string, number>;
  connections: number;
  tcp: TcpTotals;
  udp: UdpTotals;
}

/** UDP counts for the whole server. */
export interface UdpTotals {
  /** Flows (a client's source to one destination) open now. */
  flows: number;
  /** Datagrams refused because their peer had `udpMaxFlowsPerPeer` flows. */
  refusedOverLimit: number;
}

// The documented records above must hold exactly the engine's fields (checked by tsc).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type MustBeTrue<T extends true> = T;
export type RecordsMatchTheEngine = [
  MustBeTrue<Same<keyof TcpTotals, (typeof TCP_TOTALS)[number]>>,
  MustBeTrue<Same<keyof UdpTotals, (typeof UDP_TOTALS)[number]>>,
  MustBeTrue<Same<keyof TcpConnectionStats, (typeof CONNECTION_STATS)[number]>>,
];

export interface Datagram {
  data: Uint8Array;
  from: Endpoint;
}

export interface StartOptions {
  nowMs: number;
  privateKey: Uint8Array;
  mtu: number;
  tcpReceiveBuffer: number;
  tcpSendBuffer: number;
  acceptTcp: boolean;
  limits: Limits;
}

let cachedModule: WebAssembly.Module | undefined;

/** The compiled engine, shared by all instances. */
function engineModule(): WebAssembly.Module {
  cachedModule ??= new WebAssembly.Module(engineWasm());
  return cachedModule;
}

export class Engine {
  readonly #exports: EngineExports;
  readonly #output: WasiOutput = { stderr: "" };
  #hostIps = new Map<string, Ip>();
  /** Requests for the next pump. */
  readonly commands: Commands;
  readonly #addresses = new LastAddress();
  /** Bytes of the event log walked since the last pump. */
  #eventsSeen = 0;
  /** Counts calls into the engine between pumps: any may move the event log or grow memory. */
  #calls = 0;

  constructor() {
    let memory: WebAssembly.Memory | undefined;
    const instance = new WebAssembly.Instance(engineModule(), {
      wasi_snapshot_preview1: wasiImports(() => memory!, this.#output),
    });
    this.#exports = instance.exports as unknown as EngineExports;
    memory = this.#exports.memory;
    const exports = this.#exports;
    this.commands = new Commands(
      { grow: (capacity) => exports.wgn_commands_area(capacity) >>> 0, buffer: () => exports.memory.buffer },
      () => this.#calls++,
    );
  }

  /** Bytes of wasm memory the engine holds (it never shrinks). */
  get memoryBytes(): number {
    return this.#exports.memory.buffer.byteLength;
  }

  /** @internal The raw C ABI, for tests that must break the engine on purpose. */
  get exports(): EngineExports {
    return this.#exports;
  }

  /** What the engine printed (a panic message, if it trapped). */
  get stderr(): string {
    return this.#output.stderr;
  }

  start(options: StartOptions): void {
    this.#scratch(32).set(options.privateKey);
    this.#check(
      this.#exports.wgn_new(options.nowMs, options.mtu, options.tcpReceiveBuffer, options.tcpSendBuffer, options.acceptTcp ? 1 : 0),
    );
    const l = options.limits;
    this.#check(this.#exports.wgn_tcp_limits(l.tcpMaxConnectionsPerPeer, l.tcpMaxConnections, l.tcpMaxHalfOpenPerPeer, l.maxBufferedBytes));
    this.#check(this.#exports.wgn_tcp_timeouts(l.tcpHalfOpenTimeout, l.tcpFinWait2Timeout, l.tcpKeepalive, l.tcpUserTimeout));
    this.#check(this.#exports.wgn_udp_limits(l.udpMaxFlowsPerPeer, l.udpFlowTimeout));
  }

  addPeer(publicKey: Uint8Array, presharedKey: Uint8Array | undefined, persistentKeepalive: number, endpoint: Endpoint | undefined): number {
    const args = this.#scratch(64 + ADDRESS_SIZE);
    args.fill(0);
    args.set(publicKey, 0);
    if (presharedKey) args.set(presharedKey, 32);
    if (endpoint) encodeAddress(args, 64, this.#ip(endpoint.host), endpoint.port);
    return this.#check(this.#exports.wgn_add_peer(persistentKeepalive, presharedKey ? 1 : 0, endpoint ? 1 : 0));
  }

  /** Forgets a peer at once; returns its id. */
  removePeer(publicKey: Uint8Array): number {
    this.#scratch(32).set(publicKey);
    return this.#check(this.#exports.wgn_remove_peer());
  }

  /** Reports every inner packet (both ways) as an event, or stops. */
  setTap(on: boolean): void {
    this.#check(this.#exports.wgn_set_tap(on ? 1 : 0));
  }

  allow(peer: number, ip: Ip, prefix: number): void {
    encodeAddress(this.#scratch(ADDRESS_SIZE), 0, ip, 0);
    this.#check(this.#exports.wgn_allow(peer, prefix));
  }

  /**
   * One turn: the commands written since the last pump, then `datagrams` from the network,
   * then timers and TCP. Returns the host time (ms) the engine next wants a pump. The events
   * it leaves are walked with `takeEvents`.
   */
  pump(nowMs: number, datagrams: Datagram[]): number {
    let total = 0;
    for (const d of datagrams) total += ADDRESS_SIZE + 4 + d.data.length;
    if (total > 0) {
      const batch = this.#scratch(total);
      const view = new DataView(batch.buffer, batch.byteOffset, total);
      let offset = 0;
      for (const d of datagrams) {
        encodeAddress(batch, offset, this.#ip(d.from.host), d.from.port);
        view.setUint32(offset + ADDRESS_SIZE, d.data.length, true);
        batch.set(d.data, offset + ADDRESS_SIZE + 4);
        offset += ADDRESS_SIZE + 4 + d.data.length;
      }
    }
    const next = this.#exports.wgn_pump(nowMs, this.#eventsSeen, this.commands.take(), total);
    this.#eventsSeen = 0;
    this.#calls++;
    if (next < 0) throw new EngineError(next, new TextDecoder().decode(this.#result()));
    return next;
  }

  /**
   * Walks the events not walked yet, straight out of wasm memory; bytes handed out are
   * copies. Handlers may call the engine (a UDP reply, a stats read): events that adds are
   * walked too.
   */
  takeEvents(handler: EventHandler): void {
    const fields = new EventAdapter(handler);
    let log: EventLogView | undefined;
    let calls = -1;
    for (;;) {
      if (calls !== this.#calls) {
        // Addresses and lengths come back from wasm as i32: read them unsigned, or memory
        // past 2 GiB shows up as negative offsets.
        calls = this.#calls;
        const bytes = new Uint8Array(this.#exports.memory.buffer, this.#exports.wgn_events_ptr() >>> 0, this.#exports.wgn_events_len() >>> 0);
        log = new EventLogView(bytes, this.#addresses);
      }
      if (this.#eventsSeen >= log!.bytes.length) break;
      this.#eventsSeen = readEvent(log!, this.#eventsSeen, fields);
    }
  }

  /**
   * Walks the events not walked yet, for a host that forwards them (the engine in a worker):
   * DATAGRAM events go to `datagram` (bytes: a view, valid during the call), every other
   * event to `other` as its record's bytes in the log (a view, valid during the call).
   * Neither may call the engine.
   */
  takeEventRecords(datagram: (to: Endpoint, bytes: Uint8Array) => void, other: (record: Uint8Array) => void): void {
    const bytes = new Uint8Array(this.#exports.memory.buffer, this.#exports.wgn_events_ptr() >>> 0, this.#exports.wgn_events_len() >>> 0);
    const log = new EventLogView(bytes, this.#addresses);
    const fields = new RecordSplitter(datagram);
    while (this.#eventsSeen < bytes.length) {
      const at = this.#eventsSeen;
      this.#eventsSeen = readEvent(log, at, fields);
      if (bytes[at] !== EVENT.DATAGRAM) other(bytes.subarray(at, this.#eventsSeen));
    }
  }

  /**
   * @internal The ABI's self-test: replaces the event log with one event of each kind, and
   * returns the commands written since the last pump as the engine read them, one a line
   * (they are not applied).
   */
  abiSelftest(): string[] {
    this.#check(this.#exports.wgn_abi_selftest(this.commands.take()));
    return new TextDecoder().decode(this.#result()).split("\n").filter((line) => line !== "");
  }

  /** Opens a connection; returns its id and the local address used (the port picked when 0). */
  tcpConnect(nowMs: number, local: Endpoint, remote: Endpoint): { id: number; local: Endpoint } {
    const args = this.#scratch(2 * ADDRESS_SIZE);
    encodeAddress(args, 0, this.#ip(local.host), local.port);
    encodeAddress(args, ADDRESS_SIZE, this.#ip(remote.host), remote.port);
    const id = this.#check(this.#exports.wgn_tcp_connect(nowMs));
    return { id, local: new Reader(this.#result()).address() };
  }

  tcpStats(conn: number): TcpConnectionStats {
    this.#check(this.#exports.wgn_tcp_stats(conn));
    return new Reader(this.#result()).record(CONNECTION_STATS);
  }

  stats(): EngineStats {
    this.#check(this.#exports.wgn_stats());
    const r = new Reader(this.#result());
    const peers: EngineStats["peers"] = [];
    for (let i = r.u32(); i > 0; i--) {
      const id = r.u32();
      const { sinceHandshakeMs, txBytes, rxBytes } = r.record(PEER_STATS);
      // Family 0: no endpoint known yet.
      const endpoint = r.bytes[r.at] === 0 ? ((r.at += ADDRESS_SIZE), undefined) : r.address();
      peers.push({ id, sinceHandshakeMs: sinceHandshakeMs < 0 ? undefined : sinceHandshakeMs, txBytes, rxBytes, endpoint });
    }
    const dropped = r.record(DROP_REASONS);
    const connections = r.u32();
    return { peers, dropped, connections, tcp: r.record(TCP_TOTALS), udp: r.record(UDP_TOTALS) };
  }

  publicKey(privateKey: Uint8Array): Uint8Array {
    this.#scratch(32).set(privateKey);
    this.#check(this.#exports.wgn_public_key());
    return this.#result();
  }

  /** A view of the scratch buffer, at least `len` bytes; valid until the next engine call. */
  #scratch(len: number): Uint8Array {
    this.#calls++;
    const ptr = this.#exports.wgn_scratch(len) >>> 0;
    return new Uint8Array(this.#exports.memory.buffer, ptr, len);
  }

  #result(): Uint8Array {
    const ptr = this.#exports.wgn_result_ptr() >>> 0;
    return new Uint8Array(this.#exports.memory.buffer, ptr, this.#exports.wgn_result_len() >>> 0).slice();
  }

  #check(code: number): number {
    this.#calls++;
    if (code < 0) throw new EngineError(code, new TextDecoder().decode(this.#result()));
    return code;
  }

  #ip(host: string): Ip {
    return cachedIp(this.#hostIps, host);
  }
}

/** Hosts are IP literals from the socket or validated config; parsed once each. */
function cachedIp(cache: Map<string, Ip>, host: string): Ip {
  let ip = cache.get(host);
  if (!ip) {
    ip = parseIp(host);
    if (!ip) throw new TypeError(`not an IP address: ${host}`);
    if (cache.size > 1024) cache.clear();
    cache.set(host, ip);
  }
  return ip;
}

/** Datagram copies are carved from one 64 KiB ArrayBuffer after another, as Node's Buffer pool does. */
const POOL_SIZE = 64 * 1024;
let pool = new ArrayBuffer(0);
let poolUsed = 0;

/**
 * A copy of an outgoing datagram: one allocation per pool instead of per datagram (a
 * `slice()` each was ~7 % of a bulk transfer's CPU). A pool is never reused, so a send the
 * socket still holds stays intact; these bytes only ever go to the socket. Each thread has its
 * own pool (module state), so the worker of `threads: 1` uses this too.
 */
export function pooledCopy(bytes: Uint8Array): Uint8Array {
  if (poolUsed + bytes.length > pool.byteLength) {
    pool = new ArrayBuffer(Math.max(POOL_SIZE, bytes.length));
    poolUsed = 0;
  }
  const copy = new Uint8Array(pool, poolUsed, bytes.length);
  copy.set(bytes);
  poolUsed += (bytes.length + 7) & ~7;
  return copy;
}

/**
 * Reads events that were copied out of the engine's log (the engine in a worker): each
 * `read` takes one event record at `at` in `bytes` and hands it to the handler, as
 * `takeEvents` does.
 */
export class EventReader {
  readonly #fields: EventAdapter;
  readonly #addresses = new LastAddress();
  #log: EventLogView | undefined;

  constructor(handler: EventHandler) {
    this.#fields = new EventAdapter(handler);
  }

  read(bytes: Uint8Array, at: number): void {
    if (this.#log?.bytes !== bytes) this.#log = new EventLogView(bytes, this.#addresses);
    readEvent(this.#log, at, this.#fields);
  }
}

/** Hands each event's fields to the host's handler as it wants them: copies, names. */
class EventAdapter implements EventFields<Endpoint> {
  constructor(readonly handler: EventHandler) {}

  datagram(to: Endpoint, bytes: Uint8Array): void {
    this.handler.datagram(to, pooledCopy(bytes));
  }
  tcpIncoming(conn: number, peer: number, remote: Endpoint, local: Endpoint): void {
    this.handler.tcpIncoming(conn, peer, remote, local);
  }
  tcpData(conn: number, bytes: Uint8Array): void {
    this.handler.tcpData(conn, bytes.slice());
  }
  tcpEof(conn: number): void {
    this.handler.tcpEof(conn);
  }
  tcpWritable(conn: number, room: number): void {
    this.handler.tcpWritable(conn, room);
  }
  tcpClosed(conn: number, reason: number): void {
    this.handler.tcpClosed(conn, CLOSE_REASONS[reason] ?? "reset");
  }
  udp(peer: number, src: Endpoint, dst: Endpoint, payload: Uint8Array): void {
    this.handler.udp(peer, src, dst, payload.slice());
  }
  tcpEstablished(conn: number, peer: number): void {
    this.handler.tcpEstablished(conn, peer);
  }
  unknownPeer(publicKey: Uint8Array, from: Endpoint): void {
    this.handler.unknownPeer(publicKey, from);
  }
  innerPacket(direction: number, peer: number, bytes: Uint8Array): void {
    this.handler.innerPacket(direction === 0 ? "in" : "out", peer, bytes.slice());
  }
  echoReply(peer: number, from: Endpoint, ident: number, seq: number): void {
    this.handler.echoReply(peer, from.host, ident, seq);
  }
  udpUnreachable(peer: number, local: Endpoint, remote: Endpoint, reason: number): void {
    this.handler.udpUnreachable(peer, local, remote, UNREACHABLE_REASONS[reason] ?? "host");
  }
}

/** For `takeEventRecords`: passes DATAGRAM events on, reads over the rest. */
class RecordSplitter implements EventFields<Endpoint> {
  constructor(readonly datagram: (to: Endpoint, bytes: Uint8Array) => void) {}
  tcpIncoming(): void {}
  tcpData(): void {}
  tcpEof(): void {}
  tcpWritable(): void {}
  tcpClosed(): void {}
  udp(): void {}
  tcpEstablished(): void {}
  unknownPeer(): void {}
  innerPacket(): void {}
  echoReply(): void {}
  udpUnreachable(): void {}
}

/**
 * The last address read from the event log, as one frozen Endpoint object: the next address
 * with the same bytes (nearly always: a burst of datagrams goes to one peer) is that object,
 * so an address is not formatted into a string per datagram.
 */
class LastAddress {
  #bytes = new Uint8Array(ADDRESS_SIZE);
  #endpoint: Endpoint | undefined;

  read(log: Uint8Array, at: number): Endpoint {
    const bytes = log.subarray(at, at + ADDRESS_SIZE);
    let same = this.#endpoint !== undefined;
    for (let i = 0; same && i < ADDRESS_SIZE; i++) same = bytes[i] === this.#bytes[i];
    if (!same) {
      this.#bytes.set(bytes);
      const { host, port } = decodeAddress(log, at);
      this.#endpoint = Object.freeze({ host, port });
    }
    return this.#endpoint!;
  }
}

/** The event log in wasm memory, as `readEvent` reads it. */
class EventLogView implements EventLog<Endpoint> {
  readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly addresses: LastAddress,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  address(at: number): Endpoint {
    return this.addresses.read(this.bytes, at);
  }
}

/**
 * Where a `Commands` writes: the engine's command area in wasm memory, or (the engine in a
 * worker) a plain buffer that is shipped to it.
 */
export interface CommandMemory {
  /** Makes the area at least `capacity` bytes, keeping the first `used`; returns its offset in `buffer()`. */
  grow(capacity: number, used: number): number;
  /** The memory the area lives in (looked up again after each call: wasm memory can move). */
  buffer(): ArrayBufferLike;
}

/**
 * Writes the host's requests into the engine's command area (their layouts are generated
 * into abi.ts); the next pump applies them, in order. Nothing crosses the boundary until
 * then, except to grow the area.
 */
export class Commands implements CommandArea<Endpoint> {
  readonly #memory: CommandMemory;
  readonly #onGrow: () => void;
  readonly #hostIps = new Map<string, Ip>();
  #ptr = 0;
  #capacity = 0;
  #len = 0;
  #bytes: Uint8Array = new Uint8Array(0);
  #view = new DataView(this.#bytes.buffer);

  /** @internal */
  constructor(memory: CommandMemory, onGrow: () => void = () => {}) {
    this.#memory = memory;
    this.#onGrow = onGrow;
  }

  /** Queues `data` to send: at most the room TCP_WRITABLE granted, less what was sent since. */
  send(conn: number, data: Uint8Array): void {
    writeSend(this, conn, data);
  }

  /** The host read `bytes` of the connection's data: its window opens by as much. */
  consumed(conn: number, bytes: number): void {
    writeConsumed(this, conn, bytes);
  }

  /** Completes the handshake of a connection from a TCP_INCOMING event (sends the SYN-ACK). */
  accept(conn: number): void {
    writeAccept(this, conn);
  }

  /** Turns down a connection from a TCP_INCOMING event, with RST or ICMP unreachable. */
  refuse(conn: number, how: "reset" | "unreachable"): void {
    writeRefuse(this, conn, how === "unreachable" ? 1 : 0);
  }

  /** FIN after what was sent. */
  shutdown(conn: number): void {
    writeShutdown(this, conn);
  }

  /** RST. */
  abort(conn: number): void {
    writeAbort(this, conn);
  }

  /** Drops what arrives on the connection from now on, keeping its window open. */
  discard(conn: number): void {
    writeDiscard(this, conn);
  }

  /**
   * A UDP datagram into the tunnel. The caller checks first what the engine would refuse
   * (mixed families, past the MTU: the pump fails on those); no route is counted as dropped.
   */
  udpSend(src: Endpoint, dst: Endpoint, data: Uint8Array): void {
    this.#whole(() => writeUdpSend(this, src, dst, data));
  }

  /** An ICMP (v6) echo request from `src` to `dst` (same family); the answer is an echoReply event. */
  ping(src: string, dst: string, ident: number, seq: number): void {
    this.#whole(() => writePing(this, { host: src, port: 0 }, { host: dst, port: 0 }, ident, seq));
  }

  /** A keepalive to the peer (with no session, a handshake); one with no endpoint is counted as dropped. */
  keepalive(peer: number): void {
    writeKeepalive(this, peer);
  }

  /** Answers a datagram `from` a peer's side `to` us with an ICMP (v6) destination unreachable saying `why`. */
  udpRefuse(from: Endpoint, to: Endpoint, why: UnreachableReason): void {
    this.#whole(() => writeUdpRefuse(this, from, to, UNREACHABLE_REASONS.indexOf(why)));
  }

  /** Runs a writer that may throw after it reserved room (a host that is no IP): then un-writes it, or the batch would be malformed. */
  #whole(write: () => void): void {
    const len = this.#len;
    try {
      write();
    } catch (error) {
      this.#len = len;
      throw error;
    }
  }

  /** @internal Bytes written since the last pump; the pump applies them, so the area starts over. */
  take(): number {
    const len = this.#len;
    this.#len = 0;
    return len;
  }

  /** @internal The area as the generated writers see it. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** @internal */
  get view(): DataView {
    return this.#view;
  }

  /** @internal Writes an address for the generated writers (its host parsed once, as the engine's are). */
  address(at: number, endpoint: Endpoint): void {
    encodeAddress(this.#bytes, at, cachedIp(this.#hostIps, endpoint.host), endpoint.port);
  }

  /** @internal Room for `len` more bytes; returns where they go. */
  reserve(len: number): number {
    const needed = this.#len + len;
    if (needed > this.#capacity) {
      this.#capacity = Math.max(needed, 2 * this.#capacity, 4096);
      this.#ptr = this.#memory.grow(this.#capacity, this.#len);
      this.#onGrow();
    }
    // The area moved when it grew; and any call into the engine may have grown its memory,
    // which detaches every view of it (a detached view's length is 0).
    if (this.#bytes.length !== this.#capacity) {
      this.#bytes = new Uint8Array(this.#memory.buffer(), this.#ptr, this.#capacity);
      this.#view = new DataView(this.#bytes.buffer, this.#ptr, this.#capacity);
    }
    const at = this.#len;
    this.#len = needed;
    return at;
  }
}

/** Walks the engine's little-endian result records (stats, an address). */
class Reader {
  at = 0;
  readonly #view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  u32(): number {
    this.at += 4;
    return this.#view.getUint32(this.at - 4, true);
  }

  f64(): number {
    this.at += 8;
    return this.#view.getFloat64(this.at - 8, true);
  }

  address(): Endpoint {
    const { host, port } = decodeAddress(this.bytes, this.at);
    this.at += ADDRESS_SIZE;
    return { host, port };
  }

  /** One f64 for each name, in order. */
  record<const Names extends readonly string[]>(names: Names): Record<Names[number], number> {
    const record = {} as Record<Names[number], number>;
    for (const name of names as readonly Names[number][]) record[name] = this.f64();
    return record;
  }
}
