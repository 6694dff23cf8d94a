#!/usr/bin/env node
// The `wg-netstack` command (package.json "bin"): npx / bunx / deno run -A npm:wg-netstack.

import process from "node:process";
import { keepYoungGenerationSmall } from "../cli/young-generation.js";
import type { StopSignal } from "../connect/exec.js";
import { main } from "./cli.js";

keepYoungGenerationSmall();

/** The signals that stop the command line: Ctrl-C, a service manager or CI runner, a closed terminal or ssh (SIGHUP to its ProxyCommand). */
const STOP_SIGNALS: StopSignal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** While `connect -- COMMAND` runs its command, stop signals are passed on to it. */
let passOn: ((signal: StopSignal) => void) | undefined;
const stopRequested = new Promise<StopSignal>((resolve) => {
  let signals = 0;
  const stop = (signal: StopSignal) => {
    if (passOn) return passOn(signal);
    // A second Ctrl-C while flows are closing means "now".
    if (++signals > 1) process.exit(130);
    resolve(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, () => stop(signal));
});

let wroteOut = false;
let diedOf: NodeJS.Signals | undefined;
const code = await main(process.argv.slice(2), {
  out: (text) => {
    wroteOut = true;
    process.stdout.write(`${text}\n`);
  },
  err: (text) => void process.stderr.write(`${text}\n`),
  env: process.env,
  stopRequested,
  passSignals: (handler) => {
    passOn = handler;
  },
  dieOf: (signal) => {
    diedOf = signal;
  },
});

/**
 * Ends the process: by the signal `--stdio` or COMMAND ended by, where the runtime lets its
 * default action back (Node does once no listener is left), so a calling shell sees a death by
 * signal; otherwise, and for every other end, with the exit code.
 */
function exit(): never {
  if (diedOf) {
    process.removeAllListeners(diedOf);
    process.kill(process.pid, diedOf);
  }
  process.exit(code);
}

// Exit once what we wrote has gone out, whatever handles a runtime keeps open. Not for what
// `connect --stdio` wrote: it waited for that itself, or gave up on it (a reset), and its
// reader may never take the rest.
if (wroteOut) process.stdout.write("", exit);
else exit();
