// The integrity suite's close orders, written once for every relay path: what the client
// and the upstream each do (send, end, reset, read slowly), over a small "side" interface
// that a node:net socket (here) or a TcpConnection (relay-harness.ts) provides. Each side
// reports the SHA-256 of what it sent and of what it received, and how its stream ended;
// the test compares them across the relay and checks the relay's verdict agrees.
//
// Plain JavaScript with no dependencies: it also runs as a program (peer.mjs) inside the
// network namespaces of the real-client tests.

import { createCipheriv, createHash, randomBytes } from "node:crypto";

const MB = 1_000_000;
/** Pieces written at a time: each waits for the stream to take the previous one. */
const PIECE = 64 * 1024;
/** A slow reader takes nothing for this long at first, then pauses this long after each MiB. */
export const SLOW_START_MS = 300;
export const SLOW_PAUSE_MS = 100;

/**
 * Close orders. `client` and `upstream` play the two ends; `end` is how the flow must be
 * reported: "closed", or a reset by the named side.
 */
export const SCENARIOS = {
  "client ends first, then the upstream answers": {
    client: async (side) => (await side.send(2 * MB), side.end()),
    upstream: async (side) => (await side.eof, await side.send(2 * MB), side.end()),
    end: "closed",
  },
  "upstream ends first while the client is still sending 4 MB": {
    client: async (side) => (await side.send(4 * MB), side.end()),
    upstream: async (side) => (await side.send(64 * 1024), side.end()),
    end: "closed",
  },
  "both end at once, each after sending 3 MB": {
    client: async (side) => (await side.send(3 * MB), side.end()),
    upstream: async (side) => (await side.send(3 * MB), side.end()),
    end: "closed",
  },
  // Each resets once data flows both ways (so the relay is up), after sending 1 MB.
  "the client resets mid-stream": {
    client: async (side) => (await side.firstData, await side.send(MB), side.reset()),
    upstream: async (side) => void (await side.send(4 * MB)),
    end: "client-reset",
  },
  "the upstream resets mid-stream": {
    client: async (side) => void (await side.send(4 * MB)),
    upstream: async (side) => (await side.firstData, await side.send(MB), side.reset()),
    end: "upstream-reset",
  },
  "a slow reader at the client": {
    client: async (side) => (await side.eof, await side.send(64 * 1024), side.end()),
    upstream: async (side) => (await side.send(4 * MB), side.end()),
    slow: "client",
    end: "closed",
  },
  "a slow reader at the upstream": {
    client: async (side) => (await side.send(4 * MB), side.end()),
    upstream: async (side) => (await side.eof, await side.send(64 * 1024), side.end()),
    slow: "upstream",
    end: "closed",
  },
};

/**
 * What a side needs from its stream. `write` resolves once the stream took the bytes and
 * rejects if it failed; `received` settles with each chunk and, last, `null` (clean end)
 * or the error code.
 * @typedef {{ write(bytes: Uint8Array): Promise<void>, end(): void, reset(): void, pause(ms: number): void }} Stream
 */

/** Keys for a flow's two byte streams: each side sends the keystream of its own key. */
export function flowKeys() {
  return { client: randomBytes(16).toString("hex"), upstream: randomBytes(16).toString("hex") };
}

/** The bytes a side sends: AES-128-CTR keystream of its key, so the far end can check each byte's place. */
function byteStream(keyHex) {
  const cipher = createCipheriv("aes-128-ctr", Buffer.from(keyHex, "hex"), Buffer.alloc(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

/** One end of a flow: runs a role over `stream` and keeps the books. */
export class Side {
  #sent = createHash("sha256");
  #received = createHash("sha256");
  #next;
  #expected;
  #slow;
  #sinceStall = 0;
  sentBytes = 0;
  receivedBytes = 0;
  /** Offset of the first received byte that is not the one sent there (lost, reordered or changed). */
  firstWrongByte = undefined;
  /** A kernel's socket (not our stack): see integrityProblems on resets. */
  kernelSocket = false;
  /** `"eof"` after a clean end of stream, else the error code that ended it. */
  ending = undefined;
  /** Resolves when the far end's stream has ended, cleanly or not. */
  eof;
  #markEof;
  /** Resolves at the first byte received (or the end). */
  firstData;
  #markFirstData;

  /** @param {Stream} stream @param {{ slow: boolean, sendKey: string, receiveKey: string }} options */
  constructor(stream, { slow, sendKey, receiveKey }) {
    this.stream = stream;
    this.#slow = slow;
    this.#next = byteStream(sendKey);
    this.#expected = byteStream(receiveKey);
    this.eof = new Promise((resolve) => (this.#markEof = resolve));
    this.firstData = new Promise((resolve) => (this.#markFirstData = resolve));
    if (slow) stream.pause(SLOW_START_MS);
  }

  /** Called by the stream for each chunk it reads. */
  onData(chunk) {
    this.#markFirstData();
    if (this.firstWrongByte === undefined) {
      const expected = this.#expected(chunk.length);
      if (!expected.equals(chunk)) this.firstWrongByte = this.receivedBytes + expected.findIndex((byte, i) => byte !== chunk[i]);
    }
    this.#received.update(chunk);
    this.receivedBytes += chunk.length;
    this.#sinceStall += chunk.length;
    if (this.#slow && this.#sinceStall >= 1024 * 1024) {
      this.#sinceStall = 0;
      this.stream.pause(SLOW_PAUSE_MS);
    }
  }

  /**
   * Called by the stream when it ends: `"eof"`, or the error code. An error after `"eof"`
   * wins: a kernel that gets a RST while we write can report it to the write and then
   * answer the next read with end of stream.
   */
  onEnd(ending, isError = ending !== "eof") {
    if (this.ending === undefined || (this.ending === "eof" && isError)) this.ending = ending;
    this.#markFirstData();
    this.#markEof();
  }

  /** Sends the next `bytes` bytes of its stream in pieces; stops quietly when the stream fails (a reset is what some roles wait for). */
  async send(bytes) {
    for (let offset = 0; offset < bytes; offset += PIECE) {
      const piece = this.#next(Math.min(PIECE, bytes - offset));
      try {
        await this.stream.write(piece);
      } catch {
        return;
      }
      this.#sent.update(piece);
      this.sentBytes += piece.length;
    }
  }

  end() {
    this.stream.end();
  }

  reset() {
    this.stream.reset();
  }

  /** What this side saw, once its role and its reading are done. */
  report() {
    return {
      sent: { bytes: this.sentBytes, sha256: this.#sent.copy().digest("hex") },
      received: { bytes: this.receivedBytes, sha256: this.#received.copy().digest("hex"), firstWrongByte: this.firstWrongByte, ending: this.ending },
      kernelSocket: this.kernelSocket,
    };
  }
}

/** A Side over a node:net socket (made with allowHalfOpen: true); `options` as for Side. */
export function socketSide(socket, options) {
  /** @type {Side} */
  let side;
  const stream = {
    write: (bytes) =>
      new Promise((resolve, reject) => {
        if (socket.destroyed || socket.writableEnded) return reject(new Error("socket closed"));
        socket.write(bytes, (error) => (error ? reject(error) : resolve()));
      }),
    end: () => socket.end(),
    reset: () => (socket.resetAndDestroy ? socket.resetAndDestroy() : socket.destroy()),
    pause: (ms) => {
      socket.pause();
      setTimeout(() => socket.resume(), ms);
    },
  };
  side = new Side(stream, options);
  side.kernelSocket = true;
  socket.on("data", (chunk) => side.onData(chunk));
  socket.on("end", () => side.onEnd("eof"));
  socket.on("error", (error) => side.onEnd(error.code ?? error.message));
  socket.on("close", () => side.onEnd("ECLOSED", false)); // closed without 'end' or 'error': not a clean end
  if (socket.readableEnded) side.onEnd("eof"); // its 'end' came while a handshake read it
  return side;
}

/**
 * Runs `role` on `side` and resolves with its report once the role is done and the far
 * end's stream has ended (or `limitMs` passed: then `ending` stays undefined).
 */
export async function play(role, side, limitMs = 60_000) {
  let timer;
  const limit = new Promise((resolve) => (timer = setTimeout(resolve, limitMs)));
  await Promise.race([Promise.all([role(side), side.eof]), limit]);
  clearTimeout(timer);
  return side.report();
}

/**
 * What must hold between the two reports and the relay's verdict; returns the broken
 * rules (empty when the flow is intact and honestly reported).
 * `verdict` is "closed", "client-reset", "upstream-reset", or anything else the relay said.
 */
export function integrityProblems(scenario, client, upstream, verdict) {
  const problems = [];
  const intact = (from, to) => from.sent.sha256 === to.received.sha256 && from.sent.bytes === to.received.bytes;
  const bothIntact = intact(client, upstream) && intact(upstream, client);
  if (verdict === "closed" && !bothIntact) problems.push("reported closed, but bytes were lost or changed");
  if (scenario.end === "closed") {
    if (!intact(client, upstream)) problems.push(`client → upstream: sent ${client.sent.bytes} B, arrived ${upstream.received.bytes} B, hashes ${intact(client, upstream) ? "equal" : "differ"}`);
    if (!intact(upstream, client)) problems.push(`upstream → client: sent ${upstream.sent.bytes} B, arrived ${client.received.bytes} B, hashes differ`);
    if (client.received.ending !== "eof") problems.push(`the client's stream ended with ${client.received.ending}, not a clean end`);
    if (upstream.received.ending !== "eof") problems.push(`the upstream's stream ended with ${upstream.received.ending}, not a clean end`);
  } else {
    // Lost after a reset, fine; but what did arrive came in order, unchanged.
    for (const [name, report] of [["client", client], ["upstream", upstream]]) {
      const wrong = report.received.firstWrongByte;
      if (wrong !== undefined) problems.push(`the ${name} received a wrong byte at offset ${wrong}`);
    }
    // The side that did not reset must see its stream fail, not end cleanly. Only our own
    // stack can be held to it: Linux can report a RST to a reader as end of stream (plain
    // Node sockets on loopback, resetAndDestroy() while both send: 4 runs in 20 saw only 'end').
    const other = scenario.end === "client-reset" ? upstream : client;
    if (!other.kernelSocket && (other.received.ending === "eof" || other.received.ending === undefined)) {
      problems.push(`after the ${scenario.end}, the other side's stream ended with ${other.received.ending}, not an error`);
    }
  }
  if (verdict !== scenario.end) problems.push(`the relay reported ${verdict}, expected ${scenario.end}`);
  return problems;
}
