// `wg-netstack connect CONFIG`: joins the WireGuard network of a wg-quick config and opens
// local doors into it (TCP and UDP port forwards), with the gateway's flow log and pcap;
// with `-- COMMAND`, runs it and ends with it (exec.ts).

import { readFileSync } from "node:fs";
import process from "node:process";
import { isatty } from "node:tty";
import { ConfigError } from "../config.js";
import { integer, openPcapFlag, parseFlags, threadsFlag, UsageError } from "../cli/flags.js";
import { FlowLog } from "../gateway/flow-log.js";
import { formatIp, parseCidr, parseHostEndpoint, parseIp, type Endpoint } from "../ip.js";
import { parseConfig } from "../tunnel/config.js";
import { connectTunnel } from "../tunnel/tunnel.js";
import { untilAborted } from "../tunnel/errors.js";
import { commandEnvironment, endBy, runCommand, type StopSignal, terminalInterrupts, WRAPPER_FAILED } from "./exec.js";
import { peerLookup, startTcpForward, startUdpForward, type Door } from "./forward.js";
import { startHttpProxy } from "./http-proxy.js";
import { startTcpReverse, startUdpReverse } from "./reverse.js";
import { startSocks5, type Credentials } from "./socks5.js";
import { startStdio, type StdioDoor } from "./stdio.js";

export const CONNECT_USAGE = `Usage:
  wg-netstack connect CONFIG [options]   join the WireGuard network of a wg-quick CONFIG file: proxies and port forwards into it, and back
  wg-netstack connect CONFIG [options] -- COMMAND [ARGS...]
                                         the same, then run COMMAND with ALL_PROXY / HTTP_PROXY / HTTPS_PROXY pointing at the
                                         proxies (and WG_NETSTACK_SOCKS5, WG_NETSTACK_HTTP, WG_NETSTACK_FORWARD_1… naming the
                                         doors); leave when it exits, with its exit code (125: wg-netstack failed). The flow
                                         log goes to stderr
  CONFIG may be - : the config is read from stdin (COMMAND then gets no stdin)

Options:
  --forward tcp:[HOST:]LPORT=RHOST:RPORT  listen on HOST:LPORT (default 127.0.0.1) and forward each TCP connection to RHOST:RPORT
                                          in the network (RHOST may be a name, resolved through the tunnel's DNS); repeatable
  --forward udp:[HOST:]LPORT=RHOST:RPORT  the same for UDP datagrams; repeatable
  --reverse tcp:RPORT=HOST:PORT           accept TCP connections from the network on port RPORT of our tunnel address and forward
                                          each to HOST:PORT on this machine (HOST an IP or a name the system resolves); repeatable
  --reverse udp:RPORT=HOST:PORT           the same for UDP datagrams; repeatable
  --socks5 [USER:PASS@][HOST:]PORT        a SOCKS5 proxy (RFC 1928) into the network: CONNECT with names resolved through the tunnel
                                          (as socks5h) and UDP ASSOCIATE; USER:PASS requires RFC 1929 login
  --http [USER:PASS@][HOST:]PORT          an HTTP proxy into the network: CONNECT and absolute-URI (http:) requests;
                                          USER:PASS requires Proxy-Authorization Basic
  --stdio HOST:PORT                       one TCP connection to HOST:PORT (HOST may be a name, resolved through the tunnel's DNS)
                                          relayed to stdin and stdout, as ssh -o ProxyCommand='wg-netstack connect CONFIG --stdio %h:%p'
                                          needs; exits once both ways ended (1 if it failed); no other door beside it; logs only
                                          with --json, on stderr
  --handshake-timeout SECONDS             how long to wait for the first handshake (default 10)
  --pcap FILE                             write the decrypted packets to FILE (pcap, opens in Wireshark)
  --threads N                             1: the engine (decryption, TCP, encryption) and its UDP socket in a worker thread;
                                          0 (default): one thread
  --json                                  log JSON lines instead of text
  --quiet                                 no log and no warnings (the up line, flows, the summary): only errors, on stderr
  -h, --help                              this help`;

export interface Forward {
  protocol: "tcp" | "udp";
  listen: Endpoint;
  /** Where in the network: an IP, or a name resolved through the tunnel. */
  target: Endpoint;
}

/** Where a proxy listens, and the login it requires if any. */
export interface ProxyListen {
  listen: Endpoint;
  credentials?: Credentials;
}

/** A port on our tunnel address that leads to a service on this machine. */
export interface Reverse {
  protocol: "tcp" | "udp";
  /** The port on our tunnel addresses. */
  port: number;
  /** The local service: an IP, or a name the system resolves. */
  target: Endpoint;
}

export interface ConnectCommand {
  command: "connect";
  config: string;
  forwards: Forward[];
  reverses: Reverse[];
  socks5?: ProxyListen;
  http?: ProxyListen;
  /** --stdio: the one connection, relayed to stdin and stdout. */
  stdio?: Endpoint;
  handshakeTimeoutMs?: number;
  threads?: 0 | 1;
  pcap?: string;
  json: boolean;
  /** --quiet: no log and no config warnings; only errors, on stderr. */
  quiet: boolean;
  /** `-- COMMAND [ARGS...]`: run it once everything is up, and end with it. */
  exec?: string[];
}

const CONNECT_FLAGS = { known: ["forward", "reverse", "socks5", "http", "stdio", "handshake-timeout", "threads", "pcap", "json", "quiet", "help"], boolean: new Set(["json", "quiet", "help"]), repeatable: new Set(["forward", "reverse", "stdio"]) };
const DEFAULT_LISTEN_HOST = "127.0.0.1";

/** Reads `connect`'s words (after "connect"); throws a UsageError. */
export function parseConnectCommand(words: string[]): ConnectCommand | { command: "help"; text: string } {
  // Everything after the first `--` is COMMAND's, its own flags included.
  const end = words.indexOf("--");
  const exec = end < 0 ? undefined : words.slice(end + 1);
  const { flags, repeated, positionals } = parseFlags(end < 0 ? words : words.slice(0, end), CONNECT_FLAGS);
  if (flags.help !== undefined) return { command: "help", text: CONNECT_USAGE };
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "connect: expected a CONFIG file (a wg-quick config)" : `connect: unexpected argument ${JSON.stringify(positionals[1])}`);
  const command: ConnectCommand = {
    command: "connect",
    config: positionals[0]!,
    forwards: (repeated.forward ?? []).map(parseForward),
    reverses: (repeated.reverse ?? []).map(parseReverse),
    json: flags.json !== undefined,
    quiet: flags.quiet !== undefined,
  };
  if (command.json && command.quiet) throw new UsageError("--quiet and --json: the log is either off or JSON");
  const taken = new Set<string>();
  for (const reverse of command.reverses) {
    const key = `${reverse.protocol}:${reverse.port}`;
    if (taken.has(key)) throw new UsageError(`--reverse: ${reverse.protocol} port ${reverse.port} of the tunnel is given twice`);
    taken.add(key);
  }
  if (flags["handshake-timeout"] !== undefined) command.handshakeTimeoutMs = integer(flags["handshake-timeout"], "--handshake-timeout", 1, 3600) * 1000;
  if (flags.threads !== undefined) command.threads = threadsFlag(flags.threads);
  if (flags.pcap !== undefined) command.pcap = flags.pcap;
  if (exec !== undefined) {
    if (exec.length === 0) throw new UsageError("connect: expected a COMMAND after --");
    command.exec = exec;
  }
  if (flags.socks5 !== undefined) command.socks5 = parseProxyListen(flags.socks5, "--socks5");
  if (flags.http !== undefined) command.http = parseProxyListen(flags.http, "--http");
  if (repeated.stdio) command.stdio = parseStdio(repeated.stdio, command);
  return command;
}

/** `--stdio HOST:PORT`, once and alone: the process is that one connection, and stdout is its. */
function parseStdio(values: string[], command: ConnectCommand): Endpoint {
  if (values.length > 1) throw new UsageError("--stdio: given twice (one connection per process)");
  if (command.forwards.length > 0 || command.reverses.length > 0 || command.socks5 || command.http || command.exec) throw new UsageError("--stdio cannot be combined with --forward, --reverse, --socks5, --http or a -- COMMAND");
  if (command.config === "-") throw new UsageError("--stdio relays stdin: the CONFIG cannot come from it (give a file)");
  const target = stdioTarget(values[0]!);
  if (!target) throw new UsageError(`--stdio: expected HOST:PORT (HOST an IP, [V6], or a name), got ${JSON.stringify(values[0])}`);
  return target;
}

/**
 * HOST:PORT as ssh's `%h:%p` makes it: HOST an IP, a name, or a bare IPv6 address (the port is
 * after the last colon, and required); brackets allowed around any HOST, as `ssh -W` allows.
 */
function stdioTarget(text: string): Endpoint | undefined {
  const bracketed = /^\[([^\]]+)\]:([^:]+)$/.exec(text);
  const colon = text.lastIndexOf(":");
  if (!bracketed && colon < 0) return undefined;
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]!] : [text.slice(0, colon), text.slice(colon + 1)];
  return parseHostEndpoint(`${host.includes(":") ? `[${host}]` : host}:${port}`);
}

/** `tcp:[HOST:]LPORT=RHOST:RPORT` or `udp:…`; HOST an IP ([v6] in brackets), RHOST an IP or a name. */
export function parseForward(text: string): Forward {
  const bad = (why: string) => new UsageError(`--forward ${JSON.stringify(text)}: ${why} (expected tcp:[HOST:]LPORT=RHOST:RPORT or udp:…)`);
  const match = /^(tcp|udp):([^=]+)=(.+)$/.exec(text);
  if (!match) throw bad("not understood");
  const listen = listenEndpoint(match[2]!);
  if (!listen) throw bad(`${JSON.stringify(match[2])} is not [HOST:]PORT with HOST an IP address`);
  const target = parseHostEndpoint(match[3]!);
  if (!target) throw bad(`${JSON.stringify(match[3])} is not HOST:PORT`);
  return { protocol: match[1] as "tcp" | "udp", listen, target };
}

/** `tcp:RPORT=HOST:PORT` or `udp:…`; HOST an IP ([v6] in brackets) or a name. */
export function parseReverse(text: string): Reverse {
  const bad = (why: string) => new UsageError(`--reverse ${JSON.stringify(text)}: ${why} (expected tcp:RPORT=HOST:PORT or udp:…)`);
  const match = /^(tcp|udp):([0-9]{1,5})=(.+)$/.exec(text);
  if (!match) throw bad("not understood");
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw bad(`the tunnel port must be from 1 to 65535`);
  const target = parseHostEndpoint(match[3]!);
  if (!target) throw bad(`${JSON.stringify(match[3])} is not HOST:PORT`);
  return { protocol: match[1] as "tcp" | "udp", port, target };
}

/** `[USER:PASS@][HOST:]PORT`: the password may hold ':' and '@' (the last '@' ends it). */
export function parseProxyListen(text: string, flag: string): ProxyListen {
  const at = text.lastIndexOf("@");
  const listen = listenEndpoint(text.slice(at + 1));
  if (!listen) throw new UsageError(`${flag}: expected [USER:PASS@][HOST:]PORT with HOST an IP address, got ${JSON.stringify(text)}`);
  if (at < 0) return { listen };
  const login = text.slice(0, at);
  const colon = login.indexOf(":");
  const user = login.slice(0, colon);
  const pass = login.slice(colon + 1);
  // RFC 1929 section 2: each is 1 to 255 bytes.
  const size = (part: string) => new TextEncoder().encode(part).length;
  if (colon <= 0 || size(pass) === 0 || size(user) > 255 || size(pass) > 255) throw new UsageError(`${flag}: the login must be USER:PASS, each 1 to 255 bytes`);
  return { listen, credentials: { user, pass } };
}

/** PORT, IP:PORT or [V6]:PORT (port 0 picks a free one); the host defaults to 127.0.0.1. */
export function listenEndpoint(text: string): Endpoint | undefined {
  const match = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?([0-9]{1,5})$/.exec(text);
  if (!match) return undefined;
  const hostText = match[1] ?? match[2];
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  if (hostText === undefined) return { host: DEFAULT_LISTEN_HOST, port };
  const ip = parseIp(hostText);
  if (!ip || (ip.family === 6) !== (match[1] !== undefined)) return undefined;
  return { host: formatIp(ip), port };
}

export interface ConnectIo {
  out(text: string): void;
  err(text: string): void;
  /** Resolves on the first stop signal (SIGINT, SIGTERM, SIGHUP). */
  stopRequested: Promise<StopSignal>;
  /** `-- COMMAND`: sends every later stop signal to `handler`, to pass on (undefined gives them back). */
  passSignals(handler: ((signal: StopSignal) => void) | undefined): void;
  /** `--stdio` or `-- COMMAND` ended by `signal`: once done, end the process by it too (see RunCommandOptions.dieOf). */
  dieOf(signal: StopSignal): void;
}

/** Runs `connect` until stopped; resolves with the exit code. Throws a UsageError for a bad config (exit 2; 125 under `--`, cli.ts). */
export async function runConnect(command: ConnectCommand, io: ConnectIo): Promise<number> {
  const fromStdin = command.config === "-";
  if (fromStdin && isatty(0)) throw new UsageError("CONFIG -: stdin is a terminal; pipe the config in (or give a file)");
  const source = fromStdin ? "<stdin>" : command.config;
  // A stop before the tunnel is up ends what we wait for at once (the config on stdin, the
  // handshake); the signal is the abort's reason.
  const starting = new AbortController();
  void io.stopRequested.then((signal) => starting.abort(signal));
  /** As a stop once up: the plain command exits 0; --stdio and a COMMAND (never run) end by the signal. */
  const stoppedEarly = () => (command.exec || command.stdio ? endBy(starting.signal.reason as StopSignal, io) : 0);
  let text: string;
  try {
    text = fromStdin ? await untilAborted(readStdin(), starting.signal) : readFileSync(command.config, "utf8");
  } catch (error) {
    if (starting.signal.aborted) return stoppedEarly();
    throw new UsageError(`cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (!text.trim()) throw new UsageError(`${source} is empty${fromStdin ? ": pipe the config in" : ""}`);
  const log = new FlowLog(logWriter(command, io), { json: command.json });
  let config;
  try {
    // The keys wg-quick runs on the host (PostUp, Table…) are warned of on stderr; with --stdio or --quiet in the log (ssh shows a ProxyCommand's stderr on every connection).
    const warn = (message: string) => (command.stdio || command.quiet ? log.event("warning", `warning: ${source}: ${message}`, { message: `${source}: ${message}` }) : io.err(`wg-netstack: ${source}: ${message}`));
    config = parseConfig(text, { onWarning: warn });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`${source}: ${error.message}`);
    throw error;
  }
  const pcap = await openPcapFlag(command.pcap);
  const shutdown = new AbortController();
  const doors: Door[] = [];
  let stdio: StdioDoor | undefined;
  let tunnel;
  try {
    tunnel = await connectTunnel(config, {
      ...(command.handshakeTimeoutMs ? { handshakeTimeout: command.handshakeTimeoutMs } : {}),
      ...(command.threads === undefined ? {} : { threads: command.threads }),
      ...(pcap ? { tap: (packet: Uint8Array) => pcap.write(packet) } : {}),
      onError: (error) => io.err(`wg-netstack: the tunnel failed: ${error.message}`),
      signal: starting.signal,
    });
  } catch (error) {
    await pcap?.close();
    if (!starting.signal.aborted) throw error;
    log.summary();
    return stoppedEarly();
  }
  let code = 0;
  const shared = { tunnel, log, peerOf: peerLookup(config.peers), signal: shutdown.signal };
  try {
    for (const forward of command.forwards) {
      const options = { ...shared, target: forward.target, listen: forward.listen };
      doors.push(await (forward.protocol === "tcp" ? startTcpForward(options) : startUdpForward(options)));
    }
    const tunnelAddress = formatIp(parseCidr(config.address[0]!)!);
    for (const reverse of command.reverses) {
      const options = { ...shared, port: reverse.port, target: reverse.target, tunnelAddress };
      doors.push(reverse.protocol === "tcp" ? startTcpReverse(options) : startUdpReverse(options));
    }
    if (command.socks5) doors.push(await startSocks5({ ...shared, ...command.socks5 }));
    if (command.http) doors.push(await startHttpProxy({ ...shared, ...command.http }));
    if (command.stdio) doors.push((stdio = startStdio({ ...shared, target: command.stdio, err: io.err })));
    const addresses = config.address.map((cidr) => formatIp(parseCidr(cidr)!));
    const where = doors.map((door) => door.description).join(", ");
    log.event("up", `tunnel up: ${addresses.join(", ")} (public key ${tunnel.publicKey})${where ? `; ${where}` : ""}`, {
      addresses,
      publicKey: tunnel.publicKey,
      listening: doors.map((door) => ({ protocol: door.protocol, address: door.address, to: door.target })),
    });
    if (command.exec) {
      const env = commandEnvironment(process.env, doors, { socks5: command.socks5?.credentials, http: command.http?.credentials });
      const sentByTerminal = terminalInterrupts([0, 1, 2].some((fd) => isatty(fd)));
      code = await runCommand({ ...io, argv: command.exec, env, stdinTaken: fromStdin, tunnel, sentByTerminal });
    } else if (stdio) {
      // The process is its one connection: a signal cuts it, and says so as nc would, by dying
      // of it; not one that comes once the connection has ended (ssh's SIGHUP as it exits).
      let ended = false;
      const stopped = io.stopRequested.then((signal) => (ended ? 0 : endBy(signal, io)));
      code = await Promise.race([stopped, tunnel.closed.then(() => 1), stdio.finished]);
      ended = true;
    } else {
      code = await Promise.race([io.stopRequested.then(() => 0), tunnel.closed.then(() => 1)]);
    }
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    io.err(`wg-netstack: ${errno === "EADDRINUSE" || errno === "EACCES" || errno === "EADDRNOTAVAIL" ? `cannot listen: ${(error as Error).message}` : (error as Error).message}`);
    code = command.exec ? WRAPPER_FAILED : 1;
  } finally {
    shutdown.abort();
    try {
      await Promise.all(doors.map((door) => door.close()));
      await tunnel.close();
    } catch (error) {
      // Said, but COMMAND's (or the connection's) exit code stands.
      io.err(`wg-netstack: closing: ${(error as Error).message}`);
    }
    if (pcap) {
      await pcap.close();
      if (pcap.error) log.event("warning", `warning: pcap: ${pcap.error.message}`, { message: `pcap: ${pcap.error.message}` });
    }
    log.summary();
  }
  return code;
}


/**
 * Where the log's lines go: stdout; with --stdio or a COMMAND stderr, stdout not being ours
 * (--stdio logs only with --json: an ssh ProxyCommand says nothing); nowhere with --quiet.
 */
function logWriter(command: ConnectCommand, io: ConnectIo): (line: string) => void {
  const off = () => {};
  if (command.quiet) return off;
  if (command.stdio) return command.json ? io.err : off;
  return command.exec ? io.err : io.out;
}

/** All of stdin, as text (the stream, not a blocking read: stdin may be a non-blocking pipe). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
