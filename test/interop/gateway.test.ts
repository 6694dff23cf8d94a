// `wg-netstack serve` (the real process, under the runtime running the tests) with a real
// WireGuard client (wireguard-go in a namespace). The destinations are a test host in
// another namespace this test creates: nothing leaves the machine.
//
//   client ns ──wireguard──▶ gateway (root ns) ──veth──▶ test host ns (10.201.N.2)

import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigStore } from "../../ts/gateway/config-store.js";
import { CLIENT_TASKS_PATH, createNamespace, interopSkipReason, startWgClient, type Netns, type WgClient } from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping the gateway with a real client: ${skipReason}`);

const T = 120_000;
const ECHO_PORT = 7000; // TCP and UDP echo (client-tasks.mjs echo-server); also the DNS upstream
const HTTP_PORT = 8000;
const CLOSED_PORT = 7777;
const FILE_SIZE = 2 * 1024 * 1024;
// The file the test host serves: bytes from a fixed LCG, so the test knows its hash.
const FILE_SCRIPT = `
const size = ${FILE_SIZE}; const file = Buffer.alloc(size); let x = 1;
for (let i = 0; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; file[i] = x >>> 24; }
require("http").createServer((req, res) => res.end(file)).listen(${HTTP_PORT}, process.argv[1], () => console.log("listening"));`;

function expectedFileHash(): string {
  const file = Buffer.alloc(FILE_SIZE);
  let x = 1;
  for (let i = 0; i < FILE_SIZE; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    file[i] = x >>> 24;
  }
  return createHash("sha256").update(file).digest("hex");
}

const root = fileURLToPath(new URL("../..", import.meta.url));
const runtime = "Deno" in globalThis ? [process.execPath, "run", "-A"] : [process.execPath];

/** Resolves once `child` prints a line containing `text`. */
function waitForLine(child: ChildProcess, text: string, lines: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`no "${text}" line; got ${JSON.stringify(lines)}`)), 30_000);
    child.stdout!.on("data", (data) => {
      buffered += data;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      lines.push(...parts);
      if (parts.some((line) => line.includes(text))) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

describe.skipIf(skipReason)("wg-netstack serve with a real WireGuard client", () => {
  let testHost: Netns;
  let client: WgClient;
  let gateway: ChildProcess;
  const log: string[] = [];
  let conf: string;
  const events = () => log.map((line) => JSON.parse(line) as Record<string, any>);
  const flowTo = (port: number) => events().find((e) => e.type === "flow" && e.dst.port === port);
  const until = async (condition: () => unknown) => {
    for (const start = Date.now(); !condition(); await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (Date.now() - start > 10_000) throw new Error(`timed out; log: ${log.join("\n")}`);
    }
  };

  beforeAll(async () => {
    testHost = await createNamespace();
    const echo = testHost.spawn("node", [CLIENT_TASKS_PATH, "echo-server", String(ECHO_PORT), "--host", testHost.nsAddress]);
    const http = testHost.spawn("node", ["-e", FILE_SCRIPT, testHost.nsAddress]);
    await Promise.all([waitForLine(echo, "listening"), waitForLine(http, "listening")]);

    conf = mkdtempSync(join(tmpdir(), "wgn-interop-gateway-"));
    gateway = spawn(runtime[0]!, [...runtime.slice(1), join(root, "dist/gateway/main.js"), "serve", "--json", "--conf", conf,
      "--listen", "0", "--dns-upstream", `${testHost.nsAddress}:${ECHO_PORT}`], { stdio: ["ignore", "pipe", "inherit"] });
    await waitForLine(gateway, '"listening"', log);
    const listening = events().find((e) => e.type === "listening")!;
    const peer = new ConfigStore(conf).peers()[0]!;
    client = await startWgClient({ privateKey: peer.privateKey, serverPublicKey: listening.publicKey, serverPort: listening.address.port, tunnelAddresses: peer.address });
  }, T);

  afterAll(async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway.once("exit", resolve));
      process.kill(gateway.pid!, "SIGINT");
      await exited;
    }
    await client?.close();
    await testHost?.close();
    if (conf) rmSync(conf, { recursive: true, force: true });
  }, T);

  it("downloads a file over HTTP from the test host, checked by SHA-256, and logs the flow", async () => {
    const url = `http://${testHost.nsAddress}:${HTTP_PORT}/file`;
    const result = await client.exec("sh", ["-c", `curl -sS --max-time 30 ${url} | sha256sum`], { timeoutMs: 90_000 });
    expect(result.stderr).toBe("");
    expect(result.stdout.split(" ")[0]).toBe(expectedFileHash());
    await until(() => flowTo(HTTP_PORT));
    expect(flowTo(HTTP_PORT)).toMatchObject({ peer: "peer1", protocol: "tcp", dst: { host: testHost.nsAddress }, name: `${testHost.nsAddress}:${HTTP_PORT}`, end: "closed" });
    expect(flowTo(HTTP_PORT)!.down).toBeGreaterThan(FILE_SIZE);
  }, T);

  it("echoes 1 MiB over TCP both ways through the test host", async () => {
    const echo = await client.task("tcp-echo", [testHost.nsAddress, ECHO_PORT, 1024 * 1024]);
    expect(echo.json.error).toBeUndefined();
    expect(echo.json.receivedSha256).toBe(echo.json.sentSha256);
  }, T);

  it("fails a connection to a closed port within a second", async () => {
    // Refused (the lead's accept/refuse) or reset right after connecting (today's adapter): fast either way.
    const result = await client.exec("curl", ["-sS", "-o", "/dev/null", "-w", "%{time_total}", "--max-time", "10", `http://${testHost.nsAddress}:${CLOSED_PORT}/`]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBe(28); // curl's timeout
    expect(Number(result.stdout)).toBeLessThan(1);
    await until(() => flowTo(CLOSED_PORT));
    expect(flowTo(CLOSED_PORT)).toMatchObject({ end: "refused" });
  }, T);

  it("relays UDP to the test host and DNS through the virtual resolver", async () => {
    const udp = await client.task("udp-request", [testHost.nsAddress, ECHO_PORT, "hello over udp"]);
    expect(udp.json).toMatchObject({ reply: "hello over udp", from: testHost.nsAddress, fromPort: ECHO_PORT });
    // The echo server stands in for the resolver: what matters is the path and the source of the answer.
    const resolver = new ConfigStore(conf).server().address[0].split("/")[0]!; // the gateway's tunnel address
    const dns = await client.task("udp-request", [resolver, 53, "a query"]);
    expect(dns.json).toMatchObject({ reply: "a query", from: resolver, fromPort: 53 });
    await until(() => events().some((e) => e.type === "flow" && e.end === "answered"));
  }, T);
});
