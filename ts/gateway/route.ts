// Where the gateway sends a flow: to the destination the client asked for, to the DNS
// upstream for the virtual resolver, or nowhere. The gateway dials with the host's own
// sockets, so a peer could otherwise reach services that trust "only this machine can
// connect": by default the host's loopback is off limits, and so are link-local addresses
// (169.254.169.254 is a cloud VM's metadata service, which hands out its credentials). The
// LAN is not: a peer reaches what the host reaches, as with any VPN server that routes.

import { cidrCovers, formatIp, parseCidr, parseIp, type Endpoint, type Ip } from "../ip.js";

/** Dial `to`; or turn the flow down: `refused` as a closed port would be, `denied` by the gateway's rules. */
export type Route = { to: Endpoint } | { end: "refused" | "denied"; why: string };

export interface RouteOptions {
  /** The gateway's own tunnel addresses: port 53 there is the virtual resolver. */
  ownHosts: string[];
  /**
   * The tunnel's subnets (the gateway's addresses with their prefixes, "10.77.0.1/24"): the
   * peers' addresses, which are not out on the host's network. Denied: peers do not reach
   * each other, and the host must not send such a flow to its LAN or default route.
   */
  subnets?: string[];
  /** Where the virtual resolver's queries go. */
  dnsUpstream: Endpoint;
  /** Let peers reach the host's loopback (127.0.0.0/8, ::1, and 0.0.0.0 / ::, which mean it). */
  allowLoopback: boolean;
  /** Let peers reach link-local addresses (169.254.0.0/16, fe80::/10): cloud metadata services live there. */
  allowLinkLocal: boolean;
}

export function router(options: RouteOptions): (destination: Endpoint) => Route {
  const own = new Set(options.ownHosts.map((host) => formatIp(parseIp(host)!)));
  const subnets = (options.subnets ?? []).map((text) => parseCidr(text)!);
  return (destination) => {
    if (own.has(destination.host)) {
      if (destination.port === 53) return { to: options.dnsUpstream };
      return { end: "refused", why: "only port 53 (DNS) is open on the gateway's address" };
    }
    const ip = parseIp(destination.host);
    const plain = ip && unmapped(ip);
    if (plain && isMulticastOrBroadcast(plain)) {
      return { end: "denied", why: "multicast and broadcast are not routed beyond the tunnel" };
    }
    if (plain && subnets.some((subnet) => cidrCovers(subnet, plain))) {
      return { end: "denied", why: "an address in the tunnel's subnet: peers do not reach each other through the gateway" };
    }
    if (ip && isHostLocal(ip) && !options.allowLoopback) {
      return { end: "denied", why: "the gateway host's loopback is off limits (--allow-loopback)" };
    }
    if (ip && isLinkLocal(ip) && !options.allowLinkLocal) {
      return { end: "denied", why: "link-local addresses, such as a cloud's metadata service, are off limits (--allow-link-local)" };
    }
    return { to: destination };
  };
}

/** Addresses a socket on this host reaches itself at: loopback and unspecified, also as IPv4-mapped IPv6. */
export function isHostLocal(ip: Ip): boolean {
  const plain = unmapped(ip);
  const b = plain.bytes;
  if (plain.family === 4) return b[0] === 127 || b[0] === 0;
  return b.subarray(0, 15).every((byte) => byte === 0) && b[15]! <= 1; // :: and ::1
}

/** 224.0.0.0/4, 255.255.255.255 and ff00::/8: a router passes none of these on from a tunnel (mDNS, SSDP, LLMNR). */
function isMulticastOrBroadcast(ip: Ip): boolean {
  const b = ip.bytes;
  if (ip.family === 6) return b[0] === 0xff;
  return (b[0]! & 0xf0) === 0xe0 || b.every((byte) => byte === 255);
}

/** An IPv4-mapped IPv6 address (::ffff:192.0.2.1) as the IPv4 address; any other as it is. */
function unmapped(ip: Ip): Ip {
  const b = ip.bytes;
  const mapped = ip.family === 6 && b.subarray(0, 10).every((byte) => byte === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? { family: 4, bytes: b.subarray(12) } : ip;
}

/** Link-local addresses (169.254.0.0/16, fe80::/10), also as IPv4-mapped IPv6. */
export function isLinkLocal(ip: Ip): boolean {
  const plain = unmapped(ip);
  const b = plain.bytes;
  if (plain.family === 4) return b[0] === 169 && b[1] === 254;
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}
