// The integrity suite through `wg-netstack serve` with a real WireGuard client: every close
// order in roles.mjs, directly and through `--via` SOCKS5 and HTTP CONNECT test proxies.
// Each flow's two ends are peer.mjs programs in namespaces this test creates; their
// reports are checked against each other and against the flow log's verdict.
//
//   client ns (wireguard-go) ──wireguard──▶ gateway (root ns) ──[proxy on 127.0.0.1]──▶ test host ns

import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigStore } from "../../ts/gateway/config-store.js";
import { reconnect, startGateway } from "../support/gateway-process.js";
import { startHttpConnectProxy, startSocks5Proxy, type TestProxy } from "../support/test-proxies.js";
import { createNamespace, interopSkipReason, startWgClient, type Netns, type WgClient } from "../interop/netns.js";
import { flowKeys, integrityProblems, SCENARIOS } from "./roles.mjs";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping the gateway's integrity suite: ${skipReason}`);

const T = 120_000;
const PEER = fileURLToPath(new URL("./peer.mjs", import.meta.url));

/** The last line a program printed, as JSON (an error report when it printed none). */
function lastJson(stdout: string, what: string): any {
  const line = stdout.trim().split("\n").filter(Boolean).pop();
  if (!line) return { error: `${what} printed nothing` };
  return JSON.parse(line);
}

/** Collects a child's stdout; resolves at the first line containing `text`, and again with everything at exit. */
function watch(child: ChildProcess): { line(text: string): Promise<void>; exited: Promise<string> } {
  let seen = "";
  const waiting: { text: string; resolve(): void }[] = [];
  child.stdout!.on("data", (data) => {
    seen += data;
    for (const wait of waiting.filter((w) => seen.includes(w.text))) wait.resolve();
  });
  const exited = new Promise<string>((resolve) => child.on("exit", () => resolve(seen)));
  return {
    line: (text) =>
      new Promise<void>((resolve, reject) => {
        if (seen.includes(text)) return resolve();
        waiting.push({ text, resolve });
        exited.then(() => reject(new Error(`exited without printing ${text}: ${seen}`)));
      }),
    exited,
  };
}

describe.skipIf(skipReason)("integrity: the gateway with a real WireGuard client", () => {
  let testHost: Netns;
  let client: WgClient;
  let gateway: ReturnType<typeof startGateway>;
  let listening: Record<string, any>;
  let conf: string;
  const proxies: TestProxy[] = [];
  let nextPort = 9100; // one upstream port per flow, so the flow log's record is easy to find

  beforeAll(async () => {
    testHost = await createNamespace();
    conf = mkdtempSync(join(tmpdir(), "wgn-integrity-gateway-"));
    gateway = startGateway(conf, ["--listen", "0"]);
    listening = await gateway.find((e) => e.type === "listening");
    const peer = new ConfigStore(conf).peers()[0]!;
    client = await startWgClient({ privateKey: peer.privateKey, serverPublicKey: listening.publicKey, serverPort: listening.address.port, tunnelAddresses: peer.address });
    proxies.push(await startSocks5Proxy(), await startHttpConnectProxy());
  }, T);

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([client?.close(), testHost?.close(), ...proxies.map((proxy) => proxy.close())]);
    if (conf) rmSync(conf, { recursive: true, force: true });
  }, T);

  async function flow(index: number) {
    const keys = flowKeys();
    const port = nextPort++;
    const args = [testHost.nsAddress, String(port), String(index), keys.client, keys.upstream];
    const upstream = watch(testHost.spawn("node", [PEER, "upstream", ...args]));
    await upstream.line("listening");
    const clientRun = await client.exec("node", [PEER, "client", ...args], { timeoutMs: 90_000 });
    const clientReport = lastJson(clientRun.stdout, `the client (${clientRun.stderr})`);
    const upstreamReport = lastJson(await upstream.exited, "the upstream");
    const record = await gateway.find((e) => e.type === "flow" && e.dst.port === port, 30_000);
    return { clientReport, upstreamReport, record };
  }

  const paths: [string, () => string | undefined][] = [
    ["directly", () => undefined],
    ["through --via socks5://", () => `socks5://127.0.0.1:${proxies[0]!.port}`],
    ["through --via http:// (CONNECT)", () => `http://127.0.0.1:${proxies[1]!.port}`],
  ];
  for (const [pathName, via] of paths) {
    describe(pathName, () => {
      beforeAll(async () => {
        const proxy = via();
        if (!proxy) return;
        await gateway.stop();
        gateway = startGateway(conf, ["--listen", String(listening.address.port), "--via", proxy]);
        await gateway.find((e) => e.type === "listening");
        await reconnect(client, listening.publicKey);
      }, T);

      Object.entries(SCENARIOS).forEach(([name, scenario], index) => {
        it(name, async () => {
          const { clientReport, upstreamReport, record } = await flow(index);
          expect(clientReport.error).toBeUndefined();
          expect(upstreamReport.error).toBeUndefined();
          if (via() && scenario.end === "upstream-reset" && record.end === "closed") {
            // The proxy can hide a reset behind it: Linux may report the upstream's RST to
            // the proxy's read as end of stream, and a pipe() relay passes that on as FIN.
            // The gateway then saw FINs only; hold it to what it saw: nothing lost or
            // changed on its own hops.
            expect(clientReport.received.firstWrongByte).toBeUndefined();
            expect(clientReport.received.bytes).toBe(record.down);
            expect(clientReport.received.ending).toBe("eof");
            return;
          }
          expect(integrityProblems(scenario, clientReport, upstreamReport, record.end)).toEqual([]);
          // The log counts what passed the gateway: all of it, on a clean close.
          if (record.end === "closed") expect([record.up, record.down]).toEqual([clientReport.sent.bytes, upstreamReport.sent.bytes]);
        }, T);
      });
    });
  }
});
