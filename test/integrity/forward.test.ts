// The integrity suite for `wg-netstack connect`'s TCP doors — `--forward tcp:`, `--socks5`
// and `--http` (CONNECT, and an absolute-URI request): every close order in roles.mjs between a kernel socket on loopback
// (the local client) and the tunnel server's own TcpConnection (the upstream), through the
// door's relay; bytes checked end to end and the flow log's verdict checked against what
// happened.
//
//   net.Socket ─▶ door (127.0.0.1) [proxy handshake] ─relay─▶ TunnelSocket ─tunnel─▶ onTcp's TcpConnection

import { createHash } from "node:crypto";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server, TcpConnection, Tunnel } from "../../ts/index.js";
import { type Door, startTcpForward } from "../../ts/connect/forward.js";
import { startHttpProxy } from "../../ts/connect/http-proxy.js";
import { startSocks5 } from "../../ts/connect/socks5.js";
import { FlowLog } from "../../ts/gateway/flow-log.js";
import { startLoopbackTunnel } from "../support/loopback-tunnel.js";
import { connectionSide, type Report, type Scenario } from "./connection-side.js";
import { flowKeys, integrityProblems, play, SCENARIOS, socketSide } from "./roles.mjs";


const T = 90_000;
const TARGET = { host: "10.0.0.1", port: 8080 };

/** Exactly `size` bytes from the socket; what follows them goes back to its buffer for the next reader. */
async function readExactly(socket: net.Socket, size: number): Promise<Buffer> {
  let read = Buffer.alloc(0);
  for (;;) {
    const chunk: Buffer | null = socket.read();
    if (chunk) read = Buffer.concat([read, chunk]);
    if (read.length >= size) {
      if (read.length > size) socket.unshift(read.subarray(size));
      return read.subarray(0, size);
    }
    if (socket.readableEnded || socket.destroyed) throw new Error(`the door closed before sending ${size} bytes`);
    await new Promise<void>((resolve) => {
      const wake = () => {
        socket.off("readable", wake).off("close", wake);
        resolve();
      };
      socket.on("readable", wake).on("close", wake);
    });
  }
}

/** A SOCKS5 greeting and CONNECT to TARGET, no login (RFC 1928 sections 3–4). */
const SOCKS5_REQUEST = Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, TARGET.port >> 8, TARGET.port & 0xff);
const HTTP_REQUEST = `CONNECT ${TARGET.host}:${TARGET.port} HTTP/1.1\r\nHost: ${TARGET.host}:${TARGET.port}\r\n\r\n`;
const HTTP_REPLY = "HTTP/1.1 200 Connection Established\r\n\r\n";
/** An absolute-URI request, and the head the door sends on for it before relaying the rest. */
const HTTP_GET = `GET http://${TARGET.host}:${TARGET.port}/x HTTP/1.1\r\nHost: ${TARGET.host}:${TARGET.port}\r\n\r\n`;
const FORWARDED_GET = `GET /x HTTP/1.1\r\nHost: ${TARGET.host}:${TARGET.port}\r\nConnection: close\r\n\r\n`;

/**
 * The first `size` bytes from a tunnel connection, and what came with them; undefined if it
 * ended or failed first (the side reading after it then sees that end).
 */
async function readExactlyFrom(conn: TcpConnection, size: number): Promise<{ head: Buffer; rest: Buffer } | undefined> {
  let read = Buffer.alloc(0);
  while (read.length < size) {
    const chunk = await conn.read().catch(() => new Uint8Array());
    if (chunk.length === 0) return undefined;
    read = Buffer.concat([read, chunk]);
  }
  return { head: read.subarray(0, size), rest: read.subarray(size) };
}

interface DoorKind {
  name: string;
  open(options: { tunnel: Tunnel; log: FlowLog; peerOf: (host: string) => string; signal: AbortSignal }): Promise<Door>;
  /** A proxy's: what the client sends before its data, and a reader of the answer that checks it says yes. */
  handshake?: { request: Uint8Array; readReply(socket: net.Socket): Promise<void> };
  /** What the door itself sends the upstream before the client's data (and counts up). */
  forwardedHead?: string;
}

/** A flow log line, as --json writes it. */
type FlowLine = { end: string; up?: number; down?: number };

const listen = { host: "127.0.0.1", port: 0 };
const DOORS: DoorKind[] = [
  {
    name: "--forward tcp:",
    open: (options) => startTcpForward({ ...options, listen, target: TARGET }),
  },
  {
    name: "--socks5",
    open: (options) => startSocks5({ ...options, listen }),
    handshake: {
      request: SOCKS5_REQUEST,
      readReply: async (socket) => {
        // The method choice, then a reply with an IPv4 BND.ADDR (10 bytes): REP 0 is success.
        const reply = await readExactly(socket, 2 + 10);
        expect([...reply.subarray(0, 5)]).toEqual([5, 0, 5, 0, 0]);
      },
    },
  },
  {
    name: "--http (CONNECT)",
    open: (options) => startHttpProxy({ ...options, listen }),
    handshake: {
      request: new TextEncoder().encode(HTTP_REQUEST),
      readReply: async (socket) => expect((await readExactly(socket, HTTP_REPLY.length)).toString("latin1")).toBe(HTTP_REPLY),
    },
  },
  {
    name: "--http (absolute URI)",
    open: (options) => startHttpProxy({ ...options, listen }),
    // No answer of the door's own: the request goes on, rewritten, and the upstream answers.
    handshake: { request: new TextEncoder().encode(HTTP_GET), readReply: async () => {} },
    forwardedHead: FORWARDED_GET,
  },
];

describe("integrity: connect's TCP doors (a local socket relayed to a tunnel socket)", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let server: Server;
  let tunnel: Tunnel;
  const doors = new Map<string, Door>();
  const shutdown = new AbortController();
  const flows: FlowLine[] = [];
  /** What the upstream does with the next connection. */
  let onUpstream: (conn: TcpConnection) => Promise<void>;

  beforeAll(async () => {
    stacks = await startLoopbackTunnel({
      onTcp: async (conn) => {
        await conn.accept();
        await onUpstream(conn);
      },
    });
    ({ server, tunnel } = stacks);
    const log = new FlowLog((line) => flows.push(JSON.parse(line)), { json: true });
    for (const kind of DOORS) doors.set(kind.name, await kind.open({ tunnel, log, peerOf: () => server.publicKey, signal: shutdown.signal }));
  }, T);

  afterAll(async () => {
    shutdown.abort();
    for (const door of doors.values()) await door.close();
    await stacks?.close();
  });

  /** The flow record of the next flow, waiting for it. */
  async function nextFlow(count: number): Promise<FlowLine> {
    for (let i = 0; i < 600 && flows.length < count; i++) await sleep(50);
    return flows[count - 1] ?? { end: "no flow logged" };
  }

  function connect(kind: DoorKind): net.Socket {
    const address = doors.get(kind.name)?.address ?? "";
    const port = Number(address.split(":").pop());
    return net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  }

  for (const kind of DOORS) {
    describe(kind.name, () => {
      for (const [name, scenario] of Object.entries(SCENARIOS) as [string, Scenario][]) {
        it(name, async () => {
          const keys = flowKeys();
          let upstreamDone!: (report: Report) => void;
          const upstreamReport = new Promise<Report>((resolve) => (upstreamDone = resolve));
          onUpstream = async (conn) => {
            const forwarded = kind.forwardedHead === undefined ? undefined : await readExactlyFrom(conn, kind.forwardedHead.length);
            if (forwarded) expect(forwarded.head.toString("latin1")).toBe(kind.forwardedHead);
            const side = connectionSide(conn, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client });
            if (forwarded && forwarded.rest.length > 0) side.onData(forwarded.rest);
            return play(scenario.upstream, side).then(upstreamDone);
          };
          const logged = flows.length + 1;
          const socket = connect(kind);
          if (kind.handshake) {
            socket.write(kind.handshake.request);
            await kind.handshake.readReply(socket);
          }
          const side = socketSide(socket, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
          const [client, upstream] = await Promise.all([play(scenario.client, side), upstreamReport]);
          const flow = await nextFlow(logged);
          expect(integrityProblems(scenario, client, upstream, flow.end)).toEqual([]);
          const headUp = kind.forwardedHead?.length ?? 0;
          if (scenario.end === "closed") expect([flow.up, flow.down]).toEqual([headUp + client.sent.bytes, upstream.sent.bytes]);
        }, T);
      }

      // A client may send its data, even its FIN, with the request, before the door answers:
      // the door reads them with the handshake, and must pass both on.
      const { handshake } = kind;
      if (handshake) it("the client sends its request, data and FIN at once, before the answer", async () => {
        const data = Buffer.alloc(100_000, 7);
        onUpstream = async (conn) => {
          const hash = createHash("sha256");
          if (kind.forwardedHead !== undefined) hash.update((await readExactlyFrom(conn, kind.forwardedHead.length))?.rest ?? "");
          for await (const chunk of conn) hash.update(chunk);
          await conn.write(hash.digest("hex")); // the answer comes after the client's FIN
          await conn.end();
        };
        const logged = flows.length + 1;
        const socket = connect(kind);
        socket.end(Buffer.concat([handshake.request, data]));
        await handshake.readReply(socket);
        const answer: Buffer[] = [];
        socket.on("data", (chunk) => answer.push(chunk));
        await new Promise((resolve, reject) => socket.on("end", resolve).on("error", reject));
        expect(Buffer.concat(answer).toString()).toBe(createHash("sha256").update(data).digest("hex"));
        expect(await nextFlow(logged)).toMatchObject({ end: "closed", up: (kind.forwardedHead?.length ?? 0) + data.length, down: 64 });
      }, T);
    });
  }
});
