// One start-up measurement, run in a fresh process by startup.mjs (node, deno or bun).
// `wg`: import wg-netstack by its package name and start a listening server.
// `baseline`: import node:dgram and bind a UDP socket — the least any UDP server pays,
// so the ratio is what wg-netstack adds (wasm compile + instantiate + config).
// Prints one JSON line: ms from the start of the import to listening (the whole
// process's wall time is measured outside, by startup.mjs).

const mode = globalThis.Deno ? Deno.args[0] : process.argv[2];

const t0 = performance.now();
let imported; // wg only: where the time goes, import (JS modules) vs startServer (wasm compile, instantiate, bind)
if (mode === "wg") {
  const { startServer, genkey, pubkey } = await import("wg-netstack");
  imported = performance.now();
  const server = await startServer({
    privateKey: genkey(),
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: pubkey(genkey()), allowedIps: ["10.0.0.2/32"] }],
  });
  const t1 = performance.now();
  await server.close();
  report(t1);
} else {
  const { createSocket } = await import("node:dgram");
  const socket = createSocket("udp4");
  await new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", resolve);
  });
  const t1 = performance.now();
  await new Promise((resolve) => socket.close(resolve));
  report(t1);
}

function report(t1) {
  const split = imported === undefined ? {} : { importMs: imported - t0, startServerMs: t1 - imported };
  console.log(JSON.stringify({ importToListeningMs: t1 - t0, ...split }));
}
