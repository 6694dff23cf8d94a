// Which runtime can put several UDP sockets on one port and have the kernel spread the peers
// over them (SO_REUSEPORT), as sharded engines would need to share one listening port (issue
// 17, docs/threads.md)? For each way of binding this runtime offers, binds two sockets on the
// same 127.0.0.1 port, then sends one datagram from each of 32 other sockets (32 source ports)
// and counts what each of the two received:
//
//   refused   the second bind failed (EADDRINUSE): no sharing of the port
//   one       both bound, but one socket received everything (SO_REUSEADDR's semantics for
//             unicast on Linux: the latest socket takes the port; nothing is spread)
//   spread    both received: the kernel hashes each sender to one socket (SO_REUSEPORT)
//
//   node bench/reuseport.mjs;  bun bench/reuseport.mjs;  deno run -A --unstable-net bench/reuseport.mjs

import { createSocket } from "node:dgram";

const HOST = "127.0.0.1";
const SENDERS = 32;
const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : globalThis.Bun ? `bun ${Bun.version}` : `node ${process.version}`;

/** node:dgram with these socket options; `received` counts datagrams. */
async function dgramSocket(options, port) {
  const socket = createSocket({ type: "udp4", ...options });
  const s = { received: 0, close: () => socket.close() };
  socket.on("message", () => s.received++);
  await new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, HOST, () => resolve());
  });
  s.port = socket.address().port;
  return s;
}

/** Deno's own socket (the one the server uses under Deno). */
function denoSocket(options, port) {
  const conn = Deno.listenDatagram({ hostname: HOST, port, transport: "udp", ...options });
  const s = { received: 0, port: conn.addr.port, close: () => conn.close() };
  (async () => {
    try {
      for (;;) {
        await conn.receive();
        s.received++;
      }
    } catch {
      // closed
    }
  })();
  return s;
}

/** Bun's own socket. */
async function bunSocket(options, port) {
  const s = { received: 0 };
  const socket = await Bun.udpSocket({ hostname: HOST, port, ...options, socket: { data: () => s.received++ } });
  s.port = socket.port;
  s.close = () => socket.close();
  return s;
}

async function probe(name, open, options) {
  let a;
  let b;
  try {
    a = await open(options, 0);
    try {
      b = await open(options, a.port);
    } catch (error) {
      return `${name}: refused (${error.code ?? error.name ?? error.message})`;
    }
    const senders = [];
    for (let i = 0; i < SENDERS; i++) {
      const sender = createSocket("udp4");
      senders.push(sender);
      await new Promise((resolve) => sender.bind(0, HOST, resolve));
      sender.send(new Uint8Array(8), a.port, HOST);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const sender of senders) sender.close();
    const verdict = a.received > 0 && b.received > 0 ? "spread" : "one";
    return `${name}: ${verdict} (${a.received} + ${b.received} of ${SENDERS})`;
  } catch (error) {
    return `${name}: failed (${error.message})`;
  } finally {
    a?.close();
    b?.close();
  }
}

const ways = [
  ["node:dgram {}", dgramSocket, {}],
  ["node:dgram { reusePort: true }", dgramSocket, { reusePort: true }],
  ["node:dgram { reuseAddr: true }", dgramSocket, { reuseAddr: true }],
  ["node:dgram { reuseAddr: true, reusePort: true }", dgramSocket, { reuseAddr: true, reusePort: true }],
];
if (globalThis.Deno) ways.push(["Deno.listenDatagram {}", denoSocket, {}], ["Deno.listenDatagram { reuseAddress: true }", denoSocket, { reuseAddress: true }]);
if (globalThis.Bun) ways.push(["Bun.udpSocket {}", bunSocket, {}], ["Bun.udpSocket { reusePort: true }", bunSocket, { reusePort: true }]);
console.log(runtime);
for (const [name, open, options] of ways) console.log(`  ${await probe(name, open, options)}`);
