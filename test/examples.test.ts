// The programs in examples/ run under Node, Deno and Bun. The echo server (the
// library section's first example): a real WireGuard client takes the config it prints
// and gets its traffic echoed.

import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { interopSkipReason, startWgClient, type WgClient } from "./interop/netns.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => `${root}node_modules/.bin/${name}`;
const RUNTIMES: Record<string, string[]> = {
  node: [process.execPath],
  deno: [bin("deno"), "run", "-A", "--unstable-net"],
  bun: [bin("bun")],
};
const example = (name: string) => `${root}examples/${name}`;

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping the echo server with a real client: ${skipReason}`);

describe.each(Object.keys(RUNTIMES))("examples under %s", (runtime) => {
  const [command, ...prefix] = RUNTIMES[runtime]!;
  let child: ChildProcess | undefined;
  let client: WgClient | undefined;

  afterEach(async () => {
    child?.kill("SIGTERM");
    await client?.close();
  });

  it("two-stacks.mjs dials through its own tunnel", () => {
    const output = execFileSync(command!, [...prefix, example("two-stacks.mjs")], { cwd: root, encoding: "utf8", timeout: 30_000 });
    expect(output).toContain("tcp: hello 10.0.0.2, you asked for 192.0.2.80:80");
    expect(output).toContain("udp: pong to 10.0.0.2");
  });

  it.skipIf(skipReason)("echo-server.mjs prints a working client config and QR code, and echoes", async () => {
    child = spawn(command!, [...prefix, example("echo-server.mjs"), "0"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
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
    expect(output).toMatch(/▄|█/); // the QR code
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
    expect(ping.code).toBe(0);
  }, 60_000);
});

// The README's TypeScript examples compile against the package as built (dist/'s types),
// with the npm clients they use: read top to bottom as one module, as a reader pastes them,
// so an example may use what an earlier one defined, and a name the README never brought
// in, or an API it misspells, fails here. Type-checked only: they would dial real networks.
describe("the README's TypeScript examples", () => {
  it("type-check", () => {
    const readme = readFileSync(`${root}README.md`, "utf8");
    const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    // Inside the package, so that "wg-netstack" resolves to itself (package.json "exports");
    // target/ is ignored by git.
    const dir = `${root}target/readme-examples`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/examples.ts`, blocks.join("\n"));
    const options = { target: "ES2022", module: "NodeNext", lib: ["ES2022", "DOM"], types: ["node"], strict: true, noEmit: true, skipLibCheck: true };
    writeFileSync(`${dir}/tsconfig.json`, JSON.stringify({ compilerOptions: options, files: ["examples.ts"] }));
    const tsc = spawnSync(`${root}node_modules/.bin/tsc`, ["-p", dir], { encoding: "utf8", timeout: 120_000 });
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.status).toBe(0);
  }, 130_000);
});
