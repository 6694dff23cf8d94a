#!/usr/bin/env node
// A lossy link in userspace: a UDP relay between one client and one server address,
// each direction with its own bottleneck rate, tail-drop queue, delay, jitter, loss,
// reordering and duplication. The kernel here has no netem, so tests and benchmarks put
// this between a real WireGuard client and the server under test.
//
//   client ──▶ listen socket ──[up link]──▶ source socket ──▶ target (the server)
//   client ◀── listen socket ◀──[down link]── source socket ◀── target
//
// As a child process, so it does not share the server's event loop:
//
//   node test/support/lossy-relay.mjs --listen 10.201.N.1:0 --target 127.0.0.1:PORT \
//        [--source 127.0.0.1] [--seed 1] \
//        --down rate=100mbit,queue=64,delay=20,loss=0.005 --up rate=100mbit,queue=64,delay=20
//
// prints {"listen":{host,port},"source":{host,port}} once bound, and {"counters":{up,down}}
// on SIGTERM (or when its stdin pipe closes: the parent died) before exiting. In-process:
// `await startLossyRelay({ listen, target, up, down })`.
//
// It listens and sends only on loopback and on the interop namespaces' veth range
// (10.201.0.0/16, see test/interop/netns.ts), and only to addresses given explicitly.

import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * One direction of the link. Every field is optional; the default is a perfect wire.
 * @typedef {object} LinkProfile
 * @property {number} [rateBitsPerSecond] bottleneck rate; 0 = unlimited (no queue either)
 * @property {number} [queuePackets] datagrams waiting for or in transmission at the bottleneck; more are dropped (tail drop). Default 1000.
 * @property {number} [delayMs] one-way propagation delay after the bottleneck
 * @property {number} [jitterMs] each datagram's delay varies uniformly within ±jitterMs; order is kept
 * @property {number} [loss] probability a datagram is lost (before the queue)
 * @property {number} [reorder] probability a datagram is held back and delivered right after the next one
 * @property {number} [duplicate] probability a datagram is delivered twice
 */

/**
 * @typedef {object} LinkCounters
 * @property {number} received datagrams that arrived at the relay for this direction
 * @property {number} forwarded datagrams sent on (duplicates included)
 * @property {number} lostRandom dropped by `loss`
 * @property {number} droppedQueueFull dropped because the bottleneck queue was full
 * @property {number} duplicated extra copies sent
 * @property {number} reordered datagrams delivered after a later one
 * @property {number | undefined} socketDrops the kernel's drop count on the receiving socket (Linux), i.e. loss the relay did not choose
 */

/** @typedef {{ host: string, port: number }} Endpoint */

/**
 * @typedef {object} RelayOptions
 * @property {Endpoint} listen where the client sends (port 0 picks one)
 * @property {Endpoint} target the server
 * @property {string} [source] address to send to the target from; default 127.0.0.1 (::1) for a loopback target, required otherwise
 * @property {LinkProfile} [up] client → server
 * @property {LinkProfile} [down] server → client
 * @property {number} [seed] seeds the random choices (loss, jitter, reorder, duplicate); default 1
 */

/**
 * @typedef {object} LossyRelay
 * @property {Endpoint} listen the bound client-facing address
 * @property {Endpoint} source the bound server-facing address (what the server sees as its peer)
 * @property {{ up: Link, down: Link }} links the two directions; their fields may change while it runs
 * @property {() => { up: LinkCounters, down: LinkCounters }} counters
 * @property {() => Promise<void>} close
 */

const DEFAULT_QUEUE_PACKETS = 1000;
// A held-back datagram goes out anyway when nothing overtakes it within this time.
const REORDER_HOLD_MS = 10;
// Large enough that a burst sits in OUR queue (and is dropped by our rules), not in the kernel's.
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

// ---------------------------------------------------------------- addresses

/** Ranges the relay may bind to and send to: loopback and the interop namespaces' veths. */
export const ALLOWED_RANGES = ["127.0.0.0/8", "::1/128", "10.201.0.0/16"];
const allowed = new net.BlockList();
allowed.addSubnet("127.0.0.0", 8, "ipv4");
allowed.addAddress("::1", "ipv6");
allowed.addSubnet("10.201.0.0", 16, "ipv4");

/** @param {string} host */
export function isAllowedAddress(host) {
  const family = net.isIPv4(host) ? "ipv4" : net.isIPv6(host) ? "ipv6" : undefined;
  return family !== undefined && allowed.check(host, family);
}

/** @param {string} what @param {string} host */
function checkAddress(what, host) {
  if (!isAllowedAddress(host)) {
    throw new Error(`lossy relay: ${what} ${JSON.stringify(host)} is not a loopback or test address (allowed: ${ALLOWED_RANGES.join(", ")})`);
  }
}

// ---------------------------------------------------------------- profiles

const RATE_UNITS = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
const PROFILE_KEYS = { rate: "rateBitsPerSecond", queue: "queuePackets", delay: "delayMs", jitter: "jitterMs", loss: "loss", reorder: "reorder", duplicate: "duplicate" };

/**
 * Parses "rate=100mbit,queue=64,delay=20,jitter=1,loss=0.5%,reorder=0.01,duplicate=0".
 * Rates take bit/kbit/mbit/gbit (plain numbers are bit/s); probabilities a fraction or N%.
 * @param {string} text
 * @returns {LinkProfile}
 */
export function parseProfile(text) {
  /** @type {Record<string, number>} */
  const profile = {};
  for (const part of text.split(",").filter(Boolean)) {
    const [key, value] = part.split("=");
    const field = PROFILE_KEYS[/** @type {keyof typeof PROFILE_KEYS} */ (key)];
    if (!field || value === undefined) throw new Error(`lossy relay: bad profile entry ${JSON.stringify(part)} (keys: ${Object.keys(PROFILE_KEYS).join(", ")})`);
    let number;
    const rate = /^([\d.]+)(bit|kbit|mbit|gbit)$/i.exec(value);
    if (key === "rate" && rate) number = Number(rate[1]) * RATE_UNITS[/** @type {keyof typeof RATE_UNITS} */ (rate[2].toLowerCase())];
    else if (value.endsWith("%")) number = Number(value.slice(0, -1)) / 100;
    else number = Number(value);
    if (!Number.isFinite(number) || number < 0) throw new Error(`lossy relay: bad value in ${JSON.stringify(part)}`);
    profile[field] = number;
  }
  validateProfile(profile);
  return profile;
}

/** @param {LinkProfile} p */
function validateProfile(p) {
  for (const key of ["loss", "reorder", "duplicate"]) {
    const v = /** @type {Record<string, number | undefined>} */ (p)[key];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new Error(`lossy relay: ${key} must be a probability in [0, 1], got ${v}`);
  }
}

// ---------------------------------------------------------------- randomness

/** mulberry32: small, fast, and the same sequence for the same seed. @param {number} seed */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------- one direction

/**
 * The link model for one direction. Pure scheduling: `arrive` decides a datagram's fate
 * and its delivery time; `due` hands back what should be sent by `now`. The relay calls
 * `due` from a timer; Node's timers fire in ~1 ms steps, so departures are computed
 * exactly and everything due is released on each tick (8–9 datagrams per ms at 100 Mbit/s).
 */
export class Link {
  /** @param {LinkProfile} profile @param {() => number} random */
  constructor(profile = {}, random = seededRandom(1)) {
    validateProfile(profile);
    this.rate = profile.rateBitsPerSecond ?? 0;
    this.queueLimit = profile.queuePackets ?? DEFAULT_QUEUE_PACKETS;
    this.delayMs = profile.delayMs ?? 0;
    this.jitterMs = profile.jitterMs ?? 0;
    this.loss = profile.loss ?? 0;
    this.reorder = profile.reorder ?? 0;
    this.duplicate = profile.duplicate ?? 0;
    this.random = random;
    /** @type {LinkCounters} */
    this.counters = { received: 0, forwarded: 0, lostRandom: 0, droppedQueueFull: 0, duplicated: 0, reordered: 0, socketDrops: undefined };
    // When each datagram still at the bottleneck finishes transmission (its queue occupancy).
    /** @type {number[]} */
    this.bottleneck = [];
    this.bottleneckHead = 0;
    this.linkFreeAt = 0;
    this.lastDeliverAt = 0;
    // In delivery order; deliverAt never decreases.
    /** @type {{ deliverAt: number, data: Uint8Array }[]} */
    this.pending = [];
    this.pendingHead = 0;
    /** @type {{ releaseAt: number, data: Uint8Array } | undefined} */
    this.held = undefined;
  }

  /** @param {Uint8Array} data @param {number} now ms */
  arrive(data, now) {
    this.counters.received++;
    if (this.loss > 0 && this.random() < this.loss) {
      this.counters.lostRandom++;
      return;
    }
    let departAt = now;
    if (this.rate > 0) {
      while (this.bottleneckHead < this.bottleneck.length && this.bottleneck[this.bottleneckHead] <= now) this.bottleneckHead++;
      if (this.bottleneckHead > 1024) {
        this.bottleneck = this.bottleneck.slice(this.bottleneckHead);
        this.bottleneckHead = 0;
      }
      if (this.bottleneck.length - this.bottleneckHead >= this.queueLimit) {
        this.counters.droppedQueueFull++;
        return;
      }
      this.linkFreeAt = Math.max(now, this.linkFreeAt) + (data.length * 8 * 1000) / this.rate;
      departAt = this.linkFreeAt;
      this.bottleneck.push(departAt);
    }
    let deliverAt = departAt + this.delayMs;
    if (this.jitterMs > 0) deliverAt += (2 * this.random() - 1) * this.jitterMs;
    // Jitter never reorders: a datagram leaves no earlier than the bottleneck let it, nor before the one ahead.
    deliverAt = Math.max(deliverAt, departAt, this.lastDeliverAt);
    this.lastDeliverAt = deliverAt;
    const copies = this.duplicate > 0 && this.random() < this.duplicate ? 2 : 1;
    if (this.reorder > 0 && !this.held && this.random() < this.reorder) {
      this.held = { releaseAt: deliverAt + REORDER_HOLD_MS, data };
      return;
    }
    for (let i = 0; i < copies; i++) this.pending.push({ deliverAt, data });
    this.counters.duplicated += copies - 1;
    if (this.held) {
      // This datagram overtook the held one, which follows right behind it.
      this.pending.push({ deliverAt, data: this.held.data });
      this.held = undefined;
      this.counters.reordered++;
    }
  }

  /** When `due` next has something to hand back; undefined when idle. */
  nextAt() {
    const head = this.pending[this.pendingHead];
    return Math.min(head ? head.deliverAt : Infinity, this.held ? this.held.releaseAt : Infinity);
  }

  /** Datagrams whose time has come, in order. @param {number} now @returns {Uint8Array[]} */
  due(now) {
    const out = [];
    while (this.pendingHead < this.pending.length && this.pending[this.pendingHead].deliverAt <= now) {
      out.push(this.pending[this.pendingHead++].data);
    }
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    if (this.held && this.held.releaseAt <= now) {
      out.push(this.held.data);
      this.held = undefined;
    }
    this.counters.forwarded += out.length;
    return out;
  }
}

// ---------------------------------------------------------------- the relay

/** @param {string} host */
const socketType = (host) => (net.isIPv6(host) ? "udp6" : "udp4");
const isLoopback = (/** @type {string} */ host) => host === "::1" || host.startsWith("127.");

/**
 * Drop count of a bound UDP socket, from /proc/net/udp{,6} (Linux); undefined elsewhere.
 * @param {dgram.Socket} socket
 */
function kernelDrops(socket) {
  const { port, family } = socket.address();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  try {
    const table = fs.readFileSync(family === "IPv6" ? "/proc/net/udp6" : "/proc/net/udp", "utf8");
    for (const line of table.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`)) return Number(fields[fields.length - 1]);
    }
  } catch {
    /* not Linux */
  }
  return undefined;
}

/** @param {dgram.Socket} socket @param {Endpoint} at */
function bind(socket, at) {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address: at.host, port: at.port }, () => {
      socket.off("error", reject);
      resolve(undefined);
    });
  });
}

/**
 * Starts a relay in this process. Prefer the child process (spawnLossyRelay) next to a
 * busy server: both would share one event loop and the timers would be late.
 * @param {RelayOptions} options
 * @returns {Promise<LossyRelay>}
 */
export async function startLossyRelay(options) {
  const { listen, target } = options;
  const source = options.source ?? (isLoopback(target.host) ? (net.isIPv6(target.host) ? "::1" : "127.0.0.1") : undefined);
  if (source === undefined) throw new Error("lossy relay: `source` is needed when the target is not on loopback (the address the target can answer)");
  checkAddress("listen address", listen.host);
  checkAddress("target", target.host);
  checkAddress("source address", source);
  const seed = options.seed ?? 1;
  const up = new Link(options.up, seededRandom(seed));
  const down = new Link(options.down, seededRandom(seed ^ 0x5bd1e995));

  const bufferSizes = { recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES };
  const clientSide = dgram.createSocket({ type: socketType(listen.host), ...bufferSizes });
  const serverSide = dgram.createSocket({ type: socketType(target.host), ...bufferSizes });
  /** @type {Endpoint | undefined} */
  let client;
  let closed = false;

  /** @param {Link} link @param {() => void} flush */
  const scheduler = (link, flush) => {
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    let armedAt = Infinity;
    const tick = () => {
      timer = undefined;
      armedAt = Infinity;
      flush();
      arm();
    };
    const arm = () => {
      const next = link.nextAt();
      if (closed || next === Infinity || next >= armedAt) return;
      if (timer) clearTimeout(timer);
      armedAt = next;
      timer = setTimeout(tick, Math.max(0, next - performance.now()));
    };
    return { arm, stop: () => timer && clearTimeout(timer) };
  };

  const flushUp = () => {
    for (const data of up.due(performance.now())) serverSide.send(data, target.port, target.host);
  };
  const flushDown = () => {
    const datagrams = down.due(performance.now());
    if (!client) return;
    for (const data of datagrams) clientSide.send(data, client.port, client.host);
  };
  const upTimer = scheduler(up, flushUp);
  const downTimer = scheduler(down, flushDown);

  clientSide.on("message", (data, from) => {
    if (!isAllowedAddress(from.address)) return;
    client = { host: from.address, port: from.port }; // follows the client when it roams
    up.arrive(data, performance.now());
    flushUp(); // what needs no waiting goes at once
    upTimer.arm();
  });
  serverSide.on("message", (data, from) => {
    if (from.address !== target.host || from.port !== target.port) return;
    down.arrive(data, performance.now());
    flushDown();
    downTimer.arm();
  });
  // A datagram to a port nobody listens on comes back as ECONNREFUSED on some systems: not fatal here.
  clientSide.on("error", () => {});
  serverSide.on("error", () => {});

  await bind(clientSide, listen);
  await bind(serverSide, { host: source, port: 0 });

  return {
    listen: { host: listen.host, port: clientSide.address().port },
    source: { host: source, port: serverSide.address().port },
    // The two directions, to change a profile while it runs (e.g. `loss = 1` cuts the link).
    links: { up, down },
    counters: () => ({
      up: { ...up.counters, socketDrops: kernelDrops(clientSide) },
      down: { ...down.counters, socketDrops: kernelDrops(serverSide) },
    }),
    close: async () => {
      if (closed) return;
      closed = true;
      upTimer.stop();
      downTimer.stop();
      await Promise.all([clientSide, serverSide].map((s) => new Promise((r) => s.close(() => r(undefined)))));
    },
  };
}

// ---------------------------------------------------------------- as a child process

const SCRIPT_PATH = fileURLToPath(import.meta.url);

/** @param {LinkProfile | undefined} p */
function formatProfile(p = {}) {
  return Object.entries(PROFILE_KEYS)
    .filter(([, field]) => /** @type {Record<string, unknown>} */ (p)[field] !== undefined)
    .map(([key, field]) => `${key}=${/** @type {Record<string, unknown>} */ (p)[field]}`)
    .join(",");
}

/** @param {Endpoint} e */
const formatEndpoint = (e) => (net.isIPv6(e.host) ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);

/** @param {string} text @returns {Endpoint} */
function parseEndpoint(text) {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text ?? "");
  if (!m) throw new Error(`lossy relay: expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1], port: Number(m[2]) };
}

/**
 * Runs the relay as a `node` child process (in the root namespace) and waits until it is bound.
 * `stop()` ends it and returns its counters.
 * @param {RelayOptions & { node?: string }} options `node`: the Node binary, default this process's when it is Node
 * @returns {Promise<{ listen: Endpoint, source: Endpoint, stop(): Promise<{ up: LinkCounters, down: LinkCounters }> }>}
 */
export async function spawnLossyRelay(options) {
  // Under Bun or Deno process.execPath is not node, and this script is run as plain Node.
  const node = options.node ?? (process.versions.bun || process.versions.deno ? "node" : process.execPath);
  const args = [SCRIPT_PATH, "--listen", formatEndpoint(options.listen), "--target", formatEndpoint(options.target)];
  if (options.source) args.push("--source", options.source);
  if (options.seed !== undefined) args.push("--seed", String(options.seed));
  if (options.up) args.push("--up", formatProfile(options.up));
  if (options.down) args.push("--down", formatProfile(options.down));
  const child = spawn(node, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once("close", resolve));
  const lines = () => stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const ready = await new Promise((resolve, reject) => {
    const check = () => {
      if (stdout.includes("\n")) resolve(lines()[0]);
    };
    child.stdout.on("data", check);
    exited.then((code) => reject(new Error(`lossy relay exited (${code}) before listening: ${stderr.trim()}`)));
  });
  return {
    listen: ready.listen,
    source: ready.source,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
      const last = lines().find((l) => l.counters);
      if (!last) throw new Error(`lossy relay printed no counters: ${stderr.trim()}`);
      return last.counters;
    },
  };
}

async function main() {
  /** @type {Record<string, string>} */
  const flags = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new Error(`lossy relay: bad arguments near ${JSON.stringify(argv[i])}`);
    flags[argv[i].slice(2)] = argv[i + 1];
  }
  const relay = await startLossyRelay({
    listen: parseEndpoint(flags.listen),
    target: parseEndpoint(flags.target),
    source: flags.source,
    seed: flags.seed === undefined ? undefined : Number(flags.seed),
    up: parseProfile(flags.up ?? ""),
    down: parseProfile(flags.down ?? ""),
  });
  process.stdout.write(`${JSON.stringify({ listen: relay.listen, source: relay.source })}\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const counters = relay.counters();
    await relay.close();
    process.stdout.write(`${JSON.stringify({ counters })}\n`, () => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  // A parent that spawned us with a stdin pipe (Node's are socket pairs) and died closes it: do not outlive it.
  const stdin = fs.fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on("end", stop);
    process.stdin.resume();
  }
}

/** The script this process was started with, resolved; undefined under `deno eval` and the like. */
function entryScript() {
  try {
    return fs.realpathSync(process.argv[1] ?? "");
  } catch {
    return undefined;
  }
}

if (entryScript() === SCRIPT_PATH) {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.message : err}\n`);
    process.exit(2);
  });
}
