#!/usr/bin/env node
// The `wg-netstack` command (package.json "bin"): npx / bunx / deno run -A npm:wg-netstack.

import process from "node:process";
import { keepYoungGenerationSmall } from "../cli/young-generation.js";
import { main } from "./cli.js";

keepYoungGenerationSmall();

const stopRequested = new Promise<void>((resolve) => {
  let signals = 0;
  const stop = () => {
    // A second Ctrl-C while flows are closing means "now".
    if (++signals > 1) process.exit(130);
    resolve();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
});

const code = await main(process.argv.slice(2), {
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
  env: process.env,
  stopRequested,
});
// Exit once what we wrote has gone out, whatever handles a runtime keeps open.
process.stdout.write("", () => process.exit(code));
