// The in-process bulk of echo.mjs (a client-role server sends 64 MiB in 64 KiB writes to a
// server's discard, both in this process, real UDP on 127.0.0.1), with `threads: 0` and
// `threads: 1` (each server's engine and socket in its own worker) in alternate runs.
// Prints MB/s per run with the load average, and the median ratio threads:1 / threads:0.
//
//   node bench/threads-bulk.mjs [runs]     (after `node build.mjs`); also under bun, deno run -A --unstable-net

import os from "node:os";
import { genkey, pubkey, startServer } from "../dist/index.js";

const argv = globalThis.Deno ? Deno.args : process.argv.slice(2);
const RUNS = Number(argv[0] ?? 5);
const MIB = 64;
const chunk = new Uint8Array(64 * 1024).fill(0x62);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

async function run(threads) {
  const clientKey = genkey();
  let got = 0;
  let reached = () => {};
  const server = await startServer({
    threads,
    privateKey: genkey(),
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
    onTcp: async (conn) => {
      for await (const data of conn) {
        got += data.length;
        if (got >= MIB << 20) reached();
      }
      await conn.end();
    },
  });
  const client = await startServer({ threads, privateKey: clientKey, host: "127.0.0.1", port: 0, address: ["10.0.0.2/32"], peers: [{ publicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}` }] });
  const conn = await client.connect({ host: "10.0.0.1", port: 9 });
  const done = new Promise((resolve) => (reached = resolve));
  const start = performance.now();
  for (let sent = 0; sent < MIB << 20; sent += chunk.length) await conn.write(chunk);
  await done;
  const seconds = (performance.now() - start) / 1000;
  await conn.end();
  await Promise.all([client.close(), server.close()]);
  return (MIB * 1.048576) / seconds;
}

const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : globalThis.Bun ? `bun ${Bun.version}` : `node ${process.version}`;
console.log(`${runtime}, ${os.cpus().length} cores, ${MIB} MiB per run; load ${load()}`);
await run(0); // warm-up
const ratios = [];
for (let i = 0; i < RUNS; i++) {
  const single = await run(0);
  const threaded = await run(1);
  ratios.push(threaded / single);
  console.log(`run ${i}: threads 0 ${single.toFixed(1)} MB/s, threads 1 ${threaded.toFixed(1)} MB/s (${(threaded / single).toFixed(2)}×)  load ${load()}`);
}
ratios.sort((a, b) => a - b);
console.log(`threads 1 / threads 0: median ${ratios[Math.floor(ratios.length / 2)].toFixed(2)}× (${ratios[0].toFixed(2)}–${ratios.at(-1).toFixed(2)})`);
