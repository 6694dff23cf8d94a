// The README's main job: `npm start` runs examples/echo-server.mjs. A real WireGuard
// client takes the config it prints and gets its traffic echoed.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { interopSkipReason, startWgClient, type WgClient } from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping example server test: ${skipReason}`);

const EXAMPLE = fileURLToPath(new URL("../../examples/echo-server.mjs", import.meta.url));

describe.skipIf(skipReason)("examples/echo-server.mjs with a real client", () => {
  let child: ChildProcess | undefined;
  let client: WgClient | undefined;

  afterAll(async () => {
    child?.kill("SIGTERM");
    await client?.close();
  });

  it("prints a working client config and echoes", async () => {
    child = spawn(process.execPath, [EXAMPLE, "0"], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no config printed: ${output}`)), 20_000);
      child!.stdout!.on("data", (data) => {
        output += data;
        if (output.includes("Ctrl-C")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const field = (name: string) => output.match(new RegExp(`^${name} = (.+)$`, "m"))![1]!.trim();
    const endpoint = field("Endpoint");
    expect(endpoint).not.toMatch(/^0\.0\.0\.0|^\[::\]/);
    client = await startWgClient({
      privateKey: field("PrivateKey"),
      serverPublicKey: field("PublicKey"),
      serverPort: Number(endpoint.split(":").pop()),
      tunnelAddresses: field("Address").split(/,\s*/),
    });
    const echo = await client.task("tcp-echo", ["192.0.2.10", 7, 256 * 1024]);
    expect(echo.json.error).toBeUndefined();
    expect(echo.json.receivedSha256).toBe(echo.json.sentSha256);
    const ping = await client.exec("ping", ["-c", "2", "-i", "0.2", "-W", "2", "192.0.2.1"]);
    expect(ping.code, ping.stdout).toBe(0);
  }, 60_000);
});
