// Who may use the web page: whoever has the token `serve` prints, as Jupyter does. The
// printed URL carries it once (`/?token=…`); the first visit trades it for a cookie and
// drops it from the address bar. Reads take the token from that cookie, an
// `Authorization: Bearer` header or `?token=`. Changes (POST) need the header: a
// cookie goes with any request the browser sends, even one another site starts (CSRF),
// while a header can only be set by our page's script, which another origin cannot read.

import { randomBytes, timingSafeEqual } from "node:crypto";
import { isHostLocal } from "../gateway/route.js";
import { parseIp } from "../ip.js";

export const COOKIE_NAME = "wg_netstack_token";

/** 32 random bytes, base64url: unguessable, and safe in a URL and a cookie. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export interface RequestFacts {
  method: string;
  /** The URL's path: only the page ("/") trades a query token for a cookie. */
  path: string;
  /** The query string's `token`, if any. */
  queryToken: string | null;
  cookieHeader: string | undefined;
  authorizationHeader: string | undefined;
}

/**
 * What to do with a request: serve it (a visit to the page with the token in its address
 * first gets the cookie and an address without it: `setCookie`; a script's GET of the API
 * with `?token=` is simply answered), or refuse it (401 without a valid token; 403 for a
 * change without the header).
 */
export type Access = { allowed: true; setCookie: boolean } | { allowed: false; status: 401 | 403; why: string };

export function checkAccess(token: string, request: RequestFacts): Access {
  const bearer = /^Bearer (\S+)$/i.exec(request.authorizationHeader ?? "")?.[1];
  const fromHeader = bearer !== undefined && same(bearer, token);
  if (request.method !== "GET" && request.method !== "HEAD") {
    if (fromHeader) return { allowed: true, setCookie: false };
    return { allowed: false, status: bearer === undefined ? 403 : 401, why: "changes need the token in an Authorization: Bearer header" };
  }
  if (fromHeader) return { allowed: true, setCookie: false };
  const fromCookie = cookie(request.cookieHeader, COOKIE_NAME);
  if (fromCookie !== undefined && same(fromCookie, token)) return { allowed: true, setCookie: false };
  if (request.queryToken !== null && same(request.queryToken, token)) return { allowed: true, setCookie: request.path === "/" };
  return { allowed: false, status: 401, why: "open the URL with the token that wg-netstack serve printed" };
}

/** The Set-Cookie value after a visit with the token: this site only, not for scripts, kept for a year. */
export function tokenCookie(token: string): string {
  return `${COOKIE_NAME}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000`;
}

/** One cookie's value from a Cookie header (RFC 6265 section 5.4: "name=value" pairs split by "; "). */
export function cookie(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? "").split(";")) {
    const equals = pair.indexOf("=");
    if (equals > 0 && pair.slice(0, equals).trim() === name) return pair.slice(equals + 1).trim();
  }
  return undefined;
}

/** Compares in time that does not depend on where they differ. */
function same(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether a page bound to `host` answers this machine only: a loopback address (127.0.0.0/8, ::1), not every address (0.0.0.0, ::). */
export function loopbackOnly(host: string): boolean {
  const ip = parseIp(host);
  if (!ip) return false;
  const everyAddress = ip.family === 4 ? ip.bytes[0] === 0 : ip.bytes.every((byte) => byte === 0);
  return isHostLocal(ip) && !everyAddress;
}
