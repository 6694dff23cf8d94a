// An in-memory UDP network and a virtual clock, so two servers can run in one process
// and minutes of protocol time pass in milliseconds, with loss, delay and reordering
// chosen by a seeded generator (same seed, same run), and optionally a bottleneck: a
// link of limited rate behind a drop-tail queue, one per sending socket.

import type { Endpoint } from "../../ts/ip.js";
import type { Clock, DatagramSocket, Runtime } from "../../ts/runtime/types.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class VirtualClock implements Clock {
  #now = 1_000;
  #seq = 0;
  #timers = new Map<number, Timer>();

  now(): number {
    return this.#now;
  }

  setTimer(delayMs: number, fn: () => void): unknown {
    const seq = ++this.#seq;
    this.#timers.set(seq, { at: this.#now + Math.max(0, delayMs), seq, fn });
    return seq;
  }

  clearTimer(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Deferred work runs on the real event loop, without time passing. */
  defer(fn: () => void): void {
    setImmediate(fn);
  }

  /** Runs everything due within the next `ms` of virtual time. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const next = this.#next();
      if (!next || next.at > end) break;
      this.#fire(next);
    }
    this.#now = end;
    await settle();
  }

  /** Moves time forward from timer to timer until `promise` settles; fails after `limitMs` of virtual time. */
  async until<T>(promise: Promise<T>, limitMs = 10 * 60_000): Promise<T> {
    let done = false;
    promise.then(
      () => (done = true),
      () => (done = true),
    );
    const start = this.#now;
    for (;;) {
      await settle();
      if (done) return promise;
      const next = this.#next();
      if (!next) throw new Error("virtual clock: nothing scheduled, the promise can never settle");
      if (next.at - start > limitMs) throw new Error(`virtual clock: not settled within ${limitMs} ms`);
      this.#fire(next);
    }
  }

  #next(): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) next = timer;
    }
    return next;
  }

  #fire(timer: Timer): void {
    this.#timers.delete(timer.seq);
    this.#now = Math.max(this.#now, timer.at);
    timer.fn();
  }
}

/** Lets pending I/O callbacks and promise chains run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

export interface WireOptions {
  /** One-way delay, ms. */
  delayMs?: number;
  /** Extra random delay per datagram, ms: datagrams overtake each other (reordering). */
  jitterMs?: number;
  /** Probability that a datagram is lost. */
  loss?: number;
  seed?: number;
  /** The rate each socket's datagrams leave at, bits per second (default: no limit). */
  bitsPerSecond?: number;
  /** Datagrams that may wait for that link; more are dropped (default: no limit). */
  queuePackets?: number;
}

export interface WireRecord {
  data: Uint8Array;
  from: Endpoint;
  to: Endpoint;
  /** Dropped at random, or because the bottleneck's queue was full. */
  lost: boolean;
}

export class MemoryNetwork {
  readonly clock: VirtualClock;
  readonly options: Required<WireOptions>;
  /** Every datagram sent, in order, for tests that inspect the wire. */
  readonly log: WireRecord[] = [];
  #sockets = new Map<string, (data: Uint8Array, from: Endpoint) => void>();
  #nextPort = 40_000;
  #random: () => number;
  /** Per sending socket: when each datagram waiting for the bottleneck leaves it. */
  #departures = new Map<string, number[]>();

  constructor(clock: VirtualClock, options: WireOptions = {}) {
    this.clock = clock;
    this.options = { delayMs: 1, jitterMs: 0, loss: 0, seed: 1, bitsPerSecond: Infinity, queuePackets: Infinity, ...options };
    this.#random = mulberry32(this.options.seed);
  }

  /** A runtime whose sockets live on this network. */
  runtime(): Runtime {
    return {
      clock: this.clock,
      bindUdp: async (host, port, onMessage) => this.#bind(host, port, onMessage),
    };
  }

  #bind(host: string, port: number, onMessage: (data: Uint8Array, from: Endpoint) => void): DatagramSocket {
    const address = { host: host === "0.0.0.0" ? "127.0.0.1" : host, port: port || this.#nextPort++ };
    const key = `${address.host}:${address.port}`;
    if (this.#sockets.has(key)) throw new Error(`address in use: ${key}`);
    this.#sockets.set(key, onMessage);
    return {
      address,
      send: (data, to) => this.#send(data.slice(), address, to),
      close: async () => void this.#sockets.delete(key),
    };
  }

  #send(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    const leaves = this.#bottleneck(data.length, from);
    const lost = leaves === undefined || this.#random() < this.options.loss;
    this.log.push({ data, from, to, lost });
    if (lost) return;
    const delay = leaves - this.clock.now() + this.options.delayMs + this.#random() * this.options.jitterMs;
    this.clock.setTimer(delay, () => this.#sockets.get(`${to.host}:${to.port}`)?.(data, from));
  }

  /** When a datagram sent now gets through the sender's bottleneck; undefined if its queue is full. */
  #bottleneck(bytes: number, from: Endpoint): number | undefined {
    const now = this.clock.now();
    const key = `${from.host}:${from.port}`;
    const waiting = (this.#departures.get(key) ?? []).filter((at) => at > now);
    this.#departures.set(key, waiting);
    if (waiting.length >= this.options.queuePackets) return undefined;
    const start = Math.max(now, waiting.at(-1) ?? now);
    const leaves = start + (bytes * 8 * 1000) / this.options.bitsPerSecond;
    waiting.push(leaves);
    return leaves;
  }
}

/** A small seeded PRNG (mulberry32): deterministic loss and jitter. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
