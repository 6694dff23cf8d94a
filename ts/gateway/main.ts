#!/usr/bin/env node
// The `wg-netstack` command (package.json "bin"): npx / bunx / deno run -A npm:wg-netstack.

import process from "node:process";
import { keepYoungGenerationSmall } from "../cli/young-generation.js";
import { signalExitCode, STOP_SIGNALS, type StopSignal } from "../connect/exec.js";
import { main } from "./cli.js";

keepYoungGenerationSmall();

/** While `connect -- COMMAND` runs its command, stop signals are passed on to it. */
let passOn: ((signal: StopSignal) => void) | undefined;
let diedOf: StopSignal | undefined;
const stopRequested = new Promise<StopSignal>((resolve) => {
  let signals = 0;
  const stop = (signal: StopSignal) => {
    if (passOn) return passOn(signal);
    // A second one while flows are closing means "now": end by it.
    if (++signals > 1) {
      diedOf = signal;
      exit(signalExitCode(signal));
    }
    resolve(signal);
  };
  // SIGHUP too: a closed terminal, or ssh ending its ProxyCommand. (Node restores every signal's
  // default at start, so an ignored SIGHUP, nohup's, never reached us: it killed us outright.)
  for (const signal of STOP_SIGNALS) process.on(signal, () => stop(signal));
});

/**
 * Ends the process: by the stop signal `--stdio` or COMMAND ended by, where the runtime lets
 * its default action back (Node does once no listener is left), so a calling shell sees a
 * death by signal; otherwise, and for every other end, with the exit code.
 */
function exit(code: number): void {
  if (!diedOf) process.exit(code);
  process.removeAllListeners(diedOf);
  process.kill(process.pid, diedOf);
  // Node dies within the kill. Where another thread takes the signal (Deno), its default action
  // comes a moment later, and an exit at once would win the race; where the runtime keeps its
  // handler, this is the end.
  setTimeout(() => process.exit(code), 200);
}

/** How long the exit waits for what we wrote to reach a slow reader (one that stops reading stalls Node's and Deno's writes to a pipe anyway: they write synchronously). */
const OUTPUT_DRAIN_MS = 5_000;

/**
 * Lines to stdout or stderr. A reader that went away (EPIPE; EIO from a closed terminal) costs
 * the lines, not the process: the proxies and COMMAND go on. `drained` resolves once every
 * line was taken (Bun calls back on an empty write at once, before the lines queued ahead of it).
 */
function lineWriter(stream: NodeJS.WriteStream, onBroken: (error: NodeJS.ErrnoException) => void) {
  let wrote = false;
  let broken = false;
  let lastWrite = Promise.resolve();
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (broken) return;
    broken = true;
    // Not ours to report when only `connect --stdio`'s relay wrote there: it says so itself.
    if (wrote) onBroken(error);
  });
  return {
    write(text: string): void {
      if (broken) return;
      wrote = true;
      lastWrite = new Promise((resolve) => stream.write(`${text}\n`, () => resolve()));
    },
    drained: () => (broken ? Promise.resolve() : lastWrite),
  };
}

let running = true;
const stderr = lineWriter(process.stderr, () => {});
const stdout = lineWriter(process.stdout, (error) => running && stderr.write(`wg-netstack: stdout: ${error.code ?? error.message}; going on without it`));
const code = await main(process.argv.slice(2), {
  out: stdout.write,
  err: stderr.write,
  env: process.env,
  stopRequested,
  passSignals: (handler) => {
    passOn = handler;
  },
  dieOf: (signal) => {
    diedOf = signal;
  },
});
running = false; // `--help | true` is no news
// Exit once what we wrote has gone out (a runtime may keep handles open), or a slow reader had
// its time. What `connect --stdio` relayed is not ours to wait for here: it waited for that
// itself, or gave up on it (a reset), and its reader may never take the rest.
let timer: ReturnType<typeof setTimeout> | undefined;
await Promise.race([Promise.all([stdout.drained(), stderr.drained()]), new Promise((resolve) => (timer = setTimeout(resolve, OUTPUT_DRAIN_MS)))]);
clearTimeout(timer);
exit(code);
