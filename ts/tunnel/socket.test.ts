// TunnelSocket against net.Socket: each check runs twice, on a kernel socket to a server on
// 127.0.0.1 and on a tunnel socket to the same server through the tunnel (the tunnel server
// splices its connections to 127.0.0.1), so what is expected is what Node's own socket does.
// Also what libraries built on net.Socket do with one: tls.connect, http2, stream.pipeline.

import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, pipeline } from "node:stream";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { splice } from "../splice.js";
import { startLoopbackTunnel } from "../../test/support/loopback-tunnel.js";
import type { Tunnel } from "./tunnel.js";

const T = 60_000;
const THROUGH = "10.0.0.1"; // spliced to the same port on 127.0.0.1
const TLS_NAME = "tls.test";
const BIG = randomBytes(4 * 1024 * 1024);

/** A kernel socket or a TunnelSocket, dialing the same servers; typed as net's for the checks. */
interface Side {
  name: string;
  /** Where its servers are. */
  host: string;
  /** Connects to `port` of the servers, as net.connect with these options. */
  connect(port: number, options?: { allowHalfOpen?: boolean; timeout?: number }): net.Socket;
  /** An unconnected socket and how to connect it to `port`. */
  socket(): { socket: net.Socket; connect(port: number): void };
}

let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
let tunnel: Tunnel;
let sides: Side[];
const servers: (net.Server | http2.Http2Server)[] = [];
const ports = { echo: 0, saysBye: 0, sink: 0, tls: 0, h2c: 0, closed: 0 };
/** What each connection to the sink brought until its FIN, in order of arrival. */
const sinkHeard: Promise<string>[] = [];
let ca: string;

/** A CA-less self-signed certificate for TLS_NAME, made with openssl for this run. */
function makeCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "wgn-socket-tls-"));
  try {
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2", "-subj", `/CN=${TLS_NAME}`, "-addext", `subjectAltName=DNS:${TLS_NAME}`], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function listen<S extends net.Server | http2.Http2Server>(server: S): Promise<number> {
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as net.AddressInfo).port;
}

beforeAll(async () => {
  const { key, cert } = makeCertificate();
  ca = cert;
  // Sends back what comes and ends after the client's FIN.
  ports.echo = await listen(net.createServer({ allowHalfOpen: true }, (socket) => socket.on("error", () => {}).pipe(socket)));
  // Says "bye" and half-closes first, then echoes what still comes.
  ports.saysBye = await listen(net.createServer({ allowHalfOpen: true }, (socket) => socket.on("error", () => {}).end("bye").on("data", () => {})));
  // Reads to the end and never writes, nor ends.
  ports.sink = await listen(
    net.createServer({ allowHalfOpen: true }, (socket) => {
      sinkHeard.push(readAll(socket.on("error", () => {})).then(String));
    }),
  );
  // "big": BIG and the end; anything else: echoed, and "bye" after the client's FIN.
  ports.tls = await listen(
    tls.createServer({ key, cert, allowHalfOpen: true }, (socket) => {
      socket.on("error", () => {});
      socket.once("data", (first: Buffer) => {
        if (first.toString() === "big") return void socket.end(BIG);
        socket.write(first);
        socket.on("data", (more: Buffer) => socket.write(more));
        socket.on("end", () => socket.end("bye"));
      });
    }),
  );
  const h2c = http2.createServer();
  h2c.on("stream", (stream, headers) => {
    stream.respond({ ":status": 200 });
    stream.end(`h2 ${headers[":path"]}`);
  });
  ports.h2c = await listen(h2c);
  const closed = net.createServer();
  ports.closed = await listen(closed);
  servers.pop();
  await new Promise((resolve) => closed.close(resolve));

  stacks = await startLoopbackTunnel({
    onTcp: async (connection) => {
      const upstream = net.connect({ host: "127.0.0.1", port: connection.local.port, allowHalfOpen: true });
      try {
        await once(upstream, "connect");
      } catch {
        return connection.refuse(); // refused there: refused through the tunnel too
      }
      await connection.accept();
      await splice(connection, upstream);
    },
  });
  tunnel = stacks.tunnel;
  sides = [
    {
      name: "net.Socket",
      host: "127.0.0.1",
      connect: (port, options) => net.connect({ port, host: "127.0.0.1", ...options }),
      socket: () => {
        const socket = new net.Socket();
        return { socket, connect: (port) => socket.connect(port, "127.0.0.1") };
      },
    },
    {
      name: "TunnelSocket",
      host: THROUGH,
      connect: (port, options) => tunnel.connect({ port, host: THROUGH, ...options }) as unknown as net.Socket,
      socket: () => {
        const socket = tunnel.socket();
        return { socket: socket as unknown as net.Socket, connect: (port) => socket.connect(port, THROUGH) };
      },
    },
  ];
}, T);

afterAll(async () => {
  await stacks?.close();
  for (const server of servers) server.close();
});

const RUNTIME = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";

/**
 * Runs `check` on a kernel socket and on a tunnel socket; a failure names the side.
 * `kernelDiffers` names runtimes whose own net.Socket fails the check (Node's behaviour is
 * the one expected), and why: there only the tunnel socket is checked.
 */
function onBoth(name: string, check: (side: Side) => Promise<void>, kernelDiffers: Partial<Record<"bun" | "deno", string>> = {}): void {
  it(
    name,
    async () => {
      for (const side of sides) {
        const differs = side.name === "net.Socket" ? kernelDiffers[RUNTIME as "bun" | "deno"] : undefined;
        if (differs) {
          console.log(`${name}: ${RUNTIME}'s net.Socket not checked: ${differs}`);
          continue;
        }
        try {
          await check(side);
        } catch (error) {
          throw new Error(`${side.name}: ${(error as Error).message}`, { cause: error });
        }
      }
    },
    T,
  );
}

/** Everything `stream` brings until its end, as one buffer ('data' events: Deno's `for await` over a TLSSocket never ends). */
async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  await once(stream, "end");
  return Buffer.concat(chunks);
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** The events of `names` that `emitter` emits from now on, in order. */
function record(emitter: NodeJS.EventEmitter, names: string[]): string[] {
  const seen: string[] = [];
  for (const name of names) emitter.on(name, () => seen.push(name));
  return seen;
}

describe("TunnelSocket as libraries use a net.Socket", () => {
  onBoth("carries TLS (tls.connect({ socket })): a 4 MiB body intact, and end() as a half-close the server answers", async ({ connect }) => {
    const big = tls.connect({ socket: connect(ports.tls), servername: TLS_NAME, ca });
    await once(big, "secureConnect");
    big.write("big");
    expect(sha256(await readAll(big))).toBe(sha256(BIG));

    const raw = connect(ports.tls);
    const small = tls.connect({ socket: raw, servername: TLS_NAME, ca });
    await once(small, "secureConnect");
    const events = record(small, ["end", "close"]);
    small.setEncoding("utf8");
    let heard = "";
    small.on("data", (text: string) => (heard += text));
    small.end("hello");
    await once(small, "close");
    expect(heard).toBe("hellobye");
    expect(events).toEqual(["end", "close"]);
    expect(raw.destroyed).toBe(true);
  });

  onBoth("carries h2c (http2.connect with createConnection); closing the session closes the socket", async ({ connect }) => {
    let socket!: net.Socket;
    const session = http2.connect(`http://${TLS_NAME}:${ports.h2c}`, { createConnection: () => (socket = connect(ports.h2c)) });
    const request = session.request({ ":path": "/through" });
    expect((await readAll(request)).toString()).toBe("h2 /through");
    session.close();
    await once(session, "close");
    if (!socket.destroyed) await once(socket, "close");
    expect(socket.destroyed).toBe(true);
  });

  onBoth("in stream.pipeline: a destination that fails destroys the socket with its error, and a failing socket the other streams", async ({ connect }) => {
    const source = connect(ports.echo);
    await once(source, "connect");
    const sink = new PassThrough().resume();
    const sinkFailed = Object.assign(new Error("sink failed"), { code: "ESINK" });
    const first = new Promise<Error | null | undefined>((resolve) => pipeline(source, sink, resolve));
    sink.destroy(sinkFailed);
    expect(await first).toBe(sinkFailed);
    expect(source.destroyed).toBe(true);

    const destination = connect(ports.echo);
    await once(destination, "connect");
    destination.on("error", () => {});
    const upstream = new PassThrough();
    const second = new Promise<Error | null | undefined>((resolve) => pipeline(upstream, destination, resolve));
    const reset = Object.assign(new Error("reset"), { code: "ECONNRESET" });
    destination.destroy(reset);
    expect(await second).toBe(reset);
    expect(upstream.destroyed).toBe(true);

    // A socket closed before its end: the rest of the pipeline hears a premature close.
    const cut = connect(ports.echo);
    await once(cut, "connect");
    const out = new PassThrough().on("error", () => {});
    const third = new Promise<Error | null | undefined>((resolve) => pipeline(cut, out, resolve));
    cut.destroy();
    expect(await third).toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
    expect(out.destroyed).toBe(true);
  }, { bun: "a kernel socket destroyed before its end ends pipeline() without an error (Node: ERR_STREAM_PREMATURE_CLOSE)" });

  onBoth("decodes with setEncoding, gathers corked and many small writes, emits 'end' then 'close'", async ({ connect }) => {
    const socket = connect(ports.echo);
    expect(socket.setKeepAlive(true, 1000)).toBe(socket);
    expect(socket.setNoDelay(true)).toBe(socket);
    socket.setEncoding("utf8");
    const events = record(socket, ["finish", "end", "close"]);
    let heard = "";
    socket.on("data", (text: string) => (heard += text));
    socket.cork();
    socket.write("é");
    socket.write(Buffer.from("€").subarray(0, 1)); // a character split across writes
    socket.write(Buffer.from("€").subarray(1));
    socket.uncork();
    const words = Array.from({ length: 2000 }, (_, i) => `${i},`);
    for (const word of words) socket.write(word);
    socket.end();
    await once(socket, "close");
    expect(heard).toBe(`é€${words.join("")}`);
    expect(events).toEqual(["finish", "end", "close"]);
  });
});

describe("TunnelSocket's net.Socket surface", () => {
  onBoth("tells on 'close' whether an error closed it (hadError)", async ({ connect }) => {
    const clean = connect(ports.echo).resume();
    clean.end("x");
    expect(await once(clean, "close")).toEqual([false]);

    const failed = connect(ports.echo).on("error", () => {});
    await once(failed, "connect");
    failed.destroy(Object.assign(new Error("given up"), { code: "ETEST" }));
    expect(await new Promise((resolve) => failed.on("close", resolve))).toBe(true); // once() would reject on the 'error'
  });

  onBoth("shows setTimeout's value as `timeout` (http.Agent reads it before resetting a kept socket's)", async ({ connect }) => {
    const socket = connect(ports.echo);
    expect(socket.timeout).toBeUndefined();
    socket.setTimeout(1234);
    expect(socket.timeout).toBe(1234);
    socket.setTimeout(0);
    expect(socket.timeout).toBe(0);
    socket.destroy();
  }, { bun: "its timeout is 0 before setTimeout (Node: undefined)" });

  onBoth("destroySoon(): closes once what was written went out, without waiting for the other end (http calls it for Connection: close)", async ({ connect }) => {
    const socket = connect(ports.sink);
    await once(socket, "connect");
    const events = record(socket, ["finish", "close"]);
    const heard = once(socket, "close").then(() => sinkHeard.at(-1)!);
    socket.write("last words");
    socket.destroySoon();
    expect(socket.writable).toBe(false);
    expect(await heard).toBe("last words");
    expect(events).toEqual(["finish", "close"]);
    expect(socket.destroyed).toBe(true);
  });

  onBoth("bufferSize: what waits to be written, from connect() until closed", async ({ socket: unconnected }) => {
    const { socket, connect } = unconnected();
    expect(socket.bufferSize).toBeUndefined();
    connect(ports.echo);
    socket.write("abc"); // held until connected
    expect(socket.bufferSize).toBe(3);
    socket.resume().end();
    await once(socket, "close");
    expect(socket.bufferSize).toBeUndefined();
  });

  onBoth("bytesWritten counts what write() took, sent or still waiting", async ({ connect }) => {
    const socket = connect(ports.echo).resume();
    socket.write("abc"); // held until connected
    expect(socket.bytesWritten).toBe(3);
    socket.end("de");
    await once(socket, "close");
    expect(socket.bytesWritten).toBe(5);
    expect(socket.bytesRead).toBe(5);
  });

  onBoth("a write once the other end's FIN has ended ours too (no allowHalfOpen) fails with EPIPE", async ({ connect }) => {
    const socket = connect(ports.saysBye).resume().on("error", () => {}); // the EPIPE again, if not closed yet
    await once(socket, "end");
    await new Promise((resolve) => setImmediate(resolve)); // our side has ended with theirs
    expect(socket.writableEnded).toBe(true);
    expect(await new Promise((resolve) => socket.write("late", resolve))).toMatchObject({ code: "EPIPE" });
  });

  onBoth("readyState and pending through a connection's life: opening, open, readOnly or writeOnly, closed", async ({ connect }) => {
    const state = (socket: net.Socket) => [socket.readyState, socket.pending];
    const ours = connect(ports.echo);
    expect(state(ours)).toEqual(["opening", true]);
    await once(ours, "connect");
    expect(state(ours)).toEqual(["open", false]);
    ours.end(); // we half-close first
    expect(state(ours)).toEqual(["readOnly", false]);
    ours.resume();
    await once(ours, "close");
    expect(state(ours)).toEqual(["closed", true]); // net: no handle is pending again

    const theirs = connect(ports.saysBye, { allowHalfOpen: true }).resume();
    await once(theirs, "end"); // they half-close first
    expect(state(theirs)).toEqual(["writeOnly", false]);
    theirs.end();
    await once(theirs, "close");
    expect(state(theirs)).toEqual(["closed", true]);
  });

  onBoth("calls back a write held for a connect that never completes with ERR_SOCKET_CLOSED_BEFORE_CONNECTION", async ({ connect }) => {
    const written = (socket: net.Socket) => new Promise((resolve) => socket.on("error", () => {}).write("held", resolve));
    const refused = connect(ports.closed);
    expect(await written(refused)).toMatchObject({ code: "ERR_SOCKET_CLOSED_BEFORE_CONNECTION" });
    const abandoned = connect(ports.echo);
    const abandonedWrite = written(abandoned);
    abandoned.destroy();
    expect(await abandonedWrite).toMatchObject({ code: "ERR_SOCKET_CLOSED_BEFORE_CONNECTION" });
  });

  onBoth("throws for bad arguments with net's error classes and codes", async ({ host, connect, socket: unconnected }) => {
    const thrown = (call: (socket: net.Socket) => unknown) => {
      const { socket } = unconnected();
      try {
        call(socket);
        return "nothing thrown";
      } catch (error) {
        return `${(error as Error).name} ${(error as { code?: string }).code}`;
      } finally {
        socket.destroy();
      }
    };
    expect(thrown((socket) => socket.setTimeout(-1))).toBe("RangeError ERR_OUT_OF_RANGE");
    expect(thrown((socket) => socket.setTimeout(Number.POSITIVE_INFINITY))).toBe("RangeError ERR_OUT_OF_RANGE");
    expect(thrown((socket) => socket.setTimeout("5" as unknown as number))).toBe("TypeError ERR_INVALID_ARG_TYPE");
    expect(thrown((socket) => socket.connect({ port: 65536, host }))).toBe("RangeError ERR_SOCKET_BAD_PORT");
    expect(thrown((socket) => socket.connect({ port: 80.5, host }))).toBe("RangeError ERR_SOCKET_BAD_PORT");
    expect(thrown((socket) => socket.connect({ port: 80, host: 12 as unknown as string }))).toBe("TypeError ERR_INVALID_ARG_TYPE");
    expect(thrown(() => connect(80, { timeout: -1 }))).toBe("RangeError ERR_OUT_OF_RANGE");
    expect(thrown(() => connect(80, { timeout: "5" as unknown as number }))).toBe("TypeError ERR_INVALID_ARG_TYPE");
  });

  onBoth("connect() again while connecting: destroyed with EALREADY", async ({ host, connect }) => {
    const socket = connect(ports.echo);
    socket.connect(ports.echo, host);
    const [error] = await once(socket, "error");
    expect(error).toMatchObject({ code: "EALREADY", syscall: "connect" });
    expect(socket.destroyed).toBe(true);
  }, { bun: "a second connect() while connecting is ignored (Node: EALREADY)" });

  // net dials again from an open socket, and reconnects a closed one (its docs leave the first
  // undefined): ours says why it will not.
  it("connect() again once connected or closed throws EISCONN or ERR_SOCKET_CLOSED", async () => {
    const socket = tunnel.connect(ports.echo, THROUGH);
    await once(socket, "connect");
    expect(() => socket.connect(ports.echo, THROUGH)).toThrow(expect.objectContaining({ code: "EISCONN" }));
    socket.destroy();
    await once(socket, "close");
    expect(() => socket.connect(ports.echo, THROUGH)).toThrow(expect.objectContaining({ code: "ERR_SOCKET_CLOSED" }));
  });
});
