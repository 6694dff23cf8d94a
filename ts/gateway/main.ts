#!/usr/bin/env node
// The `wg-netstack` command (package.json "bin"): npx / bunx / deno run -A npm:wg-netstack.

import process from "node:process";
import { keepYoungGenerationSmall } from "../cli/young-generation.js";
import type { StopSignal } from "../connect/exec.js";
import { main } from "./cli.js";

keepYoungGenerationSmall();

/** While `connect -- COMMAND` runs its command, signals are passed on to it. */
let passOn: ((signal: StopSignal) => void) | undefined;
const stopRequested = new Promise<StopSignal>((resolve) => {
  let signals = 0;
  const stop = (signal: StopSignal) => {
    if (passOn) return passOn(signal);
    // A second Ctrl-C while flows are closing means "now".
    if (++signals > 1) process.exit(130);
    resolve(signal);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
});

let wroteOut = false;
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
});
// Exit once what we wrote has gone out, whatever handles a runtime keeps open. Not for what
// `connect --stdio` wrote: it waited for that itself, or gave up on it (a reset), and its
// reader may never take the rest.
if (wroteOut) process.stdout.write("", () => process.exit(code));
else process.exit(code);
