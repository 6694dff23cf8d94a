// OUR server for the real-client benchmark: the package as a user gets it, with default
// options (but `threads`), serving bench/programs.mjs on any destination address. Runs under each runtime:
//
//   node bench/real-client-server.mjs --peer CLIENT_PUBLIC_KEY [--threads N]
//   deno run -A --unstable-net bench/real-client-server.mjs --peer ...
//   bun bench/real-client-server.mjs --peer ...
//
// Listens on 0.0.0.0 (a free port), prints {"port","publicKey","runtime"} once ready, and
// when its stdin closes prints {"stats": server.stats() with rssStartBytes, rssPeakBytes} and exits.

import process from "node:process";
import { genkey, pubkey, startServer } from "wg-netstack";
import { programFor } from "./programs.mjs";

const args = process.argv.slice(2);
const peer = args[args.indexOf("--peer") + 1];
if (!args.includes("--peer") || !peer) {
  console.error("usage: real-client-server.mjs --peer CLIENT_PUBLIC_KEY [--threads N]");
  process.exit(2);
}

const threads = args.includes("--threads") ? Number(args[args.indexOf("--threads") + 1]) : 0;
const privateKey = genkey();
const server = await startServer({
  threads,
  privateKey,
  host: "0.0.0.0",
  port: 0,
  peers: [{ publicKey: peer }],
  onTcp: async (conn) => {
    const program = programFor(conn.local.port);
    if (!program) return conn.abort();
    await program(conn);
  },
});

const runtime = process.versions.bun ? `bun ${process.versions.bun}` : globalThis.Deno ? `deno ${Deno.version.deno}` : `node ${process.versions.node}`;
process.stdout.write(`${JSON.stringify({ port: server.address.port, publicKey: pubkey(privateKey), runtime })}\n`);

// The resident set from ready to the end, its peak sampled every 100 ms (issue 17: growth over
// a 200 MiB transfer).
const rssStartBytes = process.memoryUsage().rss;
let rssPeakBytes = rssStartBytes;
const sampler = setInterval(() => (rssPeakBytes = Math.max(rssPeakBytes, process.memoryUsage().rss)), 100);

process.stdin.on("data", () => {});
process.stdin.on("end", async () => {
  clearInterval(sampler);
  const stats = { ...server.stats(), rssStartBytes, rssPeakBytes };
  await server.close();
  process.stdout.write(`${JSON.stringify({ stats })}\n`, () => process.exit(0));
});
