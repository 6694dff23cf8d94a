// The wg-netstack command: `serve` (the default), `peer add NAME`, `peer remove NAME`.
// A bad flag or an unusable config folder is one line on stderr and exit code 2.

import { getServers } from "node:dns";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { endpointText, formatIp, isHostName, parseEndpoint, parseIp, type Endpoint } from "../ip.js";
import { reachableHost } from "../client-config.js";
import { MTU_MAX, MTU_MIN } from "../config.js";
import { qrCode } from "../qr.js";
import { ConfigStore, defaultConfigDir, StoreError } from "./config-store.js";
import { parseProxy, type UpstreamProxy } from "./dial.js";
import type { Runtime } from "../runtime/types.js";
import { type FlowBytes, FlowLog, type FlowRecord, type OpenFlow } from "./flow-log.js";
import { loopbackOnly, newToken } from "../web/access.js";
import { FlowBoard } from "../web/board.js";
import { startWebServer, type WebServer } from "../web/server.js";
import { DEFAULT_MAX_FLOWS_PER_PEER, DEFAULT_PORT, startGateway, type Gateway } from "./gateway.js";
import { integer, openPcapFlag, parseFlags, threadsFlag, UsageError } from "../cli/flags.js";
import { type ConnectIo, parseConnectCommand, runConnect } from "../connect/command.js";
import { WRAPPER_FAILED } from "../connect/exec.js";

export { UsageError };

export const USAGE = `Usage:
  wg-netstack [serve] [options]   run the gateway: every flow a peer sends is relayed to where it was going, and logged
  wg-netstack peer add NAME       add a peer to the config folder and print its config (a running gateway picks it up)
  wg-netstack peer remove NAME    remove a peer (a running gateway drops it at once)
  wg-netstack connect CONFIG      join the network of a wg-quick config: port forwards both ways, SOCKS5 and HTTP proxies (connect --help)

Options:
  --conf DIR              config folder (keys, peers, client configs); default ${defaultConfigDir()}
  --peers N               make sure peer1 ... peerN exist (default: peer1 on the first start only)
  --listen HOST:PORT      UDP address to listen on (default every address, IPv4 and IPv6, port ${DEFAULT_PORT}); PORT alone is every address
  --endpoint HOST[:PORT]  the address written into client configs (default a guess at this machine's, and the listening port)
  --mtu N                 inner MTU for the gateway and the client configs, ${MTU_MIN}..${MTU_MAX}
  --via URL               send relayed TCP through socks5://[user:pass@]HOST:PORT or http://[user:pass@]HOST:PORT (CONNECT)
  --dns-upstream IP[:PORT] where DNS queries to the gateway go (default the first nameserver in /etc/resolv.conf)
  --allow-loopback        let peers reach this host's loopback (127.0.0.0/8, ::1); refused by default. The LAN is always reachable
  --allow-link-local      let peers reach link-local addresses (169.254.0.0/16, fe80::/10: a cloud's metadata service); refused by default
  --max-flows N           TCP connections, and UDP flows, each peer may have open (default ${DEFAULT_MAX_FLOWS_PER_PEER}); each holds a socket here
  --threads N             1: the engine (decryption, TCP, encryption) and its UDP socket in a worker thread; 0 (default): one thread
  --pcap FILE             write the decrypted packets to FILE (pcap, opens in Wireshark)
  --web [HOST:]PORT       serve a web page (status, peers, QR codes, live flows, captures) on HOST (default 127.0.0.1); its URL with a token is printed
  --json                  log JSON lines instead of text (configs and QR codes then go to stderr)
  -h, --help              this help`;

export interface ServeCommand {
  command: "serve";
  conf: string;
  /** Given: make sure peer1 … peerN exist. Not given: peer1 on the first start (no server.json yet) only. */
  peers?: number;
  listen?: { host?: string; port: number };
  endpoint?: { host: string; port?: number };
  mtu?: number;
  via?: UpstreamProxy;
  dnsUpstream?: Endpoint;
  allowLoopback: boolean;
  allowLinkLocal: boolean;
  maxFlows?: number;
  threads?: 0 | 1;
  pcap?: string;
  web?: { host: string; port: number };
  json: boolean;
}

export type Command =
  | ServeCommand
  | { command: "peer-add"; conf: string; name: string }
  | { command: "peer-remove"; conf: string; name: string }
  | { command: "help" };

const SERVE_FLAGS = ["conf", "peers", "listen", "endpoint", "mtu", "via", "dns-upstream", "allow-loopback", "allow-link-local", "max-flows", "threads", "pcap", "web", "json", "help"];
const PEER_FLAGS = ["conf", "help"];
const BOOLEAN_FLAGS = new Set(["json", "help", "allow-loopback", "allow-link-local"]);

/** Reads the command line (without the runtime and script); throws a UsageError. */
export function parseCommand(argv: string[], env: Record<string, string | undefined> = process.env): Command {
  const words = [...argv];
  let command = "serve";
  if (words[0] === "serve") words.shift();
  else if (words[0] === "peer") {
    words.shift();
    const action = words.shift();
    if (action !== "add" && action !== "remove") throw new UsageError(`peer: expected "peer add NAME" or "peer remove NAME"`);
    command = `peer-${action}`;
  } else if (words[0] !== undefined && !words[0].startsWith("-")) {
    throw new UsageError(`unknown command ${JSON.stringify(words[0])} (commands: serve, peer add, peer remove, connect)`);
  }

  const { flags, positionals } = parseFlags(words, { known: command === "serve" ? SERVE_FLAGS : PEER_FLAGS, boolean: BOOLEAN_FLAGS });
  if (flags.help !== undefined) return { command: "help" };
  const conf = flags.conf ?? defaultConfigDir(env);

  if (command !== "serve") {
    if (positionals.length !== 1) throw new UsageError(`${command.replace("-", " ")}: expected one peer NAME`);
    return { command: command as "peer-add" | "peer-remove", conf, name: positionals[0]! };
  }
  if (positionals.length > 0) throw new UsageError(`serve: unexpected argument ${JSON.stringify(positionals[0])}`);

  const serve: ServeCommand = {
    command: "serve",
    conf,
    allowLoopback: flags["allow-loopback"] !== undefined,
    allowLinkLocal: flags["allow-link-local"] !== undefined,
    json: flags.json !== undefined,
  };
  if (flags.peers !== undefined) serve.peers = integer(flags.peers, "--peers", 0, 250);
  if (flags.listen !== undefined) serve.listen = listenAddress(flags.listen, "--listen");
  if (flags.endpoint !== undefined) serve.endpoint = configEndpoint(flags.endpoint);
  if (flags.mtu !== undefined) serve.mtu = integer(flags.mtu, "--mtu", MTU_MIN, MTU_MAX);
  if (flags.via !== undefined) {
    try {
      serve.via = parseProxy(flags.via);
    } catch (error) {
      throw new UsageError(`--via: ${(error as Error).message}`);
    }
  }
  if (flags["dns-upstream"] !== undefined) serve.dnsUpstream = ipEndpoint(flags["dns-upstream"], "--dns-upstream", 53);
  if (flags["max-flows"] !== undefined) serve.maxFlows = integer(flags["max-flows"], "--max-flows", 1, 1 << 20);
  if (flags.threads !== undefined) serve.threads = threadsFlag(flags.threads);
  if (flags.pcap !== undefined) serve.pcap = flags.pcap;
  if (flags.web !== undefined) {
    const web = listenAddress(flags.web, "--web");
    serve.web = { host: web.host ?? "127.0.0.1", port: web.port };
  }
  return serve;
}

/** HOST:PORT, [V6]:PORT, or PORT alone (every address); port 0 picks a free one. */
function listenAddress(text: string, flag: string): { host?: string; port: number } {
  const match = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?([0-9]+)$/.exec(text);
  const hostText = match?.[1] ?? match?.[2];
  const ip = hostText === undefined ? undefined : parseIp(hostText);
  if (!match || (hostText !== undefined && (!ip || (ip.family === 6) !== (match[1] !== undefined)))) {
    throw new UsageError(`${flag}: expected IP:PORT, [IPv6]:PORT or PORT, got ${JSON.stringify(text)}`);
  }
  const port = integer(match[3]!, `${flag} port`, 0, 65535);
  return ip ? { host: formatIp(ip), port } : { port };
}

/** HOST, HOST:PORT, [V6]:PORT, or a bare IPv6 address; HOST may be a name. */
function configEndpoint(text: string): { host: string; port?: number } {
  const bare = parseIp(text);
  if (bare) return { host: formatIp(bare) };
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::([0-9]+))?$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  // The host goes into every client config: an IP, or a name as clientConfig takes it.
  if (!host || (match?.[1] ? parseIp(host)?.family !== 6 : !parseIp(host) && !isHostName(host))) {
    throw new UsageError(`--endpoint: expected HOST, HOST:PORT or [IPv6]:PORT, got ${JSON.stringify(text)}`);
  }
  return match?.[3] === undefined ? { host } : { host, port: integer(match[3], "--endpoint port", 1, 65535) };
}

/** IP, IP:PORT or [V6]:PORT (no names: the gateway must not depend on a resolver to find its resolver). */
function ipEndpoint(text: string, flag: string, defaultPort: number): Endpoint {
  const bare = parseIp(text);
  if (bare) return { host: formatIp(bare), port: defaultPort };
  const parsed = parseEndpoint(text);
  if (!parsed) throw new UsageError(`${flag}: expected IP, IP:PORT or [IPv6]:PORT, got ${JSON.stringify(text)}`);
  return parsed;
}

/** The first usable nameserver of a resolv.conf text (zone-scoped IPv6 ones cannot be used). */
export function resolvConfNameserver(text: string): string | undefined {
  for (const line of text.split("\n")) {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    const ip = match && parseIp(match[1]!);
    if (ip) return formatIp(ip);
  }
  return undefined;
}

/** The host's resolver: /etc/resolv.conf, else what the runtime knows (Windows). */
function systemResolver(): Endpoint {
  let host: string | undefined;
  try {
    host = resolvConfNameserver(readFileSync("/etc/resolv.conf", "utf8"));
  } catch {
    host = getServers().find((server) => parseIp(server) !== undefined);
  }
  if (!host) throw new UsageError("no DNS server found in /etc/resolv.conf: pass --dns-upstream IP[:PORT]");
  return { host, port: 53 };
}

/** out, err, stopRequested (SIGINT, SIGTERM or SIGHUP: the gateway should stop), passSignals and dieOf as connect's. */
export interface Io extends ConnectIo {
  env: Record<string, string | undefined>;
  /** The gateway's UDP socket and clock; by default the runtime's. */
  runtime?: Runtime;
}

/** Runs the command; resolves with the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  try {
    if (argv[0] === "connect") {
      const connect = parseConnectCommand(argv.slice(1));
      if (connect.command === "help") {
        io.out(connect.text);
        return 0;
      }
      return await runConnect(connect, io);
    }
    const command = parseCommand(argv, io.env);
    switch (command.command) {
      case "help":
        io.out(USAGE);
        return 0;
      case "peer-add":
        return await peerAdd(command.conf, command.name, io);
      case "peer-remove":
        return peerRemove(command.conf, command.name, io);
      case "serve":
        return await serve(command, io);
    }
  } catch (error) {
    // Under `connect … -- COMMAND` the exit code is COMMAND's: ours failing is 125, as docker run and env(1) say it.
    const wrapping = argv[0] === "connect" && argv.includes("--");
    if (error instanceof UsageError || error instanceof StoreError) {
      io.err(`wg-netstack: ${error.message}`);
      return wrapping ? WRAPPER_FAILED : 2;
    }
    io.err(`wg-netstack: ${(error as Error).message ?? String(error)}`);
    return wrapping ? WRAPPER_FAILED : 1;
  }
}

async function peerAdd(conf: string, name: string, io: Io): Promise<number> {
  const store = new ConfigStore(conf);
  const server = store.server();
  const peer = store.addPeer(name);
  // Where the gateway last served; before its first run, the guess serve would make.
  const endpoint = server.endpoint ?? endpointText({ host: reachableHost("0.0.0.0"), port: DEFAULT_PORT });
  const { path, text } = store.writeClientConfig(peer, { endpoint });
  io.out(`peer ${name} (${path}):\n\n${text}\n${await qrCode(text, "terminal")}`);
  return 0;
}

function peerRemove(conf: string, name: string, io: Io): number {
  if (!new ConfigStore(conf).removePeer(name)) throw new UsageError(`no peer ${JSON.stringify(name)} in ${conf}`);
  io.out(`removed peer ${name}`);
  return 0;
}

async function serve(command: ServeCommand, io: Io): Promise<number> {
  const dnsUpstream = command.dnsUpstream ?? systemResolver();
  const store = new ConfigStore(command.conf);
  // A peer removed later (peer1 too) is not made again at the next start.
  const firstStart = !existsSync(join(command.conf, "server.json"));
  store.server(); // a bad key file is exit 2 before anything starts
  const pcap = await openPcapFlag(command.pcap);
  // With --json, stdout is JSON lines only: configs and QR codes go to stderr.
  const log = new FlowLog(io.out, { json: command.json });
  const board = command.web ? new FlowBoard() : undefined;
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      store,
      peers: command.peers ?? (firstStart ? 1 : 0),
      ...(command.listen ? { listen: command.listen } : {}),
      ...(command.endpoint ? { endpoint: command.endpoint } : {}),
      ...(command.mtu === undefined ? {} : { mtu: command.mtu }),
      ...(command.via ? { via: command.via } : {}),
      dnsUpstream,
      allowLoopback: command.allowLoopback,
      allowLinkLocal: command.allowLinkLocal,
      ...(command.maxFlows === undefined ? {} : { maxFlowsPerPeer: command.maxFlows }),
      ...(command.threads === undefined ? {} : { threads: command.threads }),
      ...(io.runtime ? { runtime: io.runtime } : {}),
      ...(pcap ? { pcap } : {}),
      ...(board ? { onFlowOpen: (flow: OpenFlow, bytes: FlowBytes) => board.open(flow, bytes), onFlowEnd: (record: FlowRecord) => board.end(record), taps: true } : {}),
      log,
      show: command.json ? io.err : io.out,
    });
  } catch (error) {
    await pcap?.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      throw new Error(`cannot listen on udp ${command.listen?.host ?? "every address"} port ${command.listen?.port ?? DEFAULT_PORT}: ${code}`);
    }
    throw error;
  }
  let web: WebServer | undefined;
  if (command.web && board) {
    try {
      web = await startWeb(command.web, gateway, store, board, log);
    } catch (error) {
      await gateway.stop();
      throw error;
    }
  }
  const failure = await Promise.race([io.stopRequested.then(() => undefined), gateway.failed]);
  await web?.close();
  await gateway.stop();
  if (!failure) return 0;
  // The flows are closed and summed up; nothing more can be forwarded. The server's
  // error reads "wg-netstack server failed: why".
  io.err(failure.message);
  return 1;
}

/** The web page of `--web`: its URL, with the token, is printed once; a page others can reach is warned about. */
async function startWeb(where: { host: string; port: number }, gateway: Gateway, store: ConfigStore, board: FlowBoard, log: FlowLog): Promise<WebServer> {
  let web: WebServer;
  try {
    web = await startWebServer({ ...where, token: newToken(), gateway, store, board });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(`--web: cannot listen on tcp ${endpointText(where)}: ${code ?? (error as Error).message}`);
  }
  if (!loopbackOnly(where.host)) {
    const message = `the web page listens on ${endpointText(web.address)}, which other machines may reach: whoever has its token can add peers and read the traffic`;
    log.event("warning", `warning: ${message}`, { message });
  }
  log.event("web", `web page: ${web.url}`, { url: web.url, address: web.address });
  return web;
}
