#!/usr/bin/env node
// Hostile datagrams for a WireGuard server's UDP port, as the first wave's flood
// (crates/engine/src/engine_tests.rs makes the same kinds with boringtun):
//
//   garbage      random bytes of random length, any first byte
//   truncated    a header of each message type (1 initiation, 2 response, 3 cookie reply,
//                4 data) cut shorter than that type's size
//   replay       datagrams a real client sent earlier, sent again from elsewhere
//   initiation   a handshake initiation with a valid mac1 (anyone who knows the server's
//                public key can make one) and garbage inside: it costs the server a
//                Diffie-Hellman unless the server is under load, when it answers with a
//                cookie reply instead
//
// As a program (a child process, so the flood does not share the server's event loop):
//
//   node wg-flood.mjs HOST PORT SERVER_PUBLIC_KEY PER_SECOND [REPLAY_BASE64…]
//
// sends from 64 sockets on 127.0.0.10-73: prints {"flooding": true} once it has begun, and
// when a line "stop" arrives on stdin, {"sent": {kind: count}, "cookieReplies",
// "otherReplies"}, and exits.

import { createHash, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { fileURLToPath } from "node:url";

const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

/**
 * BLAKE2s (RFC 7693) with an optional key and output length, which node:crypto does not
 * offer: WireGuard's mac1 is a keyed BLAKE2s-128.
 * @param {Uint8Array} data @param {number} outLen @param {Uint8Array} [key]
 */
export function blake2s(data, outLen = 32, key = new Uint8Array(0)) {
  const h = IV.slice();
  h[0] ^= 0x01010000 ^ (key.length << 8) ^ outLen;
  // A key is a first block of its own.
  const input = new Uint8Array((key.length ? 64 : 0) + data.length);
  input.set(key);
  input.set(data, key.length ? 64 : 0);
  const blocks = Math.max(1, Math.ceil(input.length / 64));
  const m = new Uint32Array(16);
  const v = new Uint32Array(16);
  for (let b = 0; b < blocks; b++) {
    const last = b === blocks - 1;
    const block = new Uint8Array(64);
    block.set(input.subarray(b * 64, b * 64 + 64));
    const view = new DataView(block.buffer);
    for (let i = 0; i < 16; i++) m[i] = view.getUint32(i * 4, true);
    const counter = last ? input.length : (b + 1) * 64;
    for (let i = 0; i < 8; i++) [v[i], v[i + 8]] = [h[i], IV[i]];
    v[12] ^= counter;
    v[13] ^= Math.floor(counter / 2 ** 32);
    if (last) v[14] = ~v[14];
    const g = (a, bb, c, d, x, y) => {
      v[a] = v[a] + v[bb] + x;
      v[d] = rotr(v[d] ^ v[a], 16);
      v[c] = v[c] + v[d];
      v[bb] = rotr(v[bb] ^ v[c], 12);
      v[a] = v[a] + v[bb] + y;
      v[d] = rotr(v[d] ^ v[a], 8);
      v[c] = v[c] + v[d];
      v[bb] = rotr(v[bb] ^ v[c], 7);
    };
    for (const s of SIGMA) {
      g(0, 4, 8, 12, m[s[0]], m[s[1]]);
      g(1, 5, 9, 13, m[s[2]], m[s[3]]);
      g(2, 6, 10, 14, m[s[4]], m[s[5]]);
      g(3, 7, 11, 15, m[s[6]], m[s[7]]);
      g(0, 5, 10, 15, m[s[8]], m[s[9]]);
      g(1, 6, 11, 12, m[s[10]], m[s[11]]);
      g(2, 7, 8, 13, m[s[12]], m[s[13]]);
      g(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
  }
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (const [i, word] of h.entries()) view.setUint32(i * 4, word, true);
  return out.slice(0, outLen);
}

/**
 * A handshake initiation with garbage inside and a valid mac1 for the server whose
 * public key (32 bytes) is given: mac1 = BLAKE2s-128(key = BLAKE2s-256("mac1----" ‖ key), msg[0..116]).
 * @param {Uint8Array} serverPublicKey
 */
export function mac1Initiation(serverPublicKey) {
  const message = randomBytes(148);
  message.set([1, 0, 0, 0]);
  const mac1Key = createHash("blake2s256").update("mac1----").update(serverPublicKey).digest();
  message.set(blake2s(message.subarray(0, 116), 16, mac1Key), 116);
  message.fill(0, 132); // no mac2: no cookie
  return message;
}

/** Each message type's size (data: its smallest, an empty keepalive). */
const SIZES = { 1: 148, 2: 92, 3: 64, 4: 32 };

/**
 * The flood's datagrams in turn: garbage, a truncated message of each type, a replay (if
 * there are any), a mac1-valid initiation.
 * @param {Uint8Array} serverPublicKey @param {Uint8Array[]} replays
 * @returns {Generator<{ kind: string, data: Uint8Array }>}
 */
export function* floodDatagrams(serverPublicKey, replays) {
  const below = (n) => Math.floor(Math.random() * n);
  for (let round = 0; ; round++) {
    yield { kind: "garbage", data: randomBytes(below(1500)) };
    for (const [type, size] of Object.entries(SIZES)) {
      const data = randomBytes(below(size));
      data.set([Number(type), 0, 0, 0].slice(0, data.length));
      yield { kind: "truncated", data };
    }
    if (replays.length > 0) yield { kind: "replay", data: replays[round % replays.length] };
    yield { kind: "initiation", data: mac1Initiation(serverPublicKey) };
  }
}

async function main([host, portText, publicKey, perSecondText, ...replayText]) {
  const port = Number(portText);
  const perSecond = Number(perSecondText);
  const datagrams = floodDatagrams(Buffer.from(publicKey, "base64"), replayText.map((r) => Buffer.from(r, "base64")));
  const sent = {};
  let cookieReplies = 0;
  let otherReplies = 0;
  const sockets = await Promise.all(
    Array.from({ length: 64 }, (_, i) => {
      const socket = dgram.createSocket("udp4");
      socket.on("message", (data) => (data.length === 64 && data[0] === 3 ? cookieReplies++ : otherReplies++));
      return new Promise((resolve) => socket.bind(0, `127.0.0.${10 + i}`, () => resolve(socket)));
    }),
  );
  // Every 10 ms, as many as the rate allows.
  let next = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < perSecond / 100; i++) {
      const { kind, data } = datagrams.next().value;
      sent[kind] = (sent[kind] ?? 0) + 1;
      sockets[next++ % sockets.length].send(data, port, host);
    }
  }, 10);
  process.stdout.write(`${JSON.stringify({ flooding: true })}\n`);
  process.stdin.setEncoding("utf8");
  let input = "";
  for await (const chunk of process.stdin) {
    input += chunk;
    if (input.includes("stop\n")) break;
  }
  clearInterval(timer);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last replies
  process.stdout.write(`${JSON.stringify({ sent, cookieReplies, otherReplies })}\n`, () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
