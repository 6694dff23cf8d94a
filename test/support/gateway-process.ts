// `wg-netstack serve` as a child process for the real-client tests, under the runtime
// running the tests: its JSON lines collected, events awaited.

import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { WgClient } from "../interop/netns.js";
import { THREADS_FLAGS } from "./threads.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const GATEWAY_MAIN = join(root, "dist/gateway/main.js");
/** How to run a program under the runtime running the tests. */
export const RUNTIME_COMMAND = "Deno" in globalThis ? [process.execPath, "run", "-A"] : [process.execPath];

/**
 * `wg-netstack ARGS` on a pseudo-terminal, as typed at a shell: script(1) gives it one as
 * stdin, stdout and stderr. Write keys to `child.stdin` (the terminal holds them until read;
 * ^C sends SIGINT to the foreground process group); `shown()` is what the terminal showed;
 * `exited` is script's exit, which is the command's code.
 */
export function onTerminal(args: string[]): { child: ChildProcess; shown(): string; exited: Promise<number | null> } {
  const quoted = commandLine(args);
  // exec: a shell left between (dash, script's default without $SHELL) would take the terminal's
  // SIGINT too, and end by it after its child had exited.
  const child = spawn("script", ["-qec", `exec ${quoted}`, "/dev/null"], { stdio: ["pipe", "pipe", "inherit"] });
  let shown = "";
  child.stdout!.on("data", (data: Buffer) => (shown += data.toString("latin1")));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (status) => resolve(status)));
  return { child, shown: () => shown, exited };
}

/** `wg-netstack ARGS` under the runtime running the tests, as a line for sh -c. */
export function commandLine(args: string[]): string {
  return [...RUNTIME_COMMAND, GATEWAY_MAIN, ...args].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
}

/** Resolves once `child` prints a line containing `text`. */
export function waitForLine(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no "${text}" line; got ${JSON.stringify(seen)}`)), 30_000);
    child.stdout!.on("data", (data) => {
      seen += data;
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/**
 * `wg-netstack ARGS` (with --json) as a child process under the runtime running the tests, its
 * JSON lines collected; `find` waits for an event (up to `findTimeoutMs`), `stop` sends SIGINT.
 * `runtime` runs it under another runtime (the command that runs a script).
 */
export function startCommand(args: string[], findTimeoutMs: number, runtime = RUNTIME_COMMAND) {
  const child = spawn(runtime[0]!, [...runtime.slice(1), GATEWAY_MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const events: Record<string, any>[] = [];
  let stderr = ""; // with --json the configs and QR codes go there, and any error
  child.stderr!.on("data", (data) => (stderr += data));
  let buffered = "";
  child.stdout!.on("data", (data) => {
    const lines = (buffered + data).split("\n");
    buffered = lines.pop()!;
    events.push(...lines.map((line) => JSON.parse(line)));
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  /** The first event that matches, waiting for it. */
  const find = async (match: (event: Record<string, any>) => boolean, timeoutMs = findTimeoutMs) => {
    for (const start = Date.now(); ; await sleep(50)) {
      const event = events.find(match);
      if (event) return event;
      if (Date.now() - start > timeoutMs || child.exitCode !== null) throw new Error(`no such event; got ${JSON.stringify(events)}; stderr: ${stderr.slice(-2000)}`);
    }
  };
  return {
    events,
    find,
    stderr: () => stderr,
    /** SIGINT, as Ctrl-C; resolves with the exit code. */
    stop: async () => {
      if (child.exitCode === null) process.kill(child.pid!, "SIGINT");
      return exited;
    },
  };
}

/** `wg-netstack serve --json` as a child process, its JSON lines collected. */
export function startGateway(conf: string, args: string[]) {
  const gateway = startCommand(["serve", "--json", "--conf", conf, ...THREADS_FLAGS, ...args], 15_000);
  return { ...gateway, flowTo: (port: number) => gateway.find((e) => e.type === "flow" && e.dst.port === port) };
}

/** A client drops its session and handshakes again with the same config, as when the tunnel is switched off and on. */
export async function reconnect(client: WgClient, serverPublicKey: string): Promise<void> {
  const wg = async (...args: string[]) => {
    const result = await client.exec("wg", ["set", client.iface, "peer", serverPublicKey, ...args]);
    if (result.code !== 0) throw new Error(`wg set ${args.join(" ")}: ${result.stderr}`);
  };
  await wg("remove");
  await wg("endpoint", `${client.endpoint.host}:${client.endpoint.port}`, "allowed-ips", "0.0.0.0/0,::/0");
}
