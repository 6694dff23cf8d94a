// The client side of bench/client-role.mjs for every client that uses the host's sockets:
// ours through `wg-netstack connect` (its SOCKS5 proxy or a TCP forward), the Go netstack
// program's forward, and the kernel client (run inside its namespace); and for ours as a
// library (--tunnel: this process joins the network with connectTunnel and dials through it,
// as the Go program's direct mode does). bench/programs.mjs is the server side.
//
//   node transfer-client.mjs download HOST PORT BYTES [--socks5 HOST:PORT | --tunnel CONFIG [--lib INDEX.js] [--threads 0|1]] [--timeout MS]
//   node transfer-client.mjs upload   HOST PORT BYTES [--socks5 HOST:PORT | --tunnel CONFIG [--lib INDEX.js] [--threads 0|1]] [--timeout MS]
//   node transfer-client.mjs many     HOST PORT COUNT  --socks5 HOST:PORT  [--parallel N] [--timeout MS]
//
// download: asks for BYTES ("BYTES\n") and reads to EOF: {"bytes","ms","sha256"}.
// upload:   sends BYTES, half-closes, reads the server's {"bytes","sha256"}:
//           {"bytes","ms","sha256","serverBytes","serverSha256"}.
// many:     opens COUNT connections to an echo port (at most N at once in the SOCKS and TCP
//           handshakes, default 200), sends each 100 bytes and waits for them back, holding
//           every connection open until all have answered: {"succeeded","failed","errors","ms"}.
// With --socks5 the connection goes through that proxy (RFC 1928 CONNECT, no authentication);
// HOST may then be a name. With --tunnel, wg-netstack's connectTunnel (from INDEX.js, a build's
// dist/index.js, default the package) joins with the wg-quick CONFIG first. Timing starts once
// the connection to HOST is up (after the proxy's reply). One JSON line on stdout; {"error"}
// and exit 1 on failure or timeout (default 120 s).

import crypto from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [mode, host, portText, countText, ...rest] = process.argv.slice(2);
const flags = {};
for (let i = 0; i < rest.length; i += 2) flags[rest[i].replace(/^--/, "")] = rest[i + 1];
const port = Number(portText);
const count = Number(countText);
const socks5 = flags.socks5 ? splitHostPort(flags.socks5) : undefined;
const timer = setTimeout(() => finish({ error: `timeout after ${flags.timeout ?? 120_000} ms` }), Number(flags.timeout ?? 120_000));
timer.unref();
const tunnel = flags.tunnel ? await joinTunnel(flags.tunnel, flags.lib, Number(flags.threads ?? 0)).catch((error) => finish({ error: `connectTunnel: ${error.message}` }) ?? new Promise(() => {})) : undefined;

async function joinTunnel(config, lib, threads) {
  const { connectTunnel } = await import(lib ? pathToFileURL(path.resolve(lib)).href : "wg-netstack");
  return connectTunnel(fs.readFileSync(config, "utf8"), { threads });
}

function splitHostPort(text) {
  const colon = text.lastIndexOf(":");
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

function finish(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(result.error === undefined ? 0 : 1));
}

/** Reads exactly `length` bytes from a paused socket that has not been given to a consumer yet. */
async function readExactly(socket, length) {
  for (;;) {
    const chunk = socket.read(length);
    if (chunk !== null) return chunk;
    if (socket.readableEnded || socket.destroyed) throw new Error("the proxy closed the connection");
    await Promise.race([once(socket, "readable"), once(socket, "close").then(() => { throw new Error("the proxy closed the connection"); })]);
  }
}

/** A TCP connection to host:port, directly, through the SOCKS5 proxy or through our tunnel; resolves once it is up. */
async function open(targetHost, targetPort) {
  if (tunnel) {
    const socket = tunnel.connect({ host: targetHost, port: targetPort });
    await once(socket, "connect");
    return socket;
  }
  if (!socks5) {
    const socket = net.connect({ host: targetHost, port: targetPort });
    await once(socket, "connect");
    return socket;
  }
  const socket = net.connect(socks5);
  try {
    await socksConnect(socket, targetHost, targetPort);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return socket;
}

async function socksConnect(socket, targetHost, targetPort) {
  await once(socket, "connect");
  socket.write(Buffer.from([5, 1, 0])); // version 5, one method: no authentication
  const method = await readExactly(socket, 2);
  if (method[1] !== 0) throw new Error(`the proxy wants method ${method[1]}`);
  const ip = net.isIPv4(targetHost) ? Buffer.from(targetHost.split(".").map(Number)) : undefined;
  const address = ip ? Buffer.concat([Buffer.from([1]), ip]) : Buffer.concat([Buffer.from([3, Buffer.byteLength(targetHost)]), Buffer.from(targetHost)]);
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(targetPort);
  socket.write(Buffer.concat([Buffer.from([5, 1, 0]), address, portBytes]));
  const head = await readExactly(socket, 5); // VER REP RSV ATYP and the first byte of BND.ADDR
  if (head[1] !== 0) throw Object.assign(new Error(`the proxy replied ${head[1]}`), { code: `SOCKS_REPLY_${head[1]}` });
  const addressLength = head[3] === 1 ? 4 : head[3] === 4 ? 16 : 1 + head[4];
  await readExactly(socket, addressLength - 1 + 2); // the rest of BND.ADDR, BND.PORT
}

async function download() {
  const socket = await open(host, port);
  const start = performance.now();
  socket.write(`${count}\n`);
  const hash = crypto.createHash("sha256");
  let bytes = 0;
  for await (const chunk of socket) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  return { bytes, ms: performance.now() - start, sha256: hash.digest("hex") };
}

async function upload() {
  const socket = await open(host, port);
  const start = performance.now();
  const block = crypto.randomBytes(64 * 1024);
  const hash = crypto.createHash("sha256");
  let reply = "";
  socket.on("data", (data) => (reply += data));
  socket.on("error", (error) => finish({ error: `${error.code ?? ""} ${error.message}`.trim() }));
  const ended = once(socket, "end");
  for (let sent = 0; sent < count; ) {
    const chunk = block.subarray(0, Math.min(block.length, count - sent));
    sent += chunk.length;
    hash.update(chunk);
    if (!socket.write(chunk)) await Promise.race([once(socket, "drain"), ended]);
  }
  socket.end();
  await ended;
  const server = JSON.parse(reply);
  return { bytes: count, ms: performance.now() - start, sha256: hash.digest("hex"), serverBytes: server.bytes, serverSha256: server.sha256 };
}

async function many() {
  const parallel = Number(flags.parallel ?? 200);
  const message = crypto.randomBytes(100);
  const sockets = [];
  const errors = {};
  let succeeded = 0;
  let next = 0;
  const start = performance.now();
  const one = async () => {
    const socket = await open(host, port);
    sockets.push(socket);
    const echoed = await new Promise((resolve, reject) => {
      let received = Buffer.alloc(0);
      socket.on("data", (data) => {
        received = Buffer.concat([received, data]);
        if (received.length >= message.length) resolve(received);
      });
      socket.on("end", () => reject(new Error("EOF before the echo")));
      socket.on("error", reject);
      socket.write(message);
    });
    if (!echoed.equals(message)) throw new Error("the echo differs");
  };
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        await one();
        succeeded++;
      } catch (error) {
        const key = error.code ?? error.message;
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  const ms = performance.now() - start;
  for (const socket of sockets) socket.destroy();
  return { succeeded, failed: count - succeeded, errors, ms, open: sockets.length };
}

const modes = { download, upload, many };
if (!modes[mode] || !host || !(port > 0) || !(count > 0)) finish({ error: "usage: transfer-client.mjs download|upload|many HOST PORT N [--socks5 HOST:PORT]" });
else modes[mode]().then(finish, (error) => finish({ error: error.code ? `${error.code}: ${error.message}` : String(error.message ?? error) }));
