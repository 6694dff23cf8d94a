// The npm package as published: `npm pack` gives a tarball with the prebuilt wasm, JS
// and type declarations and no install scripts; installed into an empty project, it
// imports and works under Node, Deno and Bun with no Rust toolchain in reach.
// Needs `node build.mjs` first (the test command does it).

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const RUNTIMES: Record<string, string[]> = {
  node: [process.execPath],
  deno: [`${root}node_modules/.bin/deno`, "run", "-A"],
  bun: [`${root}node_modules/.bin/bun`],
};

// A handshake and a TCP echo between two stacks, through the installed package.
const PROGRAM = `
import { genkey, pubkey, startServer } from "wg-netstack";
const serverKey = genkey(), clientKey = genkey();
const server = await startServer({
  privateKey: serverKey, host: "127.0.0.1", port: 0,
  peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
  onTcp: async (conn) => { for await (const chunk of conn) await conn.write(chunk); await conn.end(); },
});
const client = await startServer({
  privateKey: clientKey, host: "127.0.0.1", port: 0, address: "10.0.0.2",
  peers: [{ publicKey: server.publicKey, endpoint: server.address }],
});
const conn = await client.connect({ host: "198.51.100.1", port: 7 });
const data = new Uint8Array(256 * 1024).map((_, i) => (i * 31) & 255);
const sending = conn.write(data).then(() => conn.end());
let received = 0, same = true;
for await (const chunk of conn) { for (const b of chunk) same &&= b === data[received++]; }
await sending;
const handshake = server.stats().peers[0].sinceHandshakeMs !== undefined;
console.log(JSON.stringify({ received, same, handshake }));
await client.close(); await server.close();
`;

// A TypeScript user of the package: the public API, the Node-shaped parts included, used
// with their types. A project with no @types/node of its own and `"types": []`.
const CONSUMER = `
import { connectTunnel, genkey, pubkey, startServer, type ServerOptions, type TunnelSocket } from "wg-netstack";
import type { Agent } from "node:http";
const options: ServerOptions = {
  privateKey: genkey(),
  peers: [{ publicKey: pubkey(genkey()), allowedIps: ["10.0.0.2/32"] }],
  onTcp: async (connection) => { for await (const chunk of connection) await connection.write(chunk); },
};
export async function serve(): Promise<number> {
  const server = await startServer(options);
  await server.close();
  return server.address.port;
}
export async function through(config: string): Promise<[number, Agent, object]> {
  const tunnel = await connectTunnel(config);
  const socket: TunnelSocket = tunnel.connect(80, "10.0.0.1");
  socket.setNoDelay(true).end(new Uint8Array([1]));
  const response = await tunnel.fetch("http://10.0.0.1/");
  return [response.status, tunnel.httpAgent, tunnel.dispatcher];
}
`;
const CONSUMER_TSCONFIG = { compilerOptions: { target: "ES2022", module: "NodeNext", strict: true, noEmit: true, types: [] }, files: ["consumer.ts"] };

describe("the npm tarball", () => {
  let dir: string;
  let tarball: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "wg-netstack-tarball-"));
    const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root, encoding: "utf8" }));
    tarball = join(dir, packed[0].filename);
    const wasm = packed[0].files.find((f: { path: string }) => f.path === "dist/wg_netstack.wasm");
    console.log(`[package] tarball ${(statSync(tarball).size / 1024).toFixed(0)} KiB, wasm ${(wasm.size / 1024).toFixed(0)} KiB, ${packed[0].entryCount} files`);
    const project = join(dir, "project");
    execFileSync("mkdir", [project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user", private: true, type: "module" }));
    execFileSync("npm", ["install", "--no-audit", "--no-fund", tarball], { cwd: project, stdio: "ignore" });
    writeFileSync(join(project, "main.js"), PROGRAM);
    writeFileSync(join(project, "consumer.ts"), CONSUMER);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(CONSUMER_TSCONFIG));
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("holds the prebuilt wasm, JS and type declarations, the web page, and no install scripts", () => {
    const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n");
    // dist/web/: serve --web's page and its server, whose HTML, style and script are inline in page.js.
    for (const file of ["package/dist/wg_netstack.wasm", "package/dist/index.js", "package/dist/index.d.ts", "package/README.md", "package/dist/web/page.js", "package/dist/web/server.js"]) {
      expect(files).toContain(file);
    }
    expect(files.some((f) => f.includes("crates/") || f.endsWith(".rs") || f.includes(".test."))).toBe(false);
    const manifest = JSON.parse(readFileSync(join(dir, "project/node_modules/wg-netstack/package.json"), "utf8"));
    for (const hook of ["preinstall", "install", "postinstall", "prepare"]) expect(manifest.scripts?.[hook]).toBeUndefined();
  });

  // The Node-shaped parts are typed with Node's types: the package brings @types/node, as a
  // dependency its index.d.ts refers to (README, "Install"). No skipLibCheck: every .d.ts is checked.
  it("type-checks in a project with no @types/node of its own, under tsc and deno check", () => {
    const project = join(dir, "project");
    expect(JSON.parse(readFileSync(join(project, "package.json"), "utf8")).devDependencies).toBeUndefined();
    const check = (command: string, args: string[]) =>
      spawnSync(command, args, { cwd: project, encoding: "utf8", timeout: 120_000, env: { HOME: process.env.HOME, PATH: process.env.PATH } });
    const tsc = check(`${root}node_modules/.bin/tsc`, ["-p", "."]);
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.status).toBe(0);
    const deno = check(`${root}node_modules/.bin/deno`, ["check", "consumer.ts"]);
    expect(deno.status, deno.stderr).toBe(0);
  }, 180_000);

  it.each(Object.keys(RUNTIMES))("installs and works under %s with no Rust toolchain on PATH", (runtime) => {
    const [command, ...args] = RUNTIMES[runtime]!;
    const output = execFileSync(command!, [...args, "main.js"], {
      cwd: join(dir, "project"),
      encoding: "utf8",
      timeout: 60_000,
      env: { HOME: process.env.HOME, PATH: "" }, // nothing to build with, even by accident
    });
    expect(JSON.parse(output.trim().split("\n").pop()!)).toEqual({ received: 256 * 1024, same: true, handshake: true });
  }, 90_000);

  it("installs the wg-netstack command, as npx runs it", () => {
    const help = execFileSync(join(dir, "project/node_modules/.bin/wg-netstack"), ["--help"], {
      encoding: "utf8",
      env: { HOME: process.env.HOME, PATH: dirname(process.execPath) }, // its #! line needs node, nothing else
    });
    expect(help).toMatch(/^Usage:\n {2}wg-netstack \[serve\]/);
  });

  // How each runtime starts a package's command: npx, deno run npm:, bunx.
  const COMMANDS: Record<string, string[]> = {
    node: [process.execPath, "node_modules/.bin/wg-netstack"],
    deno: [`${root}node_modules/.bin/deno`, "run", "-A", "npm:wg-netstack"],
    bun: [`${root}node_modules/.bin/bun`, "x", "--bun", "wg-netstack"],
  };
  it.each(Object.keys(COMMANDS))("starts the gateway under %s and stops it on SIGINT with a summary", async (runtime) => {
    const [command, ...args] = COMMANDS[runtime]!;
    const conf = join(dir, `conf-${runtime}`);
    const child = spawn(command!, [...args, "--conf", conf, "--listen", "127.0.0.1:0", "--dns-upstream", "127.0.0.1:9", "--json"], {
      cwd: join(dir, "project"),
      env: { HOME: process.env.HOME, PATH: "" },
      stdio: ["ignore", "pipe", "ignore"],
    });
    let output = "";
    const exited = new Promise((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not listening: ${output}`)), 30_000);
      child.stdout!.on("data", (data) => {
        output += data;
        if (output.includes('"listening"')) resolve(clearTimeout(timer));
      });
    });
    process.kill(child.pid!, "SIGINT");
    expect(await exited).toBe(0);
    expect(JSON.parse(output.trim().split("\n").pop()!)).toMatchObject({ type: "summary", flows: 0 });
  }, 60_000);
});
