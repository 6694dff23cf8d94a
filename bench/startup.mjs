// Start-up cost of wg-netstack per runtime, as a ratio against a plain UDP server
// started in the same run. Each measurement is a fresh process (startup-child.mjs),
// so nothing is cached in memory between runs; wg and baseline runs alternate so that
// machine noise hits both alike.
//
//   node bench/startup.mjs [runs]      (default 7; needs `npm run build` first)

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const child = "bench/startup-child.mjs";
const runs = Number(process.argv[2] ?? 7);

const runtimes = {
  node: [process.execPath, child],
  deno: ["node_modules/.bin/deno", "run", "-A", child],
  bun: ["node_modules/.bin/bun", child],
};

function once([command, ...args], mode) {
  const start = performance.now();
  const result = spawnSync(command, [...args, mode], { cwd: root, encoding: "utf8", timeout: 60_000 });
  const wallMs = performance.now() - start;
  if (result.status !== 0) throw new Error(`${command} ${mode} failed: ${result.stderr || result.error}`);
  return { ...JSON.parse(result.stdout.trim().split("\n").pop()), wallMs };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = (samples, key) => {
  const xs = samples.map((s) => s[key]);
  return { median: median(xs), min: Math.min(...xs), samples: xs };
};

const results = {};
for (const [name, command] of Object.entries(runtimes)) {
  // One untimed run of each first: the OS file cache (and Deno's module cache) warm up,
  // so we measure a start-up, not a first-ever start-up.
  once(command, "wg");
  once(command, "baseline");
  const wg = [];
  const baseline = [];
  for (let i = 0; i < runs; i++) {
    wg.push(once(command, "wg"));
    baseline.push(once(command, "baseline"));
  }
  results[name] = {};
  for (const key of ["importToListeningMs", "wallMs"]) {
    const w = summary(wg, key);
    const b = summary(baseline, key);
    results[name][key] = { wg: w, baseline: b, ratio: w.median / b.median, addedMs: w.median - b.median };
  }
  results[name].wgSplit = { importMs: summary(wg, "importMs"), startServerMs: summary(wg, "startServerMs") };
}

const f = (x) => x.toFixed(1).padStart(7);
console.log(`start-up, ${runs} fresh processes each, median (min) in ms; baseline = import node:dgram + bind UDP\n`);
console.log("runtime  measure                 wg-netstack          baseline     ratio   added");
for (const [name, r] of Object.entries(results)) {
  for (const [key, label] of [["importToListeningMs", "import -> listening"], ["wallMs", "whole process"]]) {
    const m = r[key];
    console.log(
      `${name.padEnd(8)} ${label.padEnd(20)} ${f(m.wg.median)} (${f(m.wg.min)})  ${f(m.baseline.median)} (${f(m.baseline.min)})  ${m.ratio.toFixed(2).padStart(6)}×  ${f(m.addedMs)}`,
    );
  }
}
console.log("\nwg-netstack's import -> listening, split (median ms):");
for (const [name, r] of Object.entries(results)) {
  console.log(`${name.padEnd(8)} import ${f(r.wgSplit.importMs.median)}   startServer ${f(r.wgSplit.startServerMs.median)}`);
}

mkdirSync(new URL("results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("results/startup.json", import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), runs, versions: versions(), results }, null, 2)}\n`,
);

function versions() {
  const v = (cmd) => spawnSync(cmd, ["--version"], { cwd: root, encoding: "utf8" }).stdout.split("\n")[0].trim();
  return { node: process.version, deno: v("node_modules/.bin/deno"), bun: v("node_modules/.bin/bun") };
}
