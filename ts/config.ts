// Validates user options once, up front, so every later layer can trust them.
// Each problem becomes a ConfigError whose message starts with the field path.

import { formatIp, parseCidr, parseEndpoint, parseIp } from "./ip.js";
import type { Cidr, Endpoint } from "./ip.js";
import { OPTIONS } from "./wasm/abi.js";

/** A WireGuard peer the server accepts (a client), as in a `[Peer]` section. */
export interface PeerOptions {
  /** The peer's public key, base64 as `wg pubkey` prints it. */
  publicKey: string;
  /** CIDRs. May be omitted only when there is exactly one peer: then it means everything. */
  allowedIps?: string[];
  /** "host:port" / "[v6]:port" or {host, port}; the host must be an IP literal. */
  endpoint?: string | Endpoint;
  /** Seconds, 0 = off (default). */
  persistentKeepalive?: number;
  /** A key shared with this peer only, base64 as `wg genpsk` prints it: adds a symmetric layer to the handshake. */
  presharedKey?: string;
}

/** The server's WireGuard and TCP settings: the part of the server options checked up front. */
export interface ConfigInput {
  /** The server's private key, base64 as `wg genkey` prints it. */
  privateKey: string;
  /** The clients allowed to connect. */
  peers: PeerOptions[];
  /** IP address to bind the UDP socket to; default `0.0.0.0`. */
  host?: string;
  /** UDP port; default 51820; 0 picks a free one (see `server.address`). */
  port?: number;
  /** Largest inner IP packet, 1280..65535; default 1420, as on a WireGuard interface. */
  mtu?: number;
  /** The server's own tunnel addresses (CIDR or bare IP), used as the source of `server.connect()`. */
  address?: string | string[];
  /**
   * The most a TCP connection's receive window grows to, 4 KiB..64 MiB; default 4 MiB. It
   * starts at 64 KiB and grows while you keep up with the data; it bounds what a connection
   * makes you hold received but unread.
   */
  tcpReceiveBuffer?: number;
  /** The most a TCP connection's send buffer (written, not yet acknowledged) grows to, 4 KiB..64 MiB; default 4 MiB. It follows the congestion window. */
  tcpSendBuffer?: number;
  /** Open TCP connections one peer may have; past it a SYN gets RST. Default 16,384. */
  tcpMaxConnectionsPerPeer?: number;
  /** Open TCP connections in all; default 65,536. */
  tcpMaxConnections?: number;
  /** TCP connections one peer may have in the handshake (or waiting for `accept()`); default 4,096. */
  tcpMaxHalfOpenPerPeer?: number;
  /** Bytes all TCP connections together may hold (unacknowledged, behind a loss, or given to you unread); past three quarters windows stop growing. Default 256 MiB. */
  maxBufferedBytes?: number;
  /** UDP flows (source, destination) one peer may have; past it a datagram gets ICMP port unreachable. Default 4,096. */
  udpMaxFlowsPerPeer?: number;
  /** Milliseconds a TCP connection may take to finish its handshake, or wait for `accept()`; default 20,000. */
  tcpHalfOpenTimeout?: number;
  /** Milliseconds to wait for the client's FIN after ours was acknowledged; default 60,000. */
  tcpFinWait2Timeout?: number;
  /** Milliseconds of silence before a keep-alive probe; six unanswered probes, 20 s apart, reset the connection. Default 60,000. */
  tcpKeepalive?: number;
  /** Milliseconds sent data may stay unacknowledged before the connection is reset (the client went away); default 60,000. */
  tcpUserTimeout?: number;
  /** Milliseconds a UDP flow lives without a datagram either way; default 60,000. */
  udpFlowTimeout?: number;
}

/** The resource limits and timeouts, with defaults applied. */
export interface Limits {
  tcpMaxConnectionsPerPeer: number;
  tcpMaxConnections: number;
  tcpMaxHalfOpenPerPeer: number;
  maxBufferedBytes: number;
  udpMaxFlowsPerPeer: number;
  tcpHalfOpenTimeout: number;
  tcpFinWait2Timeout: number;
  tcpKeepalive: number;
  tcpUserTimeout: number;
  udpFlowTimeout: number;
}

export interface PeerConfig {
  publicKey: Uint8Array;
  /** Canonical base64, for logs and lookups. */
  publicKeyText: string;
  presharedKey?: Uint8Array;
  persistentKeepalive: number;
  endpoint?: Endpoint;
  /** Host bits are cleared, as `wg` does. */
  allowedIps: Cidr[];
}

export interface Config {
  privateKey: Uint8Array;
  /** Engine threads besides the main thread: 0 or 1 (see `ServerOptions.threads`). */
  threads: 0 | 1;
  host: string;
  port: number;
  mtu: number;
  /** Our tunnel addresses; host bits are kept because they name us. */
  addresses: Cidr[];
  tcpReceiveBuffer: number;
  tcpSendBuffer: number;
  limits: Limits;
  peers: PeerConfig[];
}

/**
 * A bad option: `field` names it (like `peers[1].allowedIps[0]`, or a config file's key like
 * `Endpoint`) and the message says why; `line` is the line of the config text, when it
 * came from one (see `parseConfig`).
 */
export class ConfigError extends Error {
  /** The path of the offending option, or the key in a config text. */
  readonly field: string;
  /** The 1-based line of the config text holding the problem; undefined for options. */
  readonly line: number | undefined;
  constructor(field: string, reason: string, line?: number) {
    super(line === undefined ? `${field}: ${reason}` : `line ${line}: ${field}: ${reason}`);
    this.name = "ConfigError";
    this.field = field;
    this.line = line;
  }
}

/** Options that must be functions when present. */
const HANDLER_NAMES = ["onTcp", "onUdp", "onError", "onUnknownPeer", "onUdpUnreachable", "tap"] as const;

/** Every option `startServer` knows: a misspelt name is an error, not a silent default. */
export const OPTION_NAMES = [
  "privateKey",
  "peers",
  "host",
  "port",
  "mtu",
  "address",
  "tcpReceiveBuffer",
  "tcpSendBuffer",
  ...HANDLER_NAMES,
  "runtime",
  "threads",
  "tcpMaxConnectionsPerPeer",
  "tcpMaxConnections",
  "tcpMaxHalfOpenPerPeer",
  "maxBufferedBytes",
  "udpMaxFlowsPerPeer",
  "tcpHalfOpenTimeout",
  "tcpFinWait2Timeout",
  "tcpKeepalive",
  "tcpUserTimeout",
  "udpFlowTimeout",
] as const;

const PEER_OPTION_NAMES = ["publicKey", "allowedIps", "endpoint", "persistentKeepalive", "presharedKey"] as const;

// Checked by tsc: an option added to PeerOptions must be listed above (and one added to
// ServerOptions in OPTION_NAMES: checked beside it, in host/server.ts, the layer above).
export type ListsAll<T, Names extends readonly string[]> = [Exclude<keyof T, Names[number]>] extends [never] ? true : false;
export type MustBeTrue<T extends true> = T;
// biome-ignore lint/correctness/noUnusedVariables: never used, only checked by tsc
type PeerOptionNamesListed = MustBeTrue<ListsAll<PeerOptions, typeof PEER_OPTION_NAMES>>;

const KEY_SIZE = 32;
const KEY_TEXT_SIZE = 44;
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const KEY_HINT = 'expected 44 base64 characters ending in "=", as printed by "wg genkey" or "wg pubkey"';

/** A short, safe rendering of a bad value for an error message; long strings are cut short. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "object") return "an object";
  return typeof value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Decodes a WireGuard key. Strict: exactly 32 bytes, standard alphabet, one "="
 * and zero padding bits, so each key has exactly one text form. Surrounding
 * whitespace is ignored, as `wg` does (`wg genkey > key` leaves a newline).
 * Messages never echo the key because it may be secret.
 */
export function decodeKey(value: unknown, field: string): Uint8Array {
  if (value === undefined) throw new ConfigError(field, `is required (${KEY_HINT})`);
  if (typeof value !== "string") throw new ConfigError(field, `${KEY_HINT}, got ${value === null ? "null" : typeof value}`);
  const text = value.trim();
  if (text.length !== KEY_TEXT_SIZE || text[43] !== "=") {
    throw new ConfigError(field, `${KEY_HINT}, got ${text.length} characters`);
  }
  const bytes = new Uint8Array(KEY_SIZE);
  let bits = 0;
  let bitCount = 0;
  let out = 0;
  for (let i = 0; i < 43; i++) {
    const digit = BASE64.indexOf(text[i]!);
    if (digit < 0) throw new ConfigError(field, `${KEY_HINT}, but character ${i + 1} is not base64`);
    bits = (bits << 6) | digit;
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      bytes[out++] = (bits >> bitCount) & 0xff;
    }
  }
  // 43 characters carry 258 bits: the last 2 must be zero in a canonical key.
  if ((bits & ((1 << bitCount) - 1)) !== 0) {
    throw new ConfigError(field, `${KEY_HINT}, but its last character is not canonical`);
  }
  return bytes;
}

/** Standard padded base64, the form `wg` prints. */
export function encodeKey(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, bytes.length - i + 1);
    for (let j = 0; j < 4; j++) {
      text += j < chars ? BASE64[(chunk >> (18 - 6 * j)) & 63] : "=";
    }
  }
  return text;
}

/** Throws a ConfigError for the first name in `options` that is not in `known`, suggesting the nearest. */
function checkNames(options: Record<string, unknown>, known: readonly string[], path: string): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const near = nearestName(name, known);
    const hint = near ? `did you mean ${near}?` : `known options: ${known.join(", ")}`;
    throw new ConfigError(path ? `${path}.${name}` : name, `unknown option; ${hint}`);
  }
}

/** The known name closest to `name` ignoring case, if it is a likely typo (an edit or two away). */
function nearestName(name: string, known: readonly string[]): string | undefined {
  const limit = name.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** How many edits (insert, delete, replace, swap two neighbours) turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  // d[i][j]: the distance between the first i characters of a and the first j of b.
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        d[0]!.push(j);
        continue;
      }
      const replace = d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, replace);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]!.push(best);
    }
  }
  return d[a.length]![b.length]!;
}

/** The inner MTU: from IPv6's minimum link MTU (RFC 8200 section 5) to the largest IP packet without jumbograms (the engine's range, crates/engine/src/abi.rs). */
export const MTU_MIN = OPTIONS.mtu.min;
export const MTU_MAX = OPTIONS.mtu.max;

/** `value` when it is an integer from `min` to `max`; undefined when absent; otherwise a ConfigError naming `field`. */
export function integerOption(value: unknown, field: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `expected an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * The number `text` writes in decimal digits when it is from `min` to `max`, else undefined: no
 * sign, no fraction, and no leading zero (`010` is eight to tools that read C's octal).
 */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(text)) return undefined;
  const value = Number(text);
  return value >= min && value <= max ? value : undefined;
}

function integer(options: Record<string, unknown>, field: string, min: number, max: number, fallback: number, path = field): number {
  return integerOption(options[field], path, min, max) ?? fallback;
}

function cidr(value: unknown, field: string): Cidr {
  if (typeof value !== "string") {
    throw new ConfigError(field, `expected a string like 10.0.0.2/32 or fd00::2/128, got ${describeValue(value)}`);
  }
  const parsed = parseCidr(value);
  if (!parsed) {
    throw new ConfigError(field, `${describeValue(value)} is not an IP prefix (expected like 10.0.0.2/32 or fd00::2/128)`);
  }
  return parsed;
}

/** Clears the bits after the prefix so routing can compare prefixes directly. */
/** The network a prefix names: bits past the prefix length cleared, as `wg` does. */
export function maskHostBits(prefix: Cidr): Cidr {
  const bytes = prefix.bytes.slice();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.min(8, Math.max(0, prefix.prefix - i * 8));
    bytes[i] = bytes[i]! & (0xff00 >> keep);
  }
  return { family: prefix.family, bytes, prefix: prefix.prefix };
}

const ENDPOINT_HINT = "expected like 203.0.113.5:51820 or [2001:db8::1]:51820; host names are not resolved";

function endpoint(value: unknown, field: string): Endpoint {
  if (typeof value === "string") {
    const parsed = parseEndpoint(value);
    if (!parsed) throw new ConfigError(field, `${describeValue(value)} is not an IP endpoint (${ENDPOINT_HINT})`);
    return parsed;
  }
  if (!isRecord(value)) {
    throw new ConfigError(field, `expected a string or {host, port}, got ${describeValue(value)}`);
  }
  const ip = typeof value.host === "string" ? parseIp(value.host) : undefined;
  if (!ip) {
    throw new ConfigError(`${field}.host`, `${describeValue(value.host)} is not an IP address (host names are not resolved)`);
  }
  const port = value.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`${field}.port`, `expected an integer from 1 to 65535, got ${describeValue(port)}`);
  }
  return { host: formatIp(ip), port };
}

/**
 * Checks one peer's options; `path` names it in errors. `alone`: it is the server's only
 * peer, so `allowedIps` may be omitted (and then means everything).
 */
export function validatePeer(value: unknown, path: string, alone: boolean): PeerConfig {
  if (!isRecord(value)) throw new ConfigError(path, `expected an object with a publicKey, got ${describeValue(value)}`);
  checkNames(value, PEER_OPTION_NAMES, path);

  const publicKey = decodeKey(value.publicKey, `${path}.publicKey`);
  const publicKeyText = encodeKey(publicKey);

  let allowedIps: Cidr[];
  if (value.allowedIps === undefined) {
    if (!alone) {
      throw new ConfigError(`${path}.allowedIps`, "is required when there is more than one peer (it decides which peer gets each packet)");
    }
    // A lone peer gets all traffic, like a client's default route.
    allowedIps = [
      { family: 4, bytes: new Uint8Array(4), prefix: 0 },
      { family: 6, bytes: new Uint8Array(16), prefix: 0 },
    ];
  } else if (!Array.isArray(value.allowedIps)) {
    throw new ConfigError(`${path}.allowedIps`, `expected an array of strings like 10.0.0.2/32, got ${describeValue(value.allowedIps)}`);
  } else {
    // Array.from, not map: a hole is an item (undefined, refused by name), not skipped into the result.
    allowedIps = Array.from(value.allowedIps, (item: unknown, i) => maskHostBits(cidr(item, `${path}.allowedIps[${i}]`)));
  }

  const result: PeerConfig = {
    publicKey,
    publicKeyText,
    persistentKeepalive: integer(value, "persistentKeepalive", 0, 65535, 0, `${path}.persistentKeepalive`),
    allowedIps,
  };
  if (value.endpoint !== undefined) result.endpoint = endpoint(value.endpoint, `${path}.endpoint`);
  if (value.presharedKey !== undefined) result.presharedKey = decodeKey(value.presharedKey, `${path}.presharedKey`);
  return result;
}

/** Checks the options and returns them with defaults applied; throws ConfigError. */
export function validateConfig(input: unknown): Config {
  if (!isRecord(input)) throw new ConfigError("options", `expected an object, got ${describeValue(input)}`);
  checkNames(input, OPTION_NAMES, "");
  for (const name of HANDLER_NAMES) {
    if (input[name] !== undefined && typeof input[name] !== "function") {
      throw new ConfigError(name, `expected a function, got ${describeValue(input[name])}`);
    }
  }
  const runtime = input.runtime;
  if (runtime !== undefined && !(isRecord(runtime) && isRecord(runtime.clock) && typeof runtime.bindUdp === "function")) {
    throw new ConfigError("runtime", `expected a Runtime (an object with clock and bindUdp), got ${describeValue(runtime)}`);
  }

  const threads = threadsOption(input.threads, runtime !== undefined);
  const privateKey = decodeKey(input.privateKey, "privateKey");

  let host = "0.0.0.0";
  if (input.host !== undefined) {
    const ip = typeof input.host === "string" ? parseIp(input.host) : undefined;
    if (!ip) throw new ConfigError("host", `${describeValue(input.host)} is not an IP address to bind (like 0.0.0.0 or ::)`);
    host = formatIp(ip);
  }

  const port = integer(input, "port", 0, 65535, 51820);
  // The ranges and defaults the engine shares (crates/engine/src/abi.rs, `option`).
  const option = (name: keyof typeof OPTIONS) => integer(input, name, OPTIONS[name].min, OPTIONS[name].max, OPTIONS[name].default);
  const mtu = option("mtu");
  const tcpReceiveBuffer = option("tcpReceiveBuffer");
  const tcpSendBuffer = option("tcpSendBuffer");
  const limits: Limits = {
    tcpMaxConnectionsPerPeer: option("tcpMaxConnectionsPerPeer"),
    tcpMaxConnections: option("tcpMaxConnections"),
    tcpMaxHalfOpenPerPeer: option("tcpMaxHalfOpenPerPeer"),
    maxBufferedBytes: option("maxBufferedBytes"),
    udpMaxFlowsPerPeer: option("udpMaxFlowsPerPeer"),
    tcpHalfOpenTimeout: option("tcpHalfOpenTimeout"),
    tcpFinWait2Timeout: option("tcpFinWait2Timeout"),
    tcpKeepalive: option("tcpKeepalive"),
    tcpUserTimeout: option("tcpUserTimeout"),
    udpFlowTimeout: option("udpFlowTimeout"),
  };

  let addresses: Cidr[] = [];
  if (typeof input.address === "string") {
    addresses = [cidr(input.address, "address")];
  } else if (Array.isArray(input.address)) {
    addresses = Array.from(input.address, (item: unknown, i) => cidr(item, `address[${i}]`));
  } else if (input.address !== undefined) {
    throw new ConfigError("address", `expected a string or an array of strings like 10.0.0.1/24, got ${describeValue(input.address)}`);
  }

  if (!Array.isArray(input.peers)) {
    throw new ConfigError("peers", `expected an array of peer objects, got ${describeValue(input.peers)}`);
  }
  const alone = input.peers.length === 1;
  const peers = Array.from(input.peers, (item: unknown, i) => validatePeer(item, `peers[${i}]`, alone));
  const seen = new Map<string, number>();
  peers.forEach((peer, i) => {
    const first = seen.get(peer.publicKeyText);
    if (first !== undefined) throw new ConfigError(`peers[${i}].publicKey`, `duplicate of peers[${first}]`);
    seen.set(peer.publicKeyText, i);
  });

  return { privateKey, threads, host, port, mtu, addresses, tcpReceiveBuffer, tcpSendBuffer, limits, peers };
}

/**
 * `threads`: 0 (the default) or 1. More is refused rather than clamped: one engine cannot use
 * a third thread yet (docs/threads.md). A custom runtime (the in-memory network with virtual
 * time) cannot cross into a worker.
 */
function threadsOption(value: unknown, customRuntime: boolean): 0 | 1 {
  if (value === undefined || value === 0) return 0;
  if (value !== 1) throw new ConfigError("threads", `expected 0 (the engine on the main thread) or 1 (the engine and its socket in a worker), got ${describeValue(value)}`);
  if (customRuntime) throw new ConfigError("threads", "a custom runtime runs on the main thread only: use threads: 0 with it");
  if (typeof SharedArrayBuffer !== "function" || typeof (Atomics as { waitAsync?: unknown }).waitAsync !== "function") {
    throw new ConfigError("threads", "this runtime has no SharedArrayBuffer or Atomics.waitAsync for a worker: use threads: 0");
  }
  return 1;
}
