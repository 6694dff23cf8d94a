// The server side of the real-client benchmark, written once for both servers: our
// TcpConnection and (through streamConnection) a kernel TCP socket of node:net. The
// client side is test/interop/client-tasks.mjs (tcp-echo-rate, tcp-download, tcp-upload).
//
//   echo      port 7   writes back what it reads; ends after the client does
//   upload    port 9   reads to EOF, then answers {"bytes","sha256"} and ends
//   download  port 19  reads one line "BYTES\n", sends BYTES of a fixed pattern, ends

import { createHash } from "node:crypto";

export const PORTS = { echo: 7, upload: 9, download: 19 };

/** What both servers hand a program: TcpConnection's read/write/end. */
/** @typedef {{ read(): Promise<Uint8Array>, write(data: Uint8Array): Promise<void>, end(): Promise<void> }} Connection */

/** @param {Connection} conn */
async function echo(conn) {
  for (let chunk = await conn.read(); chunk.length > 0; chunk = await conn.read()) await conn.write(chunk);
  await conn.end();
}

/** @param {Connection} conn */
async function upload(conn) {
  const hash = createHash("sha256");
  let bytes = 0;
  for (let chunk = await conn.read(); chunk.length > 0; chunk = await conn.read()) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  await conn.write(new TextEncoder().encode(`${JSON.stringify({ bytes, sha256: hash.digest("hex") })}\n`));
  await conn.end();
}

const BLOCK = downloadBlock();

/** 64 KiB of a fixed pattern, so the client's SHA-256 can be checked against downloadSha256. */
function downloadBlock() {
  const block = new Uint8Array(64 * 1024);
  let x = 0x9e3779b9;
  for (let i = 0; i < block.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block[i] = x & 0xff;
  }
  return block;
}

/** SHA-256 of what `download` sends for `bytes`. @param {number} bytes */
export function downloadSha256(bytes) {
  const hash = createHash("sha256");
  for (let sent = 0; sent < bytes; sent += BLOCK.length) hash.update(BLOCK.subarray(0, Math.min(BLOCK.length, bytes - sent)));
  return hash.digest("hex");
}

/** @param {Connection} conn */
async function download(conn) {
  let request = "";
  while (!request.includes("\n")) {
    const chunk = await conn.read();
    if (chunk.length === 0) return conn.end();
    request += new TextDecoder().decode(chunk);
  }
  const bytes = Number(request.slice(0, request.indexOf("\n")));
  for (let sent = 0; sent < bytes; sent += BLOCK.length) await conn.write(BLOCK.subarray(0, Math.min(BLOCK.length, bytes - sent)));
  await conn.end();
}

const PROGRAMS = { [PORTS.echo]: echo, [PORTS.upload]: upload, [PORTS.download]: download };

/**
 * Runs the program for the port the client connected to; undefined for other ports.
 * @param {number} port @returns {((conn: Connection) => Promise<void>) | undefined}
 */
export function programFor(port) {
  return PROGRAMS[port];
}

/**
 * A node:net socket as a Connection (the server must allow half-open sockets).
 * @param {import("node:net").Socket} socket @returns {Connection}
 */
export function streamConnection(socket) {
  // Not the default iterator: it destroys the socket at EOF, before upload can answer.
  const chunks = socket.iterator({ destroyOnReturn: false });
  return {
    read: async () => {
      const next = await chunks.next();
      return next.done ? new Uint8Array(0) : next.value;
    },
    write: (data) =>
      socket.write(data)
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const onDrain = () => {
              socket.off("close", onClose);
              resolve();
            };
            const onClose = () => {
              socket.off("drain", onDrain);
              reject(new Error("socket closed while writing"));
            };
            socket.once("drain", onDrain);
            socket.once("close", onClose);
          }),
    end: () => new Promise((resolve) => socket.end(resolve)),
  };
}
