/**
 * Interop test harness: runs REAL WireGuard clients (wireguard-go + wg) inside
 * Linux network namespaces on this machine.
 *
 * Topology of one client (slot N, 1..254):
 *
 *   root namespace                         namespace "wgns-N"
 *   wgnshN  10.201.N.1/24  <--- veth --->  wgncN 10.201.N.2/24
 *   (the server under test binds           wgnsN (wireguard-go tun): tunnel addresses,
 *    0.0.0.0:port or 10.201.N.1:port)      default routes (v4 + v6) -> wgnsN
 *
 * The WireGuard endpoint 10.201.N.1 is reached over the veth's connected route,
 * so the default route through the tunnel is safe, and nothing ever leaves the
 * machine: the namespace has no other way out.
 *
 * Variants (startWgClient options): the client runs Debian's or the current
 * wireguard-go (./wireguard-go.ts); it reaches the server through a lossy relay
 * listening on 10.201.N.1 (../support/lossy-relay.mjs, in the root namespace); or its
 * server is a reference wireguard-go in a namespace of its own (startWgServer, slot S),
 * reached over a second veth pair, 10.202.S.2 (client) <-> 10.202.S.1 (server).
 *
 * Names are unique per slot because wireguard-go's UAPI socket lives in the
 * shared filesystem (/var/run/wireguard/<iface>.sock): two wireguard-go
 * processes called "wg0" in different namespaces collide ("unix socket in use").
 *
 * Slots are reserved with a lock file (O_EXCL) in LOCK_DIR that records the
 * owner's pid + start time, created BEFORE and removed AFTER the namespace and
 * links. cleanupStaleNamespaces() removes everything whose owner is dead, and
 * any wgns-* namespace / wgnsh* link that has no lock file at all.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnLossyRelay, type LinkCounters, type LinkProfile } from "../support/lossy-relay.mjs";
import { currentWireguardGoSkipReason, wireguardGoCommand, type WireguardGoImplementation } from "./wireguard-go.js";

// ---------------------------------------------------------------- constants

/** Absolute path of the script that runs the client-side tasks inside a namespace. */
export const CLIENT_TASKS_PATH = fileURLToPath(new URL("./client-tasks.mjs", import.meta.url));

const LOCK_DIR = "/run/wg-netstack-interop";
const NS_PREFIX = "wgns-"; // namespace:      wgns-N
const HOST_IF_PREFIX = "wgnsh"; // root veth:  wgnshN
const NS_IF_PREFIX = "wgnc"; // ns-side veth:  wgncN
const WG_IF_PREFIX = "wgns"; // wireguard-go:  wgnsN (globally unique, see above)
const TMP_PREFIX = "wgns-interop-";
const SUBNET_PREFIX = "10.201";
const MIN_SLOT = 1;
const MAX_SLOT = 254;

const nsName = (n: number) => `${NS_PREFIX}${n}`;
const hostIfName = (n: number) => `${HOST_IF_PREFIX}${n}`;
const nsIfName = (n: number) => `${NS_IF_PREFIX}${n}`;
const wgIfName = (n: number) => `${WG_IF_PREFIX}${n}`;
const lockPath = (n: number) => path.join(LOCK_DIR, `${n}.json`);

/** Naming details, exported for tests of the harness itself. */
export const harnessInternals = { LOCK_DIR, nsName, hostIfName, nsIfName, wgIfName, lockPath, SUBNET_PREFIX };

// ---------------------------------------------------------------- small process helpers

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** true when the command was killed because timeoutMs elapsed (code is then 124). */
  timedOut?: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_EXEC_TIMEOUT_MS = 60_000;

/**
 * process.env without proxy variables: what the tests run (curl above all) talks to loopback and
 * to namespaces this test made, never through a runner's proxy (curl would send it there).
 */
export const LOCAL_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/_proxy$/i.test(name)));

function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? LOCAL_ENV });
    } catch (err) {
      resolve({ code: 127, stdout: "", stderr: String(err) });
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout!.on("data", (d: Buffer) => out.push(d));
    child.stderr!.on("data", (d: Buffer) => errOut.push(d));
    child.stdin!.on("error", () => {}); // EPIPE when the command does not read its input
    child.on("error", (err) => {
      spawnError = err;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(errOut).toString("utf8");
      if (spawnError) stderr += `${stderr ? "\n" : ""}${spawnError.message}`;
      if (timedOut) stderr += `${stderr ? "\n" : ""}[killed: timed out after ${timeoutMs} ms]`;
      resolve({
        code: timedOut ? 124 : code ?? (spawnError ? 127 : 128 + signalNumber(signal)),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr,
        ...(timedOut ? { timedOut } : {}),
      });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (!signal) return 0;
  return (os.constants.signals as Record<string, number>)[signal] ?? 0;
}

async function runOk(cmd: string, args: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`\`${[cmd, ...args].join(" ")}\` failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

function runSyncQuiet(cmd: string, args: string[]): { code: number; stdout: string } {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", timeout: 10_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? "" };
}


function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").concat(["/usr/sbin", "/sbin"])) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- process identity (pid + start time)

function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime); fields after the ")" of the comm start at field 3.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(pid: unknown, startTime: unknown): boolean {
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // pid is alive: make sure it is the same process (not a reused pid)
  const st = processStartTime(pid);
  return st === undefined || startTime === undefined || st === startTime;
}

// ---------------------------------------------------------------- skip detection

let skipReasonCache: { value: string | undefined } | undefined;

/**
 * undefined when the interop tests can run here (Linux, root, `ip`, `wireguard-go`,
 * `wg`, Go or a cached build of the current wireguard-go, /dev/net/tun, and network
 * namespaces actually work); otherwise a human
 * readable reason. Set WG_NETSTACK_SKIP_INTEROP=1 to force a skip.
 */
export function interopSkipReason(): string | undefined {
  if (!skipReasonCache) skipReasonCache = { value: computeSkipReason() };
  // CI runs as root on purpose: there a skip would hide that the real-client tests did not run.
  if (skipReasonCache.value && process.env.CI) {
    throw new Error(`interop tests must run in CI but cannot: ${skipReasonCache.value}`);
  }
  return skipReasonCache.value;
}

function computeSkipReason(): string | undefined {
  if (process.env.WG_NETSTACK_SKIP_INTEROP && process.env.WG_NETSTACK_SKIP_INTEROP !== "0") {
    return "disabled by WG_NETSTACK_SKIP_INTEROP";
  }
  if (process.platform !== "linux") return `needs Linux network namespaces (platform is ${process.platform})`;
  const uid = process.getuid?.();
  if (uid !== 0) return `needs root for network namespaces (uid ${uid})`;
  for (const bin of ["ip", "wireguard-go", "wg"]) {
    if (!which(bin)) return `needs \`${bin}\` on PATH (apt-get install ${bin === "ip" ? "iproute2" : bin === "wg" ? "wireguard-tools" : bin})`;
  }
  const noCurrent = currentWireguardGoSkipReason();
  if (noCurrent) return noCurrent;
  if (!fs.existsSync("/dev/net/tun")) return "needs /dev/net/tun for wireguard-go";
  // Probe: can we really create a namespace (containers may lack CAP_SYS_ADMIN)?
  const probe = `${NS_PREFIX}probe-${process.pid}`;
  const add = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8", timeout: 10_000 });
  if (add.status !== 0) {
    return `cannot create network namespaces: ${(add.stderr || add.error?.message || "").trim()}`;
  }
  spawnSync("ip", ["netns", "del", probe], { timeout: 10_000 });
  return undefined;
}

let pdeathsigCache: boolean | undefined;
/** setpriv --pdeathsig makes wireguard-go die with its parent if the test process crashes. */
function hasSetprivPdeathsig(): boolean {
  if (pdeathsigCache === undefined) {
    const r = spawnSync("setpriv", ["--help"], { encoding: "utf8", timeout: 5_000 });
    pdeathsigCache = r.status === 0 && /--pdeathsig/.test(r.stdout ?? "");
  }
  return pdeathsigCache;
}

// ---------------------------------------------------------------- namespaces

export interface Netns {
  /** namespace name (wgns-N) */
  name: string;
  /** slot number N: subnet 10.201.N.0/24 */
  slot: number;
  /** root-side veth IPv4 address, 10.201.N.1 */
  hostAddress: string;
  /** namespace-side veth IPv4 address, 10.201.N.2 */
  nsAddress: string;
  /** root-side veth interface name */
  hostIf: string;
  /** namespace-side veth interface name */
  nsIf: string;
  /** private temp dir (0700) for keys and logs; removed on close */
  tmpdir: string;
  /** Run a command inside the namespace (`ip netns exec`), wait for it. */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number; input?: string | Uint8Array; env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /** Start a long-running command inside the namespace; it is killed on close(). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /**
   * Start wireguard-go (foreground, verbose log to a file in tmpdir) on an interface
   * named wgnsN and wait until its UAPI socket answers. Killed on close().
   * Returns the interface name. `command`: which wireguard-go (default Debian's, on PATH).
   */
  startWireguardGo(command?: string): Promise<string>;
  /**
   * Kill wireguard-go (SIGTERM, or `signal`) and wait until it has exited; its interface, and
   * the addresses and routes on it, go with it. startWireguardGo() may then start it again
   * (its log goes on in the same file).
   */
  stopWireguardGo(signal?: NodeJS.Signals): Promise<void>;
  /** wireguard-go's log so far ("" when not started). */
  wgLog(): string;
  /** Kill processes, delete veth + namespace, temp files, lock. Idempotent. */
  close(): Promise<void>;
}

interface LiveNs {
  slot: number;
  tmpdir: string;
  children: Set<ChildProcess>;
}
const live = new Map<number, LiveNs>();
let exitHookInstalled = false;
let slotCounter = 0;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last-resort synchronous cleanup if the test process exits without close().
  process.once("exit", () => {
    for (const ns of live.values()) teardownSlotSync(ns.slot, ns.children, ns.tmpdir);
    live.clear();
  });
}

function ensureLockDir() {
  fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
}

/**
 * Lock contents; undefined if there is no lock. A lock that cannot be parsed yet (an O_EXCL
 * create is not atomic with its write) counts as owned by us while young, i.e. alive.
 */
function readLock(n: number): { pid?: number; startTime?: string; tmpdir?: string } | undefined {
  return readOwnerFile(lockPath(n));
}

function readOwnerFile(file: string): { pid?: number; startTime?: string; tmpdir?: string } | undefined {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") return parsed;
  } catch {
    /* fall through */
  }
  // half-written (young) => pretend it is ours (alive); garbage (old) => owned by nobody
  return Date.now() - mtimeMs < 60_000 ? { pid: process.pid, startTime: processStartTime(process.pid) } : {};
}

const reclaimPath = (n: number) => path.join(LOCK_DIR, `${n}.reclaim`);

function ownLockJson(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ pid: process.pid, startTime: processStartTime(process.pid), createdAt: new Date().toISOString(), ...extra });
}

/** O_EXCL create; false if it already exists. */
function createExclusive(file: string, content: string): boolean {
  try {
    fs.writeFileSync(file, content, { flag: "wx", mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

function slotResourcesExist(n: number): boolean {
  if (fs.existsSync(`/run/netns/${nsName(n)}`)) return true;
  return fs.existsSync(`/sys/class/net/${hostIfName(n)}`);
}

/** Reserve a free slot (lock file created with O_EXCL) whose subnet is unused on this machine. */
async function reserveSlot(tmpdir: string): Promise<number> {
  ensureLockDir();
  const addrs = (await run("ip", ["-4", "-o", "addr", "show"])).stdout + (await run("ip", ["-4", "route", "show", "table", "all"])).stdout;
  const span = MAX_SLOT - MIN_SLOT + 1;
  const start = (process.pid * 37 + slotCounter++) % span;
  for (let k = 0; k < span; k++) {
    const n = MIN_SLOT + ((start + k) % span);
    if (fs.existsSync(lockPath(n)) || fs.existsSync(reclaimPath(n))) continue;
    if (addrs.includes(`${SUBNET_PREFIX}.${n}.`)) continue; // someone else uses 10.201.N.0/24
    if (fs.existsSync(`/sys/class/net/${wgIfName(n)}`)) continue;
    if (!createExclusive(lockPath(n), ownLockJson({ tmpdir }))) continue;
    // We own slot n now. Lockless leftovers of a crashed run (lock dir wiped)? Remove them.
    if (slotResourcesExist(n)) await destroySlotResources(n, new Set(), undefined);
    return n;
  }
  throw new Error(`no free ${SUBNET_PREFIX}.N.0/24 slot for a test namespace (all ${span} in use?)`);
}

/** Create a fresh network namespace connected to the root namespace by a veth pair. */
export async function createNamespace(): Promise<Netns> {
  installExitHook();
  const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), TMP_PREFIX));
  fs.chmodSync(tmpdir, 0o700);
  fs.writeFileSync(path.join(tmpdir, "owner.json"), ownLockJson(), { mode: 0o600 });
  let slot: number;
  try {
    slot = await reserveSlot(tmpdir);
  } catch (err) {
    fs.rmSync(tmpdir, { recursive: true, force: true });
    throw err;
  }
  const state: LiveNs = { slot, tmpdir, children: new Set() };
  live.set(slot, state);

  const name = nsName(slot);
  const hostIf = hostIfName(slot);
  const nsIf = nsIfName(slot);
  const hostAddress = `${SUBNET_PREFIX}.${slot}.1`;
  const nsAddress = `${SUBNET_PREFIX}.${slot}.2`;
  const wgIf = wgIfName(slot);
  const logPath = path.join(tmpdir, "wireguard-go.log");
  let wgChild: ChildProcess | undefined;
  /** Resolves when wgChild has exited: its 'exit' event, listened for from its start. */
  let wgExited: Promise<void> | undefined;
  let closing: Promise<void> | undefined;

  const exec: Netns["exec"] = (cmd, args, opts = {}) => {
    if (closing) return Promise.resolve({ code: 125, stdout: "", stderr: `namespace ${name} is closed` });
    return run("ip", ["netns", "exec", name, cmd, ...args], opts);
  };

  const spawnIn: Netns["spawn"] = (cmd, args, opts = {}) => {
    if (closing) throw new Error(`namespace ${name} is closed`);
    const child = spawn("ip", ["netns", "exec", name, cmd, ...args], opts);
    state.children.add(child);
    child.once("exit", () => state.children.delete(child));
    child.on("error", () => state.children.delete(child));
    return child;
  };

  const wgLog = () => {
    try {
      return fs.readFileSync(logPath, "utf8");
    } catch {
      return "";
    }
  };

  const startWireguardGo = async (command = "wireguard-go"): Promise<string> => {
    try {
      return await startWireguardGoOnce(command);
    } catch (error) {
      // Seen about once in a dozen full runs, under load, with parallel test files: wireguard-go
      // exits at once with "Failed to listen on uapi socket: no such file or directory" (its
      // socket's path raced away between its listen and its clean-up of a stale one; not
      // ours to fix). The namespace is untouched: start it once more.
      if (!String(error).includes("Failed to listen on uapi socket")) throw error;
      console.log(`[interop] wireguard-go in ${name} could not listen on its UAPI socket; starting it again`);
      wgChild = undefined;
      removeStaleWgSocket(slot);
      return startWireguardGoOnce(command);
    }
  };

  const startWireguardGoOnce = async (command: string): Promise<string> => {
    // Its UAPI socket lives here; two wireguard-go processes starting at once can race to
    // create the directory, and the loser fails with "no such file or directory".
    fs.mkdirSync("/var/run/wireguard", { recursive: true, mode: 0o755 });
    if (wgChild) throw new Error(`wireguard-go already started in ${name}`);
    const logFd = fs.openSync(logPath, "a", 0o600); // a restart's log follows the first one's
    const argv = hasSetprivPdeathsig() ? ["setpriv", "--pdeathsig", "TERM", command, wgIf] : [command, wgIf];
    try {
      wgChild = spawn("ip", ["netns", "exec", name, ...argv], {
        env: { ...process.env, WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "verbose" },
        stdio: ["ignore", logFd, logFd],
      });
    } finally {
      fs.closeSync(logFd);
    }
    const child = wgChild;
    state.children.add(child);
    wgExited = new Promise((resolve) => child.once("exit", () => resolve()));
    let exited: string | undefined;
    child.once("exit", (code, signal) => {
      exited = `exit code ${code}${signal ? `, signal ${signal}` : ""}`;
      state.children.delete(child);
    });
    child.on("error", (err) => {
      exited = `spawn error: ${err.message}`;
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exited) throw new Error(`wireguard-go in ${name} died during startup (${exited}). Log:\n${wgLog()}`);
      const r = await run("ip", ["netns", "exec", name, "wg", "show", wgIf], { timeoutMs: 5_000 });
      if (r.code === 0) return wgIf;
      if (Date.now() > deadline) {
        throw new Error(`wireguard-go in ${name} did not come up within 10 s (${r.stderr.trim()}). Log:\n${wgLog()}`);
      }
      await sleep(25);
    }
  };

  const stopWireguardGo = async (signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
    const child = wgChild;
    if (!child) return;
    wgChild = undefined;
    // Its 'exit' event, not exitCode/signalCode: Deno's node:child_process sets signalCode
    // as kill() returns, before the process has gone (and let go of its UDP port).
    const exited = async (ms: number) => {
      const timer = new AbortController();
      const timedOut = sleep(ms, false, { signal: timer.signal }).catch(() => false);
      const result = await Promise.race([wgExited!.then(() => true), timedOut]);
      timer.abort();
      return result;
    };
    child.kill(signal);
    if (!(await exited(5_000))) {
      child.kill("SIGKILL");
      await exited(5_000);
    }
    removeStaleWgSocket(slot); // left behind by SIGKILL
  };

  const close = () => {
    closing ??= (async () => {
      await teardownSlot(slot, state.children, tmpdir);
      live.delete(slot);
    })();
    return closing;
  };

  try {
    await runOk("ip", ["netns", "add", name]);
    // IPv6 in the namespace: enable before creating interfaces (new ifaces copy "default").
    await run("ip", ["netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"]);
    await runOk("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", name]);
    await runOk("ip", ["addr", "add", `${hostAddress}/24`, "dev", hostIf]);
    await runOk("ip", ["link", "set", hostIf, "up"]);
    await runOk("ip", ["-n", name, "addr", "add", `${nsAddress}/24`, "dev", nsIf]);
    await runOk("ip", ["-n", name, "link", "set", nsIf, "up"]);
    await runOk("ip", ["-n", name, "link", "set", "lo", "up"]);
  } catch (err) {
    await close();
    throw err;
  }

  return { name, slot, hostAddress, nsAddress, hostIf, nsIf, tmpdir, exec, spawn: spawnIn, startWireguardGo, stopWireguardGo, wgLog, close };
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function killPidsInNs(name: string) {
  for (let round = 0; round < 2; round++) {
    const r = await run("ip", ["netns", "pids", name], { timeoutMs: 5_000 });
    const pids = r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 1 && p !== process.pid);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, round === 0 ? "SIGTERM" : "SIGKILL");
      } catch {
        /* gone */
      }
    }
    // wait for them to leave the namespace
    for (let i = 0; i < 40; i++) {
      await sleep(25);
      const again = await run("ip", ["netns", "pids", name], { timeoutMs: 5_000 });
      if (!again.stdout.trim()) return;
    }
  }
}

async function teardownSlot(n: number, children: Set<ChildProcess>, tmpdir: string | undefined) {
  await destroySlotResources(n, children, tmpdir);
  try {
    fs.unlinkSync(lockPath(n)); // last: the slot may be reused from now on
  } catch {
    /* already gone */
  }
}

/** Kill processes, delete veth + namespace, stale UAPI socket, temp dir. Does not touch the lock. */
async function destroySlotResources(n: number, children: Set<ChildProcess>, tmpdir: string | undefined) {
  const name = nsName(n);
  // 1. our own children (wireguard-go, spawned tasks): SIGTERM so wireguard-go removes its socket, then SIGKILL
  const kids = [...children];
  for (const c of kids) c.kill("SIGTERM");
  await Promise.all(
    kids.map(async (c) => {
      if (!(await waitExit(c, 2_000))) {
        c.kill("SIGKILL");
        await waitExit(c, 2_000);
      }
    }),
  );
  // 2. anything else still living in the namespace (also: leftovers of crashed runs)
  if (fs.existsSync(`/run/netns/${name}`)) await killPidsInNs(name);
  // 3. links + namespace (deleting the root end of a veth deletes both ends)
  await run("ip", ["link", "del", hostIfName(n)]);
  if (fs.existsSync(`/run/netns/${name}`)) await run("ip", ["netns", "del", name]);
  removeStaleWgSocket(n);
  if (tmpdir) safeRmTmp(tmpdir);
}

function teardownSlotSync(n: number, children: Set<ChildProcess>, tmpdir: string | undefined) {
  const name = nsName(n);
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      /* ignore */
    }
  }
  const pids = runSyncQuiet("ip", ["netns", "pids", name]).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      if (pid > 1 && pid !== process.pid) process.kill(pid, "SIGKILL");
    } catch {
      /* ignore */
    }
  }
  runSyncQuiet("ip", ["link", "del", hostIfName(n)]);
  runSyncQuiet("ip", ["netns", "del", name]);
  removeStaleWgSocket(n);
  if (tmpdir) safeRmTmp(tmpdir);
  try {
    fs.unlinkSync(lockPath(n));
  } catch {
    /* ignore */
  }
}

function removeStaleWgSocket(n: number) {
  // wireguard-go removes it on SIGTERM; after SIGKILL it stays (harmless, but tidy up)
  try {
    fs.unlinkSync(`/var/run/wireguard/${wgIfName(n)}.sock`);
  } catch {
    /* ignore */
  }
}

function safeRmTmp(dir: string) {
  const resolved = path.resolve(dir);
  if (path.dirname(resolved) === path.resolve(os.tmpdir()) && path.basename(resolved).startsWith(TMP_PREFIX)) {
    fs.rmSync(resolved, { recursive: true, force: true });
  }
}

/**
 * Remove leftovers of crashed runs: slots whose lock-file owner (pid + start time)
 * is dead, and any wgns-N namespace / wgnshN veth without a lock file. For each:
 * kill every process still inside the namespace (wireguard-go, tasks), delete the
 * veth, the namespace, the stale UAPI socket, the temp dir with keys, the lock.
 * Never touches slots owned by a live process (e.g. a concurrently running test file).
 */
export async function cleanupStaleNamespaces(): Promise<void> {
  let lockFiles: string[] = [];
  try {
    lockFiles = fs.readdirSync(LOCK_DIR);
  } catch {
    /* no dir yet: nothing was ever locked */
  }
  // (a) slots whose owner died. Claim the slot with an O_EXCL "reclaim" file first, so that
  //     concurrent cleaners never tear down a slot that was meanwhile freed and reused.
  for (const f of lockFiles) {
    const m = /^(\d+)\.json$/.exec(f);
    if (!m) continue;
    const n = Number(m[1]);
    if (live.has(n)) continue;
    const lock = readLock(n);
    if (!lock || ownerAlive(lock.pid, lock.startTime)) continue;
    if (!claimReclaim(n)) continue;
    try {
      const again = readLock(n); // re-check under the claim
      if (again && !ownerAlive(again.pid, again.startTime)) await teardownSlot(n, new Set(), again.tmpdir);
    } finally {
      fs.rmSync(reclaimPath(n), { force: true });
    }
  }
  // (b) namespaces / veths without any lock file (owners create the lock first and remove it
  //     last, so a live slot always has one). Claim by creating the lock ourselves.
  const orphans = new Set<number>();
  const netnsList = (await run("ip", ["netns", "list"])).stdout;
  for (const m of netnsList.matchAll(new RegExp(`^${NS_PREFIX}(\\d+)( |$)`, "gm"))) orphans.add(Number(m[1]));
  const links = (await run("ip", ["-o", "link", "show"])).stdout;
  for (const m of links.matchAll(new RegExp(`^\\d+: ${HOST_IF_PREFIX}(\\d+)[@:]`, "gm"))) orphans.add(Number(m[1]));
  for (const n of orphans) {
    if (live.has(n) || fs.existsSync(lockPath(n))) continue;
    ensureLockDir();
    if (!createExclusive(lockPath(n), ownLockJson({ reclaiming: true }))) continue;
    await teardownSlot(n, new Set(), undefined);
  }
  // (c) probe namespaces of interopSkipReason() in dead processes
  for (const m of netnsList.matchAll(new RegExp(`^(${NS_PREFIX}probe-(\\d+))( |$)`, "gm"))) {
    if (!ownerAlive(Number(m[2]), undefined)) await run("ip", ["netns", "del", m[1]]);
  }
  // (d) temp dirs (keys!) of dead owners whose lock is already gone
  for (const d of fs.readdirSync(os.tmpdir())) {
    if (!d.startsWith(TMP_PREFIX)) continue;
    const full = path.join(os.tmpdir(), d);
    const owner = readOwnerFile(path.join(full, "owner.json"));
    if (owner && !ownerAlive(owner.pid, owner.startTime)) safeRmTmp(full);
  }
}

/** O_EXCL claim of a dead slot for teardown; a claim left by a dead cleaner is taken over. */
function claimReclaim(n: number): boolean {
  ensureLockDir();
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createExclusive(reclaimPath(n), ownLockJson())) return true;
    const holder = readOwnerFile(reclaimPath(n));
    if (!holder) continue; // vanished meanwhile: retry
    if (ownerAlive(holder.pid, holder.startTime)) return false;
    fs.rmSync(reclaimPath(n), { force: true }); // stale claim
  }
  return false;
}

// ---------------------------------------------------------------- WireGuard client

export interface WgClientOptions {
  privateKey: string; // base64 (as wg genkey)
  serverPublicKey: string; // base64
  /** UDP port of a server in the ROOT namespace, bound to 0.0.0.0 (or to hostAddress when there is no relay). */
  serverPort?: number;
  /** Instead of serverPort: a wireguard-go server in its own namespace (startWgServer), reached over a veth pair of their own. */
  server?: WgServer;
  tunnelAddresses: string[]; // e.g. ["10.0.0.2/32", "fd00::2/128"] put on the wg interface
  presharedKey?: string;
  persistentKeepalive?: number;
  /** Which wireguard-go runs the client (default "debian"). */
  implementation?: WireguardGoImplementation;
  /**
   * Reach the server through a lossy relay (test/support/lossy-relay.mjs, a child process in
   * the root namespace listening on hostAddress) instead of directly. Stopped on close().
   */
  relay?: { up?: LinkProfile; down?: LinkProfile; seed?: number };
}

export interface WgDumpPeer {
  publicKey: string;
  presharedKey: string | undefined;
  endpoint: string | undefined;
  allowedIps: string[];
  /** unix seconds, 0 = never */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number | undefined;
}
export interface WgDump {
  privateKey: string;
  publicKey: string;
  listenPort: number;
  fwmark: string;
  peers: WgDumpPeer[];
}

/** Parse `wg show IFACE dump`. */
export function parseWgDump(dump: string): WgDump {
  const lines = dump.trim().split("\n").filter(Boolean);
  const [privateKey, publicKey, listenPort, fwmark] = (lines[0] ?? "").split("\t");
  const none = (s: string | undefined) => (s === undefined || s === "(none)" || s === "off" ? undefined : s);
  return {
    privateKey,
    publicKey,
    listenPort: Number(listenPort),
    fwmark,
    peers: lines.slice(1).map((l) => {
      const [pk, psk, endpoint, allowed, hs, rx, tx, ka] = l.split("\t");
      return {
        publicKey: pk,
        presharedKey: none(psk),
        endpoint: none(endpoint),
        allowedIps: none(allowed)?.split(",") ?? [],
        latestHandshake: Number(hs),
        rxBytes: Number(rx),
        txBytes: Number(tx),
        persistentKeepalive: none(ka) === undefined ? undefined : Number(ka),
      };
    }),
  };
}

/** A namespace running wireguard-go, with `wg` at hand. */
export interface WgNamespace extends Netns {
  /** name of the wireguard-go interface inside the namespace (wgnsN; NOT "wg0": names must be globally unique) */
  iface: string;
  implementation: WireguardGoImplementation;
  /** `wg show IFACE dump` output */
  wgShow(): Promise<string>;
  /** parsed wgShow() */
  wgDump(): Promise<WgDump>;
}

export interface WgClient extends WgNamespace {
  /** Where the client sends its datagrams: the server, or the relay. */
  endpoint: { host: string; port: number };
  /** The relay when one was asked for; stop() ends it (close() does too) and returns its counters. */
  relay?: { listen: { host: string; port: number }; stop(): Promise<{ up: LinkCounters; down: LinkCounters }> };
  /** Poll until the peer's latest-handshake > 0; returns the dump. Throws (with wireguard-go's log) on timeout. */
  waitForHandshake(timeoutMs?: number): Promise<WgDump>;
  /**
   * Run `node client-tasks.mjs <task> ...args` in the namespace and parse its JSON line.
   * Never throws for task failures: check `code` / `json.error`.
   */
  task(task: string, args: (string | number)[], opts?: { timeoutMs?: number }): Promise<TaskResult>;
}

export interface TaskResult extends ExecResult {
  json: any;
}

/** Run client-tasks.mjs inside any namespace (see WgClient.task). */
export async function runClientTask(
  ns: Pick<Netns, "exec">,
  task: string,
  args: (string | number)[],
  opts: { timeoutMs?: number } = {},
): Promise<TaskResult> {
  // The task has its own timeout (--timeout, default 20 s); the outer one is a safety net.
  const r = await ns.exec(process.execPath, [CLIENT_TASKS_PATH, task, ...args.map(String)], {
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
  const line = r.stdout.trim().split("\n").filter(Boolean).pop();
  let json: unknown;
  try {
    json = line ? JSON.parse(line) : { error: `no output (exit ${r.code}): ${r.stderr.trim()}` };
  } catch {
    json = { error: `unparseable output (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}` };
  }
  return { ...r, json };
}

function writeSecret(dir: string, file: string, content: string): string {
  const p = path.join(dir, file);
  fs.writeFileSync(p, `${content.trim()}\n`, { mode: 0o600, flag: "wx" });
  return p;
}

/** A fresh namespace running wireguard-go, with the `wg` helpers. */
async function startWgNamespace(implementation: WireguardGoImplementation): Promise<WgNamespace> {
  const ns = await createNamespace();
  return closeOnError(ns, async () => {
    const iface = await ns.startWireguardGo(await wireguardGoCommand(implementation));
    const wgShow = () => runOk("ip", ["netns", "exec", ns.name, "wg", "show", iface, "dump"]);
    const wgDump = async () => parseWgDump(await wgShow());
    return Object.assign(ns, { iface, implementation, wgShow, wgDump });
  });
}

/** Put addresses on the wireguard-go interface and bring it up. */
async function addTunnelAddresses(ns: WgNamespace, addresses: string[]) {
  for (const a of addresses) {
    const v6 = a.includes(":");
    const cidr = a.includes("/") ? a : `${a}/${v6 ? 128 : 32}`;
    // nodad: the address must be usable (e.g. as --from) immediately
    await runOk("ip", ["-n", ns.name, ...(v6 ? ["-6", "addr", "add", cidr, "dev", ns.iface, "nodad"] : ["addr", "add", cidr, "dev", ns.iface])]);
  }
  await runOk("ip", ["-n", ns.name, "link", "set", ns.iface, "up"]);
}

/** Close `ns` when `body` fails, with wireguard-go's log in the error. */
async function closeOnError<T>(ns: Netns, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const log = ns.wgLog();
    await ns.close();
    if (err instanceof Error && log && !err.message.includes(log)) err.message += `\nwireguard-go log:\n${log}`;
    throw err;
  }
}

const DIRECT_LINK_PREFIX = "10.202"; // 10.202.S.0/24: the direct link of the server in slot S

/**
 * A veth pair straight from a client's namespace to a server's namespace, so the client
 * reaches a server in a namespace in one hop, as it reaches a server in the root namespace
 * (the root namespace does not forward). One direct link per server. Returns the server's address on it.
 */
async function linkToServer(client: Netns, server: Netns): Promise<string> {
  const subnet = `${DIRECT_LINK_PREFIX}.${server.slot}`;
  const clientIf = `wgla${server.slot}`;
  const serverIf = `wglb${client.slot}`;
  await runOk("ip", ["-n", client.name, "link", "add", clientIf, "type", "veth", "peer", "name", serverIf, "netns", server.name]);
  await runOk("ip", ["-n", client.name, "addr", "add", `${subnet}.2/24`, "dev", clientIf]);
  await runOk("ip", ["-n", server.name, "addr", "add", `${subnet}.1/24`, "dev", serverIf]);
  await runOk("ip", ["-n", client.name, "link", "set", clientIf, "up"]);
  await runOk("ip", ["-n", server.name, "link", "set", serverIf, "up"]);
  return `${subnet}.1`;
}

/**
 * Start a real WireGuard client (wireguard-go) in a fresh namespace whose peer is the
 * server: in the root namespace at hostAddress:serverPort, or `server` in its own
 * namespace; directly or through a lossy relay. All IPv4 and IPv6 traffic of the namespace
 * (except the veth subnets) goes through the tunnel.
 */
export async function startWgClient(opts: WgClientOptions): Promise<WgClient> {
  if ((opts.serverPort === undefined) === (opts.server === undefined)) throw new Error("startWgClient: give exactly one of serverPort and server");
  const ns = await startWgNamespace(opts.implementation ?? "debian");
  let relay: WgClient["relay"];
  return closeOnError(ns, async () => {
    // Where the server really is, and the address it can answer a relay at.
    const target = opts.server
      ? { host: opts.server.nsAddress, port: opts.server.listenPort, source: opts.server.hostAddress }
      : { host: "127.0.0.1", port: opts.serverPort!, source: "127.0.0.1" };
    let endpoint: { host: string; port: number };
    if (opts.relay) {
      const spawned = await spawnLossyRelay({
        listen: { host: ns.hostAddress, port: 0 },
        target: { host: target.host, port: target.port },
        source: target.source,
        ...opts.relay,
      });
      let counters: ReturnType<typeof spawned.stop> | undefined;
      relay = { listen: spawned.listen, stop: () => (counters ??= spawned.stop()) };
      endpoint = spawned.listen;
    } else if (opts.server) {
      endpoint = { host: await linkToServer(ns, opts.server), port: opts.server.listenPort };
    } else {
      endpoint = { host: ns.hostAddress, port: opts.serverPort! };
    }

    const keyFile = writeSecret(ns.tmpdir, "private.key", opts.privateKey);
    const wgArgs = ["set", ns.iface, "private-key", keyFile, "peer", opts.serverPublicKey.trim(), "endpoint", `${endpoint.host}:${endpoint.port}`, "allowed-ips", "0.0.0.0/0,::/0"];
    if (opts.presharedKey) wgArgs.push("preshared-key", writeSecret(ns.tmpdir, "preshared.key", opts.presharedKey));
    if (opts.persistentKeepalive !== undefined) wgArgs.push("persistent-keepalive", String(opts.persistentKeepalive));
    await runOk("ip", ["netns", "exec", ns.name, "wg", ...wgArgs]);
    await addTunnelAddresses(ns, opts.tunnelAddresses);
    await runOk("ip", ["-n", ns.name, "route", "add", "default", "dev", ns.iface]);
    const v6route = await run("ip", ["-n", ns.name, "-6", "route", "add", "default", "dev", ns.iface]);
    if (v6route.code !== 0 && opts.tunnelAddresses.some((a) => a.includes(":"))) {
      throw new Error(`cannot add IPv6 default route in ${ns.name}: ${v6route.stderr.trim()}`);
    }

    const waitForHandshake = async (timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const d = await ns.wgDump();
        if (d.peers[0] && d.peers[0].latestHandshake > 0) return d;
        if (Date.now() > deadline) {
          throw new Error(`no WireGuard handshake within ${timeoutMs} ms in ${ns.name}.\nwg dump:\n${await ns.wgShow()}\nwireguard-go log:\n${ns.wgLog()}`);
        }
        await sleep(50);
      }
    };
    const closeNamespace = ns.close;
    return Object.assign(ns, {
      endpoint,
      relay,
      waitForHandshake,
      task: (task: string, args: (string | number)[], o?: { timeoutMs?: number }) => runClientTask(ns, task, args, o),
      close: async () => {
        await relay?.stop().catch(() => {});
        await closeNamespace();
      },
    });
  }).catch(async (err) => {
    await relay?.stop().catch(() => {});
    throw err;
  });
}

export interface WgServerOptions {
  privateKey: string; // base64
  peers: { publicKey: string; allowedIps: string[]; presharedKey?: string }[];
  /** Put on the wireguard-go interface, e.g. ["10.0.0.1/24", "fd00::1/64"]: the prefix routes to the peers. */
  tunnelAddresses: string[];
  /** Which wireguard-go runs the server (default "debian"). */
  implementation?: WireguardGoImplementation;
  /** default 51820 */
  listenPort?: number;
}

export interface WgServer extends WgNamespace {
  listenPort: number;
  /** Kills wireguard-go (SIGTERM, or `signal`): the server is gone, its sessions with it. What runs in the namespace stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts wireguard-go again with the same keys, peers, port and addresses: a server that restarted. */
  start(): Promise<void>;
}

/**
 * A reference WireGuard server: wireguard-go in a fresh namespace with tunnel addresses,
 * so whatever the test runs in it (ns.spawn) is served by the kernel's own TCP/IP stack.
 * Clients reach it with startWgClient({ server }).
 */
export async function startWgServer(opts: WgServerOptions): Promise<WgServer> {
  const implementation = opts.implementation ?? "debian";
  const ns = await startWgNamespace(implementation);
  const listenPort = opts.listenPort ?? 51820;
  return closeOnError(ns, async () => {
    const args = ["set", ns.iface, "listen-port", String(listenPort), "private-key", writeSecret(ns.tmpdir, "private.key", opts.privateKey)];
    opts.peers.forEach((peer, i) => {
      args.push("peer", peer.publicKey, "allowed-ips", peer.allowedIps.join(","));
      if (peer.presharedKey) args.push("preshared-key", writeSecret(ns.tmpdir, `preshared-${i}.key`, peer.presharedKey));
    });
    const configure = async () => {
      await runOk("ip", ["netns", "exec", ns.name, "wg", ...args]);
      await addTunnelAddresses(ns, opts.tunnelAddresses);
    };
    await configure();
    const start = async () => {
      await ns.startWireguardGo(await wireguardGoCommand(implementation));
      await configure();
    };
    return Object.assign(ns, { listenPort, stop: ns.stopWireguardGo, start });
  });
}
