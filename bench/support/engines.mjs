// What the threading prototypes (threads-seam.mjs, shards.mjs) share: the wasm engine, the
// ring and the address parser from the built dist/, keys, an engine started with the
// benchmarks' settings, a UDP socket on 127.0.0.1, an engine driven on this thread's event
// loop, and the runtime's name and load average for the printout.

import { createSocket } from "node:dgram";
import os from "node:os";

const dist = new URL("../../dist/", import.meta.url);
export const { Engine } = await import(new URL("wasm/engine.js", dist).href);
export const { Ring } = await import(new URL("host/worker/ring.js", dist).href);
export const { parseIp } = await import(new URL("ip.js", dist).href);

export const HOST = "127.0.0.1";
/** Generous limits: the benchmarks open a few connections and buffer a lot. */
export const LIMITS = {
  tcpMaxConnectionsPerPeer: 16, tcpMaxConnections: 16, tcpMaxHalfOpenPerPeer: 16, maxBufferedBytes: 256 << 20,
  udpMaxFlowsPerPeer: 16, tcpHalfOpenTimeout: 20_000, tcpFinWait2Timeout: 60_000, tcpKeepalive: 60_000,
  tcpUserTimeout: 60_000, udpFlowTimeout: 60_000,
};

export function privateKey() {
  const key = crypto.getRandomValues(new Uint8Array(32));
  key[0] &= 248;
  key[31] = (key[31] & 127) | 64;
  return key;
}

let keyEngine;
export function publicKeyOf(key) {
  keyEngine ??= new Engine();
  return keyEngine.publicKey(key);
}

/** An engine started with the benchmarks' settings (4 MiB TCP buffers, MTU 1420); `acceptTcp` for a server. */
export function startEngine(key, acceptTcp) {
  const engine = new Engine();
  engine.start({ nowMs: performance.now(), privateKey: key, mtu: 1420, tcpReceiveBuffer: 4 << 20, tcpSendBuffer: 4 << 20, acceptTcp, limits: LIMITS });
  return engine;
}

/** A UDP socket on 127.0.0.1 (`port` 0: any), 4 MiB buffers; `reusePort` where the runtime has it (bench/reuseport.mjs). */
export function bindSocket(onMessage, { port = 0, reusePort = false } = {}) {
  const socket = createSocket({ type: "udp4", reusePort, lookup: (host, family, done) => done(null, host, family) });
  socket.on("message", onMessage);
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, HOST, () => {
      socket.off("error", reject);
      socket.setRecvBufferSize(4 << 20);
      socket.setSendBufferSize(4 << 20);
      resolve(socket);
    });
  });
}

/**
 * An engine on this thread's event loop, as the single-threaded server runs it: datagrams
 * given to `receive` are pumped in on the next turn (setImmediate), the engine's deadline is
 * kept with a timer, `before()` runs first in each turn (the application's commands), and
 * the events go to `handler`. Call `schedule()` when the application has something to send.
 * `counts`: [ms spent in turns, turns].
 */
export class EngineLoop {
  inbound = [];
  counts = new Float64Array(2);
  #scheduled = false;
  #stopped = false;
  #timer;

  constructor(engine, handler, before = () => {}) {
    this.engine = engine;
    this.handler = handler;
    this.before = before;
  }

  receive(data, rinfo) {
    this.inbound.push({ data, from: { host: rinfo.address, port: rinfo.port } });
    this.schedule();
  }

  schedule() {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => this.turn());
  }

  turn() {
    this.#scheduled = false;
    if (this.#stopped) return;
    const t = performance.now();
    this.before();
    const next = this.engine.pump(t, this.inbound.splice(0));
    this.engine.takeEvents(this.handler);
    const now = performance.now();
    this.counts[0] += now - t;
    this.counts[1]++;
    clearTimeout(this.#timer);
    if (next <= now) this.schedule();
    else if (!this.#scheduled) this.#timer = setTimeout(() => this.turn(), next - now);
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

/** Record kinds on the rings between a benchmark's main thread and an engine's worker (the first byte). */
export const RECORD = { DGRAM: 1, SEND: 2, DATA: 3, CONSUMED: 4, WRITABLE: 5, STOP: 6, CONN: 7 };
/** The application's writes: pieces of this size. */
export const SEND_CHUNK = 16 * 1024;
export const CHUNK = new Uint8Array(SEND_CHUNK).fill(0x62);

/**
 * Worker side: applies what the main thread wrote to `ring`. SEND and CONSUMED become the
 * engine's commands; a DGRAM record (each benchmark lays its own out) goes to
 * `on.datagram(bytes, at, len)`, STOP to `on.stop()`.
 */
export function applyMainRecords(ring, engine, on) {
  ring.drain((b, at, len) => {
    const v = new DataView(b.buffer, b.byteOffset + at, len);
    switch (b[at]) {
      case RECORD.DGRAM:
        on.datagram(b, at, len);
        break;
      case RECORD.SEND:
        engine.commands.send(v.getUint32(1, true), b.subarray(at + 5, at + len));
        break;
      case RECORD.CONSUMED:
        engine.commands.consumed(v.getUint32(1, true), v.getUint32(5, true));
        break;
      case RECORD.STOP:
        on.stop();
        break;
    }
  });
}

/**
 * Worker side: writes records for the main thread into `ring`, waiting for room when it is
 * full (backpressure: nothing is dropped); `flush()` wakes the reader, once per batch.
 */
export class RecordWriter {
  #ring;
  #wrote = false;

  constructor(ring) {
    this.#ring = ring;
  }

  put(len, fill) {
    while (!this.#ring.write(len, fill)) {
      this.#ring.notify();
      this.#ring.waitForRoom(len, 1000);
    }
    this.#wrote = true;
  }

  /** A record of `kind`, a connection id and (if given) one more u32. */
  putNumbers(kind, conn, n) {
    this.put(n === undefined ? 5 : 9, (b, at) => {
      const v = new DataView(b.buffer, b.byteOffset + at, 9);
      b[at] = kind;
      v.setUint32(1, conn, true);
      if (n !== undefined) v.setUint32(5, n, true);
    });
  }

  flush() {
    if (this.#wrote) this.#ring.notify();
    this.#wrote = false;
  }
}

/** The value after `--name` on the command line, or `fallback`. */
export function option(name, fallback) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
}

export const runtimeName = () => (globalThis.Deno ? `deno ${Deno.version.deno}` : globalThis.Bun ? `bun ${Bun.version}` : `node ${process.version}`);
export const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
