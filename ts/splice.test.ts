// splice between real TcpConnections (two stacks over loopback UDP) and node:net sockets
// to an upstream server on 127.0.0.1: what the gateway's forward mode does per connection.

import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { Duplex } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { startLoopbackPair } from "../test/support/loopback-stacks.js";
import type { Server, TcpConnection } from "./index.js";
import { splice, type SpliceResult } from "./splice.js";

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  client: Server;
  /** The public key of the server that splices. */
  serverKey: string;
  /** Resolves with the splice's result for the next connection. */
  result: Promise<SpliceResult>;
  /** Bytes that passed the splice so far, per direction. */
  passed: { up: number; down: number };
  /** The gateway's socket towards the upstream, once connected. */
  upstreamSocket: Promise<net.Socket>;
  /** Opens a connection through the tunnel to the upstream server. */
  connect(): Promise<TcpConnection>;
}

/** Upstream server on 127.0.0.1 running `onSocket`; a tunnel whose server splices each connection to it. */
async function setup(
  onSocket: (socket: net.Socket) => void,
  { signal, beforeSplice }: { signal?: AbortSignal; beforeSplice?: (socket: net.Socket) => Promise<unknown> } = {},
): Promise<Setup> {
  const accepted = new Set<net.Socket>();
  const upstream = net.createServer({ allowHalfOpen: true }, (socket) => {
    accepted.add(socket);
    socket.on("error", () => {}); // resets are what some tests do
    onSocket(socket);
  });
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  // close() waits for every connection: one a failed test left open would hang the cleanup
  // and hide the failure (under Deno, as "the event loop has already resolved").
  cleanups.push(() => {
    for (const socket of accepted) socket.destroy();
    return new Promise<void>((resolve) => upstream.close(() => resolve()));
  });
  const port = (upstream.address() as net.AddressInfo).port;

  const passed = { up: 0, down: 0 };
  let resolveResult!: (result: SpliceResult) => void;
  let resolveSocket!: (socket: net.Socket) => void;
  const result = new Promise<SpliceResult>((resolve) => (resolveResult = resolve));
  const upstreamSocket = new Promise<net.Socket>((resolve) => (resolveSocket = resolve));
  const pair = await startLoopbackPair({
    onTcp: async (conn) => {
      const socket = net.connect({ host: conn.local.host, port: conn.local.port, allowHalfOpen: true });
      await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
      await conn.accept(); // as a proxy does: the client's handshake completes once the upstream's has
      resolveSocket(socket);
      await beforeSplice?.(socket);
      resolveResult(await splice(conn, socket, { signal, onChunk: (chunk, direction) => void (passed[direction] += chunk.length) }));
    },
  });
  cleanups.push(pair.close);
  return { client: pair.client, serverKey: pair.server.publicKey, result, passed, upstreamSocket, connect: () => pair.client.connect({ host: "127.0.0.1", port }) };
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

async function readAll(conn: TcpConnection): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of conn) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Writes `data` in 1 MiB steps, waiting for the socket to drain. */
async function writeAll(socket: net.Socket, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length; offset += MiB) {
    if (!socket.write(data.subarray(offset, offset + MiB))) await new Promise((resolve) => socket.once("drain", resolve));
  }
}

describe("splice", () => {
  it("relays 50 MiB down intact and passes the upstream's close on as a FIN", async () => {
    const data = randomBytes(50 * MiB);
    const { connect, result } = await setup((socket) => void writeAll(socket, data).then(() => socket.end()));
    const conn = await connect();
    const received = await readAll(conn); // ends at a FIN: a reset would reject
    expect(received.length).toBe(data.length);
    expect(sha256(received)).toBe(sha256(data));
    await conn.end();
    expect(await result).toEqual({ up: 0, down: data.length, end: "closed" });
  }, 60_000);

  it("relays 50 MiB up intact; the upstream answers after the client's FIN", async () => {
    const data = randomBytes(50 * MiB);
    const { connect, passed, result } = await setup((socket) => {
      const hash = createHash("sha256");
      socket.on("data", (chunk) => hash.update(chunk));
      socket.on("end", () => socket.end(hash.digest("hex")));
    });
    const conn = await connect();
    const sending = conn.write(data).then(() => conn.end());
    const reply = (await readAll(conn)).toString();
    await sending;
    expect(reply).toBe(sha256(data));
    expect(await result).toEqual({ up: data.length, down: 64, end: "closed" });
    expect(passed).toEqual({ up: data.length, down: 64 }); // onChunk saw every chunk
  }, 60_000);

  it("keeps the client's direction open after the upstream half-closes", async () => {
    let lateData: Promise<string> | undefined;
    const { connect, result } = await setup((socket) => {
      socket.end("bye, but keep talking");
      lateData = new Promise((resolve) => {
        let text = "";
        socket.on("data", (chunk) => (text += chunk));
        socket.on("end", () => resolve(text));
      });
    });
    const conn = await connect();
    expect((await readAll(conn)).toString()).toBe("bye, but keep talking");
    await conn.write("sent after your FIN");
    await conn.end();
    expect(await lateData).toBe("sent after your FIN");
    expect(await result).toMatchObject({ up: 19, down: 21, end: "closed" });
  });

  it("resets the upstream when the client resets", async () => {
    let upstreamError: Promise<string> | undefined;
    const { connect, result } = await setup((socket) => {
      upstreamError = new Promise((resolve) => socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "")));
    });
    const conn = await connect();
    await conn.write("hello");
    await sleep(100);
    conn.abort();
    expect(await upstreamError).toBe("ECONNRESET");
    expect(await result).toMatchObject({ up: 5, end: "connection-reset" });
  });

  it("resets the upstream when the client resets while the splice waits on the upstream's socket, not on the connection", async () => {
    // The upstream reads nothing and sends nothing: the splice waits for the socket to drain,
    // no read or write is pending on the connection, and the reset shows only as its close.
    // (Not ended as well: Deno's node:net closes a paused socket whole on end(), and the
    // splice then rightly sees the socket fail first.)
    let upstream!: net.Socket;
    const { connect, passed, result, upstreamSocket } = await setup((socket) => void (upstream = socket.pause()));
    const conn = await connect();
    void conn.write(new Uint8Array(16 * MiB)).catch(() => {});
    const socket = await upstreamSocket;
    // Until the upstream's buffers are full: the socket refuses writes and nothing passes over 5 polls.
    for (let steady = 0, last = -1; steady < 5; await sleep(50)) {
      steady = socket.writableNeedDrain && passed.up === last ? steady + 1 : 0;
      last = passed.up;
    }
    conn.abort();
    expect(await result).toMatchObject({ end: "connection-reset" });
    expect(socket.destroyed).toBe(true); // reset (how the upstream's kernel shows it is its own affair)
    upstream.destroy(); // it reads nothing, so it would never notice
  }, 60_000);

  it("resets the client when the upstream resets", async () => {
    const { connect, result } = await setup((socket) => {
      socket.once("data", () => socket.resetAndDestroy());
    });
    const conn = await connect();
    await conn.write("hello");
    await expect(readAll(conn)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(await result).toMatchObject({ end: "socket-reset" });
  });

  it("stops the upstream, not memory, while the client does not read", async () => {
    const data = randomBytes(32 * MiB);
    const { connect, passed, result } = await setup((socket) => void writeAll(socket, data).then(() => socket.end()));
    const conn = await connect();
    await sleep(1000);
    const stalledAt = passed.down;
    await sleep(500);
    expect(passed.down).toBe(stalledAt); // nothing moves while nobody reads
    expect(stalledAt).toBeLessThan(4 * MiB); // TCP windows and buffers, not the 32 MiB
    expect(sha256(await readAll(conn))).toBe(sha256(data));
    await conn.end();
    expect(await result).toMatchObject({ down: data.length, end: "closed" });
  }, 60_000);

  it("stops the client, not memory, while the upstream does not read", async () => {
    const data = randomBytes(32 * MiB);
    let resumeUpstream!: () => void;
    const { connect, passed, result, upstreamSocket } = await setup((socket) => {
      socket.pause();
      const hash = createHash("sha256");
      resumeUpstream = () => {
        socket.on("data", (chunk) => hash.update(chunk));
        socket.on("end", () => socket.end(hash.digest("hex")));
        socket.resume();
      };
    });
    const conn = await connect();
    let written = false;
    const sending = conn.write(data).then(() => ((written = true), conn.end()));
    // Wait for the stall, however long a loaded machine takes to get there: the splice waits
    // for 'drain' (the socket refused its last write) and nothing more passes over 5 polls.
    const socket = await upstreamSocket;
    for (let steady = 0, last = -1; steady < 5; await sleep(50)) {
      steady = socket.writableNeedDrain && passed.up === last ? steady + 1 : 0;
      last = passed.up;
    }
    expect(written).toBe(false); // the client is held back by the TCP window
    expect(passed.up).toBeLessThan(8 * MiB); // the upstream's kernel buffers, not the 32 MiB
    // What the splice holds itself: no more than one chunk beyond the socket's buffer.
    expect(socket.writableLength).toBeLessThan(MiB);
    resumeUpstream();
    expect((await readAll(conn)).toString()).toBe(sha256(data));
    await sending;
    expect(await result).toMatchObject({ up: data.length, end: "closed" });
  }, 60_000);

  it("resets both sides when its signal aborts", async () => {
    const controller = new AbortController();
    let upstreamError: Promise<string> | undefined;
    const { connect, result } = await setup((socket) => {
      upstreamError = new Promise((resolve) => socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "")));
      socket.once("data", () => controller.abort());
    }, { signal: controller.signal });
    const conn = await connect();
    await conn.write("hello");
    await expect(readAll(conn)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(await upstreamError).toBe("ECONNRESET");
    expect(await result).toMatchObject({ end: "aborted" });
  });

  it("resets the client when the socket failed before the splice began", async () => {
    const { connect, result } = await setup((socket) => void setTimeout(() => socket.resetAndDestroy(), 50), {
      // Reading, so the socket sees the reset (the upstream sends nothing else).
      beforeSplice: (socket) => new Promise((resolve) => socket.on("error", () => {}).on("close", resolve).resume()),
    });
    const conn = await connect();
    await expect(readAll(conn)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(await result).toMatchObject({ up: 0, down: 0, end: "socket-reset" });
  });

  it("passes on a FIN the socket got before the splice began (while the client's handshake completed, or dial read a proxy's reply)", async () => {
    const { connect, result } = await setup((socket) => void socket.end().resume(), {
      // Node emits 'end' for a FIN with no data even with nobody listening: it has come and gone.
      beforeSplice: async (socket) => {
        while (!socket.readableEnded) await sleep(5);
      },
    });
    const conn = await connect();
    expect(await readAll(conn)).toHaveLength(0); // the upstream's FIN, passed on
    await conn.write("late");
    await conn.end();
    expect(await result).toEqual({ up: 4, down: 0, end: "closed" });
  });

  it("resets the client when the socket's owner destroys it after the upstream's FIN", async () => {
    const { connect, result, upstreamSocket } = await setup((socket) => void socket.end("bye"));
    const conn = await connect();
    expect((await readAll(conn)).toString()).toBe("bye"); // the upstream's FIN, passed on
    (await upstreamSocket).destroy(); // a close, no error: our data can no longer go anywhere
    expect(await result).toMatchObject({ up: 0, down: 3, end: "socket-reset" });
    await conn.closed;
    expect(conn.errored).toMatchObject({ code: "ECONNRESET" });
  });

  it("is not 'closed' before the client acknowledges our FIN", async () => {
    const controller = new AbortController();
    let upstream!: net.Socket;
    let upstreamEnded!: Promise<unknown>;
    const { connect, client, serverKey, result } = await setup(
      (socket) => {
        upstream = socket;
        upstreamEnded = new Promise((resolve) => socket.on("end", resolve).resume());
      },
      { signal: controller.signal },
    );
    const conn = await connect();
    await conn.end();
    await upstreamEnded; // the client's FIN went through
    client.removePeer(serverKey); // the client goes silent: it will acknowledge nothing more
    upstream.end("last words"); // the splice queues them and our FIN
    expect(await Promise.race([result, sleep(1000).then(() => "still waiting")])).toBe("still waiting");
    controller.abort();
    expect(await result).toMatchObject({ end: "aborted" });
  });

  it("ends at once, resetting both, when its signal has already fired", async () => {
    const controller = new AbortController();
    controller.abort();
    const { connect, result } = await setup(() => {}, { signal: controller.signal });
    const conn = await connect();
    await expect(readAll(conn)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(await result).toEqual({ up: 0, down: 0, end: "aborted" });
  });

  it("takes a socket closed without an error before the splice began as a reset", async () => {
    const { connect, result } = await setup((socket) => void socket.on("end", () => socket.end()).resume(), { beforeSplice: async (socket) => socket.destroy() });
    const conn = await connect();
    await expect(readAll(conn)).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(await result).toMatchObject({ up: 0, down: 0, end: "socket-reset" });
  });

  it("is a reset, not 'closed', when the socket is destroyed while passing on the client's FIN", async () => {
    // A socket whose end() never completes (its FIN waits), then is destroyed: end()'s callback
    // gets an error, and the client's FIN never reached the upstream.
    const socket = new Duplex({ allowHalfOpen: true, read() {}, write: (_chunk, _encoding, done) => done(), final() {} }) as unknown as net.Socket;
    socket.push("bye");
    socket.push(null);
    let server!: TcpConnection;
    let spliced!: Promise<SpliceResult>;
    const pair = await startLoopbackPair({
      onTcp: async (conn) => {
        server = conn;
        spliced = splice(conn, socket);
        await spliced;
      },
    });
    cleanups.push(pair.close);
    const conn = await pair.client.connect({ host: "10.0.0.1", port: 80 });
    expect((await readAll(conn)).toString()).toBe("bye");
    await conn.write("hi");
    await conn.end();
    await server.closed; // both FINs acknowledged: only the socket's end() is missing
    while (!socket.writableEnded) await sleep(10);
    socket.destroy();
    expect(await spliced).toMatchObject({ up: 2, down: 3, end: "socket-reset" });
  });

  it("refuses a socket that would drop half-closes", () => {
    const socket = new net.Socket(); // allowHalfOpen defaults to false
    expect(() => splice({} as TcpConnection, socket)).toThrow(/allowHalfOpen/);
  });
});
