// `connect --stdio HOST:PORT`: one TCP connection through the tunnel, relayed to this
// process's stdin and stdout (an ssh ProxyCommand, `nc -N`). stdin's end is our FIN; the far
// end's FIN ends stdout; the process lasts until both directions are done.
//
//   stdin ─┐                                  ┌─▶ HOST:PORT
//          ├─ Duplex ─relay─▶ TunnelSocket ─tunnel
//   stdout ◀┘

import { closeSync, openSync } from "node:fs";
import process from "node:process";
import { Duplex, Writable } from "node:stream";
import { endpointText, type Endpoint } from "../ip.js";
import type { Tunnel } from "../tunnel/tunnel.js";
import { type Door, type FlowContext, TcpFlow } from "./forward.js";

export interface StdioOptions extends FlowContext {
  tunnel: Tunnel;
  target: Endpoint;
  /** Fires at shutdown (a stop signal: SIGINT, SIGTERM, or SIGHUP as ssh sends its ProxyCommand): the connection is reset and logged as "shutdown". */
  signal: AbortSignal;
  /** Writes one line to stderr: why the connection failed. */
  err(text: string): void;
}

export interface StdioDoor extends Door {
  /**
   * Resolves with the exit code once the connection is done: 0 when both directions ended
   * (or at shutdown), 1 when it could not open or was cut (after a line on stderr saying why).
   */
  finished: Promise<number>;
}

/** Dials `target` at once and relays stdin and stdout to it. */
export function startStdio(options: StdioOptions): StdioDoor {
  const targetText = endpointText(options.target);
  const finished = relayStdio(new TcpFlow(stdioDuplex(), "stdio", options.target, options), options.tunnel, options.signal, (why) => options.err(`wg-netstack: --stdio ${targetText}: ${why}`));
  return {
    protocol: "stdio",
    address: "stdio",
    target: targetText,
    description: `stdio -> ${targetText}`,
    finished,
    close: async () => void (await finished),
  };
}

async function relayStdio(flow: TcpFlow, tunnel: Tunnel, signal: AbortSignal, fail: (why: string) => void): Promise<number> {
  const dialed = await flow.dial(tunnel, signal);
  if ("end" in dialed) {
    flow.client.destroy();
    flow.done({ up: 0, down: 0, ...dialed });
    if (dialed.end === "shutdown") return 0;
    fail(`cannot connect: ${withCode(dialed.error ?? dialed.end, dialed.code)}`);
    return 1;
  }
  const result = await flow.relay(dialed.socket, signal);
  const error = result.error as (Error & { code?: string }) | undefined;
  switch (result.end) {
    case "closed":
    case "shutdown":
      return 0;
    case "client-reset":
      fail(`stdin or stdout failed (${withCode(error?.message ?? "closed", error?.code)}); the connection was reset`);
      return 1;
    default:
      fail(`the connection ${result.end === "upstream-reset" ? "was reset" : "failed"} (${withCode(error?.message ?? result.end, error?.code)})`);
      return 1;
  }
}

/** `why`, with Node's error code in front unless it already names it. */
function withCode(why: string, code: string | undefined): string {
  return code === undefined || why.includes(code) ? why : `${code}: ${why}`;
}

/**
 * stdin and stdout as one Duplex for relay(). Ending it ends stdout, and then closes fd 1: the
 * reader sees the end of stream at once, while stdin may still be read.
 */
function stdioDuplex(): Duplex {
  // Deno's process.stdout writes synchronously: a slow reader would stop the whole process
  // (the tunnel too). Its own stream waits without blocking.
  const deno = (globalThis as { Deno?: { stdout: { writable: WritableStream<Uint8Array> } } }).Deno;
  const stdout = deno ? Writable.fromWeb(deno.stdout.writable) : process.stdout;
  stdout.once("finish", closeStdout);
  return Duplex.from({ readable: process.stdin, writable: stdout });
}

/**
 * Closes fd 1, which process.stdout never does (runtimes keep it open for the process's
 * life), and puts /dev/null in its place (the lowest free descriptor), so that nothing opened
 * later lands on fd 1. Deno and Bun keep a copy of fd 1 of their own (closing ours would not
 * end the reader's stream): there the reader sees the end when the process exits.
 */
function closeStdout(): void {
  if ("Deno" in globalThis || "Bun" in globalThis || process.platform === "win32") return;
  closeSync(1);
  const fd = openSync("/dev/null", "w");
  if (fd !== 1) closeSync(fd);
}
