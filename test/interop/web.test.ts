// `wg-netstack serve --web` in a real browser (headless Chromium) with real WireGuard
// clients (wireguard-go in namespaces): the token gate, the QR code, live flows, add and
// remove peer, and a capture, all through the page. The destination is a test host in a
// namespace this test creates; nothing leaves the machine.
//
//   client ns ──wireguard──▶ gateway (root ns, --web 127.0.0.1) ──veth──▶ test host ns: HTTP
//                                   ▲
//                            Chromium (root ns)

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesText } from "../../ts/gateway/flow-log.js";
import { ConfigStore } from "../../ts/gateway/config-store.js";
import { parseConfig } from "../../ts/tunnel/config.js";
import { browserSkipReason, launchBrowser, testOutputDir } from "../support/browser.js";
import { startGateway, waitForLine } from "../support/gateway-process.js";
import { createNamespace, interopSkipReason, startWgClient, type Netns, type WgClient } from "./netns.js";

const skipReason = interopSkipReason() ?? browserSkipReason();
if (skipReason) console.log(`[interop] skipping the web page with a real client: ${skipReason}`);

const T = 120_000;
const HTTP_PORT = 8000;
const BODY_SIZE = 150_000;
const HTTP_SCRIPT = `require("http").createServer((req, res) => res.end("x".repeat(${BODY_SIZE})))
  .listen(${HTTP_PORT}, process.argv[1], () => console.log("listening"));`;
/** A generous bound for what should take a second: it only catches hangs. */
const HANG_MS = 15_000;

describe.skipIf(skipReason)("wg-netstack serve --web in a browser, with a real WireGuard client", () => {
  let testHost: Netns;
  let client: WgClient;
  let laptop: WgClient | undefined;
  let gateway: ReturnType<typeof startGateway>;
  let conf: string;
  let listening: Record<string, any>;
  let pageUrl: string;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const output = testOutputDir("web");

  /** curl in a client's namespace: its exit code and, on success, the local port it used. */
  const curl = async (from: WgClient, path: string, maxTime = 20) => {
    const result = await from.exec("curl", ["-sS", "--max-time", String(maxTime), "-o", "/dev/null", "-w", "%{local_port}", `http://${testHost.nsAddress}:${HTTP_PORT}${path}`], { timeoutMs: 60_000 });
    return { code: result.code, localPort: Number(result.stdout), stderr: result.stderr };
  };
  /** The flow table's row for the client's connection from `localPort`, once it has ended; how long that took to show. */
  const endedFlowRow = async (localPort: number) => {
    const start = Date.now();
    const row = page.locator("#flows tbody tr:not(.open)", { hasText: `10.77.0.2:${localPort} → ${testHost.nsAddress}:${HTTP_PORT}` });
    await row.waitFor({ timeout: HANG_MS });
    return { row, ms: Date.now() - start };
  };
  const download = async (click: () => Promise<void>, name: string) => {
    const [file] = await Promise.all([page.waitForEvent("download", { timeout: HANG_MS }), click()]);
    const path = join(output, name);
    await file.saveAs(path);
    return { path, suggested: file.suggestedFilename() };
  };

  beforeAll(async () => {
    testHost = await createNamespace();
    const http = testHost.spawn("node", ["-e", HTTP_SCRIPT, testHost.nsAddress]);
    await waitForLine(http, "listening");
    conf = mkdtempSync(join(tmpdir(), "wgn-interop-web-"));
    gateway = startGateway(conf, ["--listen", "0", "--dns-upstream", `${testHost.nsAddress}:53`, "--web", "127.0.0.1:0"]);
    listening = await gateway.find((e) => e.type === "listening");
    pageUrl = (await gateway.find((e) => e.type === "web")).url;
    base = new URL(pageUrl).origin;
    const peer = new ConfigStore(conf).peers()[0]!;
    client = await startWgClient({ privateKey: peer.privateKey, serverPublicKey: listening.publicKey, serverPort: listening.address.port, tunnelAddresses: peer.address });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
  }, T);

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await Promise.all([client?.close(), laptop?.close(), testHost?.close()]);
    if (conf) rmSync(conf, { recursive: true, force: true });
  }, T);

  it("refuses the page and the API without the token, and changes without the header", async () => {
    for (const path of ["/", "/api/peers", "/api/status", "/api/peers/peer1/config", "/api/events", "/?token=wrong"]) {
      const response = await fetch(`${base}${path}`);
      expect(response.status, path).toBe(401);
      expect(await response.text()).not.toContain("PrivateKey");
    }
    expect((await page.goto(`${base}/`))!.status()).toBe(401);
    const token = new URL(pageUrl).searchParams.get("token")!;
    // The cookie alone does not allow a change: a form on another site would send it too.
    const withCookie = await fetch(`${base}/api/peers`, { method: "POST", headers: { cookie: `wg_netstack_token=${token}` }, body: '{"name":"csrf"}' });
    expect(withCookie.status).toBe(403);
    const wrongBearer = await fetch(`${base}/api/peers`, { method: "POST", headers: { authorization: "Bearer nope" }, body: '{"name":"csrf"}' });
    expect(wrongBearer.status).toBe(401);
    expect(new ConfigStore(conf).peers().map((peer) => peer.name)).toEqual(["peer1"]);
    // The token is printed once, in the web event, and nowhere else in the log; private keys never.
    const log = JSON.stringify(gateway.events);
    expect(log.split(token).length - 1).toBe(1);
    expect(log).not.toContain(new ConfigStore(conf).peers()[0]!.privateKey);
  }, T);

  it("opens with the token, trades it for a cookie, and shows peer1 with a QR code that decodes to peer1.conf", async () => {
    const response = await page.goto(pageUrl);
    expect(response!.status()).toBe(200);
    expect(page.url()).toBe(`${base}/`); // the token left the address bar
    await page.locator('#peers tr[data-peer="peer1"]').waitFor({ timeout: HANG_MS });
    await expect.poll(() => page.locator("#status").textContent(), { timeout: HANG_MS }).toContain(listening.publicKey);

    await page.locator('tr[data-peer="peer1"] button[data-action="show"]').click();
    await page.waitForFunction(() => (document.getElementById("detail-qr") as HTMLImageElement).naturalWidth > 0, undefined, { timeout: HANG_MS });
    const qrShot = join(output, "peer1-qr.png");
    await page.locator("#detail-qr").screenshot({ path: qrShot });
    const decoded = spawnSync("zbarimg", ["--raw", "--quiet", qrShot], { encoding: "utf8" });
    expect(decoded.status, decoded.stderr).toBe(0);
    const peer1Conf = readFileSync(join(conf, "peer1.conf"), "utf8");
    expect(decoded.stdout).toBe(`${peer1Conf}\n`); // zbarimg ends each symbol with a newline
    await expect.poll(() => page.locator("#detail-config").textContent()).toBe(peer1Conf);
  }, T);

  it("shows a curl through the tunnel in the flow table once it ends, with its destination and bytes", async () => {
    const result = await curl(client, "/live");
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const { row, ms } = await endedFlowRow(result.localPort);
    console.log(`[web] the flow showed in the table ${ms} ms after curl returned`);
    const flow = (await gateway.find((e) => e.type === "flow" && e.src.port === result.localPort)) as Record<string, any>;
    expect(flow).toMatchObject({ peer: "peer1", protocol: "tcp", end: "closed" });
    expect(flow.down).toBeGreaterThan(BODY_SIZE);
    const cells = await row.locator("td").allInnerTexts();
    expect(cells.slice(1, 5)).toEqual(["peer1", "tcp", `10.77.0.2:${result.localPort} → ${testHost.nsAddress}:${HTTP_PORT}`, `${testHost.nsAddress}:${HTTP_PORT}`]);
    expect(cells.slice(5, 7)).toEqual([bytesText(flow.up), bytesText(flow.down)]);
    expect(cells[8]).toBe("closed");

    // The filters: another peer's, or UDP only, hide it; its address shows it.
    await page.locator("#filter-protocol").selectOption("udp");
    await row.waitFor({ state: "detached", timeout: HANG_MS });
    await page.locator("#filter-protocol").selectOption("");
    await page.locator("#filter-text").fill(`:${result.localPort}`);
    await row.waitFor({ timeout: HANG_MS });
    expect(await page.locator("#flows tbody tr").count()).toBe(1);
    await page.locator("#filter-text").fill("");
  }, T);

  it("captures peer1's packets from the page; the download opens in tshark with the client's HTTP request", async () => {
    await page.locator("#capture-peer").selectOption("peer1");
    await page.locator("#capture-start").click();
    await expect.poll(() => page.locator("#capture-stop").isEnabled(), { timeout: HANG_MS }).toBe(true);
    const result = await curl(client, "/captured");
    expect(result.code).toBe(0);
    await endedFlowRow(result.localPort);
    await page.locator("#capture-stop").click();
    await page.locator("#capture-download").waitFor({ timeout: HANG_MS });
    const pcap = await download(() => page.locator("#capture-download").click(), "capture.pcap");
    expect(pcap.suggested).toMatch(/^wg-netstack-.*\.pcap$/);
    const tshark = spawnSync("tshark", ["-r", pcap.path, "-Y", "http.request", "-T", "fields", "-e", "ip.src", "-e", "http.host", "-e", "http.request.uri"], { encoding: "utf8" });
    expect(tshark.status, tshark.stderr).toBe(0);
    expect(tshark.stdout).toContain(`10.77.0.2\t${testHost.nsAddress}:${HTTP_PORT}\t/captured`);
  }, T);

  it("adds a peer whose downloaded .conf brings a second client up and through; removing it cuts that client off", async () => {
    await page.locator("#new-peer-name").fill("laptop");
    await page.locator("#add-peer button[type=submit]").click();
    await expect.poll(() => page.locator("#detail-title").textContent(), { timeout: HANG_MS }).toContain("laptop");
    await page.locator('#peers tr[data-peer="laptop"]').waitFor({ timeout: HANG_MS });
    await page.waitForFunction(() => (document.getElementById("detail-qr") as HTMLImageElement).naturalWidth > 0, undefined, { timeout: HANG_MS });
    await gateway.find((e) => e.type === "peer-added" && e.peer === "laptop");

    const file = await download(() => page.locator("#detail-download").click(), "laptop.conf");
    expect(file.suggested).toBe("laptop.conf");
    const config = parseConfig(readFileSync(file.path, "utf8"));
    expect(config.peers[0]).toMatchObject({ publicKey: listening.publicKey, endpoint: listening.endpoint });
    laptop = await startWgClient({ implementation: "current", privateKey: config.privateKey, serverPublicKey: config.peers[0]!.publicKey, serverPort: listening.address.port, tunnelAddresses: config.address });
    const through = await curl(laptop, "/laptop");
    expect(through).toMatchObject({ code: 0, stderr: "" });
    await gateway.find((e) => e.type === "flow" && e.peer === "laptop" && e.src.port === through.localPort && e.end === "closed");

    page.once("dialog", (dialog) => void dialog.accept());
    await page.locator('#peers tr[data-peer="laptop"] button[data-action="remove"]').click();
    await page.locator('#peers tr[data-peer="laptop"]').waitFor({ state: "detached", timeout: HANG_MS });
    await gateway.find((e) => e.type === "peer-removed" && e.peer === "laptop");
    expect(new ConfigStore(conf).peers().map((peer) => peer.name)).toEqual(["peer1"]);
    expect((await curl(laptop, "/after-remove", 3)).code).toBe(28); // curl: timed out, its packets go nowhere
  }, T);

  it("draws peer1's rate and looks right (screenshot in test-results/web/)", async () => {
    await page.locator('tr[data-peer="peer1"] button[data-action="show"]').click();
    await page.waitForFunction(() => (document.getElementById("detail-qr") as HTMLImageElement).naturalWidth > 0, undefined, { timeout: HANG_MS });
    // The last minute's rate graph has points for peer1's downloads.
    await expect.poll(() => page.locator('#peers tr[data-peer="peer1"] svg polyline').count(), { timeout: HANG_MS }).toBe(2);
    expect(await page.locator('#peers tr[data-peer="peer1"] td').nth(3).textContent()).toMatch(/ago$/);
    await page.screenshot({ path: join(output, "page.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, T);
});
