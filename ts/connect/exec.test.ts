// `wg-netstack connect CONFIG [doors] -- COMMAND`: the real CLI (under the runtime running the
// tests) joined to a wg-netstack server on loopback whose handler plays a web server at
// 10.0.0.1:80; the commands are real (sh, curl, node) and find the doors by the variables alone.
// runCommand and commandEnvironment are also tested on their own, with a fake tunnel where a
// real one cannot be made to fail.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_MAIN, RUNTIME_COMMAND } from "../../test/support/gateway-process.js";
import { THREADS, THREADS_FLAGS } from "../../test/support/threads.js";
import { clientConfig, genkey, pubkey, startServer, type Server, type TcpConnection } from "../index.js";
import { commandEnvironment, runCommand } from "./exec.js";
import type { Door } from "./forward.js";

const T = 60_000;
const WEB = "10.0.0.1";
/** A password that must be percent-encoded in a proxy URL. */
const LOGIN = "me:p@ss/w";

/** Just enough HTTP/1.1: answers one request with where it arrived and the path asked for. */
async function serveWeb(connection: TcpConnection): Promise<void> {
  if (connection.local.host !== WEB || connection.local.port !== 80) return connection.refuse();
  const head = new TextDecoder().decode(await connection.read());
  const body = `${WEB}:80 ${head.split(" ")[1]}\n`;
  await connection.write(new TextEncoder().encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
  await connection.end();
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Every CLI started, so a failed test leaves none running. */
const started: ChildProcess[] = [];

/** `wg-netstack connect ARGS` as a child process; `input`, when given, is its whole stdin. */
function startConnect(args: string[], { input, env = process.env }: { input?: string; env?: Record<string, string | undefined> } = {}) {
  const [config, ...rest] = args;
  const child = spawn(RUNTIME_COMMAND[0]!, [...RUNTIME_COMMAND.slice(1), GATEWAY_MAIN, "connect", config!, ...THREADS_FLAGS, ...rest], { stdio: "pipe", env });
  started.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (data) => (stdout += data));
  child.stderr!.on("data", (data) => (stderr += data));
  if (input !== undefined) child.stdin!.end(input);
  const finished = new Promise<Finished>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  /** Resolves once stdout holds `text`. */
  const printed = async (text: string) => {
    for (const start = Date.now(); !stdout.includes(text); await sleep(20)) {
      if (Date.now() - start > 30_000 || child.exitCode !== null) throw new Error(`no ${JSON.stringify(text)} on stdout; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`);
    }
  };
  return { child, finished, printed };
}

/** The lines of `env` that are ours to set, sorted. */
const SHOW_VARIABLES = "env | grep -Ei '^(wg_netstack_[a-z0-9_]*|[a-z_]*_proxy)=' | sort";

describe("wg-netstack connect CONFIG -- COMMAND", () => {
  let server: Server;
  let dir: string;
  let configPath: string;
  let configText: string;

  beforeAll(async () => {
    const clientKey = genkey();
    server = await startServer({ ...THREADS, privateKey: genkey(), host: "127.0.0.1", port: 0, peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }], onTcp: serveWeb });
    configText = clientConfig({ privateKey: clientKey, address: "10.0.0.2/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, allowedIps: "10.0.0.0/24" });
    dir = mkdtempSync(join(tmpdir(), "wgn-exec-"));
    configPath = join(dir, "wg0.conf");
    writeFileSync(configPath, configText);
  }, T);

  afterAll(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs COMMAND once every door listens; curl finds the HTTP proxy, SOCKS5 and a forward by the variables alone; stdout is COMMAND's, the log on stderr", async () => {
    const script = [
      'echo "stdin $(readlink /proc/self/fd/0)"',
      SHOW_VARIABLES,
      `curl -sS --max-time 20 http://${WEB}/by-http-proxy`,
      // Without the scheme's own variable curl takes ALL_PROXY: the SOCKS5 proxy.
      `env -u http_proxy -u HTTP_PROXY curl -sS --max-time 20 http://${WEB}/by-socks5`,
      // Loopback is in NO_PROXY: a forward is reached directly.
      'curl -sS --max-time 20 "http://$WG_NETSTACK_FORWARD_1/by-forward"',
    ].join("\n");
    // A runner's own proxy and an outer tunnel's door variable must not reach COMMAND.
    const env = { ...process.env, HTTP_PROXY: "http://runner-proxy.invalid:3128", https_proxy: "http://runner-proxy.invalid:3128", WG_NETSTACK_FORWARD_7: "127.0.0.1:9" };
    const run = startConnect([configPath, "--socks5", `${LOGIN}@0`, "--http", `${LOGIN}@0`, "--forward", `tcp:0=${WEB}:80`, "--", "sh", "-c", script], { env });
    const { code, stdout, stderr } = await run.finished;
    expect(stderr).toMatch(/tunnel up: 10\.0\.0\.2/);
    const socks5 = /socks5 (127\.0\.0\.1:\d+)/.exec(stderr)![1]!;
    const http = /http (127\.0\.0\.1:\d+)/.exec(stderr)![1]!;
    const forward = /tcp (127\.0\.0\.1:\d+) -> /.exec(stderr)![1]!;
    const login = "me:p%40ss%2Fw";
    const [stdin, ...lines] = stdout.split("\n");
    expect(stdin).toMatch(/^stdin (?!\/dev\/null$)/); // ours, inherited: the config came from a file
    expect(lines).toEqual([
      `ALL_PROXY=socks5h://${login}@${socks5}`,
      `HTTPS_PROXY=http://${login}@${http}`,
      `HTTP_PROXY=http://${login}@${http}`,
      "NO_PROXY=localhost,127.0.0.1,::1",
      `WG_NETSTACK_FORWARD_1=${forward}`,
      `WG_NETSTACK_HTTP=${http}`,
      `WG_NETSTACK_SOCKS5=${socks5}`,
      `all_proxy=socks5h://${login}@${socks5}`,
      `http_proxy=http://${login}@${http}`,
      `https_proxy=http://${login}@${http}`,
      "no_proxy=localhost,127.0.0.1,::1",
      `${WEB}:80 /by-http-proxy`,
      `${WEB}:80 /by-socks5`,
      `${WEB}:80 /by-forward`,
      "",
    ]);
    // Each request went through its door (a flow still closing when COMMAND exits ends as "shutdown").
    for (const via of [`http ${http}`, `socks5 ${socks5}`, `forward ${forward}`]) expect(stderr).toContain(`-> ${WEB}:80 via ${via} `);
    expect(stderr.trimEnd().split("\n").pop()).toMatch(/ summary: 3 flows \(3 tcp, 0 udp\)/);
    expect(code).toBe(0);
  }, T);

  it("exits with COMMAND's exit code, 128+signo for a signal death, 127 for a command not found; nothing of ours on stdout", async () => {
    const runs = await Promise.all([
      startConnect([configPath, "--", "sh", "-c", "exit 3"]).finished,
      startConnect([configPath, "--", "sh", "-c", "kill -TERM $$"]).finished,
      startConnect([configPath, "--", "no-such-command-wgn"]).finished,
    ]);
    expect(runs.map((run) => run.code)).toEqual([3, 128 + 15, 127]);
    for (const run of runs) expect(run.stdout).toBe("");
    expect(runs[2]!.stderr).toMatch(/^wg-netstack: no-such-command-wgn: command not found$/m);
    for (const run of runs) expect(run.stderr).toMatch(/ summary: 0 flows/);
  }, T);

  it("passes SIGINT and SIGTERM on to COMMAND, every one, and exits when it does, with its code", async () => {
    const script = `let seen = 0;
      for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => { console.log(signal); if (++seen === 2) process.exit(5); });
      console.log("ready"); setTimeout(() => process.exit(9), 30000);`;
    const run = startConnect([configPath, "--", "node", "-e", script]);
    await run.printed("ready\n");
    // process.kill: Deno's child.kill() sends one signal per child.
    process.kill(run.child.pid!, "SIGINT");
    await run.printed("SIGINT\n");
    // A second signal would have ended us (exit 130) without the command's say.
    process.kill(run.child.pid!, "SIGTERM");
    const { code, stdout, stderr } = await run.finished;
    expect(stdout).toBe("ready\nSIGINT\nSIGTERM\n");
    expect(code).toBe(5);
    expect(stderr).toMatch(/ summary: /);
  }, T);

  it("reads the config from stdin with CONFIG -; COMMAND then gets no stdin", async () => {
    const script = `echo "stdin $(readlink /proc/self/fd/0)"; curl -sS --max-time 20 http://${WEB}/from-stdin-config`;
    const { code, stdout } = await startConnect(["-", "--socks5", "0", "--", "sh", "-c", script], { input: configText }).finished;
    expect(stdout).toBe(`stdin /dev/null\n${WEB}:80 /from-stdin-config\n`);
    expect(code).toBe(0);
  }, T);

  it("rejects a bad config on stdin with exit 2 and one line naming <stdin>, before running anything", async () => {
    const { code, stdout, stderr } = await startConnect(["-", "--", "sh", "-c", "echo ran"], { input: "[Interface]\nPrivateKey = nope\n" }).finished;
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^wg-netstack: <stdin>: .*\n$/);
  }, T);
});

describe("runCommand", () => {
  const never = new Promise<undefined>(() => {});

  it("stops COMMAND with SIGTERM when the tunnel fails under it, and exits 1 whatever COMMAND exits with", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wgn-exec-"));
    try {
      let fail!: () => void;
      const closed = new Promise<void>((resolve) => (fail = resolve));
      const errors: string[] = [];
      // Says when it listens for SIGTERM, and exits 0 on it: the failure must still show in our code.
      const [ready, stopped] = [join(dir, "ready"), join(dir, "stopped")];
      const script = `const fs = require("fs"); process.on("SIGTERM", () => { fs.writeFileSync(${JSON.stringify(stopped)}, "SIGTERM"); process.exit(0); });
        fs.writeFileSync(${JSON.stringify(ready)}, ""); setTimeout(() => process.exit(9), 20000);`;
      const running = runCommand({ argv: ["node", "-e", script], env: { ...process.env } as Record<string, string>, stdinTaken: true, tunnel: { closed }, err: (text) => errors.push(text), stopRequested: never });
      while (!existsSync(ready)) await sleep(20);
      fail();
      expect(await running).toBe(1);
      expect(errors).toEqual(["wg-netstack: stopping node (SIGTERM): the tunnel is down"]);
      expect(readFileSync(stopped, "utf8")).toBe("SIGTERM");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, T);

  it("does not start COMMAND when a stop came first, and exits 128+signo", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wgn-exec-"));
    try {
      const marker = join(dir, "ran");
      const code = await runCommand({ argv: ["touch", marker], env: {}, stdinTaken: false, tunnel: { closed: new Promise(() => {}) }, err: () => {}, stopRequested: Promise.resolve("SIGINT") });
      expect(code).toBe(130);
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("commandEnvironment", () => {
  const door = (protocol: Door["protocol"], address: string): Door => ({ protocol, address, target: "*", description: "", close: async () => {} });

  it("leaves the proxy variables alone without a proxy door, and names a door on every address by loopback", () => {
    const env = commandEnvironment({ HTTP_PROXY: "http://runner:3128", NO_PROXY: "corp", PATH: "/bin" }, [door("udp", "0.0.0.0:5353"), door("tcp", "[::]:8080")], {});
    expect(env).toEqual({ HTTP_PROXY: "http://runner:3128", NO_PROXY: "corp", PATH: "/bin", WG_NETSTACK_FORWARD_1: "127.0.0.1:5353", WG_NETSTACK_FORWARD_2: "[::1]:8080" });
  });

  it("with --http alone, drops an inherited ALL_PROXY (in any case) so nothing bypasses the tunnel", () => {
    const env = commandEnvironment({ All_Proxy: "socks5://runner:1080", PATH: "/bin" }, [door("http", "[::1]:3128")], {});
    expect(env).toEqual({
      PATH: "/bin",
      WG_NETSTACK_HTTP: "[::1]:3128",
      HTTP_PROXY: "http://[::1]:3128",
      http_proxy: "http://[::1]:3128",
      HTTPS_PROXY: "http://[::1]:3128",
      https_proxy: "http://[::1]:3128",
      NO_PROXY: "localhost,127.0.0.1,::1",
      no_proxy: "localhost,127.0.0.1,::1",
    });
  });
});
