// server.close() in process, over real loopback sockets: from inside a handler amid a batch
// of SYNs, and with many open connections, where every RST must get out before the socket
// closes. test/interop/limits.test.ts does the same with real clients.

import { describe, expect, it } from "vitest";
import { genkey, pubkey, startServer, type Runtime, type Server, type ServerOptions, type TcpConnection } from "../ts/index.js";
import { withThreads } from "./support/threads.js";
import { defaultRuntime } from "../ts/runtime/index.js";
import { echo } from "./support/echo.js";

/** `runtime` with its timers counted: `live` holds the ones armed and not yet fired or cleared. */
function counting(runtime: Runtime): { runtime: Runtime; live: Set<unknown> } {
  const live = new Set<unknown>();
  const clock = runtime.clock;
  return {
    live,
    runtime: {
      bindUdp: runtime.bindUdp,
      clock: {
        now: () => clock.now(),
        defer: (fn) => clock.defer(fn),
        setTimer: (delayMs, fn) => {
          const handle = clock.setTimer(delayMs, () => {
            live.delete(handle);
            fn();
          });
          live.add(handle);
          return handle;
        },
        clearTimer: (handle) => {
          live.delete(handle);
          clock.clearTimer(handle);
        },
      },
    },
  };
}

/** A server with `options` and a client-role server (tunnel address 10.0.0.2). */
async function pair(options: Partial<ServerOptions>): Promise<{ server: Server; client: Server }> {
  const serverKey = genkey();
  const clientKey = genkey();
  const server = await startServer(withThreads({ privateKey: serverKey, host: "127.0.0.1", port: 0, peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }], ...options }));
  const clientOptions: ServerOptions = {
    privateKey: clientKey,
    host: "127.0.0.1",
    port: 0,
    address: "10.0.0.2/32",
    peers: [{ publicKey: pubkey(serverKey), endpoint: server.address, allowedIps: ["0.0.0.0/0"] }],
  };
  // A server on its own runtime stays on one thread, and so does its client then: the test
  // needs the client's SYNs in one batch, and a threaded client's connects are calls into
  // its worker, which may send between them (under Deno it did, and SYNs came after close).
  const client = await startServer(options.runtime ? clientOptions : withThreads(clientOptions));
  return { server, client };
}

describe("server.close()", () => {
  it("from inside onTcp amid a batch of SYNs: every connection closes, the rest of the batch is refused, no timer is left", async () => {
    // Real sockets: the SYNs arrive together and the server takes them in one batch.
    const { runtime, live } = counting(defaultRuntime());
    const handed: TcpConnection[] = [];
    let closing: Promise<void> | undefined;
    const { server, client } = await pair({
      runtime,
      onTcp: async (conn) => {
        handed.push(conn);
        if (handed.length === 10) closing = server.close();
        await echo(conn);
      },
    });
    try {
      await (await client.connect({ host: "192.0.2.1", port: 7 })).close(); // the tunnel is up
      handed.length = 0;
      const attempts = Array.from({ length: 50 }, (_, i) =>
        client.connect({ host: "192.0.2.1", port: 100 + i }).then(
          (conn) => conn.read().then(() => "served", (error) => error.code),
          (error: Error) => error.message,
        ),
      );
      while (!closing) await new Promise((resolve) => setTimeout(resolve, 10));
      await closing;
      const hung = (ms: number) => new Promise((resolve) => setTimeout(() => resolve("hung"), ms).unref());
      // Settled already, or soon: the bound only catches one left open for good.
      expect(await Promise.race([hung(10_000), Promise.all(handed.map((conn) => conn.closed))])).not.toBe("hung");
      expect(handed.length).toBe(10);
      expect(live.size).toBe(0);
      // At the client, those handed over were reset and the others refused; none was left hanging.
      const outcomes = await Promise.race([hung(5_000), Promise.all(attempts)]);
      expect(new Set(outcomes as string[])).toEqual(new Set(["ECONNRESET", "connection refused"]));
    } finally {
      await client.close();
      await server.close();
    }
  });

  it("a handler reading when the server closes sees ECONNABORTED, and nothing is reported as an error", async () => {
    const reported: Error[] = [];
    const seen: string[] = [];
    let reading = () => {};
    const handlerReading = new Promise<void>((resolve) => (reading = resolve));
    const { server, client } = await pair({
      onError: (error) => reported.push(error),
      onTcp: async (conn) => {
        try {
          reading();
          for await (const _ of conn);
          seen.push("ended");
        } catch (error) {
          seen.push((error as { code?: string }).code ?? String(error));
          throw error; // as a handler that does not catch it would
        }
      },
    });
    try {
      const conn = await client.connect({ host: "192.0.2.1", port: 7 });
      await conn.write("x");
      await handlerReading;
      await server.close();
      await new Promise((resolve) => setTimeout(resolve, 50)); // a report would come in a task or two
      expect(seen).toEqual(["ECONNABORTED"]);
      expect(reported).toEqual([]);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it("resets every open connection over real sockets: the client sees each one reset", async () => {
    const { server, client } = await pair({ onTcp: echo });
    try {
      const connections = await Promise.all(Array.from({ length: 500 }, (_, i) => client.connect({ host: "192.0.2.1", port: 1000 + i })));
      await Promise.all(connections.map(async (conn) => {
        await conn.write("x");
        await conn.read();
      }));
      expect(server.stats().connections).toBe(500);
      await server.close();
      // A lost RST would leave the client's connection open for good.
      const hung = new Promise((resolve) => setTimeout(() => resolve("still open after 5 s"), 5_000).unref());
      const outcomes = await Promise.all(connections.map((conn) => Promise.race([hung, conn.read().then(() => "no error", (error) => error.code)])));
      expect(outcomes.filter((code) => code !== "ECONNRESET")).toEqual([]);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
