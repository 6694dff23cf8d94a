// What one received UDP datagram costs the runtime itself, before our code sees it: the CPU
// time (user + system, process.cpuUsage) a socket with an empty handler spends per 1,452-byte
// datagram (a full WireGuard data message at MTU 1420), while a second process of the same
// runtime sends 200,000 of them over loopback in bursts of 64. The socket is the one
// ts/runtime/ gives the engine: `node:dgram` under Node and Bun, `Deno.listenDatagram` under
// Deno (a receive loop into one buffer, as ts/runtime/deno.ts does).
// Run it under each runtime:
//
//   node bench/dgram-receive.mjs
//   node_modules/.bin/bun bench/dgram-receive.mjs
//   node_modules/.bin/deno run -A bench/dgram-receive.mjs
//
// Prints one JSON line. bench/README.md ("client-role.mjs") reads it beside the connect
// process's CPU per segment of a download.

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const DATAGRAMS = 200_000;
const SIZE = 1452;
const BURST = 64;
const runtime = typeof Bun !== "undefined" ? "bun" : typeof Deno !== "undefined" ? "deno" : "node";

if (process.argv[2] === "send") {
  const [port, count] = [Number(process.argv[3]), Number(process.argv[4])];
  const socket = dgram.createSocket("udp4");
  const data = Buffer.alloc(SIZE);
  let sent = 0;
  const burst = () => {
    for (let i = 0; i < BURST && sent < count; i++, sent++) socket.send(data, port, "127.0.0.1");
    if (sent < count) setImmediate(burst);
    else setTimeout(() => socket.close(), 100);
  };
  burst();
} else {
  let received = 0;
  const { port, close } = runtime === "deno" ? listenDeno(() => void received++) : await listenNode(() => void received++);
  const before = process.cpuUsage();
  const script = fileURLToPath(import.meta.url);
  const args = runtime === "deno" ? ["run", "-A", script] : [script];
  const sender = spawn(process.execPath, [...args, "send", String(port), String(DATAGRAMS)], { stdio: "inherit" });
  await once(sender, "exit");
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last ones in flight
  const used = process.cpuUsage(before);
  close();
  const perDatagram = (micros) => Math.round((micros / received) * 100) / 100;
  console.log(JSON.stringify({ runtime, version: process.versions[runtime] ?? process.version, received, sent: DATAGRAMS, cpuMicrosPerDatagram: perDatagram(used.user + used.system), userMicros: perDatagram(used.user), systemMicros: perDatagram(used.system) }));
}

async function listenNode(onDatagram) {
  const socket = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
  const listening = once(socket, "listening");
  socket.bind(0, "127.0.0.1");
  await listening;
  socket.on("message", onDatagram);
  return { port: socket.address().port, close: () => socket.close() };
}

function listenDeno(onDatagram) {
  const socket = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const buffer = new Uint8Array(65536);
  (async () => {
    for (;;) {
      try {
        await socket.receive(buffer);
      } catch {
        return; // closed
      }
      onDatagram();
    }
  })();
  return { port: socket.addr.port, close: () => socket.close() };
}
