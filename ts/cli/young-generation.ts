// The command's own process keeps V8's young generation at its starting size (Node only).
//
// Under a stream of datagrams Node's UDP receive allocates a 64 KiB buffer for each one and
// shrinks it to the datagram's size; the buffer is freed only when the young generation is
// next collected. Left to grow (to 16 MiB semi-spaces in Node 20), that generation is
// collected every ~20,000 datagrams, and the allocator's heap grows by that many buffers.
// Kept small it is collected many times as often, each collection as cheap (almost nothing
// in it survives). bench/real-client.mjs, 200 MiB down and up against real WireGuard
// clients: RSS growth +33 to +37 MiB as it grows, +20 to +25 set from here, at the same
// throughput (bench/README.md, "The young generation and the server's memory").
//
// A process-wide V8 setting, so only the command sets it, never the library: a program
// that embeds the library chooses for itself (`node --max-semi-space-size=1`, README).
// `--max-semi-space-size` is read only when the heap is set up; the growth factor is read
// each time the young generation would grow, so it works from here. Deno ignores V8 flags
// set at run time (`deno run --v8-flags=--max-semi-space-size=1` does it), and Bun's
// JavaScriptCore has no such generation.

import process from "node:process";
import v8 from "node:v8";

/** Stops V8's young generation from growing, in this process. Node only; elsewhere nothing. */
export function keepYoungGenerationSmall(): void {
  const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
  if (runtime.Deno !== undefined || runtime.Bun !== undefined || !process.versions.v8) return;
  v8.setFlagsFromString("--semi-space-growth-factor=1");
}
