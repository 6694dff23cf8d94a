// The Server with `threads: 0` and `threads: 1` (each server's engine and socket in its own
// worker), in alternate runs, both ends in this process over real UDP on 127.0.0.1:
//   bulk       echo.mjs's in-process bulk: a client-role server sends 64 MiB in 64 KiB writes
//              to a server's discard; MB/s
//   ping-pong  one connection, 64 bytes to the server's echo and wait for them, for 2 s;
//              messages/s (what a request and its answer pay for crossing between threads)
// Prints both per run with the load average, and the median ratios threads:1 / threads:0.
//
//   node bench/threads-bulk.mjs [runs]     (after `node build.mjs`); also under bun, deno run -A --unstable-net

import os from "node:os";
import { genkey, pubkey, startServer } from "../dist/index.js";
import { startPair } from "../test/support/pair.mjs";

const argv = globalThis.Deno ? Deno.args : process.argv.slice(2);
const RUNS = Number(argv[0] ?? 5);
const MIB = 64;
const PING_PONG_MS = 2000;
const chunk = new Uint8Array(64 * 1024).fill(0x62);
const message = new Uint8Array(64).fill(0x70);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

/** A server (discard on port 9, echo on 7) and a client-role server joined to it, both with `threads`. */
async function pair(threads) {
  const handlers = [];
  const discarded = { bytes: 0 };
  const onTcp = (conn) => {
    const served = (async () => {
      for await (const data of conn) {
        if (conn.local.port === 7) await conn.write(data);
        else discarded.bytes += data.length;
      }
      await conn.end();
    })();
    handlers.push(served);
    return served;
  };
  const { server, client } = await startPair({ startServer, genkey, pubkey }, { threads, onTcp }, { threads });
  const close = async () => {
    await Promise.all(handlers); // each ends with its client's FIN: closing before would fail it
    await Promise.all([client.close(), server.close()]);
  };
  return { client, discarded, close };
}

async function bulk(client, discarded) {
  const conn = await client.connect({ host: "10.0.0.1", port: 9 });
  const start = performance.now();
  for (let sent = 0; sent < MIB << 20; sent += chunk.length) await conn.write(chunk);
  await conn.end();
  for await (const _ of conn); // the server's FIN: it has read everything
  if (discarded.bytes !== MIB << 20) throw new Error(`the server took ${discarded.bytes} bytes, not ${MIB} MiB`);
  return (MIB * 1.048576) / ((performance.now() - start) / 1000);
}

async function pingPong(client) {
  const conn = await client.connect({ host: "10.0.0.1", port: 7 });
  const reader = conn[Symbol.asyncIterator]();
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < PING_PONG_MS) {
    await conn.write(message);
    for (let got = 0; got < message.length; ) got += (await reader.next()).value.length;
    count++;
  }
  const rate = count / ((performance.now() - start) / 1000);
  await conn.end();
  while (!(await reader.next()).done);
  return rate;
}

async function run(threads) {
  const { client, discarded, close } = await pair(threads);
  const result = { bulk: await bulk(client, discarded), pingPong: await pingPong(client) };
  await close();
  return result;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : globalThis.Bun ? `bun ${Bun.version}` : `node ${process.version}`;
console.log(`${runtime}, ${os.cpus().length} cores, ${MIB} MiB bulk and ${PING_PONG_MS / 1000} s of ping-pong per run; load ${load()}`);
await run(0); // warm-up
const bulkRatios = [];
const pingPongRatios = [];
for (let i = 0; i < RUNS; i++) {
  const single = await run(0);
  const threaded = await run(1);
  bulkRatios.push(threaded.bulk / single.bulk);
  pingPongRatios.push(threaded.pingPong / single.pingPong);
  console.log(
    `run ${i}: bulk threads 0 ${single.bulk.toFixed(1)} MB/s, threads 1 ${threaded.bulk.toFixed(1)} MB/s (${bulkRatios.at(-1).toFixed(2)}×); ` +
      `ping-pong ${single.pingPong.toFixed(0)} / ${threaded.pingPong.toFixed(0)} msg/s (${pingPongRatios.at(-1).toFixed(2)}×)  load ${load()}`,
  );
}
console.log(`threads 1 / threads 0: bulk median ${median(bulkRatios).toFixed(2)}× (${range(bulkRatios)}), ping-pong median ${median(pingPongRatios).toFixed(2)}× (${range(pingPongRatios)})`);
