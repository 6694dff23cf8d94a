// Bulk transfers with real WireGuard clients, with the server's default options: what TCP
// must survive on real paths. Each client build (Debian's wireguard-go, with the kernel's
// default 208 KiB socket buffer, and the current one) downloads and uploads 200 MiB on
// the direct path, checked by SHA-256, with no retransmission timeout on either side; and
// 20 MiB each way through a relay that loses 1 % of the datagrams both ways, reorders and
// delays them. The same programs serve the real-client benchmark (bench/programs.mjs).

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { downloadSha256, PORTS, programFor } from "../../bench/programs.mjs";
import { genkey, pubkey, startServer, type Server, type TcpConnection } from "../../ts/index.js";
import type { LinkProfile } from "../support/lossy-relay.mjs";
import { interopSkipReason, startWgClient, type WgClient } from "./netns.js";
import { THREADS } from "../support/threads.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping bulk transfer tests: ${skipReason}`);

const T = 240_000;
const MiB = 1024 * 1024;
const DESTINATION = "198.51.100.20";
const LOSSY: LinkProfile = { delayMs: 20, jitterMs: 2, loss: 0.01, reorder: 0.01 };

/** Retransmission timeouts the client's kernel TCP has counted (in its namespace). */
async function clientTimeouts(client: WgClient): Promise<number> {
  const netstat = (await client.exec("cat", ["/proc/net/netstat"])).stdout.split("\n");
  const names = netstat.find((line) => line.startsWith("TcpExt:"))!.split(/\s+/);
  const values = netstat.filter((line) => line.startsWith("TcpExt:"))[1]!.split(/\s+/);
  return Number(values[names.indexOf("TCPTimeouts")]);
}

/** What a stalled transfer looked like from both ends, for the log. */
let lastConnection: TcpConnection | undefined;
let lastError: unknown;
let lastServer: Server | undefined;
async function explain(client: WgClient, result: unknown): Promise<void> {
  const ss = await client.exec("ss", ["-tin", "dst", DESTINATION]);
  console.log(
    `[interop] stalled: ${JSON.stringify(result)}\n  client: ${ss.stdout.replace(/\s+/g, " ")}\n` +
      `  server connection: ${JSON.stringify(lastConnection?.stats())}, closed: ${await Promise.race([lastConnection?.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 10))])}, its program ended with ${String(lastError)} ${(lastError as { code?: string })?.code}\n` +
      `  server: ${JSON.stringify(lastServer?.stats().tcp)} ${JSON.stringify(lastServer?.stats().dropped)}`,
  );
}

async function download(client: WgClient, bytes: number) {
  const result = await client.task("tcp-download", [DESTINATION, PORTS.download, bytes, "--timeout", T - 30_000], { timeoutMs: T - 20_000 });
  if (result.json.error) await explain(client, result.json);
  expect(result.json.error).toBeUndefined();
  expect(result.json.bytes).toBe(bytes);
  expect(result.json.sha256).toBe(downloadSha256(bytes));
  return result.json as { ms: number; maxGapMs: number };
}

async function upload(client: WgClient, bytes: number) {
  const result = await client.task("tcp-upload", [DESTINATION, PORTS.upload, bytes, "--timeout", T - 30_000], { timeoutMs: T - 20_000 });
  if (result.json.error) await explain(client, result.json);
  expect(result.json.error).toBeUndefined();
  expect(result.json.serverBytes).toBe(bytes);
  expect(result.json.serverSha256).toBe(result.json.sha256);
  return result.json as { ms: number; maxGapMs: number };
}

const mbit = (bytes: number, ms: number) => ((bytes * 8) / ms / 1000).toFixed(0);

for (const implementation of ["debian", "current"] as const) {
  describe.skipIf(skipReason)(`bulk transfers with ${implementation}'s wireguard-go`, () => {
    let server: Server;
    let direct: WgClient;
    let lossy: WgClient;

    beforeAll(async () => {
      const serverKey = genkey();
      const [directKey, lossyKey] = [genkey(), genkey()];
      server = await startServer({
        ...THREADS,
        privateKey: serverKey,
        host: "0.0.0.0",
        port: 0,
        peers: [
          { publicKey: pubkey(directKey), allowedIps: ["10.0.0.2/32"] },
          { publicKey: pubkey(lossyKey), allowedIps: ["10.0.0.3/32"] },
        ],
        onTcp: async (conn) => {
          lastConnection = conn;
          lastError = undefined;
          try {
            await programFor(conn.local.port)?.(conn);
          } catch (error) {
            lastError = error;
            throw error;
          }
        },
      });
      lastServer = server;
      const common = { implementation, serverPublicKey: pubkey(serverKey), serverPort: server.address.port };
      [direct, lossy] = await Promise.all([
        startWgClient({ ...common, privateKey: directKey, tunnelAddresses: ["10.0.0.2/32"] }),
        startWgClient({ ...common, privateKey: lossyKey, tunnelAddresses: ["10.0.0.3/32"], relay: { up: LOSSY, down: LOSSY, seed: 6 } }),
      ]);
    }, T);

    afterEach(() => {
      // A stalled transfer once was the server failing (a panic in the engine): say so plainly.
      expect(server.error).toBeUndefined();
    });

    afterAll(async () => {
      await Promise.all([direct?.close(), lossy?.close()]);
      await server?.close();
    });

    it("downloads 200 MiB intact on the direct path, with no retransmission timeout", async () => {
      const before = server.stats().tcp.timeouts;
      const result = await download(direct, 200 * MiB);
      const tcp = server.stats().tcp;
      console.log(`[interop] ${implementation}: 200 MiB down in ${result.ms} ms (${mbit(200 * MiB, result.ms)} Mbit/s), longest gap ${result.maxGapMs} ms, ${tcp.retransmittedSegments} segments resent`);
      expect(tcp.timeouts - before).toBe(0);
    }, T);

    it("uploads 200 MiB intact on the direct path, with no retransmission timeout at the client", async () => {
      const before = await clientTimeouts(direct);
      const result = await upload(direct, 200 * MiB);
      console.log(`[interop] ${implementation}: 200 MiB up in ${result.ms} ms (${mbit(200 * MiB, result.ms)} Mbit/s), longest gap ${result.maxGapMs} ms`);
      expect((await clientTimeouts(direct)) - before).toBe(0);
    }, T);

    it("moves 20 MiB each way intact through 1 % loss, reordering and 20 ms each way", async () => {
      const down = await download(lossy, 20 * MiB);
      const up = await upload(lossy, 20 * MiB);
      const relay = await lossy.relay!.stop();
      console.log(
        `[interop] ${implementation} through the relay: 20 MiB down at ${mbit(20 * MiB, down.ms)} Mbit/s, up at ${mbit(20 * MiB, up.ms)} Mbit/s; ` +
          `relay lost ${relay.down.lostRandom} down and ${relay.up.lostRandom} up, reordered ${relay.down.reordered + relay.up.reordered}`,
      );
      expect(relay.down.lostRandom).toBeGreaterThan(0); // the loss really happened
      expect(relay.down.reordered + relay.up.reordered).toBeGreaterThan(0);
    }, T);
  });
}
