// Writes the wg-quick config a client imports to reach a wg-netstack server.
// Every value is validated before it is written, so the text never carries a
// stray newline or "=" that would change what wg-quick reads.

import { ConfigError, decodeKey, describeValue, encodeKey, integerOption, isRecord, maskHostBits, MTU_MAX, MTU_MIN } from "./config.js";
import { endpointText, formatIp, isHostName, parseCidr, parseHostEndpoint, parseIp } from "./ip.js";
import type { Cidr, Endpoint, Ip } from "./ip.js";
import { interfaceAddresses } from "./runtime/system.js";

/** What goes into a client's config; every string is in the form `wg` and wg-quick use. */
export interface ClientConfigOptions {
  /** The client's private key (base64, as `wg genkey` prints). */
  privateKey: string;
  /** The client's tunnel addresses, IPv4 and/or IPv6; a bare address means /32 or /128. */
  address: string | string[];
  /** The server's public key. */
  serverPublicKey: string;
  /**
   * Where the client reaches the server: "host:port", "[v6]:port" or `{ host, port }`.
   * The host may be a DNS name; 0.0.0.0 and :: become a local address (see {@link reachableHost}).
   */
  endpoint: string | Endpoint;
  /** DNS server IPs for the client to use while connected. */
  dns?: string | string[];
  /** The client interface's MTU, 1280..65535; omitted lets wg-quick choose. */
  mtu?: number;
  /** What the client sends through the tunnel; default everything: 0.0.0.0/0 and ::/0. */
  allowedIps?: string | string[];
  /** Seconds between keepalives, 0..65535; 0 or omitted leaves it off. */
  persistentKeepalive?: number;
  /** Optional extra symmetric key (base64, as `wg genpsk` prints); the server must use the same. */
  presharedKey?: string;
}

const ENDPOINT_HINT = "expected like vpn.example.com:51820, 203.0.113.5:51820 or [2001:db8::1]:51820";

/**
 * Writes a wg-quick config (`[Interface]` + one `[Peer]`) for a client of a server.
 * Throws a {@link ConfigError} naming the bad field.
 *
 * @example
 * ```ts
 * const text = clientConfig({
 *   privateKey: clientKey,
 *   address: ["10.0.0.2", "fd00::2"],
 *   serverPublicKey: server.publicKey,
 *   endpoint: server.address, // { host: "0.0.0.0", port: 51820 } becomes a local address
 *   dns: "10.0.0.1",
 * });
 * // [Interface]
 * // PrivateKey = …
 * // Address = 10.0.0.2/32, fd00::2/128
 * // DNS = 10.0.0.1
 * //
 * // [Peer]
 * // PublicKey = …
 * // AllowedIPs = 0.0.0.0/0, ::/0
 * // Endpoint = 192.168.1.20:51820
 * ```
 */
export function clientConfig(options: ClientConfigOptions): string {
  if (!isRecord(options)) throw new ConfigError("options", `expected an object, got ${describeValue(options)}`);
  // Typed callers are already right; this view checks what plain JS passes.
  const input: Record<string, unknown> = options;

  const privateKey = key(input.privateKey, "privateKey");
  if (input.address === undefined) throw new ConfigError("address", "is required (the client's tunnel address, like 10.0.0.2/32)");
  const addresses = list(input.address, "address", prefix).map(formatCidr);
  const dns = input.dns === undefined ? [] : list(input.dns, "dns", ip).map((item) => formatIp(item));
  const mtu = integerOption(input.mtu, "mtu", MTU_MIN, MTU_MAX);
  const serverPublicKey = key(input.serverPublicKey, "serverPublicKey");
  const presharedKey = input.presharedKey === undefined ? undefined : key(input.presharedKey, "presharedKey");
  const allowedIps =
    input.allowedIps === undefined
      ? ["0.0.0.0/0", "::/0"]
      : list(input.allowedIps, "allowedIps", prefix).map((item) => formatCidr(maskHostBits(item)));
  const peerEndpoint = endpoint(input.endpoint);
  const keepalive = integerOption(input.persistentKeepalive, "persistentKeepalive", 0, 65535);

  const lines = ["[Interface]", `PrivateKey = ${privateKey}`, `Address = ${addresses.join(", ")}`];
  if (dns.length > 0) lines.push(`DNS = ${dns.join(", ")}`);
  if (mtu !== undefined) lines.push(`MTU = ${mtu}`);
  lines.push("", "[Peer]", `PublicKey = ${serverPublicKey}`);
  if (presharedKey !== undefined) lines.push(`PresharedKey = ${presharedKey}`);
  lines.push(`AllowedIPs = ${allowedIps.join(", ")}`, `Endpoint = ${peerEndpoint}`);
  if (keepalive) lines.push(`PersistentKeepalive = ${keepalive}`);
  return `${lines.join("\n")}\n`;
}

/**
 * Turns an unspecified address (0.0.0.0 or ::), which a server binds to but a client
 * cannot reach, into an address of this machine of the same family: the first
 * non-internal, non-link-local address of its network interfaces, else loopback
 * (127.0.0.1 or ::1). A guess, right for clients on the same network; any other
 * host, IP or name, comes back unchanged.
 *
 * @example reachableHost(server.address.host) // "0.0.0.0" -> e.g. "192.168.1.20"
 */
export function reachableHost(host: string): string {
  const ip = parseIp(host);
  if (!ip || ip.bytes.some((byte) => byte !== 0)) return host;
  for (const address of interfaceAddresses()) {
    if (address.internal || address.family !== ip.family) continue;
    const local = parseIp(address.address);
    // fe80:: addresses only work with a zone (%eth0), which differs on the client.
    if (local && !(local.family === 6 && local.bytes[0] === 0xfe && (local.bytes[1]! & 0xc0) === 0x80)) {
      return formatIp(local);
    }
  }
  return ip.family === 4 ? "127.0.0.1" : "::1";
}



function key(value: unknown, field: string): string {
  return encodeKey(decodeKey(value, field));
}

/** A string or a non-empty array of strings, each parsed; errors name `field` or `field[i]`. */
function list<T>(value: unknown, field: string, parse: (item: unknown, field: string) => T): T[] {
  if (typeof value === "string") return [parse(value, field)];
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(field, `expected a string or a non-empty array of strings, got ${describeValue(value)}`);
  }
  // Array.from, not map: a hole is an item (undefined, refused by name), not an empty one in the text.
  return Array.from(value, (item: unknown, i) => parse(item, `${field}[${i}]`));
}

function prefix(value: unknown, field: string): Cidr {
  const parsed = typeof value === "string" ? parseCidr(value) : undefined;
  if (!parsed) throw new ConfigError(field, `${describeValue(value)} is not an IP prefix (expected like 10.0.0.2/32 or fd00::2/128)`);
  return parsed;
}

function ip(value: unknown, field: string): Ip {
  const parsed = typeof value === "string" ? parseIp(value) : undefined;
  if (!parsed) throw new ConfigError(field, `${describeValue(value)} is not an IP address (expected like 10.0.0.1 or fd00::1)`);
  return parsed;
}

const formatCidr = (cidr: Cidr) => `${formatIp(cidr)}/${cidr.prefix}`;


function endpoint(value: unknown): string {
  let host: string;
  let port: number;
  if (typeof value === "string") {
    const parsed = parseHostEndpoint(value);
    if (!parsed) throw new ConfigError("endpoint", `${describeValue(value)} is not host:port (${ENDPOINT_HINT})`);
    ({ host, port } = parsed);
  } else if (isRecord(value)) {
    const parsed = typeof value.host === "string" ? parseIp(value.host) : undefined;
    if (parsed) host = formatIp(parsed);
    else if (typeof value.host === "string" && isHostName(value.host)) host = value.host;
    else throw new ConfigError("endpoint.host", `${describeValue(value.host)} is not an IP address or host name`);
    if (value.port === undefined) throw new ConfigError("endpoint.port", "is required (the server's UDP port, like 51820)");
    port = integerOption(value.port, "endpoint.port", 1, 65535)!;
  } else {
    throw new ConfigError("endpoint", value === undefined ? `is required (${ENDPOINT_HINT})` : `expected a string or {host, port}, got ${describeValue(value)}`);
  }
  host = reachableHost(host);
  return endpointText({ host, port });
}
