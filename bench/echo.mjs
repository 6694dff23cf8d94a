// The thesis comparison: how much TCP throughput does a userspace WireGuard stack keep
// compared with the plain sockets of the same runtime? (mitmproxy's WireGuard mode echoed
// 3,730 msg/s against 9,500 msg/s for a plain asyncio server: 0.39×.)
//
// Both sides run in this one process, on loopback:
//   wg-netstack: a client-role server (startServer with the client's key) connects
//                through the tunnel, over real UDP, to a server whose onTcp echoes;
//                so BOTH ends of every TCP connection are wg-netstack's stack.
//   baseline:    a node:net echo server and node:net clients, same message pattern.
//
// Two measures, each reported as wg-netstack / baseline:
//   messages/s: CONNECTIONS connections in parallel, each with one 64-byte message
//               outstanding (write, wait for the echo, repeat) for SECONDS.
//   bulk MB/s:  BULK_MIB MiB one way, client to a discard server, timed until the
//               server has every byte; median of 3 runs (a run stops sending after
//               BULK_CAP_MS, so a slow stack still finishes).
//
//   node bench/echo.mjs [seconds] [connections]      (needs `npm run build` first)
// Also runs as `bun bench/echo.mjs` and `deno run -A bench/echo.mjs`; each runtime's result
// goes under its name in results/echo.json.

import { createConnection, createServer } from "node:net";
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { genkey, pubkey, startServer } from "wg-netstack";

const args = globalThis.Deno ? Deno.args : process.argv.slice(2);
const SECONDS = Number(args[0] ?? 5);
const CONNECTIONS = Number(args[1] ?? 10);
const MESSAGE = 64;
const BULK_MIB = 64;
const BULK_CAP_MS = 15_000;
const CHUNK = 64 * 1024;
const ECHO_PORT = 7; // the wg-netstack server tells echo from discard by the destination port
const DISCARD_PORT = 9;

const runtime = globalThis.Deno ? "deno" : globalThis.Bun ? "bun" : "node";
const message = new Uint8Array(MESSAGE).fill(0x61);
const chunk = new Uint8Array(CHUNK).fill(0x62);

// ---- wg-netstack: connections are TcpConnection (read()/write() promises) ----

async function wgSetup() {
  const clientKey = genkey();
  const sink = new Sink();
  const server = await startServer({
    privateKey: genkey(),
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
    onTcp: async (conn) => {
      if (conn.local.port === ECHO_PORT) {
        for await (const data of conn) await conn.write(data);
      } else {
        for await (const data of conn) sink.add(data.length);
      }
      await conn.end();
    },
  });
  const client = await startServer({
    privateKey: clientKey,
    host: "127.0.0.1",
    port: 0,
    address: ["10.0.0.2/32"],
    peers: [{ publicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}` }],
  });
  const to = (port) => ({ host: "10.0.0.1", port });
  return {
    openEcho: () => client.connect(to(ECHO_PORT)),
    // Request/response: write one message, read until all of its echo is back.
    async pingPong(conn, deadline, counter) {
      while (performance.now() < deadline) {
        await conn.write(message);
        for (let got = 0; got < MESSAGE; ) {
          const data = await conn.read();
          if (data.length === 0) throw new Error("echo connection closed");
          got += data.length;
        }
        counter.n++;
      }
    },
    bulk: () =>
      bulkRun(
        sink,
        () => client.connect(to(DISCARD_PORT)),
        (conn) => conn.write(chunk),
        (conn) => conn.end(),
      ),
    closeEcho: (conn) => conn.end(),
    stats: () => ({ server: server.stats(), client: client.stats() }),
    close: () => Promise.all([client.close(), server.close()]),
  };
}

// ---- baseline: node:net sockets, used the ordinary way (events, write()/'drain') ----

async function netSetup() {
  const sink = new Sink();
  const echo = createServer((socket) => socket.pipe(socket));
  const discard = createServer((socket) => socket.on("data", (data) => sink.add(data.length)));
  const listen = (server) => new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
  const echoPort = await listen(echo);
  const discardPort = await listen(discard);
  const open = (port) =>
    new Promise((resolve, reject) => {
      const socket = createConnection({ host: "127.0.0.1", port, noDelay: true }, () => resolve(socket));
      socket.once("error", reject);
    });
  return {
    openEcho: () => open(echoPort),
    pingPong: (socket, deadline, counter) =>
      new Promise((resolve, reject) => {
        let got = 0;
        const onData = (data) => {
          got += data.length;
          if (got < MESSAGE) return;
          got -= MESSAGE;
          counter.n++;
          if (performance.now() < deadline) socket.write(message);
          else {
            socket.off("data", onData);
            resolve();
          }
        };
        socket.on("data", onData);
        socket.once("close", () => reject(new Error("echo connection closed")));
        socket.write(message);
      }),
    bulk: () =>
      bulkRun(
        sink,
        () => open(discardPort),
        (socket) => socket.write(chunk) || new Promise((resolve) => socket.once("drain", resolve)),
        (socket) => socket.end(),
      ),
    closeEcho: (socket) => socket.destroy(),
    stats: () => ({}),
    close: () => Promise.all([echo, discard].map((s) => new Promise((resolve) => s.close(resolve)))),
  };
}

/** Bytes a discard server has received in the current bulk run; `reach(n)` resolves once it has n. */
class Sink {
  total = 0;
  #want = Infinity;
  #resolve = () => {};
  add(bytes) {
    this.total += bytes;
    if (this.total >= this.#want) this.#resolve();
  }
  reach(bytes) {
    this.#want = bytes;
    return this.total >= bytes ? Promise.resolve() : new Promise((resolve) => (this.#resolve = resolve));
  }
}

/** One bulk run: write chunks until BULK_MIB are sent (or BULK_CAP_MS has passed, so a slow
 * stack cannot stall the benchmark), then wait until the sink has them all. Returns MB/s, and
 * MB per second of the process's CPU time (steadier than wall time on a shared machine). */
async function bulkRun(sink, open, write, end) {
  const conn = await open();
  sink.total = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let sent = 0;
  while (sent < BULK_MIB * 1024 * 1024 && performance.now() - start < BULK_CAP_MS) {
    await write(conn);
    sent += CHUNK;
  }
  await sink.reach(sent);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await end(conn);
  return { mbps: sent / 1e6 / seconds, mbPerCpuSecond: sent / (cpu.user + cpu.system) };
}

// ---- the measurement, the same for both ----

async function measure(name, setup) {
  console.error(`measuring ${name} ...`);
  const transport = await setup();
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => transport.openEcho()));
  const phase = async (seconds) => {
    const counter = { n: 0 };
    const start = performance.now();
    const deadline = start + seconds * 1000;
    await Promise.all(conns.map((conn) => transport.pingPong(conn, deadline, counter)));
    return counter.n / ((performance.now() - start) / 1000);
  };
  await phase(1); // warm-up: JIT, congestion windows, first allocations
  const messagesPerSecond = await phase(SECONDS);
  await Promise.all(conns.map((conn) => transport.closeEcho(conn)));

  const bulkRuns = [];
  for (let i = 0; i < 3; i++) bulkRuns.push(await transport.bulk());
  const bulkMBps = median(bulkRuns.map((r) => r.mbps));
  const bulkMBperCpuSecond = median(bulkRuns.map((r) => r.mbPerCpuSecond));

  const stats = transport.stats();
  await transport.close();
  return { messagesPerSecond, bulkMBps, bulkMBperCpuSecond, bulkRuns, stats };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// Baseline first, then wg-netstack, in the same process and run.
const baseline = await measure("baseline (node:net)", netSetup);
const wg = await measure("wg-netstack", wgSetup);

const result = {
  date: new Date().toISOString(),
  runtime,
  version: globalThis.Deno ? Deno.version.deno : globalThis.Bun ? Bun.version : process.version,
  params: { seconds: SECONDS, connections: CONNECTIONS, messageBytes: MESSAGE, bulkMiB: BULK_MIB },
  messagesPerSecond: { wg: wg.messagesPerSecond, baseline: baseline.messagesPerSecond, ratio: wg.messagesPerSecond / baseline.messagesPerSecond },
  bulkMBps: { wg: wg.bulkMBps, baseline: baseline.bulkMBps, ratio: wg.bulkMBps / baseline.bulkMBps },
  bulkMBperCpuSecond: { wg: wg.bulkMBperCpuSecond, baseline: baseline.bulkMBperCpuSecond, ratio: wg.bulkMBperCpuSecond / baseline.bulkMBperCpuSecond },
  bulkRuns: { wg: wg.bulkRuns, baseline: baseline.bulkRuns },
  wgStats: wg.stats,
};

const row = (label, m, unit) =>
  console.log(`${label.padEnd(22)} ${m.wg.toFixed(1).padStart(10)} ${m.baseline.toFixed(1).padStart(10)}   ${m.ratio.toFixed(2)}×  ${unit}`);
console.log(`\n${runtime} ${result.version}: ${CONNECTIONS} connections, ${MESSAGE}-byte messages, ${SECONDS} s; bulk ${BULK_MIB} MiB one way`);
console.log(`${"".padEnd(22)} ${"wg-netstack".padStart(10)} ${"baseline".padStart(10)}   ratio`);
row("request/response", result.messagesPerSecond, "msg/s");
row("bulk", result.bulkMBps, "MB/s");
row("bulk per CPU-second", result.bulkMBperCpuSecond, "MB");
console.log(`(mitmproxy WireGuard mode vs plain asyncio: 3730 vs 9500 msg/s = 0.39×)`);

// One file for all runtimes: this run replaces its own runtime's entry.
const file = new URL("results/echo.json", import.meta.url);
mkdirSync(new URL("results/", import.meta.url), { recursive: true });
let all = {};
try {
  all = JSON.parse(readFileSync(file, "utf8"));
} catch {
  // First run.
}
all[runtime] = result;
writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);

