// What the server does when its UDP socket fails or its port is taken, in every runtime:
// vitest runs this under Node, and `npm run test:deno` / `test:bun` under Deno and Bun.

import { describe, expect, it } from "vitest";
import { AddressInUseError, genkey, startServer, type Runtime, type SocketErrorHandler } from "../index.js";
import { hasDenoUdp } from "./deno.js";
import { defaultRuntime } from "./index.js";
import { nodeRuntime } from "./node.js";

// Under Deno both adapters are in use: its own UDP (with --unstable-net) and node:dgram.
const runtimes: [string, Runtime][] = [["default", defaultRuntime()]];
if (hasDenoUdp()) runtimes.push(["node:dgram", nodeRuntime]);

for (const [name, runtime] of runtimes) {
  it(`${name} runtime: a port in use is an AddressInUseError naming host and port`, async () => {
    const first = await startServer({ privateKey: genkey(), peers: [], host: "127.0.0.1", port: 0, runtime });
    const port = first.address.port;
    try {
      const error = await startServer({ privateKey: genkey(), peers: [], host: "127.0.0.1", port, runtime }).then(
        (second) => second.close(),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AddressInUseError);
      expect((error as AddressInUseError).message).toBe(`UDP 127.0.0.1:${port} is already in use`);
      expect((error as AddressInUseError).host).toBe("127.0.0.1");
      expect((error as AddressInUseError).port).toBe(port);
    } finally {
      await first.close();
    }
  });
}

for (const [name, runtime] of runtimes) {
  it(`${name} runtime: a send that fails is a lost datagram, not an error`, async () => {
    const reported: Error[] = [];
    const socket = await runtime.bindUdp("127.0.0.1", 0, () => {}, (error) => void reported.push(error));
    // Refused by the system: an IPv6 destination on an IPv4 socket, and broadcast without SO_BROADCAST.
    socket.send(new Uint8Array(1), { host: "::1", port: 9 });
    socket.send(new Uint8Array(1), { host: "255.255.255.255", port: 9 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await socket.close();
    expect(reported).toEqual([]);
  });
}

it("default runtime: a burst arrives whole and in order (what the socket buffer kept of it)", async () => {
  const runtime = defaultRuntime();
  const received: [number, number][] = [];
  const size = (i: number) => 4 + ((i * 37) % 1400);
  const onMessage = (data: Uint8Array) => void received.push([new DataView(data.buffer, data.byteOffset).getUint32(0), data.length]);
  const socket = await runtime.bindUdp("127.0.0.1", 0, onMessage, () => {});
  const sender = await runtime.bindUdp("127.0.0.1", 0, () => {}, () => {});
  // More than a default socket buffer holds, so sends wait for room; sizes vary, so a
  // datagram read into a reused buffer would show a longer one's tail.
  for (let i = 0; i < 1000; i++) {
    const data = new Uint8Array(size(i));
    new DataView(data.buffer).setUint32(0, i);
    sender.send(data, socket.address);
  }
  for (let count = -1; count !== received.length; ) {
    count = received.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await Promise.all([sender.close(), socket.close()]);
  expect(received.length).toBeGreaterThan(0);
  expect(received.filter(([n, length], k) => length !== size(n) || (k > 0 && n <= received[k - 1]![0]))).toEqual([]);
});

describe("socket errors after bind", () => {
  /** A server on a stand-in socket; `fail` is the error channel its runtime was given. */
  async function serverWithSocket() {
    let fail: SocketErrorHandler = () => {};
    const runtime: Runtime = {
      clock: nodeRuntime.clock,
      bindUdp: async (host, port, _onMessage, onError) => {
        fail = onError;
        return { address: { host, port }, send: () => {}, close: async () => {} };
      },
    };
    const errors: Error[] = [];
    const server = await startServer({ privateKey: genkey(), peers: [], port: 0, runtime, onError: (e) => void errors.push(e) });
    return { server, errors, fail: (error: Error, fatal: boolean) => fail(error, fatal) };
  }

  it("a non-fatal one goes to onError and the server goes on", async () => {
    const { server, errors, fail } = await serverWithSocket();
    const failure = new Error("receive failed");
    fail(failure, false);
    expect(errors).toEqual([failure]);
    expect(server.error).toBeUndefined();
    expect(server.stats().connections).toBe(0);
    await server.close();
  });

  it("a fatal one fails the server: error set, onError told, closed resolves", async () => {
    const { server, errors, fail } = await serverWithSocket();
    fail(new Error("socket closed under us"), true);
    await server.closed;
    expect(server.error?.message).toMatch(/^wg-netstack server failed: socket closed under us/);
    expect(errors).toEqual([server.error]);
    expect(() => server.stats()).toThrow(/server failed/);
  });
});
