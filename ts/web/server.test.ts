// `wg-netstack serve --web` under Node, Deno and Bun (the real process, dist/gateway/main.js
// built by `node build.mjs`), seen from headless Chromium: the page loads, updates as a
// client's flow goes through (a client stack on loopback; the gateway may reach loopback
// here), adds a peer; the JSON API answers scripts; the gateway stops with the page open.

import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserSkipReason, launchBrowser, testOutputDir } from "../../test/support/browser.js";
import { startCommand } from "../../test/support/gateway-process.js";
import { startTunnelClient } from "../../test/support/loopback-stacks.js";
import { ConfigStore } from "../gateway/config-store.js";

const skipReason = browserSkipReason();
if (skipReason) console.log(`[web] skipping the web page under each runtime: ${skipReason}`);

const T = 120_000;
const HANG_MS = 20_000;
const bin = (name: string) => fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url));
const RUNTIMES: Record<string, string[]> = { node: [process.execPath], deno: [bin("deno"), "run", "-A"], bun: [bin("bun")] };

describe.skipIf(skipReason)("serve --web under each runtime", () => {
  let browser: Browser;
  let echo: net.Server;
  let echoPort: number;

  beforeAll(async () => {
    browser = await launchBrowser();
    echo = net.createServer((socket) => socket.on("error", () => {}).pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoPort = (echo.address() as net.AddressInfo).port;
  }, T);
  afterAll(async () => {
    await browser?.close();
    echo?.close();
  });

  for (const [runtime, command] of Object.entries(RUNTIMES)) {
    it(`${runtime}: the page loads, shows a flow open and then ended, adds a peer; the gateway stops with the page open`, async () => {
      const conf = mkdtempSync(join(tmpdir(), `wgn-web-${runtime}-`));
      const args = ["serve", "--json", "--conf", conf, "--listen", "127.0.0.1:0", "--dns-upstream", "127.0.0.1:9", "--allow-loopback", "--web", "127.0.0.1:0"];
      const gateway = startCommand(args, HANG_MS, command);
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const listening = await gateway.find((e) => e.type === "listening");
        const { url } = await gateway.find((e) => e.type === "web");
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(error.message));
        await page.goto(url);
        await page.locator('#peers tr[data-peer="peer1"]').waitFor({ timeout: HANG_MS });
        await expect.poll(() => page.locator("#connection").textContent(), { timeout: HANG_MS }).toBe("live");

        const peer = new ConfigStore(conf).peers()[0]!;
        const client = await startTunnelClient({ privateKey: peer.privateKey, serverPublicKey: listening.publicKey, endpoint: listening.address, address: peer.address });
        try {
          const conn = await client.connect({ host: "127.0.0.1", port: echoPort });
          await conn.write("hello through the tunnel");
          expect(new TextDecoder().decode(await conn.read())).toBe("hello through the tunnel");
          // Open, it shows as open; once both sides end, the same row shows how it ended.
          const openRow = page.locator("#flows tbody tr.open", { hasText: `→ 127.0.0.1:${echoPort}` });
          await openRow.waitFor({ timeout: HANG_MS });
          // While open, its bytes so far come in with the stats events: 24 up, 24 echoed down.
          await expect.poll(() => openRow.locator("td.num").allTextContents(), { timeout: HANG_MS }).toEqual(["24 B", "24 B", expect.any(String)]);
          await conn.end();
          for await (const _ of conn); // the echo server's FIN
        } finally {
          await client.close();
        }
        const row = page.locator("#flows tbody tr:not(.open)", { hasText: `→ 127.0.0.1:${echoPort}` });
        await row.waitFor({ timeout: HANG_MS });
        expect(await row.locator("td").allTextContents()).toEqual(expect.arrayContaining(["peer1", "tcp", "24 B", "closed"]));
        // The peers' counters and handshake come in with the stats events.
        await expect.poll(() => page.locator('#peers tr[data-peer="peer1"] td').nth(3).textContent(), { timeout: HANG_MS }).toMatch(/ago$/);

        await page.locator("#new-peer-name").fill("tablet");
        await page.locator("#add-peer button[type=submit]").click();
        await page.locator('#peers tr[data-peer="tablet"]').waitFor({ timeout: HANG_MS });
        await page.waitForFunction(() => (document.getElementById("detail-qr") as HTMLImageElement).naturalWidth > 0, undefined, { timeout: HANG_MS });
        await gateway.find((e) => e.type === "peer-added" && e.peer === "tablet");
        await page.screenshot({ path: join(testOutputDir("web"), `page-${runtime}.png`), fullPage: true });
        expect(errors).toEqual([]);

        // The event stream the page holds open does not keep the gateway from stopping.
        expect(await gateway.stop()).toBe(0);
        expect(gateway.events.at(-1)).toMatchObject({ type: "summary", tcp: 1 });
      } finally {
        await context.close();
        await gateway.stop();
        rmSync(conf, { recursive: true, force: true });
      }
    }, T);
  }

  it("node: the JSON API answers scripts with the Bearer header, and says what is wrong", async () => {
    const conf = mkdtempSync(join(tmpdir(), "wgn-web-api-"));
    const gateway = startCommand(["serve", "--json", "--conf", conf, "--listen", "127.0.0.1:0", "--dns-upstream", "127.0.0.1:9", "--web", "127.0.0.1:0"], HANG_MS);
    try {
      const { url } = await gateway.find((e) => e.type === "web");
      const { origin, searchParams } = new URL(url);
      const headers = { authorization: `Bearer ${searchParams.get("token")}` };
      const get = (path: string) => fetch(`${origin}${path}`, { headers });
      const post = (path: string, body?: unknown) => fetch(`${origin}${path}`, { method: "POST", headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

      expect(await (await get("/api/status")).json()).toMatchObject({ peers: 1, flows: { flows: 0, open: 0 } });
      // ?token= answers a script's GET at once; the page's visit trades it for a cookie.
      const byQuery = await fetch(`${origin}/api/status?token=${searchParams.get("token")}`, { redirect: "manual" });
      expect([byQuery.status, byQuery.headers.get("set-cookie")]).toEqual([200, null]);
      expect(await byQuery.json()).toMatchObject({ peers: 1 });
      const visit = await fetch(url, { redirect: "manual" });
      expect([visit.status, visit.headers.get("location")]).toEqual([303, "/"]);
      expect(visit.headers.get("set-cookie")).toContain("HttpOnly");
      expect(await (await get("/api/peers")).json()).toMatchObject([{ name: "peer1", endpoint: null, sinceHandshakeMs: null, up: 0, down: 0 }]);
      const added = await post("/api/peers", { name: "phone" });
      expect(added.status).toBe(201);
      const { config } = await added.json();
      const download = await get("/api/peers/phone/config?download");
      expect(download.headers.get("content-disposition")).toBe('attachment; filename="phone.conf"');
      expect(await download.text()).toBe(config);
      expect((await get("/api/peers/phone/qr.svg")).headers.get("content-type")).toBe("image/svg+xml");

      expect((await post("/api/peers", { name: "phone" })).status).toBe(400); // taken
      expect(await (await post("/api/peers", { name: "../x" })).json()).toMatchObject({ error: expect.stringContaining("peer name") });
      expect((await post("/api/peers", "just a string")).status).toBe(400);
      expect((await post("/api/peers", { name: "x".repeat(5000) })).status).toBe(413);
      expect((await post("/api/peers", { name: "é".repeat(2100) })).status).toBe(413); // 4,200 bytes in 2,100 characters
      expect((await get("/api/peers/nobody/config")).status).toBe(404);
      expect((await post("/api/peers/nobody/remove")).status).toBe(404);
      expect((await get("/api/peers/peer1/remove")).status).toBe(405);
      expect((await get("/api/nothing")).status).toBe(404);

      expect(await (await post("/api/capture/start", {})).json()).toMatchObject({ running: true, peer: null });
      expect((await post("/api/capture/start", {})).status).toBe(409);
      expect(await (await post("/api/capture/stop")).json()).toMatchObject({ running: false, ready: true });
      expect((await post("/api/capture/stop")).status).toBe(409);
      const pcap = new Uint8Array(await (await get("/api/capture.pcap")).arrayBuffer());
      expect(Buffer.from(pcap.subarray(0, 4)).toString("hex")).toBe("d4c3b2a1"); // a pcap header, no packets

      expect(await (await post("/api/peers/phone/remove")).json()).toEqual({ removed: "phone" });
      expect((await (await get("/api/peers")).json()).map((peer: { name: string }) => peer.name)).toEqual(["peer1"]);
      await gateway.find((e) => e.type === "peer-removed" && e.peer === "phone");
      expect(await gateway.stop()).toBe(0);
    } finally {
      await gateway.stop();
      rmSync(conf, { recursive: true, force: true });
    }
  }, T);
});
