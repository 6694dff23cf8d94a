// IP address, prefix and endpoint helpers. No dependencies, so the same code
// runs in Node, Deno and Bun and never touches DNS.
import { ADDRESS_SIZE } from "./wasm/abi.js";

export type IpFamily = 4 | 6;

export interface Ip {
  family: IpFamily;
  /** 4 bytes for IPv4, 16 for IPv6. */
  bytes: Uint8Array;
}

export interface Cidr extends Ip {
  /** 0..32 for IPv4, 0..128 for IPv6. Host bits are kept as written. */
  prefix: number;
}

/** An address and port, inside the tunnel or out on the network. */
export interface Endpoint {
  /** An IP address, IPv4 dotted or IPv6 in its canonical form. */
  host: string;
  /** The port, 0..65535. */
  port: number;
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses an IPv4 or IPv6 literal; anything else (names, brackets, zones, whitespace) gives undefined. */
export function parseIp(text: string): Ip | undefined {
  if (typeof text !== "string") return undefined;
  if (text.includes(":")) {
    const bytes = parseIp6(text);
    return bytes && { family: 6, bytes };
  }
  const bytes = parseIp4(text);
  return bytes && { family: 4, bytes };
}

function parseIp4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    // Leading zeros are rejected: some parsers read them as octal.
    if (part.length > 3 || !DECIMAL.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

/** Parses colon-separated groups into 16-bit words; a dotted quad may end the list. */
function parseGroups(text: string, allowIp4Tail: boolean): number[] | undefined {
  if (text === "") return [];
  const groups = text.split(":");
  const words: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i]!;
    if (allowIp4Tail && i === groups.length - 1 && group.includes(".")) {
      const v4 = parseIp4(group);
      if (!v4) return undefined;
      words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (HEX_GROUP.test(group)) {
      words.push(parseInt(group, 16));
    } else {
      return undefined;
    }
  }
  return words;
}

function parseIp6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  let words: number[];
  if (halves.length === 1) {
    const all = parseGroups(text, true);
    if (all?.length !== 8) return undefined;
    words = all;
  } else {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    // "::" stands for at least one zero group.
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  return bytes;
}

/** The same address and port (addresses as formatted: compare canonical texts). */
export function sameEndpoint(a: Endpoint | undefined, b: Endpoint): boolean {
  return a !== undefined && a.host === b.host && a.port === b.port;
}

/** An IPv4 peer seen by a dual-stack socket, as its IPv4 address (::ffff:192.0.2.1 is 192.0.2.1, RFC 4291 section 2.5.5.2). */
export function unmappedEndpoint(endpoint: Endpoint): Endpoint {
  const v4 = /^::ffff:([0-9.]+)$/i.exec(endpoint.host)?.[1];
  return v4 && parseIp(v4) ? { host: v4, port: endpoint.port } : endpoint;
}

/** An endpoint as people and configs write it: 10.0.0.2:443 or [fd00::2]:443. */
export function endpointText(endpoint: Endpoint): string {
  return endpoint.host.includes(":") ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** Formats 4 bytes as a dotted quad and 16 bytes in RFC 5952 canonical form. */
export function formatIp(ip: Ip | Uint8Array): string {
  const bytes = ip instanceof Uint8Array ? ip : ip.bytes;
  if (bytes.length === 4) return bytes.join(".");
  if (bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);

  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);

  // IPv4-mapped addresses keep the dotted tail, as Node prints socket addresses.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12).join(".")}`;
  }

  // Longest run of zero words (length >= 2, first one on ties) becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && words[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }

  const hex = (list: number[]) => list.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

/** Parses "address/prefix"; a bare address means a host prefix (/32 or /128). */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== "string") return undefined;
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefix: max };
  const prefixText = text.slice(slash + 1);
  if (prefixText.length > 3 || !DECIMAL.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { ...ip, prefix };
}

/** Parses "1.2.3.4:51820" or "[fd00::1]:51820". Host names are not accepted. */
export function parseEndpoint(text: string): Endpoint | undefined {
  if (typeof text !== "string") return undefined;
  const colon = text.lastIndexOf(":");
  if (colon < 0) return undefined;
  let hostText = text.slice(0, colon);
  const portText = text.slice(colon + 1);

  // IPv6 needs brackets so the port is unambiguous; IPv4 must not have them.
  const bracketed = hostText.startsWith("[") && hostText.endsWith("]");
  if (bracketed) hostText = hostText.slice(1, -1);
  const ip = parseIp(hostText);
  if (!ip || (ip.family === 6) !== bracketed) return undefined;

  if (portText.length > 5 || !DECIMAL.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host: formatIp(ip), port };
}

// RFC 1123 labels; a numeric last label is a mistyped IPv4 address, not a name.
const HOST_NAME = /^(?=.{1,253}\.?$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?$/i;
const NUMERIC_LAST_LABEL = /(?:^|\.)[0-9]+\.?$/;

/** True for a DNS host name (RFC 1123), false for IP literals and anything else. */
export function isHostName(text: string): boolean {
  return typeof text === "string" && HOST_NAME.test(text) && !NUMERIC_LAST_LABEL.test(text);
}

/** A host name to dial: {@link isHostName}'s, with underscores too (DNS holds them, and net.connect resolves them). */
export function isDialName(text: string): boolean {
  return typeof text === "string" && isHostName(text.replaceAll("_", "x"));
}

/** Parses an endpoint whose host may also be a DNS name: "vpn.example.com:51820" as well as {@link parseEndpoint}'s forms. */
export function parseHostEndpoint(text: string): Endpoint | undefined {
  const literal = parseEndpoint(text);
  if (literal || typeof text !== "string") return literal;
  const colon = text.lastIndexOf(":");
  const name = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (colon <= 0 || !isHostName(name) || portText.length > 5 || !DECIMAL.test(portText)) return undefined;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host: name, port } : undefined;
}

/** Size of one address in the wasm engine's binary format (from the generated contract). */
export { ADDRESS_SIZE };

/** Writes `[family u8][16 address bytes, IPv4 in the first 4][port u16 LE]` at `offset`. */
export function encodeAddress(target: Uint8Array, offset: number, ip: Ip, port: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + ADDRESS_SIZE > target.length) {
    throw new RangeError(`no room for an address at offset ${offset} of ${target.length} bytes`);
  }
  if (ip.bytes.length !== (ip.family === 4 ? 4 : 16) || (ip.family !== 4 && ip.family !== 6)) {
    throw new RangeError(`an IPv${ip.family} address cannot have ${ip.bytes.length} bytes`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port ${port} is not in 0..65535`);
  }
  target[offset] = ip.family;
  target.fill(0, offset + 1, offset + 17);
  target.set(ip.bytes, offset + 1);
  target[offset + 17] = port & 0xff;
  target[offset + 18] = port >> 8;
}

/** Reads an address written by encodeAddress or by the wasm engine. */
export function decodeAddress(source: Uint8Array, offset: number): Endpoint & { family: IpFamily } {
  if (!Number.isInteger(offset) || offset < 0 || offset + ADDRESS_SIZE > source.length) {
    throw new RangeError(`no address at offset ${offset} of ${source.length} bytes`);
  }
  const family = source[offset];
  if (family !== 4 && family !== 6) throw new RangeError(`unknown address family ${family}`);
  const bytes = source.subarray(offset + 1, offset + 1 + (family === 4 ? 4 : 16));
  const port = source[offset + 17]! | (source[offset + 18]! << 8);
  return { family, host: formatIp(bytes), port };
}

/** True when `ip` is inside `cidr`. */
export function cidrCovers(cidr: Cidr, ip: Ip): boolean {
  if (cidr.family !== ip.family) return false;
  for (let bit = 0; bit < cidr.prefix; bit += 8) {
    const mask = 0xff00 >> Math.min(8, cidr.prefix - bit);
    if (((cidr.bytes[bit / 8]! ^ ip.bytes[bit / 8]!) & mask) !== 0) return false;
  }
  return true;
}
