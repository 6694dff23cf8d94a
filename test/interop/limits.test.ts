// One peer must not be able to take the server down: limits, memory and faults, with real
// WireGuard clients (wireguard-go in network namespaces). The server runs with its default
// limits unless a test says otherwise; numbers measured here are printed for the README
// ("Security and reliability").

import { once } from "node:events";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { genkey, pubkey, startServer, type Server, type TcpConnection } from "../../ts/index.js";
import { CLIENT_TASKS_PATH, interopSkipReason, startWgClient, type WgClient } from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping limits tests: ${skipReason}`);

const T = 180_000;
const MiB = 1024 * 1024;
const mib = (bytes: number) => (bytes / MiB).toFixed(1);

async function echo(conn: TcpConnection): Promise<void> {
  for await (const chunk of conn) await conn.write(chunk);
  await conn.end();
}

/** Polls `check` every 50 ms until it holds; fails with `what` after `ms`. */
async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * `tcp-many` in the client's namespace (see client-tasks.mjs): resolves `served` once every
 * connection got its byte back; `close()` asks the client to end them all; `closed` resolves
 * with the client's count of its connections' errors by code once all of them closed.
 */
function holdConnections(client: WgClient, host: string, port: number, count: number) {
  const child = client.spawn(process.execPath, [CLIENT_TASKS_PATH, "tcp-many", host, String(port), String(count), "--timeout", "120000"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    const json = line.done ? { error: "no output" } : JSON.parse(line.value);
    if (json.error) throw new Error(`tcp-many: ${JSON.stringify(json)}`);
    return json;
  };
  const served: Promise<{ served: number; ms: number }> = next();
  const closed: Promise<{ closed: number; errors: Record<string, number> }> = served.then(next);
  closed.catch(() => {});
  return {
    served,
    closed,
    close: () => child.stdin!.write("close\n"),
    exited: child.exitCode !== null ? Promise.resolve() : once(child, "exit").then(() => {}),
  };
}

describe.skipIf(skipReason)("many connections from one real client", () => {
  let server: Server;
  let client: WgClient;

  beforeAll(async () => {
    const serverKey = genkey();
    const clientKey = genkey();
    server = await startServer({
      privateKey: serverKey,
      host: "0.0.0.0",
      port: 0,
      peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
      onTcp: echo,
    });
    client = await startWgClient({ privateKey: clientKey, serverPublicKey: pubkey(serverKey), serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32"] });
  }, T);

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("serves 10,000 concurrent connections from one peer in bounded memory, and releases them all", async () => {
    const before = server.stats().memoryBytes;
    const many = holdConnections(client, "198.51.100.1", 1000, 10_000);
    const { ms } = await many.served;
    const open = server.stats();
    expect(open.connections).toBe(10_000);
    expect(open.tcp.refusedOverLimit).toBe(0);
    console.log(`[interop] 10,000 connections served in ${ms} ms; wasm memory ${mib(before)} MiB before, ${mib(open.memoryBytes)} MiB with all open`);
    expect(open.memoryBytes).toBeLessThan(64 * MiB);

    many.close();
    const { closed, errors } = await many.closed;
    expect({ closed, errors }).toEqual({ closed: 10_000, errors: {} });
    await until("every connection closed on the server", () => server.stats().connections === 0);
    expect(server.stats().tcp.bufferedBytes).toBe(0);
    await many.exited;
  }, T);
});
