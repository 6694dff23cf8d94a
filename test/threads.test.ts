// `threads: 1`, the engine and its UDP socket in a worker (docs/threads.md), over real
// loopback sockets: what the worker could break that the single-threaded server keeps.
// Nothing is lost or reordered when the rings between the threads are full; a trap in the
// worker fails that server, not the process; close() leaves no worker behind. The rest of the
// suite runs threaded with WG_NETSTACK_TEST_THREADS=1 (`npm run test:threads`).

import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { INTERNALS } from "../ts/host/server.js";
import type { EngineError } from "../ts/wasm/engine.js";
import { ERROR } from "../ts/wasm/abi.js";
import { BACKLOG_BYTES, inboundQueue, INBOUND_DATAGRAMS, ringSize, RING_BYTES, type ThreadedEngine } from "../ts/host/worker/threaded-engine.js";
import { AddressInUseError, ConfigError, genkey, pubkey, startServer, type Server, type ServerOptions, type TcpConnection } from "../ts/index.js";
import { RUNTIME_COMMAND } from "./support/gateway-process.js";
import { echo, roundTrip } from "./support/echo.js";
import { startPair } from "./support/pair.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MiB = 1024 * 1024;
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const servers: Server[] = [];

afterEach(async () => {
  ringSize.bytes = RING_BYTES;
  inboundQueue.datagrams = INBOUND_DATAGRAMS;
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function threadedPair(options: Partial<ServerOptions>, clientOptions: Partial<ServerOptions> = {}): Promise<{ server: Server; client: Server }> {
  return startPair({ startServer, genkey, pubkey }, { threads: 1, ...options }, { threads: 1, ...clientOptions }, (server: Server) => servers.push(server));
}

const worker = (server: Server) => server[INTERNALS].engine as ThreadedEngine;


/** Runs test/support/threads-exit.mjs in a new process of this runtime; it must exit by itself. */
function runExitScript(mode: string): { status: number | null; output: string } {
  const child = spawnSync(RUNTIME_COMMAND[0]!, [...RUNTIME_COMMAND.slice(1), join(root, "test/support/threads-exit.mjs"), mode], { cwd: root, encoding: "utf8", timeout: 60_000 });
  return { status: child.status, output: `${child.stdout}${child.stderr}` };
}

describe("threads: 1", () => {
  it("echoes 8 MiB on each of 4 connections intact over small rings that fill up again and again (nothing dropped, nothing reordered)", async () => {
    ringSize.bytes = 256 * 1024;
    const { server, client } = await threadedPair({ onTcp: echo });
    const data = [0, 1, 2, 3].map(() => randomBytes(8 * MiB));
    const echoed = await Promise.all(data.map(async (bytes, i) => roundTrip(await client.connect({ host: "10.0.0.1", port: 7 + i }), bytes)));
    for (const [i, bytes] of echoed.entries()) {
      expect(bytes.length).toBe(data[i]!.length);
      expect(sha256(bytes)).toBe(sha256(data[i]!));
    }
    // The writers found the rings full and waited, both ways (hundreds of times in a run: a
    // 256 KiB ring holds a small part of one pump's commands or events at these rates).
    const refused = [worker(server).ringsRefused, worker(client).ringsRefused];
    expect(refused[0]!.commands + refused[1]!.commands).toBeGreaterThan(0);
    expect(refused[0]!.events + refused[1]!.events).toBeGreaterThan(0);
  }, 120_000);

  it("counts as queueFull the datagrams its worker cannot keep while the main thread is behind, and TCP sends them again: the data arrives intact", async () => {
    ringSize.bytes = 256 * 1024;
    inboundQueue.datagrams = 16;
    const readAll = async (conn: TcpConnection) => {
      const parts: Uint8Array[] = [];
      for await (const chunk of conn) parts.push(chunk);
      return createHash("sha256").update(Buffer.concat(parts)).digest("hex");
    };
    let received: Promise<string> | undefined;
    const { server, client } = await threadedPair({ onTcp: (conn) => void (received = readAll(conn)) }, { tcpSendBuffer: 8 * MiB });
    const data = randomBytes(16 * MiB);
    const conn = await client.connect({ host: "10.0.0.1", port: 9 });
    const sending = conn.write(data).then(() => conn.end());
    // This thread is both servers' main thread: while it sleeps, the workers go on. The
    // server's events ring fills, its worker stops pumping, and what the client's worker
    // still has in flight overflows the server worker's queue.
    const asleep = new Int32Array(new SharedArrayBuffer(4));
    for (let round = 0; round < 20 && server.stats().dropped.queueFull === 0; round++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      Atomics.wait(asleep, 0, 0, 300);
    }
    expect(server.stats().dropped.queueFull).toBeGreaterThan(0);
    await sending;
    expect(await received).toBe(sha256(data));
  }, 120_000);

  it("drops and counts (queueFull) the UDP it is asked to send while the worker is behind: a flood does not grow memory without bound", async () => {
    ringSize.bytes = 256 * 1024;
    let received = 0;
    let heard: () => void = () => {};
    const hello = new Promise<void>((resolve) => (heard = resolve));
    const { server, client } = await threadedPair({ onUdp: () => heard() }, { threads: 0, onUdp: () => void received++ });
    const payload = new Uint8Array(1200);
    const from = { host: "10.0.0.1", port: 9 };
    const to = { host: "10.0.0.2", port: 5000 };
    // The server learns the client's endpoint from it.
    client.sendUdp("hello", to, from);
    await hello;
    // Faster than the worker can encrypt and send: 200 datagrams a turn of the event loop.
    let backlog = 0;
    const started = performance.now();
    while (performance.now() - started < 1500) {
      for (let i = 0; i < 200; i++) server.sendUdp(payload, from, to);
      backlog = Math.max(backlog, worker(server).pendingBytes);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Bounded by the limit and one turn's sends (without the limit: tens of MiB here, and growing).
    expect(backlog).toBeLessThanOrEqual(BACKLOG_BYTES + 200 * (payload.length + 64));
    expect(server.stats().dropped.queueFull).toBeGreaterThan(0);
    // What was not dropped arrived.
    for (let polls = 0; received === 0 && polls < 100; polls++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(received).toBeGreaterThan(0);
  });

  it("reports stats() with the same keys as one thread does: queueFull is there, 0, on one thread", async () => {
    const options = { privateKey: genkey(), peers: [], host: "127.0.0.1", port: 0 };
    const one = await startServer({ threads: 0, ...options });
    const two = await startServer({ threads: 1, ...options });
    servers.push(one, two);
    expect(one.stats().dropped.queueFull).toBe(0);
    expect(Object.keys(one.stats().dropped)).toEqual(Object.keys(two.stats().dropped));
  });

  it("refuses what the worker refuses as one thread does: a port in use, a peer with the server's own key", async () => {
    const first = await startServer({ threads: 1, privateKey: genkey(), peers: [], host: "127.0.0.1", port: 0 });
    servers.push(first);
    const port = first.address.port;
    const taken = await startServer({ threads: 1, privateKey: genkey(), peers: [], host: "127.0.0.1", port }).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(AddressInUseError);
    expect((taken as AddressInUseError).message).toBe(`UDP 127.0.0.1:${port} is already in use`);
    const key = genkey();
    const own = await startServer({ threads: 1, privateKey: key, host: "127.0.0.1", port: 0, peers: [{ publicKey: pubkey(key) }] }).catch((e: unknown) => e);
    expect(own).toBeInstanceOf(ConfigError);
    expect((own as ConfigError).field).toBe("peers[0].publicKey");
    expect((own as ConfigError).message).toMatch(/own public key/);
  });

  it("fails the server whose worker's engine traps, reports it, and leaves the other server working", async () => {
    const errors: Error[] = [];
    const { server, client } = await threadedPair({ onTcp: echo, onError: (error) => void errors.push(error) });
    const conn = await client.connect({ host: "10.0.0.1", port: 7 });
    // 4 GiB of scratch: the allocation aborts and the engine is poisoned, as a panic would leave it.
    expect(() => worker(server).scratch(0xffff_fff0)).toThrow(WebAssembly.RuntimeError);
    void conn.write("the next pump calls into the broken engine").catch(() => {});
    await server.closed;
    expect(server.error?.message).toMatch(/^wg-netstack server failed/);
    expect(errors).toContain(server.error);
    expect(() => server.stats()).toThrow(/server failed/);
    // The client's engine, in its own worker, goes on.
    expect(client.stats().peers).toHaveLength(1);
  });

  for (const threads of [0, 1] as const) {
    it(`sends UDP, pings and keepalives in order with the connections' commands, and refuses what the engine would where they are made (threads: ${threads})`, async () => {
      const out: string[] = [];
      const describePacket = (packet: Uint8Array) =>
        packet[9] === 17 ? `udp ${new TextDecoder().decode(packet.subarray(28))}` : packet[9] === 1 ? `icmp type ${packet[20]}` : `protocol ${packet[9]}`;
      const to = { host: "10.0.0.2", port: 4000 };
      const from = { host: "192.0.2.1", port: 53 };
      let pinged: Promise<number> | undefined;
      const { server, client } = await threadedPair(
        {
          threads,
          tap: (packet, { direction }) => void (direction === "out" && packet[9] !== 6 && out.push(describePacket(packet))),
          // One batch: each request is carried out where it stands in it, among the TCP ones.
          onTcp: (connection) => {
            server.sendUdp("one", from, to);
            connection.refuse("unreachable");
            pinged = server.ping(to.host, { from: from.host });
            server.sendUdp("two", from, to);
          },
        },
        { threads, onUdp: (packet) => void received.push(new TextDecoder().decode(packet.data)) },
      );
      const received: string[] = [];
      await expect(client.connect({ host: "10.0.0.1", port: 7 })).rejects.toMatchObject({ code: "EHOSTUNREACH" });
      // The echo reply comes after the whole batch went out.
      expect(await pinged).toBeGreaterThanOrEqual(0);
      expect(out).toEqual(["udp one", "icmp type 3", "icmp type 8", "udp two"]);
      for (let polls = 0; received.length < 2 && polls < 500; polls++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(received).toEqual(["one", "two"]);
      // What the engine would refuse is refused at the call, with its codes.
      const refusal = (send: () => unknown) => {
        try {
          send();
        } catch (error) {
          return (error as EngineError).code;
        }
      };
      expect(refusal(() => server.sendUdp("x", from, { host: "10.0.0.3", port: 1 }))).toBe(ERROR.NO_ROUTE);
      expect(refusal(() => server.sendUdp("x", { host: "fd00::1", port: 1 }, to))).toBe(ERROR.UNADDRESSABLE);
      expect(refusal(() => server.sendUdp(new Uint8Array(1420 - 28 + 1), from, to))).toBe(ERROR.TOO_BIG);
      expect(refusal(() => server.sendUdp(new Uint8Array(1420 - 28), from, to))).toBeUndefined();
      await expect(server.ping("10.0.0.3", { from: from.host })).rejects.toMatchObject({ code: "ENETUNREACH" });
      // A keepalive to a peer with an endpoint goes; the server has none for its client until it hears from it.
      expect(client.keepalive(server.publicKey)).toBe(true);
      expect(server.keepalive(client.publicKey)).toBe(true);
      expect(server.keepalive(pubkey(genkey()))).toBe(false);
      expect(server.stats().dropped).toMatchObject({ noRoute: 0, noEndpoint: 0 });
    });
  }

  for (const mode of ["close", "trap"]) {
    it(`leaves no worker behind: a process whose threaded servers ended (${mode}) exits by itself`, () => {
      const { status, output } = runExitScript(mode);
      expect(output).toContain("echo ping");
      if (mode === "trap") expect(output).toContain("trapped RuntimeError\nserver failed: true reported: true");
      expect(output).toContain("closed");
      expect(status).toBe(0);
    });
  }
});
