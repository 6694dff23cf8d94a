// Tests of the interop harness itself (no wg-netstack server involved):
//
//   namespace C (startWgClient)  --UDP-->  root: lossy relay on 10.201.C.1:P  --UDP-->  namespace S (startWgServer)
//   wireguard-go, default routes            (a perfect wire here; where the         wireguard-go listening on
//   through the tunnel                       server under test would listen)        51820, 10.0.0.1 / fd00::1,
//                                                                                   echo-server on 7 (+ info on 8)
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLIENT_TASKS_PATH,
  cleanupStaleNamespaces,
  harnessInternals,
  interopSkipReason,
  parseWgDump,
  runClientTask,
  startWgClient,
  startWgServer,
  type WgClient,
  type WgServer,
} from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping netns harness tests: ${skipReason}`);

const T = 60_000;
const SERVER_WG_PORT = 51820;

function genKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = execFileSync("wg", ["genkey"], { encoding: "utf8" }).trim();
  const publicKey = execFileSync("wg", ["pubkey"], { input: `${privateKey}\n`, encoding: "utf8" }).trim();
  return { privateKey, publicKey };
}

function waitForLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    let err = "";
    const t = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stderr?.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      buf += d;
      const i = buf.indexOf("\n");
      if (i >= 0) {
        clearTimeout(t);
        resolve(buf.slice(0, i));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`exited with ${code} before printing: ${err}`));
    });
  });
}

/** client-tasks' echo-server (TCP + UDP echo on 7, info on 8) in the server's namespace, served by the kernel. */
async function startEchoServer(server: WgServer) {
  const echo = server.spawn(process.execPath, [CLIENT_TASKS_PATH, "echo-server", "7"], { stdio: ["ignore", "pipe", "pipe"] });
  expect(JSON.parse(await waitForLine(echo, 10_000))).toMatchObject({ listening: true, port: 7 });
}

describe.skipIf(skipReason)("netns interop harness", () => {
  const clientKeys = skipReason ? undefined! : genKeyPair();
  const serverKeys = skipReason ? undefined! : genKeyPair();
  const psk = skipReason ? undefined! : execFileSync("wg", ["genpsk"], { encoding: "utf8" }).trim();
  const extraKeys = skipReason ? undefined! : genKeyPair();
  let server: WgServer | undefined;
  let client: WgClient | undefined;

  beforeAll(async () => {
    await cleanupStaleNamespaces();

    // --- reference WireGuard server in its own namespace S
    server = await startWgServer({
      privateKey: serverKeys.privateKey,
      listenPort: SERVER_WG_PORT,
      tunnelAddresses: ["10.0.0.1/24", "fd00::1/64"],
      peers: [
        { publicKey: clientKeys.publicKey, allowedIps: ["10.0.0.2/32", "fd00::2/128"], presharedKey: psk },
        { publicKey: extraKeys.publicKey, allowedIps: ["10.0.0.3/32"] },
      ],
    });
    await startEchoServer(server);

    // --- the real client, through a relay in the root namespace (where the server under test would listen)
    client = await startWgClient({
      privateKey: clientKeys.privateKey,
      serverPublicKey: serverKeys.publicKey,
      server,
      relay: {},
      tunnelAddresses: ["10.0.0.2/32", "fd00::2/128"],
      presharedKey: psk,
      persistentKeepalive: 1,
    });
  }, T);

  afterAll(async () => {
    await client?.close();
    await server?.close();
  }, T);

  it("creates a namespace wired to the root namespace", async () => {
    const c = client!;
    expect(c.name).toBe(harnessInternals.nsName(c.slot));
    expect(c.hostAddress).toMatch(/^10\.201\.\d+\.1$/);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).toContain(c.name);
    const addrs = await c.exec("ip", ["-o", "addr", "show", "dev", c.iface]);
    expect(addrs.stdout).toContain("10.0.0.2/32");
    expect(addrs.stdout).toContain("fd00::2/128");
    const ping = await c.exec("ping", ["-c", "1", "-W", "5", c.hostAddress]);
    expect(ping.code, ping.stderr + ping.stdout).toBe(0);
    // stdin is passed through
    const cat = await c.exec("cat", [], { input: "hello stdin" });
    expect(cat).toMatchObject({ code: 0, stdout: "hello stdin" });
    const slow = await c.exec("sleep", ["10"], { timeoutMs: 200 });
    expect(slow.code).toBe(124);
  }, T);

  it("completes a WireGuard handshake", async () => {
    const dump = await client!.waitForHandshake(20_000);
    expect(dump.peers).toHaveLength(1);
    expect(dump.peers[0].publicKey).toBe(serverKeys.publicKey);
    expect(dump.peers[0].presharedKey).toBe(psk);
    expect(dump.peers[0].endpoint).toBe(`${client!.hostAddress}:${client!.relay!.listen.port}`);
    expect(dump.peers[0].latestHandshake).toBeGreaterThan(0);
    expect(parseWgDump(await client!.wgShow()).publicKey).toBe(clientKeys.publicKey);
  }, T);

  it("udp-request through the tunnel (IPv4 and IPv6)", async () => {
    const v4 = await client!.task("udp-request", ["10.0.0.1", 7, "hello v4"]);
    expect(v4.code, JSON.stringify(v4)).toBe(0);
    expect(v4.json).toMatchObject({ reply: "hello v4", from: "10.0.0.1", fromPort: 7 });

    const v6 = await client!.task("udp-request", ["fd00::1", 7, "hello v6", "--from", "fd00::2"]);
    expect(v6.code, JSON.stringify(v6)).toBe(0);
    expect(v6.json).toMatchObject({ reply: "hello v6", from: "fd00::1", localAddress: "fd00::2" });
  }, T);

  it("tcp-echo, tcp-pingpong and tcp-read through the tunnel", async () => {
    const bytes = 2_000_000;
    const echo4 = await client!.task("tcp-echo", ["10.0.0.1", 7, bytes]);
    expect(echo4.code, JSON.stringify(echo4)).toBe(0);
    expect(echo4.json.sent).toBe(bytes);
    expect(echo4.json.received).toBe(bytes);
    expect(echo4.json.receivedSha256).toBe(echo4.json.sentSha256);

    const echo6 = await client!.task("tcp-echo", ["fd00::1", 7, 100_000, "--from", "fd00::2"]);
    expect(echo6.code, JSON.stringify(echo6)).toBe(0);
    expect(echo6.json).toMatchObject({ sent: 100_000, received: 100_000, localAddress: "fd00::2" });
    expect(echo6.json.receivedSha256).toBe(echo6.json.sentSha256);

    const pp = await client!.task("tcp-pingpong", ["10.0.0.1", 7, 50]);
    expect(pp.code, JSON.stringify(pp)).toBe(0);
    expect(pp.json.count).toBe(50);

    const info = await client!.task("tcp-read", ["10.0.0.1", 8, "--from", "10.0.0.2"]);
    expect(info.code, JSON.stringify(info)).toBe(0);
    const seen = JSON.parse(info.json.data);
    expect(seen.remoteAddress).toMatch(/10\.0\.0\.2$/);
    expect(seen.remotePort).toBe(info.json.localPort);

    const refused = await client!.task("tcp-read", ["10.0.0.1", 9, "--timeout", "5000"]);
    expect(refused.code).not.toBe(0);
    expect(refused.json.error).toMatch(/ECONNREFUSED/);

    const dump = await client!.wgDump();
    expect(dump.peers[0].txBytes).toBeGreaterThan(bytes);
    expect(dump.peers[0].rxBytes).toBeGreaterThan(bytes);
  }, T);

  it("udp-request reports a timeout as an error", async () => {
    const r = await client!.task("udp-request", ["10.0.0.1", 9, "nobody", "--timeout", "500"]);
    expect(r.code).not.toBe(0);
    expect(r.json).toEqual({ error: "timeout" });
  }, T);

  it("close() removes everything and is idempotent", async () => {
    const extra = await startWgClient({
      privateKey: extraKeys.privateKey,
      serverPublicKey: serverKeys.publicKey,
      server: server!,
      relay: {},
      tunnelAddresses: ["10.0.0.3/32"],
    });
    expect(extra.slot).not.toBe(client!.slot);
    const sleeper = extra.spawn("sleep", ["300"]);
    const wgPids = execFileSync("ip", ["netns", "pids", extra.name], { encoding: "utf8" });
    expect(wgPids.trim()).not.toBe("");
    await Promise.all([extra.close(), extra.close()]);
    await extra.close();
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toMatch(new RegExp(`^${extra.name}( |$)`, "m"));
    expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toContain(`${extra.hostIf}@`);
    expect(fs.existsSync(extra.tmpdir)).toBe(false);
    expect(fs.existsSync(harnessInternals.lockPath(extra.slot))).toBe(false);
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);
    for (const pid of wgPids.split(/\s+/).filter(Boolean)) {
      expect(fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ")).toBe(false);
    }
    expect((await extra.exec("true", [])).code).not.toBe(0);
  }, T);

  it("cleanupStaleNamespaces() removes leftovers of a crashed run", async () => {
    const { nsName, hostIfName, nsIfName, lockPath, LOCK_DIR } = harnessInternals;
    const netnsList = () => execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    // Reserve two slots the way the harness does (O_EXCL lock owned by us), so concurrent
    // runs of this test (whose cleanup would otherwise eat our fake leftovers) do not interfere.
    fs.mkdirSync(LOCK_DIR, { recursive: true });
    const reserve = () => {
      for (let n = 254; n > 0; n--) {
        try {
          fs.writeFileSync(lockPath(n), JSON.stringify({ pid: process.pid }), { flag: "wx" });
        } catch {
          continue;
        }
        if (!new RegExp(`^${nsName(n)}( |$)`, "m").test(netnsList())) return n;
        fs.unlinkSync(lockPath(n));
      }
      throw new Error("no free slot");
    };
    const crashed = reserve();
    const orphan = reserve();
    // Leftover of a crashed run: namespace, veth, a process inside, temp dir with a key, lock naming a dead owner.
    const tmpdir = fs.mkdtempSync(`${os.tmpdir()}/wgns-interop-`);
    fs.writeFileSync(`${tmpdir}/private.key`, "secret\n", { mode: 0o600 });
    execFileSync("ip", ["netns", "add", nsName(crashed)]);
    execFileSync("ip", ["link", "add", hostIfName(crashed), "type", "veth", "peer", "name", nsIfName(crashed), "netns", nsName(crashed)]);
    const sleeper = spawn("ip", ["netns", "exec", nsName(crashed), "sleep", "300"], { stdio: "ignore" });
    // Orphan without any lock file (e.g. lock dir wiped): namespace only.
    execFileSync("ip", ["netns", "add", nsName(orphan)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(execFileSync("ip", ["netns", "pids", nsName(crashed)], { encoding: "utf8" }).trim()).not.toBe("");
    // ... and now the owner "crashes"
    const deadPid = Number(execFileSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" }));
    fs.writeFileSync(lockPath(crashed), JSON.stringify({ pid: deadPid, startTime: "1", tmpdir }));
    fs.unlinkSync(lockPath(orphan));

    await cleanupStaleNamespaces();

    const list = netnsList();
    expect(list).not.toMatch(new RegExp(`^${nsName(crashed)}( |$)`, "m"));
    expect(list).not.toMatch(new RegExp(`^${nsName(orphan)}( |$)`, "m"));
    expect(list).toMatch(new RegExp(`^${client!.name}( |$)`, "m")); // live ones are untouched
    expect(list).toMatch(new RegExp(`^${server!.name}( |$)`, "m"));
    expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toContain(`${hostIfName(crashed)}@`);
    expect(fs.existsSync(tmpdir)).toBe(false);
    expect(fs.existsSync(lockPath(crashed))).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);

    // and the live tunnel still works
    const v4 = await client!.task("udp-request", ["10.0.0.1", 7, "still here"]);
    expect(v4.json.reply).toBe("still here");
  }, T);

  it("runClientTask works in any namespace (server side)", async () => {
    const r = await runClientTask(server!, "udp-request", ["10.0.0.1", 7, "local"]);
    expect(r.json.reply).toBe("local");
  }, T);
});

describe.skipIf(skipReason)("both wireguard-go builds, direct and through a lossy relay", () => {
  const serverKeys = skipReason ? undefined! : genKeyPair();
  const directKeys = skipReason ? undefined! : genKeyPair();
  const lossyKeys = skipReason ? undefined! : genKeyPair();
  let server: WgServer | undefined;
  const clients: WgClient[] = [];

  beforeAll(async () => {
    server = await startWgServer({
      implementation: "current",
      privateKey: serverKeys.privateKey,
      tunnelAddresses: ["10.0.0.1/24"],
      peers: [
        { publicKey: directKeys.publicKey, allowedIps: ["10.0.0.2/32"] },
        { publicKey: lossyKeys.publicKey, allowedIps: ["10.0.0.3/32"] },
      ],
    });
    await startEchoServer(server);
  }, 5 * T); // the first run builds the current wireguard-go

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
  }, T);

  it("runs the current wireguard-go from the Go module proxy on both ends of a direct link", async () => {
    const client = await startWgClient({ implementation: "current", privateKey: directKeys.privateKey, serverPublicKey: serverKeys.publicKey, server: server!, tunnelAddresses: ["10.0.0.2/32"] });
    clients.push(client);
    expect(client.endpoint).toEqual({ host: `10.202.${server!.slot}.1`, port: 51820 });
    const echo = await client.task("tcp-echo", ["10.0.0.1", 7, 2_000_000]);
    expect(echo.json.error).toBeUndefined();
    expect(echo.json.receivedSha256).toBe(echo.json.sentSha256);
    // Debian's build logs 0.0.20220316; the pinned module is 0.0.20250522.
    for (const ns of [client, server!]) expect(ns.wgLog()).toMatch(/version 0\.0\.20250522/);
  }, T);

  it("carries TCP through a relay that loses 5 % of the datagrams towards a Debian client", async () => {
    const client = await startWgClient({
      privateKey: lossyKeys.privateKey,
      serverPublicKey: serverKeys.publicKey,
      server: server!,
      tunnelAddresses: ["10.0.0.3/32"],
      relay: { down: { loss: 0.05 }, up: { delayMs: 5 }, seed: 3 },
    });
    clients.push(client);
    expect(client.endpoint).toEqual(client.relay!.listen);
    expect(client.wgLog()).toMatch(/version 0\.0\.20220316/);
    const echo = await client.task("tcp-echo", ["10.0.0.1", 7, 1_000_000, "--timeout", 40_000], { timeoutMs: T });
    expect(echo.json.error).toBeUndefined();
    expect(echo.json.receivedSha256).toBe(echo.json.sentSha256);
    const counters = await client.relay!.stop();
    expect(counters.down.lostRandom).toBeGreaterThan(0);
    expect(counters.down.lostRandom / counters.down.received).toBeLessThan(0.1);
    expect(counters.up.lostRandom).toBe(0);
    expect(counters.up.forwarded).toBeGreaterThan(500);
  }, T);
});
