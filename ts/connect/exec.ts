// `wg-netstack connect CONFIG [doors] -- COMMAND [ARGS...]`: runs COMMAND once the tunnel and
// every door are up, with variables that point the usual tools (curl, git, pip, npm) at our
// proxies, and ends with it: "join the network, run the deploy script, leave" in one line.
//
// Exit codes are a shell's: COMMAND's own, 128+signo for a signal death, 127 when it is not
// found, 126 when it cannot run.

import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";
import type { Tunnel } from "../tunnel/tunnel.js";
import type { Door } from "./forward.js";
import type { Credentials } from "./socks5.js";

/** The signals a user or a CI runner stops us with. */
export type StopSignal = "SIGINT" | "SIGTERM";

/**
 * The proxy variables, in lower case (tools read either case). With a proxy door they are all
 * ours: an inherited one (a runner's own proxy) would otherwise win over ours for some tools
 * (curl takes http_proxy before ALL_PROXY) and carry traffic meant for the tunnel elsewhere.
 */
const PROXY_VARIABLES = new Set(["all_proxy", "http_proxy", "https_proxy", "no_proxy"]);
/** Loopback stays direct: our own doors (a forward on 127.0.0.1) and local services are not in the network. */
const NO_PROXY = "localhost,127.0.0.1,::1";
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
 * too. With both, tools that read the scheme's own variable first (all of them) take the HTTP
 * proxy for http and https, and SOCKS5 for the rest.
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
  if (proxied) both("no_proxy", NO_PROXY);
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
  /** Resolves on SIGINT or SIGTERM (with its name when known). */
  stopRequested: Promise<StopSignal | undefined>;
  /** Sends every later SIGINT and SIGTERM to `handler` instead (undefined gives them back). */
  passSignals?(handler: ((signal: StopSignal) => void) | undefined): void;
}

const NOT_YET = Symbol("not yet");

/**
 * Runs COMMAND to its end, passing SIGINT and SIGTERM on; resolves with our exit code. A stop
 * requested before it started: it does not start (128+signo). The tunnel failing under it:
 * COMMAND gets SIGTERM and we exit 1 whatever it exits with, so a CI job fails clearly.
 */
export async function runCommand(options: RunCommandOptions): Promise<number> {
  const { argv, err } = options;
  const program = argv[0]!;
  const stoppedEarly = await Promise.race([options.stopRequested, Promise.resolve(NOT_YET)]);
  if (stoppedEarly !== NOT_YET) return signalExitCode(stoppedEarly ?? "SIGTERM");
  let child: ChildProcess;
  try {
    child = spawn(program, argv.slice(1), { stdio: [options.stdinTaken ? "ignore" : "inherit", "inherit", "inherit"], env: options.env });
  } catch (error) {
    return cannotRun(program, error as NodeJS.ErrnoException, err);
  }
  const exited = new Promise<number>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signalExitCode(signal!)));
    // After a spawn, 'error' is only a failed kill; the exit still comes.
    child.on("error", (error) => (child.pid === undefined ? resolve(cannotRun(program, error, err)) : err(`wg-netstack: ${program}: ${error.message}`)));
  });
  const pass = (signal: StopSignal) => signalChild(child, signal);
  if (options.passSignals) options.passSignals(pass);
  else void options.stopRequested.then((signal) => pass(signal ?? "SIGTERM"));
  try {
    const first = await Promise.race([exited, options.tunnel.closed.then(() => NOT_YET)]);
    if (typeof first === "number") return first;
    err(`wg-netstack: stopping ${program} (SIGTERM): the tunnel is down`);
    signalChild(child, "SIGTERM");
    await exited;
    return 1;
  } finally {
    options.passSignals?.(undefined);
  }
}

/** process.kill, not child.kill: Deno's child.kill() sends one signal per child, and returns false after. */
function signalChild(child: ChildProcess, signal: StopSignal): void {
  try {
    process.kill(child.pid!, signal);
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
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
