#!/usr/bin/env node
// The `wg-netstack` command (package.json "bin"): npx / bunx / deno run -A npm:wg-netstack.

import process from "node:process";
import { keepYoungGenerationSmall } from "../cli/young-generation.js";
import { signalExitCode, STOP_SIGNALS, type StopSignal } from "../connect/exec.js";
import { main } from "./cli.js";
import { type LineOutput, lineOutput, stdioSink } from "../cli/log-output.js";

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

/** How long the exit waits for a slow reader to take what we wrote. */
const OUTPUT_DRAIN_MS = 5_000;

let running = true;
const dropNotice = (name: string) => (lines: number) => stderr.write(`wg-netstack: ${lines} log lines dropped: the reader of ${name} fell behind`);
const stderr: LineOutput = lineOutput(stdioSink(2), { onBroken: () => {}, onDropped: dropNotice("stderr") });
const stdout = lineOutput(stdioSink(1), {
  onBroken: (error) => running && stderr.write(`wg-netstack: stdout: ${error.code ?? error.message}; going on without it`),
  onDropped: dropNotice("stdout"),
});
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
