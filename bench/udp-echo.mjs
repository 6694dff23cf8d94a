// UDP echo through the tunnel, both stacks in one process on 127.0.0.1: a client-role server
// sends 1,000-byte datagrams with client.sendUdp, the server's onUdp answers each with
// packet.reply (the gateway's UDP relay sends its replies the same way), 256 in flight.
// Every datagram crosses sendUdp twice, so this is what a UDP flood costs the main thread.
//
// A/B of two builds, each in its own checkout (the worker loads from its package's dist/),
// interleaved, each run in a fresh process, with `threads: 0` and `threads: 1`:
//
//   node bench/udp-echo.mjs [rounds] [seconds] --a /path/to/base/dist --b /path/to/new/dist
//
// Prints echoes/s per run with the load average, then the median per build and threads, and
// the median of the b/a ratios of each round.

import { spawnSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { startPair } from "../test/support/pair.mjs";

const IN_FLIGHT = 256;
const SIZE = 1000;
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

async function measure(dist, threads, seconds) {
  const wg = await import(`${dist}/index.js`);
  let echoes = 0;
  let inFlight = 0;
  let counting = false;
  const payload = new Uint8Array(SIZE).fill(0x75);
  const from = { host: "10.0.0.2", port: 5000 };
  const to = { host: "192.0.2.7", port: 7 };
  const fill = () => {
    for (; inFlight < IN_FLIGHT; inFlight++) client.sendUdp(payload, from, to);
  };
  const echoed = () => {
    if (counting) echoes++;
    inFlight--;
    if (inFlight < IN_FLIGHT / 2) fill();
  };
  const { server, client } = await startPair(wg, { threads, onUdp: (packet) => packet.reply(packet.data) }, { threads, onUdp: echoed });
  // A datagram lost (a socket buffer full) never comes back: when nothing came back for a
  // while, count the window as lost and send it again.
  let lastEchoes = -1;
  let lost = 0;
  const refill = setInterval(() => {
    if (echoes === lastEchoes && inFlight > 0) {
      lost += inFlight;
      inFlight = 0;
      fill();
    }
    lastEchoes = echoes;
  }, 100);
  fill();
  await new Promise((resolve) => setTimeout(resolve, 500)); // handshake, warm-up
  counting = true;
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const rate = echoes / ((performance.now() - start) / 1000);
  clearInterval(refill);
  await Promise.all([client.close(), server.close()]);
  return { rate, lost };
}

const argv = process.argv.slice(2);
if (argv[0] === "--child") {
  const [, dist, threads, seconds] = argv;
  console.log(JSON.stringify(await measure(dist, Number(threads), Number(seconds))));
  process.exit(0);
}

const flag = (name) => {
  const at = argv.indexOf(name);
  if (at < 0) throw new Error(`${name} /path/to/dist is required`);
  return argv.splice(at, 2)[1];
};
const builds = { a: flag("--a"), b: flag("--b") };
const ROUNDS = Number(argv[0] ?? 5);
const SECONDS = Number(argv[1] ?? 3);
const self = fileURLToPath(import.meta.url);
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

console.log(`node ${process.version}, ${os.cpus().length} cores, ${SIZE}-byte datagrams, ${IN_FLIGHT} in flight, ${SECONDS} s a run; a ${builds.a}, b ${builds.b}; load ${load()}`);
const rates = { a0: [], b0: [], a1: [], b1: [] };
const ratios = { 0: [], 1: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const threads of [0, 1]) {
    // Which build goes first alternates, so neither always runs on a warmer machine.
    const order = round % 2 === 0 ? ["a", "b"] : ["b", "a"];
    const got = {};
    for (const build of order) {
      const child = spawnSync(process.execPath, [self, "--child", builds[build], String(threads), String(SECONDS)], { encoding: "utf8" });
      if (child.status !== 0) throw new Error(`run failed: ${child.stderr}`);
      const { rate, lost } = JSON.parse(child.stdout.trim().split("\n").at(-1));
      got[build] = rate;
      rates[`${build}${threads}`].push(rate);
      console.log(`round ${round} threads ${threads} ${build}: ${rate.toFixed(0)} echoes/s (lost ${lost})  load ${load()}`);
    }
    ratios[threads].push(got.b / got.a);
  }
}
for (const threads of [0, 1]) {
  const a = median(rates[`a${threads}`]);
  const b = median(rates[`b${threads}`]);
  console.log(`threads ${threads}: a ${a.toFixed(0)}, b ${b.toFixed(0)} echoes/s (medians); b/a median ${median(ratios[threads]).toFixed(2)}× (${Math.min(...ratios[threads]).toFixed(2)}–${Math.max(...ratios[threads]).toFixed(2)})`);
}
console.log(`load ${load()}`);
