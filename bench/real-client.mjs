// Real-client benchmark: a real wireguard-go client (in a network namespace) runs the same
// client programs against OUR server and against a REFERENCE in one run, and reports
// ours/reference. The reference is a wireguard-go server in its own namespace with the
// kernel's TCP serving the same programs (bench/kernel-server.mjs); it uses the same
// wireguard-go build as the client of the pairing.
//
//   node bench/real-client.mjs [--quick] [--kernel-cc reno] [--runtimes node,deno,bun] [--threads 0,1]
//   (root; `npm run bench:real` builds first)
//
// Matrix: client build (Debian's wireguard-go, the current one) × path (direct: one veth
// hop; wan: through the lossy relay, 100 Mbit/s each way, 64-packet queue, 20 ms each way,
// 0.5 % loss) × server (reference; ours under node, deno, bun) × program:
//   echo      1,000-byte ping-pong for a few seconds: messages/s
//   download  the server sends N MiB: Mbit/s and the longest gap without progress
//   upload    the client sends N MiB, the server confirms count and SHA-256: likewise
// A transfer that runs out of time is reported as "did not finish" with how far it got.
// --quick: smaller transfers, shorter timeouts, and ours under node only.
// --kernel-cc: the congestion control of every kernel TCP in the run (the clients', which
// send the uploads, and the reference server's), set in their namespaces. Default: the
// machine's, recorded in the results; a namespace may choose only among
// net.ipv4.tcp_allowed_congestion_control.
// --runtimes: ours under these runtimes only (default: node, deno and bun; --quick: node);
// also node-small-young: node with `--max-semi-space-size=1`, the young generation kept at
// its start size as the wg-netstack command keeps it (README, "Memory"), for its RSS.
// --threads: ours with each of these `threads` values (default 0), as servers of their own
// ("node threads:1").
//
// Writes bench/results/real-client.json and prints the table bench/README.md shows.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { register } from "node:module";
import { fileURLToPath } from "node:url";
import { genkey, pubkey } from "wg-netstack";
import { PORTS, downloadSha256 } from "./programs.mjs";

register("../test/support/ts-hooks.mjs", import.meta.url);
const { interopSkipReason, cleanupStaleNamespaces, startWgClient, startWgServer } = await import("../test/interop/netns.ts");
const { WIREGUARD_GO_IMPLEMENTATIONS, wireguardGoCommand } = await import("../test/interop/wireguard-go.ts");

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const QUICK = process.argv.includes("--quick");
const KERNEL_CC = process.argv.includes("--kernel-cc") ? process.argv[process.argv.indexOf("--kernel-cc") + 1] : undefined;
const MiB = 1024 * 1024;
const PLAN = QUICK
  ? { echoSeconds: 2, bytes: { direct: 50 * MiB, wan: 10 * MiB }, timeoutMs: { direct: 10_000, wan: 15_000 }, runtimes: ["node"] }
  : { echoSeconds: 5, bytes: { direct: 200 * MiB, wan: 30 * MiB }, timeoutMs: { direct: 30_000, wan: 30_000 }, runtimes: ["node", "deno", "bun"] };
if (process.argv.includes("--runtimes")) PLAN.runtimes = process.argv[process.argv.indexOf("--runtimes") + 1].split(",");
const THREADS = process.argv.includes("--threads") ? process.argv[process.argv.indexOf("--threads") + 1].split(",").map(Number) : [0];
/** Our servers: each runtime with each threads value. */
const OURS = PLAN.runtimes.flatMap((runtime) => THREADS.map((threads) => (threads === 0 ? runtime : `${runtime} threads:${threads}`)));
const ECHO_MESSAGE_BYTES = 1000;
/** The WAN profile, the same each way; one seed, so every server meets the same random losses for the same datagrams. */
const WAN = { rateBitsPerSecond: 100e6, queuePackets: 64, delayMs: 20, loss: 0.005 };
const WAN_SEED = 1;
const PATHS = ["direct", "wan"];
const SERVER_SCRIPT = path.join(ROOT, "bench/real-client-server.mjs");
const RUNTIME_COMMANDS = {
  node: [process.execPath, SERVER_SCRIPT],
  "node-small-young": [process.execPath, "--max-semi-space-size=1", SERVER_SCRIPT],
  deno: [path.join(ROOT, "node_modules/.bin/deno"), "run", "-A", "--unstable-net", SERVER_SCRIPT],
  bun: [path.join(ROOT, "node_modules/.bin/bun"), SERVER_SCRIPT],
};
// Tunnel addresses: the client is 10.0.0.2, the reference server 10.0.0.1. Ours answers any address.
const CLIENT_ADDRESS = "10.0.0.2";
const SERVER_ADDRESS = "10.0.0.1";

const skip = interopSkipReason();
if (skip) {
  console.error(`real-client benchmark cannot run: ${skip}`);
  process.exit(1);
}
await cleanupStaleNamespaces();

// ---------------------------------------------------------------- servers

/** The reference: wireguard-go server in a namespace, kernel TCP serving the programs. */
async function startReference(implementation, clientPublicKey) {
  const privateKey = genkey();
  const server = await startWgServer({
    implementation,
    privateKey,
    tunnelAddresses: [`${SERVER_ADDRESS}/24`],
    peers: [{ publicKey: clientPublicKey, allowedIps: [`${CLIENT_ADDRESS}/32`] }],
  });
  const programs = server.spawn(process.execPath, [path.join(ROOT, "bench/kernel-server.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
  await firstLine(programs, 10_000);
  await useCongestionControl(server);
  return { server, publicKey: pubkey(privateKey), close: () => server.close() };
}

/** Applies --kernel-cc in a namespace; returns what the namespace's TCP uses. */
async function useCongestionControl(ns) {
  if (KERNEL_CC) {
    const set = await ns.exec("sysctl", ["-w", `net.ipv4.tcp_congestion_control=${KERNEL_CC}`]);
    if (set.code !== 0) throw new Error(`cannot use ${KERNEL_CC} in ${ns.name}: ${set.stderr.trim()}`);
  }
  return (await ns.exec("sysctl", ["-n", "net.ipv4.tcp_congestion_control"])).stdout.trim();
}

/** Our server under a runtime, as a child process; stop() returns its stats. */
async function startOurs(name, clientPublicKey) {
  const [runtime, threads = "threads:0"] = name.split(" ");
  const [command, ...args] = RUNTIME_COMMANDS[runtime];
  const child = spawn(command, [...args, "--peer", clientPublicKey, "--threads", threads.split(":")[1]], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  const ready = JSON.parse(await firstLine(child, 30_000));
  const stop = async () => {
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise((resolve) => child.once("close", resolve));
    child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
    const line = out.split("\n").find((l) => l.startsWith('{"stats"'));
    return line ? JSON.parse(line).stats : undefined;
  };
  return { ...ready, stop };
}

function firstLine(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d) => {
      buffer += d;
      if (!buffer.includes("\n")) return;
      clearTimeout(timer);
      child.stdout.off("data", onData);
      resolve(buffer.slice(0, buffer.indexOf("\n")));
    };
    child.stdout.on("data", onData);
    child.once("exit", (code) => reject(new Error(`exited (${code}) before it was ready`)));
  });
}

// ---------------------------------------------------------------- one client, three programs

async function task(client, name, args, timeoutMs) {
  const r = await client.task(name, [...args, "--timeout", timeoutMs], { timeoutMs: timeoutMs + 15_000 });
  return r.json;
}

function transferResult(json, bytes, timeoutMs, checksumOk) {
  const done = json.error === undefined && checksumOk(json);
  const moved = json.bytes ?? json.sent ?? 0;
  return {
    finished: done,
    ...(done ? {} : { error: json.error ?? "checksum mismatch", timeoutMs }),
    bytes,
    movedBytes: done ? bytes : moved,
    ms: json.ms,
    // For a transfer that did not finish: what it moved until the timeout, an upper bound.
    mbitPerSecond: round(((done ? bytes : moved) * 8) / (json.ms * 1000), 1),
    maxGapMs: json.maxGapMs,
  };
}

async function runPrograms(client, path) {
  const bytes = PLAN.bytes[path];
  const timeoutMs = PLAN.timeoutMs[path];
  // Handshake and first connection out of the way.
  await task(client, "tcp-echo", [SERVER_ADDRESS, PORTS.echo, 1000], 20_000);
  const echo = await task(client, "tcp-echo-rate", [SERVER_ADDRESS, PORTS.echo, ECHO_MESSAGE_BYTES, PLAN.echoSeconds], PLAN.echoSeconds * 1000 + 10_000);
  const download = await task(client, "tcp-download", [SERVER_ADDRESS, PORTS.download, bytes], timeoutMs);
  const upload = await task(client, "tcp-upload", [SERVER_ADDRESS, PORTS.upload, bytes], timeoutMs);
  return {
    echo: echo.error === undefined ? { messagesPerSecond: echo.messagesPerSecond, maxGapMs: echo.maxGapMs } : { error: echo.error, messages: echo.messages },
    download: transferResult(download, bytes, timeoutMs, (j) => j.sha256 === downloadSha256(bytes)),
    upload: transferResult(upload, bytes, timeoutMs, (j) => j.serverBytes === bytes && j.serverSha256 === j.sha256),
  };
}

// ---------------------------------------------------------------- the matrix

const results = [];
const versions = { wireguardGo: {}, runtimes: {} };
const started = Date.now();

for (const implementation of WIREGUARD_GO_IMPLEMENTATIONS) {
  const command = await wireguardGoCommand(implementation);
  versions.wireguardGo[implementation] = execFileSync(command, ["--version"], { encoding: "utf8" }).split("\n")[0];
  const clientKey = genkey();
  const clientPublicKey = pubkey(clientKey);
  const reference = await startReference(implementation, clientPublicKey);
  try {
    for (const path of PATHS) {
      for (const server of ["reference", ...OURS]) {
        const ours = server === "reference" ? undefined : await startOurs(server, clientPublicKey);
        if (ours) versions.runtimes[server] = ours.runtime;
        const client = await startWgClient({
          implementation,
          privateKey: clientKey,
          serverPublicKey: ours ? ours.publicKey : reference.publicKey,
          ...(ours ? { serverPort: ours.port } : { server: reference.server }),
          ...(path === "wan" ? { relay: { up: WAN, down: WAN, seed: WAN_SEED } } : {}),
          tunnelAddresses: [`${CLIENT_ADDRESS}/32`],
        });
        // The client's kernel TCP (and the reference server's, set in startReference).
        const entry = { client: implementation, path, server };
        try {
          entry.kernelCongestionControl = await useCongestionControl(client);
          Object.assign(entry, await runPrograms(client, path));
        } finally {
          if (client.relay) entry.relay = await client.relay.stop();
          await client.close();
          if (ours) entry.serverStats = await ours.stop();
        }
        results.push(entry);
        console.error(`[bench] ${implementation} ${path} ${server}: ${summary(entry)}`);
      }
    }
  } finally {
    await reference.close();
  }
}

// ---------------------------------------------------------------- report

function round(x, digits = 0) {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

function summary(e) {
  const rss = e.serverStats ? `; RSS +${round((e.serverStats.rssPeakBytes - e.serverStats.rssStartBytes) / MiB, 1)} MiB` : "";
  return ["echo", "download", "upload"].map((m) => `${m} ${cell(e, m)}`).join("; ") + rss;
}

function cell(e, measure) {
  const r = e[measure];
  if (measure === "echo") return r.error ? `failed (${r.error})` : `${r.messagesPerSecond.toLocaleString("en")} msg/s`;
  if (!r.finished) return `did not finish (${r.error}): ${round(r.movedBytes / MiB, 1)} of ${r.bytes / MiB} MiB in ${round(r.ms / 1000, 1)} s (${r.mbitPerSecond} Mbit/s), gap ${fmtMs(r.maxGapMs)}`;
  return `${r.mbitPerSecond} Mbit/s, gap ${fmtMs(r.maxGapMs)}`;
}

function fmtMs(ms) {
  return ms >= 1000 ? `${round(ms / 1000, 1)} s` : `${ms} ms`;
}

/** ours / reference; "≤" when ours did not finish (its rate so far bounds the ratio from above). */
function ratio(e, ref, measure) {
  const value = (x) => (measure === "echo" ? x[measure].messagesPerSecond : x[measure].mbitPerSecond);
  const ours = value(e);
  const theirs = value(ref);
  if (!ours || !theirs || (measure !== "echo" && !ref[measure].finished)) return "–";
  const r = ours / theirs;
  return `**${measure !== "echo" && !e[measure].finished ? "≤ " : ""}${r >= 0.1 ? round(r, 2) : r.toPrecision(2)}×**`;
}

function table() {
  const lines = [
    `| client | path | measure | reference | ${OURS.map((r) => `ours, ${r}`).join(" | ")} |`,
    `|---|---|---|---|${OURS.map(() => "---").join("|")}|`,
  ];
  for (const client of WIREGUARD_GO_IMPLEMENTATIONS) {
    for (const path of PATHS) {
      const ref = results.find((e) => e.client === client && e.path === path && e.server === "reference");
      for (const measure of ["echo", "download", "upload"]) {
        const ours = OURS.map((r) => {
          const e = results.find((x) => x.client === client && x.path === path && x.server === r);
          return `${cell(e, measure)} ${ratio(e, ref, measure)}`;
        });
        lines.push(`| ${client} | ${path} | ${measure} | ${cell(ref, measure)} | ${ours.join(" | ")} |`);
      }
    }
  }
  return lines.join("\n");
}

const report = {
  date: new Date().toISOString(),
  quick: QUICK,
  commit: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release() },
  versions,
  plan: { ...PLAN, echoMessageBytes: ECHO_MESSAGE_BYTES, wan: WAN, wanSeed: WAN_SEED, kernelCongestionControl: KERNEL_CC ?? "machine default" },
  seconds: round((Date.now() - started) / 1000),
  results,
};
fs.mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
fs.writeFileSync(path.join(ROOT, "bench/results/real-client.json"), `${JSON.stringify(report, null, 2)}\n`);
console.log(table());
const growth = results.filter((e) => e.serverStats).map((e) => `${e.client} ${e.path} ${e.server} +${round((e.serverStats.rssPeakBytes - e.serverStats.rssStartBytes) / MiB, 1)}`);
console.log(`\nOur server's RSS growth, peak over ready, MiB (echo, then ${PLAN.bytes.direct / MiB} MiB down and up direct, ${PLAN.bytes.wan / MiB} MiB on the WAN): ${growth.join("; ")}`);
const ccs = [...new Set(results.map((e) => e.kernelCongestionControl))];
console.log(`\n${report.seconds} s; kernel TCP congestion control: ${ccs.join(", ")}; wireguard-go: ${Object.entries(versions.wireguardGo).map(([k, v]) => `${k} = ${v}`).join(", ")}; results in bench/results/real-client.json`);
