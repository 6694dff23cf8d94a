// The HTTP proxy's request head (RFC 9110, RFC 9112): the request line and header fields of
// a CONNECT (authority-form) or a forwarded request (absolute-form), parsed as pure
// functions; a malformed head throws an HttpProxyError with the status to answer.

import { isDialName, parseIp } from "../ip.js";

/** The most a request head may take; beyond it the answer is 431. */
export const MAX_HEAD_BYTES = 64 * 1024;

export class HttpProxyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpProxyError";
  }
}

export interface ProxyRequest {
  method: string;
  /** Where to connect. */
  host: string;
  port: number;
  /** For a forwarded request: the head to send upstream (origin-form, proxy fields removed, one request per connection). */
  forwardHead?: string;
  /** The Proxy-Authorization field's value, if any. */
  authorization?: string;
}

/** Where the head ends (after its blank line), or -1 if it has not come yet. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) return i + 1;
  }
  return -1;
}

// RFC 9110 section 5.6.2: a token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Fields dropped from a forwarded request: hop-by-hop (RFC 9110 section 7.6.1) and the proxy's own.
const HOP_BY_HOP = new Set(["connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "trailer", "upgrade"]);

/** Parses a request head (without its final blank line or with it). */
export function parseProxyRequest(head: string): ProxyRequest {
  const lines = head.split("\r\n");
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const requestLine = /^(\S+) (\S+) HTTP\/1\.([01])$/.exec(lines[0] ?? "");
  if (!requestLine || !TOKEN.test(requestLine[1]!)) throw new HttpProxyError(400, `malformed request line ${JSON.stringify((lines[0] ?? "").slice(0, 100))}`);
  const [, method, target, minor] = requestLine as unknown as [string, string, string, string];
  const fields: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    // RFC 9112 section 5.1: no whitespace between the name and the colon; obsolete line folding is rejected.
    // RFC 9110 section 5.5: a CR, LF or NUL in a value is rejected, never forwarded (a bare LF ends a line to some servers).
    if (colon <= 0 || !TOKEN.test(name) || /[\r\n\0]/.test(line)) throw new HttpProxyError(400, `malformed header field ${JSON.stringify(line.slice(0, 100))}`);
    fields.push([name, line.slice(colon + 1).trim()]);
  }
  const field = (name: string) => fields.find(([key]) => key.toLowerCase() === name)?.[1];
  const authorization = field("proxy-authorization");
  const base = authorization === undefined ? {} : { authorization };

  if (method === "CONNECT") {
    const authority = parseAuthority(target);
    if (!authority) throw new HttpProxyError(400, `CONNECT needs host:port, got ${JSON.stringify(target.slice(0, 100))}`);
    return { method, ...authority, ...base };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new HttpProxyError(400, `a proxy request needs an absolute URI, got ${JSON.stringify(target.slice(0, 100))}`);
  }
  if (url.protocol !== "http:") throw new HttpProxyError(400, `only http: URIs are forwarded (use CONNECT for ${url.protocol})`);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === "" ? 80 : Number(url.port);
  if (port === 0) throw new HttpProxyError(400, `port 0 is no destination, in ${JSON.stringify(target.slice(0, 100))}`);
  checkFraming(fields);
  const kept = fields.filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase()) && name.toLowerCase() !== "host");
  // RFC 9112 section 3.2.2: Host is the URI's authority; one request per upstream connection.
  const forwardHead = [`${method} ${url.pathname}${url.search} HTTP/1.${minor}`, `Host: ${url.host}`, ...kept.map(([name, value]) => `${name}: ${value}`), "Connection: close", "", ""].join("\r\n");
  return { method, host, port, forwardHead, ...base };
}

/**
 * RFC 9112 section 6.3: a body whose length two readers could read two ways is refused (400),
 * never forwarded: Content-Length beside Transfer-Encoding, Content-Lengths that differ or
 * are not numbers, a Transfer-Encoding whose last coding is not chunked. (The upstream would
 * take the rest of the stream as it reads the framing: request smuggling.)
 */
function checkFraming(fields: [string, string][]): void {
  const values = (name: string) => fields.filter(([key]) => key.toLowerCase() === name).flatMap(([, value]) => value.split(",").map((item) => item.trim()));
  const lengths = values("content-length");
  const codings = values("transfer-encoding");
  const refuse = (why: string) => {
    throw new HttpProxyError(400, `ambiguous message framing: ${why}`);
  };
  if (lengths.length > 0 && codings.length > 0) refuse("both Content-Length and Transfer-Encoding");
  if (lengths.some((length) => !/^[0-9]+$/.test(length) || length !== lengths[0])) refuse(`Content-Length ${JSON.stringify(lengths.join(", ").slice(0, 100))}`);
  if (codings.length > 0 && codings[codings.length - 1]!.toLowerCase() !== "chunked") refuse("a Transfer-Encoding that does not end in chunked");
}

/** host:port, [v6]:port; the host an IP or a name. */
function parseAuthority(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  if (!match) return undefined;
  const host = match[1] ?? match[2]!;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  if (match[1] !== undefined ? parseIp(host)?.family !== 6 : !(parseIp(host) || isDialName(host))) return undefined;
  return { host, port };
}

/** True when `authorization` is `Basic base64(user:pass)` for these credentials (RFC 7617). */
export function basicAuthMatches(authorization: string | undefined, credentials: { user: string; pass: string }): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? "");
  if (!match) return false;
  return Buffer.from(match[1]!, "base64").toString("utf8") === `${credentials.user}:${credentials.pass}`;
}

/** The status for a failed connect, from the tunnel's error code (RFC 9110 sections 15.6.3 and 15.6.5). */
export function statusForError(code: string | undefined): number {
  return code === "ETIMEDOUT" ? 504 : 502;
}

const REASONS: Record<number, string> = { 200: "Connection Established", 400: "Bad Request", 407: "Proxy Authentication Required", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 504: "Gateway Timeout" };

/** A short response that ends the connection. */
export function errorResponse(status: number, why: string, extra: string[] = []): string {
  const body = `${why}\n`;
  return [`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`, "Content-Type: text/plain; charset=utf-8", `Content-Length: ${Buffer.byteLength(body)}`, "Connection: close", ...extra, "", body].join("\r\n");
}
