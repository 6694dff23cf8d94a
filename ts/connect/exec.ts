// `wg-netstack connect CONFIG [doors] -- COMMAND [ARGS...]`: runs COMMAND once the tunnel and
// every door are up, with variables that point the usual tools (curl, git, pip, npm) at our
// proxies, and ends with it: "join the network, run the deploy script, leave" in one line.
//
// Exit codes are a shell's: COMMAND's own, death by the signal COMMAND died of (128+signo
// where the runtime cannot re-raise it), 127 when it is not found, 126 when it cannot run;
// 125 when we failed (WRAPPER_FAILED).

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import process from "node:process";
import type { Tunnel } from "../tunnel/tunnel.js";
import type { Door } from "./forward.js";
import type { Credentials } from "./socks5.js";

/** The signals that stop the command line (main.ts): a user, a CI runner, a closed terminal or ssh. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];
const isStopSignal = (signal: NodeJS.Signals): signal is StopSignal => (STOP_SIGNALS as readonly string[]).includes(signal);

/** Our own failure under `-- COMMAND` (the tunnel, a door, a flag), told apart from COMMAND's codes as docker run and env(1) do. */
export const WRAPPER_FAILED = 125;

/** How long COMMAND has to end after our SIGTERM when the tunnel fails, before SIGKILL. */
const KILL_AFTER_MS = 10_000;

/**
 * The proxy variables, in lower case (tools read either case): the usual four, and the ones
 * tools read before them (npm's, pip's, gRPC's) or for other schemes. With a proxy door they
 * are all ours or gone: an inherited one (a runner's own proxy) would otherwise win over ours
 * for some tools (curl takes http_proxy before ALL_PROXY) and carry traffic meant for the
 * tunnel elsewhere.
 */
const PROXY_VARIABLES = new Set(["all_proxy", "http_proxy", "https_proxy", "no_proxy", "ftp_proxy", "socks_proxy", "grpc_proxy", "pip_proxy", "npm_config_proxy", "npm_config_https_proxy", "npm_config_noproxy"]);
/** Loopback stays direct: our own doors (a forward on 127.0.0.1) and local services are not in the network. */
const LOOPBACK = "localhost,127.0.0.1,::1";
/** Our door variables: inherited ones (an outer `connect --`) are dropped, as they name another tunnel's doors. */
const DOOR_VARIABLE = /^WG_NETSTACK_(SOCKS5|HTTP|FORWARD_\d+)$/;

/** The proxies' logins, for the proxy URLs. */
export interface ProxyLogins {
  socks5?: Credentials;
  http?: Credentials;
}

/**
 * COMMAND's environment: ours plus, for each door, where it really listens (port 0 picks one):
 * `WG_NETSTACK_SOCKS5`, `WG_NETSTACK_HTTP` and `WG_NETSTACK_FORWARD_1`… (the `--forward`s in
 * the order given) as HOST:PORT; with `--socks5`, `ALL_PROXY` = `socks5h://…` (names resolved
 * through the tunnel); with `--http`, `HTTP_PROXY` and `HTTPS_PROXY` = `http://…`; both cases
 * too; NO_PROXY names loopback (added to an inherited one when there is no proxy door). With
 * both, tools that read the scheme's own variable first (all of them) take the HTTP proxy for
 * http and https, and SOCKS5 for the rest.
 */
export function commandEnvironment(inherited: Record<string, string | undefined>, doors: Door[], logins: ProxyLogins): Record<string, string> {
  const socks5 = doors.find((door) => door.protocol === "socks5");
  const http = doors.find((door) => door.protocol === "http");
  const proxied = socks5 !== undefined || http !== undefined;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inherited)) {
    if (value === undefined || DOOR_VARIABLE.test(name) || (proxied && PROXY_VARIABLES.has(name.toLowerCase()))) continue;
    env[name] = value;
  }
  const both = (name: string, value: string) => {
    env[name.toUpperCase()] = value;
    env[name] = value;
  };
  if (socks5) {
    env.WG_NETSTACK_SOCKS5 = reachableAddress(socks5.address);
    both("all_proxy", proxyUrl("socks5h", socks5.address, logins.socks5));
  }
  if (http) {
    env.WG_NETSTACK_HTTP = reachableAddress(http.address);
    both("http_proxy", proxyUrl("http", http.address, logins.http));
    both("https_proxy", proxyUrl("http", http.address, logins.http));
  }
  if (proxied) both("no_proxy", LOOPBACK);
  else if (doors.length > 0) {
    // The inherited proxy stays for the rest, but our doors on loopback must not go through it.
    const inherited = env.NO_PROXY ?? env.no_proxy;
    both("no_proxy", inherited ? `${inherited},${LOOPBACK}` : LOOPBACK);
  }
  const forwards = doors.filter((door) => door.protocol === "tcp" || door.protocol === "udp");
  forwards.forEach((door, index) => {
    env[`WG_NETSTACK_FORWARD_${index + 1}`] = reachableAddress(door.address);
  });
  return env;
}

/** `SCHEME://[USER:PASS@]HOST:PORT`, the login percent-encoded (a password may hold ':', '@' or '/'). */
function proxyUrl(scheme: string, address: string, login: Credentials | undefined): string {
  const userinfo = login ? `${encodeURIComponent(login.user)}:${encodeURIComponent(login.pass)}@` : "";
  return `${scheme}://${userinfo}${reachableAddress(address)}`;
}

/** A door on every address (0.0.0.0, ::) is reached on loopback. */
function reachableAddress(address: string): string {
  if (address.startsWith("0.0.0.0:")) return `127.0.0.1:${address.slice("0.0.0.0:".length)}`;
  if (address.startsWith("[::]:")) return `[::1]:${address.slice("[::]:".length)}`;
  return address;
}

export interface RunCommandOptions {
  /** COMMAND and its arguments, run without a shell. */
  argv: string[];
  env: Record<string, string>;
  /** The config came from stdin: COMMAND gets none (what is left of ours is not its input). */
  stdinTaken: boolean;
  tunnel: Pick<Tunnel, "closed">;
  err(text: string): void;
  /** Resolves on the first stop signal. */
  stopRequested: Promise<StopSignal>;
  /** Sends every later stop signal to `handler` instead (undefined gives them back). */
  passSignals(handler: ((signal: StopSignal) => void) | undefined): void;
  /**
   * Whether a SIGINT we got reached COMMAND (its pid) from the terminal too, so it is not passed
   * on: a second one reads as "quit now" to many tools (terraform, docker compose). See
   * terminalInterrupts.
   */
  sentByTerminal(pid: number): boolean;
  /**
   * COMMAND died of a stop signal (or we were stopped before it started): end this process by
   * the same signal once done. A shell running a script stops the script only when its
   * command died of SIGINT, not when it exited 130.
   */
  dieOf(signal: StopSignal): void;
  /** How long COMMAND has to end after our SIGTERM when the tunnel fails, before a SIGKILL; by default 10 s (docker stop's grace). */
  killAfterMs?: number;
}

const NOT_YET = Symbol("not yet");

/**
 * Runs COMMAND to its end, passing the stop signals on; resolves with our exit code. A stop
 * requested before it started: it does not start. The tunnel failing under it: COMMAND gets
 * SIGTERM (SIGKILL after `killAfterMs`) and we exit WRAPPER_FAILED whatever it exits with, so
 * a CI job fails clearly.
 */
export async function runCommand(options: RunCommandOptions): Promise<number> {
  const { argv, err } = options;
  const program = argv[0]!;
  const stoppedEarly = await Promise.race([options.stopRequested, Promise.resolve(NOT_YET)]);
  if (stoppedEarly !== NOT_YET) return endBy(stoppedEarly, options);
  let child: ChildProcess;
  try {
    child = spawn(program, argv.slice(1), { stdio: [options.stdinTaken ? "ignore" : "inherit", "inherit", "inherit"], env: options.env });
  } catch (error) {
    return cannotRun(program, error as NodeJS.ErrnoException, err);
  }
  const exited = new Promise<{ code: number; signal?: NodeJS.Signals }>((resolve) => {
    child.once("exit", (code, signal) => resolve(signal ? { code: signalExitCode(signal), signal } : { code: code! }));
    // After a spawn, 'error' is only a failed kill; the exit still comes.
    child.on("error", (error) => (child.pid === undefined ? resolve({ code: cannotRun(program, error, err) }) : err(`wg-netstack: ${program}: ${error.message}`)));
  });
  options.passSignals((signal) => {
    if (signal !== "SIGINT" || child.pid === undefined || !options.sentByTerminal(child.pid)) signalChild(child, signal);
  });
  try {
    const first = await Promise.race([exited, options.tunnel.closed.then(() => undefined)]);
    // A death by a stop signal is ours too (a calling shell acts on it); by another (SIGUSR1
    // would open Node's inspector, SIGSEGV would look like our crash) it is only a code.
    if (first) return first.signal && isStopSignal(first.signal) ? endBy(first.signal, options) : first.code;
    err(`wg-netstack: stopping ${program} (SIGTERM): the tunnel is down`);
    signalChild(child, "SIGTERM");
    const killAfterMs = options.killAfterMs ?? KILL_AFTER_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([exited.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), killAfterMs)))]);
    clearTimeout(timer);
    if (!ended) {
      err(`wg-netstack: ${program} still runs ${killAfterMs / 1000} s after SIGTERM: SIGKILL`);
      signalChild(child, "SIGKILL");
      await exited;
    }
    return WRAPPER_FAILED;
  } finally {
    options.passSignals(undefined);
  }
}

/** Ends us by `signal` once done (see RunCommandOptions.dieOf); returns 128+signo, the code where a runtime cannot. */
export function endBy(signal: StopSignal, options: Pick<RunCommandOptions, "dieOf">): number {
  options.dieOf(signal);
  return signalExitCode(signal);
}

/**
 * The `sentByTerminal` for runCommand. A terminal's Ctrl-C goes to its foreground process group.
 * Where /proc tells (Linux), a SIGINT reached COMMAND from the terminal when COMMAND is in that
 * group: so each Ctrl-C reaches it once, and one that left the group (setsid, timeout) gets ours.
 * Elsewhere, with a terminal on our stdin, stdout or stderr (`atTerminal`), the first SIGINT is
 * taken for the terminal's and later ones are passed on.
 */
export function terminalInterrupts(atTerminal: boolean, inForeground: (pid: number) => boolean | undefined = inForegroundGroup): (pid: number) => boolean {
  let first = atTerminal;
  return (pid) => {
    const sent = inForeground(pid) ?? first;
    first = false;
    return sent;
  };
}

/** Whether we and `pid` are both in the foreground process group of our controlling terminal (which a Ctrl-C goes to); undefined where /proc cannot tell. */
export function inForegroundGroup(pid: number): boolean | undefined {
  try {
    const ours = statFields("self");
    const foreground = ours[5]!; // tpgid: -1 without a controlling terminal
    return foreground > 0 && ours[2] === foreground && statFields(String(pid))[2] === foreground; // pgrp
  } catch {
    return undefined;
  }
}

/** The fields of /proc/PID/stat after the command's name (which may hold spaces and parentheses), from the state on; numbers. */
function statFields(pid: string): number[] {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number);
}

/** process.kill, not child.kill: Deno's child.kill() sends one signal per child, and returns false after. */
function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return; // it never started: its 'error' is on the way
  try {
    process.kill(child.pid, signal);
  } catch {
    // Gone already: its exit is on the way.
  }
}

/** 127 for a command not found, 126 for one that cannot run, as a shell says. */
function cannotRun(program: string, error: NodeJS.ErrnoException, err: (text: string) => void): number {
  if (error.code === "ENOENT") {
    err(`wg-netstack: ${program}: command not found`);
    return 127;
  }
  err(`wg-netstack: cannot run ${program}: ${error.code ?? error.message}`);
  return 126;
}

/** 128 + the signal's number, as a shell reports a death by signal. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
