// The client role when its WireGuard server goes away and comes back, as a VPN user meets it:
// wireguard-go restarted (same keys) while the tunnel is up, its link down for a while, or
// restarted in the middle of a download. The services behind it and the kernel's TCP live on
// in the namespace meanwhile, so a connection they hold resumes once the tunnel does.
//
//   root ns: connectTunnel() / wg-netstack connect ──UDP──▶ namespace: wireguard-go 10.0.0.1/24
//                                                            FILE_PORT: a file sent slowly, ECHO_PORT: echo
//
// The WireGuard rules at work (whitepaper section 6): data that gets no answer within
// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (15 s) starts a new handshake (6.2), retried every
// REKEY_TIMEOUT (5 s) for REKEY_ATTEMPT_TIME (90 s) (6.4). A restarted server has no session
// and does not know our endpoint: only we can bring the tunnel back, 15 s after our data
// went unanswered. (Longer outages, past 90 s: test/in-process.test.ts, on virtual time.)

import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig, connectTunnel, genkey, pubkey, type Tunnel, type TunnelSocket } from "../../ts/index.js";
import { startCommand, waitForLine } from "../support/gateway-process.js";
import { lcgFile, lcgFileHash, lcgFileSource } from "../support/lcg-file.js";
import { THREADS, THREADS_FLAGS } from "../support/threads.js";
import { CLIENT_TASKS_PATH, cleanupStaleNamespaces, interopSkipReason, startWgServer, type WgServer } from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping the client role's recovery from a server restart: ${skipReason}`);

const T = 120_000;
const SERVER_ADDRESS = "10.0.0.1";
const FILE_PORT = 8000;
const ECHO_PORT = 7000;
const SINK_PORT = 8001;
const FILE_SIZE = 4 * 1024 * 1024;
/** How long the server stays away in the outage tests. */
const OUTAGE_MS = 20_000;
/**
 * After a restart the rules above bring the tunnel back in 15 s: this bound is three times
 * that. Without them the next thing to bring it back is our TCP's keep-alive, after 60 s of
 * silence (measured before the fix under Deno: 60 and 86 s).
 */
const RECOVERY_BOUND_MS = 45_000;
/**
 * After an outage longer than 15 s the handshake is under way, retried every 5 s: the first
 * retry after the server is back gets through. This bound is four times that (measured: 6.5 s;
 * before the fix under Deno, 40 s: the keep-alive again).
 */
const BACK_BOUND_MS = 20_000;

// The file goes out 64 KiB every 25 ms (about 1.6 s in all): slow enough to cut in the middle.
const FILE_SCRIPT = `
${lcgFileSource(FILE_SIZE)}
require("net").createServer((socket) => {
  socket.on("error", () => {});
  let offset = 0;
  const timer = setInterval(() => {
    const chunk = file.subarray(offset, (offset += 65536));
    if (offset < file.length) return socket.write(chunk);
    clearInterval(timer);
    socket.end(chunk);
  }, 25);
  socket.on("close", () => clearInterval(timer));
}).listen(${FILE_PORT}, "${SERVER_ADDRESS}", () => console.log("listening"));`;

// Reads a connection to its end, then answers with the SHA-256 and size of what came.
const SINK_SCRIPT = `
require("net").createServer((socket) => {
  socket.on("error", () => {});
  const hash = require("crypto").createHash("sha256");
  let size = 0;
  socket.on("data", (chunk) => { hash.update(chunk); size += chunk.length; });
  socket.on("end", () => socket.end(hash.digest("hex") + " " + size));
}).listen(${SINK_PORT}, "${SERVER_ADDRESS}", () => console.log("listening"));`;

/** A wireguard-go server with the file, sink and echo services behind it; `clients` its peers' keys and tunnel addresses. */
async function startServer(serverKey: string, clients: { key: string; address: string }[]): Promise<WgServer> {
  const server = await startWgServer({
    privateKey: serverKey,
    implementation: "current",
    tunnelAddresses: [`${SERVER_ADDRESS}/24`],
    peers: clients.map((client) => ({ publicKey: pubkey(client.key), allowedIps: [`${client.address}/32`] })),
  });
  const files = server.spawn("node", ["-e", FILE_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  const sink = server.spawn("node", ["-e", SINK_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
  const echo = server.spawn("node", [CLIENT_TASKS_PATH, "echo-server", String(ECHO_PORT), "--host", SERVER_ADDRESS], { stdio: ["ignore", "pipe", "inherit"] });
  await Promise.all([waitForLine(files, "listening"), waitForLine(sink, "listening"), waitForLine(echo, "listening")]);
  return server;
}

/** Reads `socket` to its end; calls `midway` once a quarter of the file has arrived (reading goes on). */
async function readFile(socket: net.Socket | TunnelSocket, midway: () => Promise<void>): Promise<{ hash: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  let cut: Promise<void> | undefined;
  socket.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
    if (!cut && size >= FILE_SIZE / 4) cut = midway();
  });
  await once(socket, "end");
  await cut;
  socket.destroy();
  return { hash: hash.digest("hex"), size };
}

/** Connects through the tunnel and waits for 'connect'; rejects with the socket's error. No timeout: connectTunnel's default (20 s). */
function connected(tunnel: Tunnel, port: number, timeout?: number): Promise<TunnelSocket> {
  return new Promise((resolve, reject) => {
    const socket = tunnel.connect({ port, host: SERVER_ADDRESS, ...(timeout === undefined ? {} : { timeout }) });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** One round trip through the echo service, on a new connection. */
async function echoOnce(tunnel: Tunnel, timeout?: number): Promise<void> {
  const socket = await connected(tunnel, ECHO_PORT, timeout);
  try {
    socket.write("ping\n");
    const [data] = (await once(socket, "data")) as [Buffer];
    expect(data.toString()).toBe("ping\n");
  } finally {
    socket.destroy();
  }
}

/** Sets the server namespace's end of its link down (the server keeps its session) and, after `ms`, up again. */
async function linkDownFor(server: WgServer, ms: number): Promise<void> {
  const link = async (state: "up" | "down") => {
    const result = await server.exec("ip", ["link", "set", server.nsIf, state]);
    if (result.code !== 0) throw new Error(`ip link set ${state}: ${result.stderr}`);
  };
  await link("down");
  await sleep(ms);
  await link("up");
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe.skipIf(skipReason)("connectTunnel when its WireGuard server restarts or goes away", () => {
  const clientKey = skipReason ? "" : genkey();
  const serverKey = skipReason ? "" : genkey();
  let server: WgServer;
  let tunnel: Tunnel;

  /** Downloads the file through `tunnel.connect`, calling `midway` when a quarter is in; when it completed. */
  async function download(midway: () => Promise<void>): Promise<number> {
    const socket = await connected(tunnel, FILE_PORT, 20_000);
    const result = await readFile(socket, midway);
    expect(result.size).toBe(FILE_SIZE);
    expect(result.hash).toBe(lcgFileHash(FILE_SIZE));
    return Date.now();
  }

  beforeAll(async () => {
    await cleanupStaleNamespaces();
    server = await startServer(serverKey, [{ key: clientKey, address: "10.0.0.2" }]);
    const config = clientConfig({ privateKey: clientKey, address: "10.0.0.2/32", serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, allowedIps: "10.0.0.0/24" });
    tunnel = await connectTunnel(config, THREADS);
  }, T);

  afterAll(async () => {
    await tunnel?.close();
    await server?.close();
  }, T);

  it("opens new connections again after the server restarted", async () => {
    await echoOnce(tunnel, 5_000);
    await server.stop();
    await server.start();
    const start = Date.now();
    // Our first SYN goes in the old session, which the new server does not have. 15 s on, a
    // handshake (6.2), about when the SYN's fourth retransmission goes (1 + 2 + 4 + 8 s); the
    // SYN goes again as the new session opens, not at 31 s: within the default connect
    // timeout, 20 s (before, under Deno: 31 s, so ETIMEDOUT).
    await echoOnce(tunnel);
    console.log(`[resilience] a new connection ${seconds(Date.now() - start)} after the restart`);
    expect(tunnel.stats().peers[0]!.sinceHandshakeMs).toBeLessThan(Date.now() - start);
  }, T);

  it("finishes a download intact across a server restart in its middle", async () => {
    let restarted = 0;
    const done = await download(async () => {
      await server.stop();
      await server.start();
      restarted = Date.now();
    });
    // Nothing of ours is in flight: the ACKs we sent last go unanswered, and that is what
    // brings the handshake. The server's kernel resends the rest once it has.
    console.log(`[resilience] the download completed ${seconds(done - restarted)} after the restart`);
    expect(done - restarted).toBeLessThan(RECOVERY_BOUND_MS);
  }, T);

  it("finishes an upload intact across a server restart in its middle", async () => {
    // Here our TCP is the sender: its data goes unanswered, its timer backs off (doubling from
    // 200 ms), and the data goes again when the new session opens.
    const socket = await connected(tunnel, SINK_PORT);
    const file = lcgFile(FILE_SIZE);
    let restarted = 0;
    const answer = new Promise<string>((resolve, reject) => {
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    for (let offset = 0; offset < FILE_SIZE; offset += 65_536) {
      if (offset === FILE_SIZE / 4) {
        await server.stop();
        await server.start();
        restarted = Date.now();
      }
      if (!socket.write(file.subarray(offset, offset + 65_536))) await once(socket, "drain");
      await sleep(25);
    }
    socket.end();
    expect(await answer).toBe(`${lcgFileHash(FILE_SIZE)} ${FILE_SIZE}`);
    const done = Date.now();
    console.log(`[resilience] the upload completed ${seconds(done - restarted)} after the restart`);
    expect(done - restarted).toBeLessThan(RECOVERY_BOUND_MS);
  }, T);

  it(`finishes a download intact across ${OUTAGE_MS / 1000} s without the server, which then restarts`, async () => {
    let back = 0;
    const done = await download(async () => {
      await server.stop();
      await sleep(OUTAGE_MS);
      await server.start();
      back = Date.now();
    });
    console.log(`[resilience] the download completed ${seconds(done - back)} after the server came back`);
    expect(done - back).toBeLessThan(BACK_BOUND_MS);
  }, T);

  it(`finishes a download intact across ${OUTAGE_MS / 1000} s with the server's link down, and connects again at once after`, async () => {
    let back = 0;
    const done = await download(async () => {
      await linkDownFor(server, OUTAGE_MS);
      back = Date.now();
    });
    // The server kept its session: what ends the wait is its kernel's next retransmission
    // (its RTO doubling from 200 ms: 25.4 s after the first loss, or 51 s).
    console.log(`[resilience] the download completed ${seconds(done - back)} after the link came back`);
    expect(done - back).toBeLessThan(RECOVERY_BOUND_MS);
    await echoOnce(tunnel, 5_000);
    expect(tunnel.stats().dropped).toMatchObject({ malformed: 0, authFailed: 0 });
  }, T);

  it("is left with no connection open once every one has ended, and the tunnel stays open", async () => {
    // A FIN cut by a restart is sent again (ours) or resent by the kernel (the server's).
    for (const start = Date.now(); tunnel.stats().connections > 0 && Date.now() - start < 60_000; ) await sleep(100);
    expect(tunnel.stats().connections).toBe(0);
    let closed = false;
    void tunnel.closed.then(() => (closed = true));
    await sleep(0);
    expect(closed).toBe(false);
  }, T);
});

describe.skipIf(skipReason)("wg-netstack connect --forward when its WireGuard server restarts", () => {
  const clientKey = skipReason ? "" : genkey();
  const serverKey = skipReason ? "" : genkey();
  let server: WgServer;
  let dir: string;
  let connect: ReturnType<typeof startCommand>;
  let port: number;

  beforeAll(async () => {
    await cleanupStaleNamespaces();
    server = await startServer(serverKey, [{ key: clientKey, address: "10.0.0.3" }]);
    dir = mkdtempSync(join(tmpdir(), "wgn-resilience-"));
    const configPath = join(dir, "wg0.conf");
    writeFileSync(configPath, clientConfig({ privateKey: clientKey, address: "10.0.0.3/32", serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, allowedIps: "10.0.0.0/24" }));
    connect = startCommand(["connect", configPath, "--json", ...THREADS_FLAGS, "--forward", `tcp:0=${SERVER_ADDRESS}:${FILE_PORT}`], 20_000);
    const up = await connect.find((event) => event.type === "up");
    port = Number(/:(\d+)$/.exec(up.listening[0].address)![1]);
  }, T);

  afterAll(async () => {
    await connect?.stop();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  it("relays a download intact across a server restart in its middle, and logs it closed", async () => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    let restarted = 0;
    const result = await readFile(socket, async () => {
      await server.stop();
      await server.start();
      restarted = Date.now();
    });
    const done = Date.now();
    console.log(`[resilience] the forwarded download completed ${seconds(done - restarted)} after the restart`);
    expect(done - restarted).toBeLessThan(RECOVERY_BOUND_MS);
    expect(result.size).toBe(FILE_SIZE);
    expect(result.hash).toBe(lcgFileHash(FILE_SIZE));
    const flow = await connect.find((event) => event.type === "flow");
    expect(flow).toMatchObject({ protocol: "tcp", dst: { host: SERVER_ADDRESS, port: FILE_PORT }, down: FILE_SIZE, end: "closed" });
    // Meanwhile the log says nothing: there is no line for the tunnel going or coming back.
    expect(connect.events.map((event) => event.type)).toEqual(["up", "flow"]);
    expect(connect.stderr()).toBe("");
  }, T);
});
