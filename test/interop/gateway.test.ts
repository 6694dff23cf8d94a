// `wg-netstack serve` (the real process, under the runtime running the tests) with real
// WireGuard clients (wireguard-go in namespaces). Every destination is a test host in a
// namespace this test creates, or a proxy it runs: nothing leaves the machine, and DNS
// goes to the test host's own DNS server, never to the machine's resolvers.
//
//   client ns ──wireguard──▶ gateway (root ns) ──veth──▶ test host ns (10.201.N.2):
//                                 │                     HTTP, TCP/UDP echo, DNS
//                                 └── SOCKS5 test proxy on 127.0.0.1 (after the restart)

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigStore } from "../../ts/gateway/config-store.js";
import { GATEWAY_MAIN, reconnect, RUNTIME_COMMAND, startGateway, waitForLine } from "../support/gateway-process.js";
import { lcgFileHash, lcgFileSource } from "../support/lcg-file.js";
import { startSocks5Proxy, type TestProxy } from "../support/test-proxies.js";
import { CLIENT_TASKS_PATH, createNamespace, interopSkipReason, startWgClient, type Netns, type WgClient } from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping the gateway with a real client: ${skipReason}`);

const T = 120_000;
const ECHO_PORT = 7000; // TCP and UDP echo (client-tasks.mjs echo-server)
const HTTP_PORT = 8000;
const DNS_PORT = 53;
const CLOSED_PORT = 7777;
const NAME = "files.wg-netstack.test"; // what the test DNS server knows: the test host
const FILE_SIZE = 2 * 1024 * 1024;
// The file the test host serves: bytes from a fixed LCG, so the test knows its hash.
const FILE_SCRIPT = `
${lcgFileSource(FILE_SIZE)}
require("http").createServer((req, res) => res.end(file)).listen(${HTTP_PORT}, process.argv[1], () => console.log("listening"));`;

const expectedFileHash = () => lcgFileHash(FILE_SIZE);

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = GATEWAY_MAIN;
const runtime = RUNTIME_COMMAND;
/** curl in the client's namespace: the SHA-256 of the body, or curl's failure. */
async function download(client: WgClient, url: string, maxTime = 30) {
  const result = await client.exec("sh", ["-c", `curl -sS --max-time ${maxTime} -o /tmp/wgn-$$ ${url}; code=$?; sha256sum < /tmp/wgn-$$; rm -f /tmp/wgn-$$; exit $code`], { timeoutMs: 90_000 });
  return { code: result.code, stderr: result.stderr, sha256: result.stdout.split(" ")[0] };
}

/**
 * What the client's kernel says when it connects: the error code, and how long it took (logged,
 * not asserted: a busy machine may take any time). Unanswered, the kernel would retry its SYN
 * for about two minutes, past the 30 s this waits: a gateway that never answers fails here.
 */
async function connectFailure(client: WgClient, host: string, port: number): Promise<{ code: string; ms: number }> {
  const script = `const start = Date.now(); require("node:net").connect(${port}, "${host}")
    .on("connect", () => (console.log(JSON.stringify({ code: "connected" })), process.exit()))
    .on("error", (e) => console.log(JSON.stringify({ code: e.code, ms: Date.now() - start })));`;
  return JSON.parse((await client.exec("node", ["-e", script], { timeoutMs: 30_000 })).stdout);
}

const peerCommand = (...args: string[]) => spawnSync(runtime[0]!, [...runtime.slice(1), main, "peer", ...args], { encoding: "utf8", timeout: 30_000 });

describe.skipIf(skipReason)("wg-netstack serve with a real WireGuard client", () => {
  let testHost: Netns;
  let client: WgClient;
  let tablet: WgClient | undefined;
  let gateway: ReturnType<typeof startGateway>;
  let proxy: TestProxy;
  let conf: string;
  let pcap: string;
  let listening: Record<string, any>;
  const url = () => `http://${testHost.nsAddress}:${HTTP_PORT}/file`;

  beforeAll(async () => {
    testHost = await createNamespace();
    const echo = testHost.spawn("node", [CLIENT_TASKS_PATH, "echo-server", String(ECHO_PORT), "--host", testHost.nsAddress]);
    const http = testHost.spawn("node", ["-e", FILE_SCRIPT, testHost.nsAddress]);
    const dns = testHost.spawn("node", [join(root, "test/support/dns-server.mjs"), testHost.nsAddress, String(DNS_PORT), `${NAME}=${testHost.nsAddress}`]);
    await Promise.all([waitForLine(echo, "listening"), waitForLine(http, "listening"), waitForLine(dns, "listening")]);
    proxy = await startSocks5Proxy();

    conf = mkdtempSync(join(tmpdir(), "wgn-interop-gateway-"));
    pcap = join(conf, "capture.pcap");
    gateway = startGateway(conf, ["--listen", "0", "--dns-upstream", `${testHost.nsAddress}:${DNS_PORT}`, "--pcap", pcap]);
    listening = await gateway.find((e) => e.type === "listening");
    const peer = new ConfigStore(conf).peers()[0]!;
    client = await startWgClient({ privateKey: peer.privateKey, serverPublicKey: listening.publicKey, serverPort: listening.address.port, tunnelAddresses: peer.address });
  }, T);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([client?.close(), tablet?.close(), testHost?.close(), proxy?.close()]);
    if (conf) rmSync(conf, { recursive: true, force: true });
  }, T);

  it("downloads a file over HTTP from the test host, checked by SHA-256, and logs the flow", async () => {
    const result = await download(client, url());
    expect(result).toMatchObject({ code: 0, stderr: "", sha256: expectedFileHash() });
    expect(await gateway.flowTo(HTTP_PORT)).toMatchObject({
      peer: "peer1",
      protocol: "tcp",
      src: { host: "10.77.0.2" },
      dst: { host: testHost.nsAddress, port: HTTP_PORT },
      name: `${testHost.nsAddress}:${HTTP_PORT}`, // the HTTP Host header
      end: "closed",
    });
    expect((await gateway.flowTo(HTTP_PORT)).down).toBeGreaterThan(FILE_SIZE);
  }, T);

  it("echoes 1 MiB over TCP both ways through the test host", async () => {
    const echo = await client.task("tcp-echo", [testHost.nsAddress, ECHO_PORT, 1024 * 1024]);
    expect(echo.json.error).toBeUndefined();
    expect(echo.json.receivedSha256).toBe(echo.json.sentSha256);
  }, T);

  it("refuses a connection to a closed port at once: the client sees connection refused", async () => {
    const result = await connectFailure(client, testHost.nsAddress, CLOSED_PORT);
    console.log(`[interop] refused at the client after ${result.ms} ms`);
    expect(result.code).toBe("ECONNREFUSED"); // an RST, not a timeout
    expect(await gateway.flowTo(CLOSED_PORT)).toMatchObject({ end: "refused", error: expect.stringContaining("ECONNREFUSED") });
  }, T);

  it("tells the client a UDP port nothing listens on is closed: the test host's ICMP port unreachable reaches its connected socket", async () => {
    const udp = await client.task("udp-request", [testHost.nsAddress, CLOSED_PORT, "anyone there?", "--connect", "yes", "--timeout", "3000"]);
    if ("Deno" in globalThis) {
      // Deno's node:dgram reports no ICMP error to the gateway's socket: the client waits.
      console.log("[interop] under Deno the gateway cannot hear the upstream's ICMP errors for UDP");
      expect(udp.json.error).toBe("timeout");
      return;
    }
    expect(udp.json.error).toMatch(/^ECONNREFUSED/);
    expect(await gateway.find((e) => e.type === "flow" && e.protocol === "udp" && e.dst.port === CLOSED_PORT)).toMatchObject({ end: "refused", error: expect.stringContaining("ECONNREFUSED") });
  }, T);

  it("tells the client a host it cannot reach is unreachable, as soon as it knows", async () => {
    // Nothing answers this address on the test host's link: the gateway's ARP fails after ~3 s.
    const nobody = testHost.nsAddress.replace(/\.2$/, ".3");
    const result = await connectFailure(client, nobody, HTTP_PORT);
    // Bun's node:net reports a connect's EHOSTUNREACH as ECONNREFUSED (oven-sh/bun#37093):
    // a gateway under Bun cannot tell, and refuses.
    const [code, end] = "Bun" in globalThis ? ["ECONNREFUSED", "refused"] : ["EHOSTUNREACH", "unreachable"];
    console.log(`[interop] ${code} at the client after ${result.ms} ms`);
    expect(result.code).toBe(code); // an ICMP unreachable (or RST), not a timeout
    expect(await gateway.find((e) => e.type === "flow" && e.dst.host === nobody)).toMatchObject({ end, error: expect.stringContaining(code) });
  }, T);

  it("relays UDP to the test host, and resolves a name through the virtual resolver from the test DNS server", async () => {
    const udp = await client.task("udp-request", [testHost.nsAddress, ECHO_PORT, "hello over udp"]);
    expect(udp.json).toMatchObject({ reply: "hello over udp", from: testHost.nsAddress, fromPort: ECHO_PORT });

    // The resolver is the gateway's own tunnel address, IPv4 and IPv6, as the client configs say.
    const resolvers = new ConfigStore(conf).server().address.map((cidr) => cidr.split("/")[0]!);
    const resolve = `const { Resolver } = require("node:dns").promises; const r = new Resolver({ timeout: 5000, tries: 1 });
      r.setServers(process.argv.slice(1)); r.resolve4("${NAME}").then((a) => console.log(JSON.stringify(a)), (e) => console.log(JSON.stringify(e.code)));`;
    for (const resolver of resolvers) {
      const result = await client.exec("node", ["-e", resolve, resolver.includes(":") ? `[${resolver}]:53` : resolver]);
      expect(JSON.parse(result.stdout)).toEqual([testHost.nsAddress]);
    }
    const nxdomain = await client.exec("node", ["-e", resolve.replace(NAME, "nowhere.test"), resolvers[0]!]);
    expect(JSON.parse(nxdomain.stdout)).toBe("ENOTFOUND");
    expect(await gateway.find((e) => e.type === "flow" && e.name === `${NAME} A` && e.dst.host === resolvers[1])).toMatchObject({ protocol: "udp", end: "answered" });
  }, T);

  it("lets a peer added while running connect; once removed it cannot, and its handshake shows as an unknown key", async () => {
    const added = peerCommand("add", "tablet", "--conf", conf);
    expect(added.status).toBe(0);
    expect(added.stdout).toContain(`Endpoint = ${listening.endpoint}`);
    await gateway.find((e) => e.type === "peer-added" && e.peer === "tablet");
    const record = new ConfigStore(conf).peers().find((peer) => peer.name === "tablet")!;
    tablet = await startWgClient({ implementation: "current", privateKey: record.privateKey, serverPublicKey: listening.publicKey, serverPort: listening.address.port, tunnelAddresses: record.address });
    expect(await download(tablet, url())).toMatchObject({ code: 0, sha256: expectedFileHash() });
    await gateway.find((e) => e.type === "flow" && e.peer === "tablet" && e.end === "closed");

    expect(peerCommand("remove", "tablet", "--conf", conf).status).toBe(0);
    await gateway.find((e) => e.type === "peer-removed" && e.peer === "tablet");
    expect((await download(tablet, url(), 3)).code).toBe(28); // curl: timed out, its packets go nowhere
    await reconnect(tablet, listening.publicKey);
    expect((await download(tablet, url(), 3)).code).toBe(28);
    const tabletKey = (await tablet.wgDump()).publicKey;
    expect(await gateway.find((e) => e.type === "unknown-peer")).toMatchObject({ publicKey: tabletKey });
  }, T);

  it("wrote the decrypted packets to --pcap, which tshark reads back", async () => {
    expect(await gateway.stop()).toBe(0);
    expect(gateway.events.at(-1)).toMatchObject({ type: "summary", tcp: expect.any(Number), udp: expect.any(Number) });
    // A UDP flow is logged when it ends: this one by the stop.
    expect(await gateway.find((e) => e.type === "flow" && e.protocol === "udp" && e.dst.port === ECHO_PORT)).toMatchObject({ up: 14, down: 14, end: "shutdown" });
    const fields = (filter: string, field: string) => {
      const result = spawnSync("tshark", ["-r", pcap, "-Y", filter, "-T", "fields", "-e", field], { encoding: "utf8" });
      expect(result.status).toBe(0);
      return result.stdout.trim().split("\n").filter(Boolean);
    };
    expect(fields(`tcp.dstport == ${HTTP_PORT} && tcp.flags.syn == 1`, "ip.src")).toContain("10.77.0.2");
    expect(fields(`http.request`, "http.host")).toContain(`${testHost.nsAddress}:${HTTP_PORT}`);
    expect(fields(`dns.flags.response == 1`, "dns.qry.name")).toContain(NAME);
    expect(fields(`tcp.srcport == ${HTTP_PORT}`, "tcp.len").reduce((sum, n) => sum + Number(n), 0)).toBeGreaterThan(FILE_SIZE);
  }, T);

  it("keeps its keys across a restart: the same client config downloads again, now through a SOCKS5 proxy", async () => {
    const peerFile = readFileSync(join(conf, "peers", "peer1.json"), "utf8");
    gateway = startGateway(conf, ["--listen", String(listening.address.port), "--dns-upstream", `${testHost.nsAddress}:${DNS_PORT}`, "--via", `socks5://127.0.0.1:${proxy.port}`]);
    expect(await gateway.find((e) => e.type === "listening")).toMatchObject({ publicKey: listening.publicKey, endpoint: listening.endpoint });
    expect(readFileSync(join(conf, "peers", "peer1.json"), "utf8")).toBe(peerFile);
    await reconnect(client, listening.publicKey);
    expect(await download(client, url())).toMatchObject({ code: 0, stderr: "", sha256: expectedFileHash() });
    expect(proxy.targets).toEqual([`${testHost.nsAddress}:${HTTP_PORT}`]);
    expect(await gateway.flowTo(HTTP_PORT)).toMatchObject({ peer: "peer1", end: "closed" });
  }, T);
});
