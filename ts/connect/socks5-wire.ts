// SOCKS5's messages (RFC 1928) and its username/password sub-negotiation (RFC 1929), as
// pure functions over bytes: each parser returns undefined until the whole message is
// there, then the message and its length; a malformed message throws a SocksError that
// carries the reply code to send.

import { formatIp, parseIp } from "../ip.js";

export const SOCKS_VERSION = 5;
/** RFC 1928 section 3: METHOD values. */
export const METHOD_NO_AUTH = 0x00;
export const METHOD_USER_PASS = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;
/** RFC 1928 section 4: CMD values. */
export const CMD_CONNECT = 1;
export const CMD_BIND = 2;
export const CMD_UDP_ASSOCIATE = 3;
/** RFC 1928 section 5: ATYP values. */
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** RFC 1928 section 6: REP values. */
export const REPLY = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  connectionRefused: 5,
  ttlExpired: 6,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

/** A malformed or unsupported message; `reply` is the REP code to answer with before closing (undefined: just close). */
export class SocksError extends Error {
  constructor(
    message: string,
    readonly reply?: number,
  ) {
    super(message);
    this.name = "SocksError";
  }
}

export interface Parsed<T> {
  value: T;
  length: number;
}

/** A destination as SOCKS carries it: an IP or a domain name, and a port. */
export interface SocksAddress {
  host: string;
  port: number;
  /** True when the client sent a name (ATYP 3): resolve it through the tunnel, as socks5h. */
  isName: boolean;
}

/** The greeting: VER, NMETHODS, METHODS (section 3). */
export function parseGreeting(bytes: Uint8Array): Parsed<number[]> | undefined {
  if (bytes.length < 2) return undefined;
  if (bytes[0] !== SOCKS_VERSION) throw new SocksError(`not SOCKS5 (version byte ${bytes[0]})`);
  const count = bytes[1]!;
  if (count === 0) throw new SocksError("the greeting offers no method");
  if (bytes.length < 2 + count) return undefined;
  return { value: [...bytes.subarray(2, 2 + count)], length: 2 + count };
}

/** RFC 1929 section 2: VER 1, ULEN, UNAME, PLEN, PASSWD. */
export function parseUserPass(bytes: Uint8Array): Parsed<{ user: string; pass: string }> | undefined {
  if (bytes.length < 2) return undefined;
  if (bytes[0] !== 1) throw new SocksError(`bad username/password version ${bytes[0]} (RFC 1929 wants 1)`);
  const userLength = bytes[1]!;
  if (bytes.length < 3 + userLength) return undefined;
  const passLength = bytes[2 + userLength]!;
  const length = 3 + userLength + passLength;
  if (bytes.length < length) return undefined;
  const text = (from: number, to: number) => new TextDecoder().decode(bytes.subarray(from, to));
  return { value: { user: text(2, 2 + userLength), pass: text(3 + userLength, length) }, length };
}

/** The request: VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT (section 4). */
export function parseRequest(bytes: Uint8Array): Parsed<{ command: number; address: SocksAddress }> | undefined {
  if (bytes.length < 4) return undefined;
  if (bytes[0] !== SOCKS_VERSION) throw new SocksError(`bad request version ${bytes[0]}`, REPLY.generalFailure);
  const address = parseAddress(bytes, 3);
  if (!address) return undefined;
  return { value: { command: bytes[1]!, address: address.value }, length: 3 + address.length };
}

/** ATYP, ADDR, PORT at `offset` (sections 4 and 5). */
export function parseAddress(bytes: Uint8Array, offset: number): Parsed<SocksAddress> | undefined {
  if (bytes.length < offset + 1) return undefined;
  const type = bytes[offset]!;
  let host: string;
  let size: number;
  if (type === ATYP_IPV4 || type === ATYP_IPV6) {
    size = type === ATYP_IPV4 ? 4 : 16;
    if (bytes.length < offset + 1 + size + 2) return undefined;
    host = formatIp(bytes.subarray(offset + 1, offset + 1 + size));
  } else if (type === ATYP_DOMAIN) {
    if (bytes.length < offset + 2) return undefined;
    const nameLength = bytes[offset + 1]!;
    if (nameLength === 0) throw new SocksError("empty domain name", REPLY.hostUnreachable);
    size = 1 + nameLength;
    if (bytes.length < offset + 1 + size + 2) return undefined;
    host = new TextDecoder().decode(bytes.subarray(offset + 2, offset + 1 + size));
  } else {
    throw new SocksError(`address type ${type} is not supported`, REPLY.addressTypeNotSupported);
  }
  const portAt = offset + 1 + size;
  const port = (bytes[portAt]! << 8) | bytes[portAt + 1]!;
  return { value: { host, port, isName: type === ATYP_DOMAIN }, length: 1 + size + 2 };
}

/** ATYP, ADDR, PORT for an IP address (what replies and UDP headers carry). */
export function encodeAddress(host: string, port: number): Uint8Array {
  const ip = parseIp(host) ?? parseIp("0.0.0.0")!;
  const bytes = new Uint8Array(1 + ip.bytes.length + 2);
  bytes[0] = ip.family === 4 ? ATYP_IPV4 : ATYP_IPV6;
  bytes.set(ip.bytes, 1);
  bytes[bytes.length - 2] = port >> 8;
  bytes[bytes.length - 1] = port & 0xff;
  return bytes;
}

/** The reply: VER, REP, RSV, then the bound address (section 6). */
export function encodeReply(reply: number, bound: { host: string; port: number } = { host: "0.0.0.0", port: 0 }): Uint8Array {
  const address = encodeAddress(bound.host, bound.port);
  const bytes = new Uint8Array(3 + address.length);
  bytes.set([SOCKS_VERSION, reply, 0]);
  bytes.set(address, 3);
  return bytes;
}

/** A UDP ASSOCIATE datagram (section 7): RSV(2), FRAG, then the address and the data. Undefined for a fragment (dropped: we do not reassemble); a SocksError for one cut short or to port 0. */
export function parseUdpDatagram(bytes: Uint8Array): { address: SocksAddress; data: Uint8Array } | undefined {
  if (bytes.length < 4) throw new SocksError("UDP datagram shorter than its header");
  if (bytes[2] !== 0) return undefined;
  const address = parseAddress(bytes, 3);
  if (!address) throw new SocksError("UDP datagram shorter than its header");
  // Port 0 is no destination: the datagram cannot be sent on, so it is malformed (dropped).
  if (address.value.port === 0) throw new SocksError("UDP datagram to port 0");
  return { address: address.value, data: bytes.subarray(3 + address.length) };
}

/** A UDP reply to the client: the header with the sender's address, then the data. */
export function encodeUdpDatagram(from: { host: string; port: number }, data: Uint8Array): Uint8Array {
  const address = encodeAddress(from.host, from.port);
  const bytes = new Uint8Array(3 + address.length + data.length);
  bytes.set(address, 3);
  bytes.set(data, 3 + address.length);
  return bytes;
}

/** The REP code for a failed connect, from the tunnel's error code. */
export function replyForError(code: string | undefined): number {
  switch (code) {
    case "ECONNREFUSED":
      return REPLY.connectionRefused;
    case "ENETUNREACH":
      return REPLY.networkUnreachable;
    case "EHOSTUNREACH":
    case "ENOTFOUND":
      return REPLY.hostUnreachable;
    case "ETIMEDOUT":
      return REPLY.ttlExpired;
    default:
      return REPLY.generalFailure;
  }
}
