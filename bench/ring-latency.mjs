// What one crossing between threads costs, without the engine: the main thread and a worker
// hand an 8-byte record back and forth through two rings (ts/host/worker/ring.ts), as
// `threads: 1` hands over commands and events. The main thread always waits with
// Atomics.waitAsync (it must not block); the worker waits either the same way (`async`,
// as the engine's worker does, since it also serves its UDP socket) or blocking in
// Atomics.wait (`sync`). Prints µs per round trip and per crossing.
//
//   node bench/ring-latency.mjs [seconds]     (after `node build.mjs`)

import os from "node:os";
import { Worker } from "node:worker_threads";
import { Ring } from "../dist/host/worker/ring.js";

const SECONDS = Number(process.argv[2] ?? 2);
const RING_MODULE = new URL("../dist/host/worker/ring.js", import.meta.url).href;
const STOP = 1; // a record of this length ends the worker

const WORKER = `
  const { workerData } = require("node:worker_threads");
  import(workerData.ring).then(async ({ Ring }) => {
    const toWorker = new Ring(workerData.toWorker);
    const toMain = new Ring(workerData.toMain);
    for (let stop = false; !stop; ) {
      if (workerData.blocking) toWorker.waitForData(1000);
      else await toWorker.dataAsync(1000);
      toWorker.drain((bytes, at, len) => {
        if (len === ${STOP}) stop = true;
        else toMain.push(bytes.subarray(at, at + len));
      });
      toMain.notify();
    }
  });`;

async function roundTrips(blocking) {
  const toWorker = Ring.create(4096);
  const toMain = Ring.create(4096);
  const worker = new Worker(WORKER, { eval: true, workerData: { ring: RING_MODULE, toWorker: toWorker.buffer, toMain: toMain.buffer, blocking } });
  const exited = new Promise((resolve) => worker.once("exit", resolve));
  const record = new Uint8Array(8);
  const trip = async () => {
    toWorker.push(record);
    toWorker.notify();
    while (toMain.empty) await toMain.dataAsync(1000);
    toMain.drain(() => {});
  };
  for (let i = 0; i < 1000; i++) await trip(); // warm-up
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await trip();
    count++;
  }
  const us = ((performance.now() - start) * 1000) / count;
  toWorker.push(new Uint8Array(STOP));
  toWorker.notify();
  await exited;
  return us;
}

for (const blocking of [false, true]) {
  const us = await roundTrips(blocking);
  console.log(`worker ${blocking ? "blocking (Atomics.wait)" : "async (Atomics.waitAsync)"}: ${us.toFixed(1)} µs per round trip, ${(us / 2).toFixed(1)} per crossing  load ${os.loadavg()[0].toFixed(2)}`);
}
