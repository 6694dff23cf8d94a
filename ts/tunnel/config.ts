// Reads the wg-quick config a VPN provider or `clientConfig()` hands out (wg-quick(8),
// wg(8) CONFIGURATION FILE FORMAT) into a plain object. Values are checked with the same
// helpers as `startServer`'s options; an error names the key and its line.

import { ConfigError, decodeKey, encodeKey, maskHostBits, MTU_MAX, MTU_MIN, wholeNumber } from "../config.js";
import { formatIp, isHostName, parseCidr, parseHostEndpoint, parseIp, endpointText } from "../ip.js";

/** A parsed wg-quick config: what {@link parseConfig} returns and `connectTunnel` takes. */
export interface TunnelConfig {
  /** `[Interface] PrivateKey`, base64. */
  privateKey: string;
  /** `Address`: our tunnel addresses with their prefix, like `10.0.0.2/32`. At least one. */
  address: string[];
  /** `DNS` entries that are IP addresses: the servers `tunnel.resolve()` asks, through the tunnel. */
  dns: string[];
  /** `DNS` entries that are names: search domains, as wg-quick hands them to resolvconf; `tunnel.resolve()` tries them as resolv.conf's `search` is tried. */
  dnsSearch: string[];
  /** `MTU`, 1280..65535; absent means 1420. */
  mtu?: number;
  /** `ListenPort`: our UDP port; absent picks a free one. */
  listenPort?: number;
  /** The `[Peer]` sections, in order. At least one. */
  peers: TunnelPeerConfig[];
}

/** One `[Peer]` of a {@link TunnelConfig}. */
export interface TunnelPeerConfig {
  /** `PublicKey`, base64. */
  publicKey: string;
  /** `PresharedKey`, base64. */
  presharedKey?: string;
  /** `AllowedIPs`: what goes through this peer, host bits cleared as `wg` does. */
  allowedIps: string[];
  /** `Endpoint`: "host:port" or "[v6]:port"; the host may be a DNS name, resolved by `connectTunnel`. */
  endpoint?: string;
  /** `PersistentKeepalive` in seconds; absent or 0 is off. */
  persistentKeepalive?: number;
}

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions {
  /**
   * Told about keys that are valid for wg-quick but mean nothing here (PostUp, Table, …: they
   * configure the host, and are never run). Default: `process.emitWarning`.
   */
  onWarning?: (message: string) => void;
}

// wg-quick's own keys that act on the host (routing tables, firewall marks, scripts).
const HOST_SIDE_KEYS = ["table", "preup", "postup", "predown", "postdown", "saveconfig", "fwmark"];
const INTERFACE_KEYS = ["privatekey", "address", "dns", "mtu", "listenport"];
const PEER_KEYS = ["publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"];
// Keys that may appear more than once, their values adding up (as wg-quick and wg do).
const LIST_KEYS = ["address", "dns", "allowedips"];

interface Section {
  kind: "interface" | "peer";
  line: number;
  /** Lower-case key to its value(s) and the line each came from. */
  values: Map<string, { value: string; line: number; name: string }[]>;
}

/**
 * Parses a wg-quick config (`[Interface]` with PrivateKey, Address, DNS, MTU, ListenPort;
 * one or more `[Peer]` with PublicKey, PresharedKey, AllowedIPs, Endpoint,
 * PersistentKeepalive). Keys and section names are case-insensitive and `#` starts a
 * comment, as in wg-quick. Host-side keys (PostUp, Table, SaveConfig, …) are ignored with a
 * warning and never run. Throws a {@link ConfigError} whose `field` is the key and `line`
 * its line.
 *
 * @example
 * ```ts
 * const config = parseConfig(fs.readFileSync("wg0.conf", "utf8"));
 * config.peers[0].endpoint; // "vpn.example.com:51820"
 * ```
 */
export function parseConfig(text: string, options: ParseConfigOptions = {}): TunnelConfig {
  if (typeof text !== "string") throw new ConfigError("config", `expected the text of a wg-quick config, got ${typeof text}`);
  const warn = options.onWarning ?? defaultWarning;
  const sections = splitSections(text, warn);
  const interfaces = sections.filter((section) => section.kind === "interface");
  if (interfaces.length === 0) throw new ConfigError("[Interface]", "missing: a config starts with an [Interface] section", 1);
  if (interfaces.length > 1) throw new ConfigError("[Interface]", "given twice: a config has one [Interface]", interfaces[1]!.line);
  const config = readInterface(interfaces[0]!);
  const peerSections = sections.filter((section) => section.kind === "peer");
  if (peerSections.length === 0) throw new ConfigError("[Peer]", "missing: a config needs at least one [Peer] to connect to", lastLine(text));
  const seen = new Map<string, number>();
  for (const section of peerSections) {
    const peer = readPeer(section);
    const first = seen.get(peer.publicKey);
    if (first !== undefined) throw new ConfigError("PublicKey", `the same peer as the [Peer] on line ${first}`, single(section, "publickey")!.line);
    seen.set(peer.publicKey, section.line);
    config.peers.push(peer);
  }
  return config;
}

function defaultWarning(message: string): void {
  const emit = (globalThis as { process?: { emitWarning?: (message: string, type: string) => void } }).process?.emitWarning;
  if (emit) emit(message, "WgNetstackWarning");
  else console.warn(`wg-netstack: ${message}`);
}

function lastLine(text: string): number {
  return text.split(/\r?\n/).length;
}

function splitSections(text: string, warn: (message: string) => void): Section[] {
  const sections: Section[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const content = raw.replace(/#.*/, "").trim();
    if (content === "") return;
    const header = /^\[(.*)\]$/.exec(content);
    if (header) {
      const name = header[1]!.trim().toLowerCase();
      if (name !== "interface" && name !== "peer") throw new ConfigError(`[${header[1]}]`, "unknown section; expected [Interface] or [Peer]", line);
      sections.push({ kind: name, line, values: new Map() });
      return;
    }
    const equals = content.indexOf("=");
    if (equals <= 0) throw new ConfigError(content.slice(0, 40), "expected Key = Value or a [Section]", line);
    const name = content.slice(0, equals).trim();
    const key = name.toLowerCase();
    const value = content.slice(equals + 1).trim();
    const section = sections.at(-1);
    if (!section) throw new ConfigError(name, "comes before any [Interface] or [Peer] section", line);
    const known = section.kind === "interface" ? INTERFACE_KEYS : PEER_KEYS;
    if (section.kind === "interface" && HOST_SIDE_KEYS.includes(key)) {
      warn(`config line ${line}: ${name} is ignored (it configures the host; wg-netstack needs no routes or scripts)`);
      return;
    }
    if (!known.includes(key)) {
      const where = section.kind === "interface" ? "[Interface]" : "[Peer]";
      throw new ConfigError(name, `unknown key in ${where}; expected one of ${known.map(displayName).join(", ")}`, line);
    }
    const entries = section.values.get(key) ?? [];
    if (entries.length > 0 && !LIST_KEYS.includes(key)) throw new ConfigError(name, `given twice in one section (first on line ${entries[0]!.line})`, line);
    entries.push({ value, line, name });
    section.values.set(key, entries);
  });
  return sections;
}

const DISPLAY_NAMES: Record<string, string> = {
  privatekey: "PrivateKey",
  address: "Address",
  dns: "DNS",
  mtu: "MTU",
  listenport: "ListenPort",
  publickey: "PublicKey",
  presharedkey: "PresharedKey",
  allowedips: "AllowedIPs",
  endpoint: "Endpoint",
  persistentkeepalive: "PersistentKeepalive",
};
const displayName = (key: string) => DISPLAY_NAMES[key] ?? key;

function single(section: Section, key: string) {
  return section.values.get(key)?.[0];
}

/** Each comma-separated item of every line of a list key, with its line. */
function items(section: Section, key: string): { item: string; line: number; name: string }[] {
  return (section.values.get(key) ?? []).flatMap(({ value, line, name }) =>
    value.split(",").map((item) => {
      const trimmed = item.trim();
      if (trimmed === "") throw new ConfigError(name, "has an empty item", line);
      return { item: trimmed, line, name };
    }),
  );
}

function required(section: Section, key: string, hint: string) {
  const entry = single(section, key);
  if (!entry) throw new ConfigError(displayName(key), `is required in the section starting here (${hint})`, section.line);
  return entry;
}

function key(entry: { value: string; line: number; name: string }): string {
  try {
    return encodeKey(decodeKey(entry.value, entry.name));
  } catch (error) {
    throw new ConfigError(entry.name, (error as ConfigError).message.slice(entry.name.length + 2), entry.line);
  }
}

function integer(entry: { value: string; line: number; name: string } | undefined, min: number, max: number): number | undefined {
  if (!entry) return undefined;
  const value = wholeNumber(entry.value, min, max);
  if (value === undefined) {
    throw new ConfigError(entry.name, `expected a whole number from ${min} to ${max}, got ${JSON.stringify(entry.value)}`, entry.line);
  }
  return value;
}

function prefixes(section: Section, key: string, mask: boolean): string[] {
  return items(section, key).map(({ item, line, name }) => {
    const parsed = parseCidr(item);
    if (!parsed) throw new ConfigError(name, `${JSON.stringify(item)} is not an IP prefix (expected like 10.0.0.2/32 or fd00::2/128)`, line);
    const cidr = mask ? maskHostBits(parsed) : parsed;
    return `${formatIp(cidr)}/${cidr.prefix}`;
  });
}

function readInterface(section: Section): TunnelConfig {
  const privateKey = key(required(section, "privatekey", 'as printed by "wg genkey"'));
  const address = prefixes(section, "address", false);
  if (address.length === 0) throw new ConfigError("Address", "is required in [Interface] (our tunnel address, like 10.0.0.2/32)", section.line);
  const dns: string[] = [];
  const dnsSearch: string[] = [];
  for (const { item, line, name } of items(section, "dns")) {
    const ip = parseIp(item);
    if (ip) dns.push(formatIp(ip));
    else if (isHostName(item)) dnsSearch.push(item);
    else throw new ConfigError(name, `${JSON.stringify(item)} is neither an IP address nor a search domain`, line);
  }
  const config: TunnelConfig = { privateKey, address, dns, dnsSearch, peers: [] };
  const mtu = integer(single(section, "mtu"), MTU_MIN, MTU_MAX);
  if (mtu !== undefined) config.mtu = mtu;
  const listenPort = integer(single(section, "listenport"), 0, 65535);
  if (listenPort !== undefined) config.listenPort = listenPort;
  return config;
}

function readPeer(section: Section): TunnelPeerConfig {
  const publicKey = key(required(section, "publickey", 'as printed by "wg pubkey"'));
  const allowedIps = prefixes(section, "allowedips", true);
  if (allowedIps.length === 0) {
    throw new ConfigError("AllowedIPs", "is required in [Peer] (what goes through this peer, like 0.0.0.0/0, ::/0)", section.line);
  }
  const peer: TunnelPeerConfig = { publicKey, allowedIps };
  const preshared = single(section, "presharedkey");
  if (preshared) peer.presharedKey = key(preshared);
  const endpoint = single(section, "endpoint");
  if (endpoint) {
    const parsed = parseHostEndpoint(endpoint.value);
    if (!parsed) {
      throw new ConfigError(endpoint.name, `${JSON.stringify(endpoint.value)} is not host:port (expected like vpn.example.com:51820, 203.0.113.5:51820 or [2001:db8::1]:51820)`, endpoint.line);
    }
    peer.endpoint = endpointText(parsed);
  }
  const keepalive = single(section, "persistentkeepalive");
  // wg(8): "off" or a number of seconds; 0 is off too.
  const seconds = keepalive?.value.toLowerCase() === "off" ? 0 : integer(keepalive, 0, 65535);
  if (seconds) peer.persistentKeepalive = seconds;
  return peer;
}
