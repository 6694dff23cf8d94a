// The engine's ceiling: one-way TCP payload through encrypt → TCP → decrypt with no
// sockets and no event loop. Two wasm instances of the engine (ts/wasm/engine.ts's `Engine`),
// a server and a client-role server whose peer is the server, hand each other their
// datagrams directly, synchronously, in one loop:
//
//   client: commands.send → pump → datagrams ──▶ server: pump (decrypt, TCP, ACKs)
//   client: pump (decrypt ACKs)              ◀── datagrams
//
// The clock is real time, except that when neither side has a datagram to deliver and
// both wait for a deadline (pacing, a delayed ACK), the clock jumps to it: waiting is
// not CPU, and the figure is what the engine does per second of CPU. The time skipped
// is reported.
//
// Reports payload Gbit/s (10⁹ bit/s of TCP payload delivered to the server), datagrams
// per second both ways, and the time split between the sending and the receiving engine
// (each side's rate if it had a CPU core to itself). `--dist DIR` (repeatable) compares builds in
// the same run, rounds interleaved: each DIR is a built `dist/` (its wasm/engine.js loads the
// wasm beside it).
//
//   node bench/engine.mjs [--seconds S] [--rounds N] [--dist DIR ...]
//   bun bench/engine.mjs, deno run -A bench/engine.mjs: the same under JavaScriptCore / Deno's V8.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const argv = globalThis.Deno ? Deno.args : process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const SECONDS = Number(option("--seconds", 3));
const ROUNDS = Number(option("--rounds", 5));
// A fixed amount of work per round instead of a fixed time: for instruction counts
// (valgrind --tool=callgrind), where the wall clock means nothing.
const MIB = option("--mib") === undefined ? undefined : Number(option("--mib"));
const dists = argv.flatMap((a, i) => (argv[i - 1] === "--dist" ? [resolve(a)] : []));
if (dists.length === 0) dists.push(resolve(new URL("../dist", import.meta.url).pathname));

const runtime = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const CHUNK = new Uint8Array(64 * 1024).fill(0x62);
const SERVER_EP = { host: "192.0.2.1", port: 51820 };
const CLIENT_EP = { host: "192.0.2.2", port: 40000 };
const LIMITS = {
  tcpMaxConnectionsPerPeer: 16, tcpMaxConnections: 16, tcpMaxHalfOpenPerPeer: 16, maxBufferedBytes: 256 << 20,
  udpMaxFlowsPerPeer: 16, tcpHalfOpenTimeout: 20_000, tcpFinWait2Timeout: 60_000, tcpKeepalive: 60_000,
  tcpUserTimeout: 60_000, udpFlowTimeout: 60_000,
};

function privateKey() {
  const key = crypto.getRandomValues(new Uint8Array(32));
  key[0] &= 248;
  key[31] = (key[31] & 127) | 64;
  return key;
}

/** One build's pair of cores with one connection open, client → server's discard. */
async function pair(dist) {
  const { Engine } = await import(pathToFileURL(`${dist}/wasm/engine.js`).href);
  const { parseIp } = await import(pathToFileURL(`${dist}/ip.js`).href);
  let skipped = 0;
  const now = () => performance.now() + skipped;
  const start = (acceptTcp) => {
    const engine = new Engine();
    const key = privateKey();
    // Server defaults: 4 MiB buffers, MTU 1420.
    engine.start({ nowMs: now(), privateKey: key, mtu: 1420, tcpReceiveBuffer: 4 << 20, tcpSendBuffer: 4 << 20, acceptTcp, limits: LIMITS });
    return { engine, publicKey: engine.publicKey(key) };
  };
  const server = start(true);
  const client = start(false);
  server.engine.allow(server.engine.addPeer(client.publicKey, undefined, 0, undefined), parseIp("10.0.0.2"), 32);
  client.engine.allow(client.engine.addPeer(server.publicKey, undefined, 0, SERVER_EP), parseIp("0.0.0.0"), 0);

  const s = { toServer: [], toClient: [], room: 0, received: 0, unconsumed: 0, serverConn: -1, datagrams: 0 };
  const ignore = () => {};
  const fail = (side) => (conn, reason) => {
    throw new Error(`${side}: connection ${conn} closed (${reason})`);
  };
  const clientEvents = {
    datagram: (_to, bytes) => void s.toServer.push({ data: bytes, from: CLIENT_EP }),
    tcpWritable: (_conn, room) => void (s.room += room), // a grant adds to what is left
    tcpClosed: fail("client"),
    tcpIncoming: ignore, tcpEstablished: ignore, tcpData: ignore, tcpEof: ignore, udp: ignore, unknownPeer: ignore, innerPacket: ignore, echoReply: ignore, udpUnreachable: ignore,
  };
  const serverEvents = {
    datagram: (_to, bytes) => void s.toClient.push({ data: bytes, from: SERVER_EP }),
    tcpIncoming: (conn) => {
      s.serverConn = conn;
      server.engine.commands.accept(conn);
    },
    tcpData: (_conn, bytes) => {
      s.received += bytes.length;
      s.unconsumed += bytes.length;
    },
    tcpClosed: fail("server"),
    tcpEstablished: ignore, tcpEof: ignore, tcpWritable: ignore, udp: ignore, unknownPeer: ignore, innerPacket: ignore, echoReply: ignore, udpUnreachable: ignore,
  };
  const conn = client.engine.tcpConnect(now(), { host: "10.0.0.2", port: 0 }, { host: "10.0.0.1", port: 9 }).id;

  const time = { client: 0, server: 0 };
  /** One round of the loop; returns false when nothing moved. */
  const step = () => {
    const t = performance.now();
    const at = now();
    for (; s.room > 0; s.room -= Math.min(s.room, CHUNK.length)) client.engine.commands.send(conn, CHUNK.subarray(0, s.room));
    const clientNext = client.engine.pump(at, s.toClient.splice(0));
    client.engine.takeEvents(clientEvents);
    const t2 = performance.now();
    time.client += t2 - t;
    const moved = s.toServer.length + s.toClient.length;
    s.datagrams += s.toServer.length;
    // As a reader that takes everything at once: one window update per round.
    if (s.unconsumed > 0) server.engine.commands.consumed(s.serverConn, s.unconsumed);
    s.unconsumed = 0;
    const serverNext = server.engine.pump(at, s.toServer.splice(0));
    server.engine.takeEvents(serverEvents);
    s.datagrams += s.toClient.length;
    time.server += performance.now() - t2;
    if (moved + s.toClient.length === 0 && s.room === 0) {
      const next = Math.min(clientNext, serverNext);
      if (next > at) skipped += next - at;
    }
  };
  /** Runs for `seconds` of wall time, or until `mib` more MiB have arrived; returns the rates. */
  const run = (seconds, mib) => {
    const before = { received: s.received, datagrams: s.datagrams, skipped, client: time.client, server: time.server };
    const t0 = performance.now();
    if (mib !== undefined) while (s.received - before.received < mib * 1024 * 1024) step();
    else while (performance.now() - t0 < seconds * 1000) for (let i = 0; i < 64; i++) step();
    const wall = (performance.now() - t0) / 1000;
    const bytes = s.received - before.received;
    return {
      gbps: (bytes * 8) / wall / 1e9,
      datagramsPerSecond: (s.datagrams - before.datagrams) / wall,
      senderGbps: (bytes * 8) / ((time.client - before.client) / 1000) / 1e9,
      receiverGbps: (bytes * 8) / ((time.server - before.server) / 1000) / 1e9,
      skippedMs: skipped - before.skipped,
      bytes,
    };
  };
  return { run, stats: () => ({ server: server.engine.stats(), client: client.engine.stats() }) };
}

const pairs = [];
for (const dist of dists) pairs.push({ dist, pair: await pair(dist), rounds: [] });
for (const p of pairs) p.pair.run(0.5, MIB && 1); // warm-up: JIT, windows, first allocations
for (let round = 0; round < ROUNDS; round++) {
  for (const p of pairs) p.rounds.push(p.pair.run(SECONDS, MIB));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = (rounds, key) => ({ median: median(rounds.map((r) => r[key])), min: Math.min(...rounds.map((r) => r[key])), max: Math.max(...rounds.map((r) => r[key])) });
const results = pairs.map((p) => {
  const stats = p.pair.stats();
  const dropped = Object.values(stats.server.dropped).concat(Object.values(stats.client.dropped)).reduce((a, b) => a + b, 0);
  return {
    dist: p.dist,
    gbps: summary(p.rounds, "gbps"),
    datagramsPerSecond: summary(p.rounds, "datagramsPerSecond"),
    senderGbps: summary(p.rounds, "senderGbps"),
    receiverGbps: summary(p.rounds, "receiverGbps"),
    skippedMsPerRound: summary(p.rounds, "skippedMs"),
    dropped,
    retransmitted: stats.client.tcp.retransmittedSegments,
    rounds: p.rounds,
  };
});

const f = (m, digits = 2) => `${m.median.toFixed(digits)} (${m.min.toFixed(digits)}–${m.max.toFixed(digits)})`;
console.log(`\n${runtime}: engine only, one connection, ${ROUNDS} rounds of ${MIB === undefined ? `${SECONDS} s` : `${MIB} MiB`}, median (min–max)`);
for (const r of results) {
  console.log(`${r.dist}`);
  console.log(`  payload         ${f(r.gbps)} Gbit/s`);
  console.log(`  datagrams       ${f(r.datagramsPerSecond, 0)} /s (both ways)`);
  console.log(`  sending engine  ${f(r.senderGbps)} Gbit/s of its own time`);
  console.log(`  receiving engine ${f(r.receiverGbps)} Gbit/s of its own time`);
  console.log(`  clock skipped   ${f(r.skippedMsPerRound, 0)} ms per round; dropped ${r.dropped}, retransmitted ${r.retransmitted}`);
}
if (results.length > 1) {
  for (const r of results.slice(1)) {
    const ratios = r.rounds.map((x, i) => x.gbps / results[0].rounds[i].gbps);
    console.log(`${r.dist} / ${results[0].dist}: ${f({ median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) })}× (per round)`);
  }
}

const file = new URL("results/engine.json", import.meta.url);
mkdirSync(new URL("results/", import.meta.url), { recursive: true });
let all = {};
try {
  all = JSON.parse(readFileSync(file, "utf8"));
} catch {
  // First run.
}
const version = globalThis.Deno ? Deno.version.deno : globalThis.Bun ? Bun.version : process.version;
all[runtime] = { date: new Date().toISOString(), version, params: { seconds: SECONDS, mib: MIB, rounds: ROUNDS }, results };
writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
