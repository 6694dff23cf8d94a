// Where the gateway sends a flow: to the destination the client asked for, to the DNS
// upstream for the virtual resolver, or nowhere. The gateway dials with the host's own
// sockets, so a peer could otherwise reach services that trust "only this machine can
// connect": by default the host's loopback is off limits, and so are link-local addresses
// (169.254.169.254 is a cloud VM's metadata service, which hands out its credentials). The
// LAN is not: a peer reaches what the host reaches, as with any VPN server that routes.

import { formatIp, parseIp, type Endpoint, type Ip } from "../ip.js";

/** Dial `to`; or turn the flow down: `refused` as a closed port would be, `denied` by the gateway's rules. */
export type Route = { to: Endpoint } | { end: "refused" | "denied"; why: string };

export interface RouteOptions {
  /** The gateway's own tunnel addresses: port 53 there is the virtual resolver. */
  ownHosts: string[];
  /** Where the virtual resolver's queries go. */
  dnsUpstream: Endpoint;
  /** Let peers reach the host's loopback (127.0.0.0/8, ::1, and 0.0.0.0 / ::, which mean it). */
  allowLoopback: boolean;
  /** Let peers reach link-local addresses (169.254.0.0/16, fe80::/10): cloud metadata services live there. */
  allowLinkLocal: boolean;
}

export function router(options: RouteOptions): (destination: Endpoint) => Route {
  const own = new Set(options.ownHosts.map((host) => formatIp(parseIp(host)!)));
  return (destination) => {
    if (own.has(destination.host)) {
      if (destination.port === 53) return { to: options.dnsUpstream };
      return { end: "refused", why: "only port 53 (DNS) is open on the gateway's address" };
    }
    const ip = parseIp(destination.host);
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
  const b = ip.bytes;
  if (ip.family === 4) return b[0] === 127 || b[0] === 0;
  if (b.subarray(0, 15).every((byte) => byte === 0)) return b[15]! <= 1; // :: and ::1
  const mapped = b.subarray(0, 10).every((byte) => byte === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped && isHostLocal({ family: 4, bytes: b.subarray(12) });
}

/** Link-local addresses (169.254.0.0/16, fe80::/10), also as IPv4-mapped IPv6. */
export function isLinkLocal(ip: Ip): boolean {
  const b = ip.bytes;
  if (ip.family === 4) return b[0] === 169 && b[1] === 254;
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return true;
  const mapped = b.subarray(0, 10).every((byte) => byte === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped && isLinkLocal({ family: 4, bytes: b.subarray(12) });
}
