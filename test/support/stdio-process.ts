// `wg-netstack connect CONFIG --stdio HOST:PORT` as a child process against a wg-netstack
// server on 127.0.0.1 (its handlers play the network behind the tunnel), under the runtime
// running the tests: for the tests of what comes out of the child's stdout and stderr.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientConfig, genkey, pubkey, startServer, type Server, type ServerOptions } from "../../ts/index.js";
import type { Readable } from "node:stream";
import { GATEWAY_MAIN, RUNTIME_COMMAND } from "./gateway-process.js";
import { THREADS, THREADS_FLAGS } from "./threads.js";

/** A server with `serverOptions`, and a wg-quick config file for a client at 10.0.0.2 that routes 10.0.0.0/24 through it. */
export async function startStdioNetwork(serverOptions: Partial<ServerOptions>, { dns }: { dns?: string } = {}): Promise<{ server: Server; config: string; close(): Promise<void> }> {
  const clientKey = genkey();
  const server = await startServer({ ...THREADS, privateKey: genkey(), host: "127.0.0.1", port: 0, peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }], ...serverOptions });
  const folder = mkdtempSync(join(tmpdir(), "wg-netstack-stdio-"));
  const config = join(folder, "wg0.conf");
  writeFileSync(
    config,
    clientConfig({ privateKey: clientKey, address: "10.0.0.2/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, allowedIps: "10.0.0.0/24", ...(dns ? { dns } : {}) }),
  );
  return {
    server,
    config,
    close: async () => {
      await server.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

export interface StdioChild {
  child: ChildProcess;
  /** The child's stdout. */
  stdout: Readable;
  /** Everything on stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/**
 * `wg-netstack connect CONFIG --stdio TARGET ARGS` with stdin and stdout piped to the test.
 * `fifo`: stdout is a named pipe, as ssh's pipe(2) (Node's "pipe" is a socketpair, where
 * process.stdout.end() alone shows the end); Node only (a net.Socket over the FIFO).
 */
export function spawnStdio(config: string, target: string, { args = [], fifo = false }: { args?: string[]; fifo?: boolean } = {}): StdioChild {
  let stdout: number | "pipe" = "pipe";
  let fifoReader: net.Socket | undefined;
  if (fifo) {
    const folder = mkdtempSync(join(tmpdir(), "wg-netstack-fifo-"));
    const path = join(folder, "stdout");
    execFileSync("mkfifo", [path]);
    fifoReader = new net.Socket({ fd: openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    stdout = openSync(path, constants.O_WRONLY);
    rmSync(folder, { recursive: true });
  }
  const child = spawn(RUNTIME_COMMAND[0]!, [...RUNTIME_COMMAND.slice(1), GATEWAY_MAIN, "connect", config, "--stdio", target, ...THREADS_FLAGS, ...args], { stdio: ["pipe", stdout, "pipe"] });
  if (typeof stdout === "number") closeSync(stdout); // the child's copy is the only writer left
  let stderr = "";
  child.stderr!.on("data", (data) => (stderr += data));
  child.stdin!.on("error", () => {}); // EPIPE once the child is gone: the test reads the exit instead
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout: fifoReader ?? child.stdout!, stderr: () => stderr, exited };
}
