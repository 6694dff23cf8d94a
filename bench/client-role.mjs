// Client-role benchmark (issue 15): joining a WireGuard network, ours against the engines
// others use, in one run. Root only (network namespaces, like the interop tests).
//
//   node bench/client-role.mjs [--quick] [--runs N] [--profile DIR] [--ours LABEL=DIST ...]   (`npm run bench:client` builds first)
//
// The server is a current wireguard-go in a namespace with the kernel's TCP behind it running
// bench/programs.mjs (bench/kernel-server.mjs). Six clients each download and upload the same
// bytes from it, one after the other:
//   socks5   ours: `wg-netstack connect --socks5`, bench/transfer-client.mjs through the proxy
//   forward  ours: `wg-netstack connect --forward tcp:…`, transfer-client.mjs to the local port
//   direct   ours as a library: transfer-client.mjs --tunnel, connectTunnel and tunnel.connect
//            in the one process
//   netstack wireguard-go's tun/netstack (gVisor's TCP; wireproxy's engine): bench/go-netstack,
//            built here from the Go module proxy, one process dialing through its netstack
//   netstack-forward  the same program as wireproxy's TCP client tunnel: local ports relayed
//            through its netstack, transfer-client.mjs to them (the like of our forward)
//   kernel   a current wireguard-go client in its own namespace, kernel TCP, transfer-client.mjs
// Ratios compare like with like: socks5 and forward to netstack-forward (a proxy process and
// the same transfer client), direct to netstack (one process); every one also to kernel.
// The clients in the root namespace reach the server over its veth, as the kernel client does.
// Every transfer is checked: the download's SHA-256 against what the server sends, the
// upload's count and SHA-256 as the server saw them. Then 1,000 concurrent connections
// through a fresh connect's SOCKS5 proxy to the echo port: how many succeed, how long it
// took, and the connect process's RSS and WebAssembly memory before and after.
//
// --quick: 20 MiB transfers and 200 connections. --runs N: the transfers N times (the same
// servers). --profile DIR: runs the connect processes and the direct clients under `node
// --cpu-prof` into DIR.
// --ours "LABEL=DIST [FLAGS]" (repeatable): an A/B comparison in one run, each build's `wg-netstack
// connect` (DIST/gateway/main.js; DIST inside this checkout, so its imports resolve) with its
// extra flags (e.g. "t1=dist --threads 1") as its own socks5 and forward clients, in an order
// that alternates run by run; "--runtime bun" or "--runtime deno" among them runs that connect
// under Bun or Deno (the package's own copies) instead of Node; its direct client runs under
// that runtime with DIST's library, and "--threads N" among the flags is its `threads` option
// too. Default: ours=dist.
// Writes bench/results/client-role.json and prints the table bench/README.md shows.

import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import { register } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { genkey, pubkey } from "wg-netstack";
import { downloadSha256, PORTS } from "./programs.mjs";

register("../test/support/ts-hooks.mjs", import.meta.url);
const { interopSkipReason, cleanupStaleNamespaces, startWgClient, startWgServer } = await import("../test/interop/netns.ts");
const { goCommand, wireguardGoCommand } = await import("../test/interop/wireguard-go.ts");

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const QUICK = args.includes("--quick");
const RUNS = Number(flag("--runs") ?? 1);
const PROFILE_DIR = flag("--profile") ? path.resolve(flag("--profile")) : undefined;
const MiB = 1024 * 1024;
const BYTES = (QUICK ? 20 : 200) * MiB;
const CONNECTIONS = QUICK ? 200 : 1000;
const TRANSFER_TIMEOUT_MS = 120_000;
const TRANSFER_CLIENT = path.join(ROOT, "bench/transfer-client.mjs");
/** How each runtime runs a script, the memory probe preloaded where the runtime can (not Deno). */
const CONNECT_RUNTIMES = {
  node: (script) => [process.execPath, "--import", MEMORY_PROBE, script],
  bun: (script) => [path.join(ROOT, "node_modules/.bin/bun"), "--preload", MEMORY_PROBE, script],
  deno: (script) => [path.join(ROOT, "node_modules/.bin/deno"), "run", "-A", "--unstable-net", script],
};
/** The builds of ours to compare: label → its connect entry point, flags and runtime. */
const oursSpecs = args.flatMap((arg, i) => (arg === "--ours" ? [args[i + 1]] : []));
const OURS = Object.fromEntries(
  (oursSpecs.length > 0 ? oursSpecs : ["ours=dist"]).map((spec) => {
    const [label, rest] = [spec.slice(0, spec.indexOf("=")), spec.slice(spec.indexOf("=") + 1)];
    const [dist, ...flags] = rest.split(/\s+/);
    const at = flags.indexOf("--runtime");
    const runtime = at < 0 ? "node" : flags.splice(at, 2)[1];
    if (!CONNECT_RUNTIMES[runtime]) throw new Error(`--ours ${spec}: --runtime is one of ${Object.keys(CONNECT_RUNTIMES).join(", ")}`);
    return [label, { main: path.resolve(ROOT, dist, "gateway/main.js"), flags, runtime }];
  }),
);
const LABELS = Object.keys(OURS);
const CONNECT_MAIN = OURS[LABELS[0]].main;
const MEMORY_PROBE = path.join(ROOT, "bench/wasm-memory-probe.mjs");
const SERVER_ADDRESS = "10.0.0.1";
/** Each client its own key and address, so none takes over another's session. */
const CLIENT_ADDRESSES = { ours: "10.0.0.2", netstack: "10.0.0.3", kernel: "10.0.0.4", many: "10.0.0.5", "netstack-forward": "10.0.0.30" };
const OURS_KINDS = ["socks5", "forward", "direct"];
/** Client names: "socks5", "forward" and "direct" for the one build, "socks5@LABEL" … for an A/B run. */
const oursClients = (labels) => labels.flatMap((label) => OURS_KINDS.map((kind) => (LABELS.length === 1 ? kind : `${kind}@${label}`)));
/** Whom each client of ours is compared with: the netstack program used the same way. */
const netstackLike = (client) => (client.startsWith("direct") ? "netstack" : "netstack-forward");

const skip = interopSkipReason();
if (skip) {
  console.error(`client-role benchmark cannot run: ${skip}`);
  process.exit(1);
}
for (const { main } of Object.values(OURS)) {
  if (!fs.existsSync(main)) {
    console.error(`client-role benchmark: ${main} is missing; run \`node build.mjs\` first (npm run bench:client does)`);
    process.exit(1);
  }
}
await cleanupStaleNamespaces();

// ---------------------------------------------------------------- the Go netstack client

/** Builds bench/go-netstack into target/bench/, once per version of its sources. */
function buildGoNetstack() {
  const source = path.join(ROOT, "bench/go-netstack");
  const hash = createHash("sha256");
  for (const file of ["go.mod", "go.sum", "main.go"]) hash.update(fs.readFileSync(path.join(source, file)));
  const binary = path.join(ROOT, "target/bench", `go-netstack-${hash.digest("hex").slice(0, 12)}`);
  if (fs.existsSync(binary)) return binary;
  const go = goCommand();
  if (!go) throw new Error("client-role benchmark: needs `go` (on PATH or in /usr/local/go/bin) to build bench/go-netstack");
  console.error("[bench] building bench/go-netstack from the Go module proxy (about a minute, once)");
  const partial = `${binary}.${process.pid}`;
  const env = { ...process.env, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOFLAGS: "-buildvcs=false -mod=readonly" };
  execFileSync(go, ["build", "-trimpath", "-o", partial, "."], { cwd: source, env, stdio: "inherit" });
  fs.renameSync(partial, binary);
  return binary;
}

// ---------------------------------------------------------------- processes

function collect(child) {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (data) => (stdout += data));
  child.stderr?.on("data", (data) => (stderr += data));
  return once(child, "close").then(([code]) => ({ code, stdout, stderr }));
}

/** The last JSON line a client printed, or its error. */
function jsonResult({ code, stdout, stderr }) {
  const line = stdout.trim().split("\n").pop();
  try {
    return JSON.parse(line);
  } catch {
    return { error: `no result (exit ${code}): ${stdout.trim()} ${stderr.trim()}`.slice(0, 500) };
  }
}

function runLocal(command, commandArgs) {
  const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), TRANSFER_TIMEOUT_MS * 2 + 30_000);
  return collect(child).then((result) => {
    clearTimeout(timer);
    return jsonResult(result);
  });
}

function writeConfig(dir, name, privateKey, address, server, serverPublicKey) {
  const file = path.join(dir, `${name}.conf`);
  const text = [
    "[Interface]",
    `PrivateKey = ${privateKey}`,
    `Address = ${address}/32`,
    "",
    "[Peer]",
    `PublicKey = ${serverPublicKey}`,
    `Endpoint = ${server.nsAddress}:${server.listenPort}`,
    `AllowedIPs = ${SERVER_ADDRESS}/32`,
    "",
  ].join("\n");
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** `wg-netstack connect CONFIG --json ARGS` with the memory probe; resolves once it is up. */
async function startConnect(config, connectArgs, label, { main, runtime } = { main: CONNECT_MAIN, runtime: "node" }) {
  const [command, ...runtimeArgs] = CONNECT_RUNTIMES[runtime](main);
  if (PROFILE_DIR && runtime === "node") runtimeArgs.unshift("--cpu-prof", "--cpu-prof-dir", path.join(PROFILE_DIR, label));
  const child = spawn(command, [...runtimeArgs, "connect", config, "--json", ...connectArgs], { stdio: ["ignore", "pipe", "pipe"] });
  const events = [];
  let buffered = "";
  child.stdout.on("data", (data) => {
    const lines = (buffered + data).split("\n");
    buffered = lines.pop();
    for (const line of lines) events.push(JSON.parse(line));
  });
  let stderr = "";
  const probeLines = [];
  child.stderr.on("data", (data) => {
    stderr += data;
    for (const line of stderr.split("\n")) if (line.startsWith('{"wasmMemoryBytes"')) probeLines.push(JSON.parse(line));
    stderr = stderr.slice(stderr.lastIndexOf("\n") + 1);
  });
  const exited = once(child, "exit");
  const up = await new Promise((resolve, reject) => {
    const deadline = Date.now() + 30_000;
    const poll = setInterval(() => {
      const event = events.find((e) => e.type === "up");
      if (event || child.exitCode !== null || Date.now() > deadline) {
        clearInterval(poll);
        if (event) resolve(event);
        else reject(new Error(`wg-netstack connect did not come up: ${stderr}`));
      }
    }, 50);
  });
  const door = (protocol, to) => {
    const entry = up.listening.find((e) => e.protocol === protocol && e.to === to);
    return entry.address;
  };
  /** RSS now and at its peak (/proc), and the engine's WebAssembly memory (from the probe). */
  const memory = async () => {
    const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8");
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)[1]);
    const seen = probeLines.length;
    if (runtime !== "deno") child.kill("SIGUSR2"); // no probe under Deno, whom the signal would end
    for (let i = 0; i < 100 && runtime !== "deno" && probeLines.length === seen; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    return { rssBytes: kib("VmRSS") * 1024, peakRssBytes: kib("VmHWM") * 1024, wasmMemoryBytes: probeLines.at(-1)?.wasmMemoryBytes };
  };
  const stop = async () => {
    child.kill("SIGINT");
    await exited;
    return events.find((e) => e.type === "summary");
  };
  return { door, memory, stop, events };
}

/** bench/go-netstack -forward: local ports relayed through its netstack to the server's `ports`; resolves once it is up. */
async function startGoForward(config, ports) {
  const forwards = ports.map((port) => `127.0.0.1:0=${SERVER_ADDRESS}:${port}`).join(",");
  const child = spawn(goBinary, ["-config", config, "-host", SERVER_ADDRESS, "-forward", forwards], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(child, "exit");
  let output = "";
  child.stderr.on("data", (data) => (output += data));
  const up = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`go-netstack -forward did not come up: ${output}`)), 30_000);
    child.stdout.on("data", (data) => {
      output += data;
      const line = output.split("\n").find((text) => text.startsWith('{"'));
      if (!line) return;
      clearTimeout(timer);
      const event = JSON.parse(line);
      if (event.type === "up") resolve(event);
      else reject(new Error(`go-netstack -forward: ${line}`));
    });
  });
  const door = (_protocol, to) => up.listening.find((entry) => entry.to === to).address;
  const stop = async () => {
    child.kill("SIGINT");
    await exited;
  };
  return { door, stop };
}

// ---------------------------------------------------------------- transfers

/** A client result as { mbitPerSecond, ms } once its integrity is checked, else { error }. */
function checked(kind, result) {
  if (result.error !== undefined) return { error: result.error };
  const ok =
    kind === "download"
      ? result.bytes === BYTES && result.sha256 === downloadSha256(BYTES)
      : result.bytes === BYTES && result.serverBytes === BYTES && result.serverSha256 === result.sha256;
  if (!ok) return { error: `integrity: ${JSON.stringify(result)}` };
  return { mbitPerSecond: round((BYTES * 8) / (result.ms * 1000), 1), ms: Math.round(result.ms) };
}

async function transfersOf(client, kernel, connect, netstack, netstackForward) {
  const timeout = ["--timeout", String(TRANSFER_TIMEOUT_MS)];
  const out = {};
  for (const kind of ["download", "upload"]) {
    const port = kind === "download" ? PORTS.download : PORTS.upload;
    let result;
    const [role, label = LABELS[0]] = client.split("@");
    const ours = connect?.[label];
    if (role === "socks5") result = await runLocal(process.execPath, [TRANSFER_CLIENT, kind, SERVER_ADDRESS, port, BYTES, "--socks5", ours.door("socks5", "*"), ...timeout]);
    if (role === "forward" || client === "netstack-forward") {
      const door = client === "netstack-forward" ? netstackForward.door : ours.door;
      const [host, localPort] = splitHostPort(door("tcp", `${SERVER_ADDRESS}:${port}`));
      result = await runLocal(process.execPath, [TRANSFER_CLIENT, kind, host, localPort, BYTES, ...timeout]);
    }
    if (role === "direct") {
      const [command, ...runtimeArgs] = CONNECT_RUNTIMES[OURS[label].runtime](TRANSFER_CLIENT);
      if (PROFILE_DIR && OURS[label].runtime === "node") runtimeArgs.unshift("--cpu-prof", "--cpu-prof-dir", path.join(PROFILE_DIR, `direct-${label}`));
      const lib = path.join(path.dirname(path.dirname(OURS[label].main)), "index.js");
      const threads = OURS[label].flags.includes("--threads") ? ["--threads", OURS[label].flags[OURS[label].flags.indexOf("--threads") + 1]] : [];
      result = await runLocal(command, [...runtimeArgs, kind, SERVER_ADDRESS, port, BYTES, "--tunnel", directConfigs[label], "--lib", lib, ...threads, ...timeout]);
    }
    if (client === "kernel") {
      const args = [TRANSFER_CLIENT, kind, SERVER_ADDRESS, String(port), String(BYTES), ...timeout];
      result = jsonResult(await kernel.exec(process.execPath, args, { timeoutMs: TRANSFER_TIMEOUT_MS + 30_000 }));
    }
    if (client === "netstack") result = (await netstack())[kind];
    out[kind] = checked(kind, result);
  }
  return out;
}

function splitHostPort(text) {
  const colon = text.lastIndexOf(":");
  return [text.slice(0, colon), Number(text.slice(colon + 1))];
}

// ---------------------------------------------------------------- the run

const goBinary = buildGoNetstack();
const wireguardGo = await wireguardGoCommand("current");
// An A/B run gives each build of ours its own key and address (10.0.0.2, then 10.0.0.6 …).
for (const [i, label] of LABELS.slice(1).entries()) CLIENT_ADDRESSES[`ours@${label}`] = `10.0.0.${6 + i}`;
// Each build's direct client too (10.0.0.20 …): a process of its own, so a key of its own.
const directName = (i, label) => (i === 0 ? "direct" : `direct@${label}`);
for (const [i, label] of LABELS.entries()) CLIENT_ADDRESSES[directName(i, label)] = `10.0.0.${20 + i}`;
const keys = Object.fromEntries(Object.keys(CLIENT_ADDRESSES).map((name) => [name, genkey()]));
const serverKey = genkey();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wgn-client-role-"));
const started = Date.now();
const loadBefore = os.loadavg();
const runs = [];
let many;

const server = await startWgServer({
  implementation: "current",
  privateKey: serverKey,
  tunnelAddresses: [`${SERVER_ADDRESS}/24`],
  peers: Object.entries(CLIENT_ADDRESSES).map(([name, address]) => ({ publicKey: pubkey(keys[name]), allowedIps: [`${address}/32`] })),
});
let kernel;
let connect;
let netstackForward;
/** The wg-quick config of each build's direct client, by label. */
const directConfigs = {};
/** The transfers' connect process of each build of ours, by label. */
const ourConnects = {};
try {
  const programs = server.spawn(process.execPath, [path.join(ROOT, "bench/kernel-server.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
  await once(programs.stdout, "data");
  kernel = await startWgClient({ implementation: "current", privateKey: keys.kernel, serverPublicKey: pubkey(serverKey), server, tunnelAddresses: [`${CLIENT_ADDRESSES.kernel}/32`] });
  const netstackConfig = writeConfig(dir, "netstack", keys.netstack, CLIENT_ADDRESSES.netstack, server, pubkey(serverKey));
  const netstackForwardConfig = writeConfig(dir, "netstack-forward", keys["netstack-forward"], CLIENT_ADDRESSES["netstack-forward"], server, pubkey(serverKey));
  netstackForward = await startGoForward(netstackForwardConfig, [PORTS.download, PORTS.upload]);
  for (const [i, label] of LABELS.entries()) {
    const name = directName(i, label);
    directConfigs[label] = writeConfig(dir, name.replace("@", "-"), keys[name], CLIENT_ADDRESSES[name], server, pubkey(serverKey));
  }
  for (const [i, label] of LABELS.entries()) {
    const name = i === 0 ? "ours" : `ours@${label}`;
    const oursConfig = writeConfig(dir, name.replace("@", "-"), keys[name], CLIENT_ADDRESSES[name], server, pubkey(serverKey));
    const forwards = ["--forward", `tcp:0=${SERVER_ADDRESS}:${PORTS.download}`, "--forward", `tcp:0=${SERVER_ADDRESS}:${PORTS.upload}`];
    ourConnects[label] = await startConnect(oursConfig, ["--socks5", "0", ...forwards, ...OURS[label].flags], `transfers-${label}`, OURS[label]);
  }

  for (let run = 1; run <= RUNS; run++) {
    const entry = { run, loadBefore: os.loadavg().map((x) => round(x, 2)) };
    // The Go program downloads then uploads in one process; run it once per run and hand out both results.
    let netstackResult;
    const netstack = async () => {
      netstackResult ??= await runLocal(goBinary, ["-config", netstackConfig, "-host", SERVER_ADDRESS, "-bytes", String(BYTES), "-timeout", `${(TRANSFER_TIMEOUT_MS * 2) / 1000}s`]);
      return netstackResult.error === undefined ? netstackResult : { download: netstackResult, upload: netstackResult };
    };
    // A/B: the builds' order alternates run by run, so neither always goes first.
    const labels = run % 2 === 1 ? LABELS : [...LABELS].reverse();
    for (const client of [...oursClients(labels), "netstack", "netstack-forward", "kernel"]) {
      entry[client] = await transfersOf(client, kernel, ourConnects, netstack, netstackForward);
      console.error(`[bench] run ${run} ${client}: down ${cell(entry[client].download)}, up ${cell(entry[client].upload)}`);
    }
    entry.loadAfter = os.loadavg().map((x) => round(x, 2));
    runs.push(entry);
  }
  const transfersMemory = await ourConnects[LABELS[0]].memory();
  const transfersSummary = await ourConnects[LABELS[0]].stop();
  for (const label of LABELS.slice(1)) await ourConnects[label].stop();
  for (const label of LABELS) delete ourConnects[label];

  // 1,000 concurrent proxied connections, through a connect process of their own.
  const manyConfig = writeConfig(dir, "many", keys.many, CLIENT_ADDRESSES.many, server, pubkey(serverKey));
  connect = await startConnect(manyConfig, ["--socks5", "0"], "many");
  const before = await connect.memory();
  const result = await runLocal(process.execPath, [TRANSFER_CLIENT, "many", SERVER_ADDRESS, PORTS.echo, CONNECTIONS, "--socks5", connect.door("socks5", "*"), "--timeout", String(TRANSFER_TIMEOUT_MS)]);
  const after = await connect.memory();
  // Let every flow end (the client closed them all) before the summary counts how they ended.
  for (let i = 0; i < 300 && connect.events.filter((e) => e.type === "flow").length < CONNECTIONS; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const summary = await connect.stop();
  connect = undefined;
  many = { connections: CONNECTIONS, ...result, ms: round(result.ms ?? 0), before, after, flows: summary?.tcp, ends: summary?.ends };
  many.transfersConnect = { memory: transfersMemory, flows: transfersSummary?.tcp, ends: transfersSummary?.ends };
  console.error(`[bench] ${CONNECTIONS} connections: ${manyCell(many)}`);
} finally {
  for (const label of Object.keys(ourConnects)) await ourConnects[label].stop();
  await connect?.stop();
  await netstackForward?.stop();
  await kernel?.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- report

function round(x, digits = 0) {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

function cell(r) {
  return r.error !== undefined ? `failed (${r.error})` : `${r.mbitPerSecond} Mbit/s`;
}

function ratio(ours, theirs) {
  if (ours.error !== undefined || theirs.error !== undefined) return "–";
  return `${round(ours.mbitPerSecond / theirs.mbitPerSecond, 2)}×`;
}

function mib(bytes) {
  return `${round(bytes / MiB, 1)} MiB`;
}

function manyCell(m) {
  if (m.error !== undefined) return `failed (${m.error})`;
  return (
    `${m.succeeded} of ${m.connections} succeeded in ${m.ms} ms${m.failed ? ` (errors ${JSON.stringify(m.errors)})` : ""}; ` +
    `connect RSS ${mib(m.before.rssBytes)} → ${mib(m.after.rssBytes)} (peak ${mib(m.after.peakRssBytes)}), ` +
    `wasm memory ${mib(m.before.wasmMemoryBytes)} → ${mib(m.after.wasmMemoryBytes)}`
  );
}

function table() {
  const ours = oursClients(LABELS);
  const name = (c) => (LABELS.length === 1 ? `ours, ${c}` : c);
  const lines = [
    `| run | load | direction | ${ours.map(name).join(" | ")} | netstack (gVisor) | netstack-forward | kernel | ${ours.map((c) => `${c} / ${netstackLike(c)} | ${c} / kernel`).join(" | ")} |`,
    `|${"---|".repeat(6 + 3 * ours.length)}`,
  ];
  for (const e of runs) {
    for (const kind of ["download", "upload"]) {
      const [n, nf, k] = ["netstack", "netstack-forward", "kernel"].map((c) => e[c][kind]);
      const cells = ours.map((c) => cell(e[c][kind]));
      const ratios = ours.map((c) => `${ratio(e[c][kind], e[netstackLike(c)][kind])} | ${ratio(e[c][kind], k)}`);
      lines.push(`| ${e.run} | ${e.loadBefore[0]}–${e.loadAfter[0]} | ${kind} | ${cells.join(" | ")} | ${cell(n)} | ${cell(nf)} | ${cell(k)} | ${ratios.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}

const report = {
  date: new Date().toISOString(),
  quick: QUICK,
  bytes: BYTES,
  ours: OURS,
  commit: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), loadBefore: loadBefore.map((x) => round(x, 2)), loadAfter: os.loadavg().map((x) => round(x, 2)) },
  versions: {
    node: process.version,
    wireguardGo: execFileSync(wireguardGo, ["--version"], { encoding: "utf8" }).split("\n")[0],
    go: execFileSync(goCommand(), ["version"], { encoding: "utf8" }).trim(),
  },
  seconds: round((Date.now() - started) / 1000),
  runs,
  many,
};
fs.mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
fs.writeFileSync(path.join(ROOT, "bench/results/client-role.json"), `${JSON.stringify(report, null, 2)}\n`);
console.log(table());
console.log(`\n${CONNECTIONS} concurrent connections through --socks5: ${manyCell(many)}`);
console.log(`\n${report.seconds} s; load average ${report.machine.loadBefore.join(" ")} → ${report.machine.loadAfter.join(" ")}; results in bench/results/client-role.json`);
