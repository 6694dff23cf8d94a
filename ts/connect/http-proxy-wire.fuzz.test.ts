// Property tests for the HTTP proxy's request-head parser: any head a local client sends
// gives a request to make or an HttpProxyError with a 400, never another exception; a head
// forwarded upstream carries exactly the fields we meant, one per line (nothing a bare CR or
// LF could split into another field), in bytes latin1 can carry; valid requests round-trip.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { check, fuzz, mutateBytes, mutateText, parsesOrRejects, type Rng, THREW } from "../../test/support/fuzz.js";
import { formatIp, isDialName, parseIp } from "../ip.js";
import { basicAuthMatches, headEnd, HttpProxyError, parseProxyRequest } from "./http-proxy-wire.js";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOP_BY_HOP = ["connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "trailer", "upgrade"];
// What a head's bytes may be (it is read as latin1): printable ASCII, the separators that
// matter, controls and a few high bytes.
const ALPHABET = "abcXYZ019 :/[]@%?#.-_=,;\"'\t\r\n\0\x7f\xe9\xff";

function randomHost(rng: Rng): string {
  switch (rng.int(3)) {
    case 0:
      return formatIp(rng.bytes(4));
    case 1:
      return `[${formatIp(rng.bytes(16))}]`;
    default:
      return `${rng.text(rng.range(1, 12), "abcxyz019")}.${rng.pick(["test", "example", "internal"])}`;
  }
}

function randomFields(rng: Rng): [string, string][] {
  const names = ["Accept", "User-Agent", "Host", "Connection", "Proxy-Connection", "Proxy-Authorization", "Keep-Alive", "X-Trace", "Cookie", "Content-Length"];
  const fields: [string, string][] = [];
  for (let i = rng.int(6); i > 0; i--) {
    const name = rng.pick(names);
    // One framing, the same length each time: two ways to read a body are refused (400).
    fields.push([name, name === "Content-Length" ? "12" : rng.text(rng.int(20), "abcXYZ019 /=;,.-\xe9")]);
  }
  return fields;
}

/** A request head; `edgy`: its port may be one no request can go to (0, 65536). */
function randomHead(rng: Rng, edgy = false): string {
  const fields = randomFields(rng);
  const port = edgy && rng.chance(0.2) ? rng.pick([0, 65535, 65536, 99999]) : rng.range(1, 65535);
  const line = rng.chance(0.4)
    ? `CONNECT ${randomHost(rng)}:${port} HTTP/1.1`
    : `${rng.pick(["GET", "POST", "HEAD", "DELETE"])} http://${randomHost(rng)}${rng.chance(0.5) ? `:${port}` : ""}/${rng.text(rng.int(12), "abc019/._-~")}${rng.chance(0.3) ? `?${rng.text(rng.int(8), "a=b&c")}` : ""} HTTP/1.${rng.int(2)}`;
  return [line, ...fields.map(([name, value]) => `${name}: ${value}`), "", ""].join("\r\n");
}

/** Parses, allowing only an HttpProxyError with a 400, and checks what a result promises. */
function parseChecked(head: string): ReturnType<typeof parseProxyRequest> | typeof THREW {
  const input = () => JSON.stringify(head);
  const result = parsesOrRejects(() => parseProxyRequest(head), HttpProxyError, input, (error) => expect((error as HttpProxyError).status).toBe(400));
  if (result === THREW) return result;
  check(TOKEN.test(result.method), `method ${JSON.stringify(result.method)} is a token`, input);
  check(Number.isInteger(result.port) && result.port >= 1 && result.port <= 65535, `port ${result.port} is one to connect to`, input);
  check(result.host.length > 0, "a host", input);
  if (result.method === "CONNECT") {
    check(result.forwardHead === undefined, "a CONNECT forwards no head", input);
    check(parseIp(result.host) !== undefined || isDialName(result.host), `CONNECT host ${JSON.stringify(result.host)} is an IP or a name`, input);
    return result;
  }
  const forward = result.forwardHead!;
  check(Buffer.from(forward, "latin1").toString("latin1") === forward, "the forwarded head is latin1 (as it is written)", input);
  check(forward.endsWith("\r\n\r\n"), "the forwarded head ends with its blank line", input);
  const lines = forward.slice(0, -4).split("\r\n");
  for (const line of lines) check(!/[\r\n\0]/.test(line), `forwarded line ${JSON.stringify(line)} holds no CR, LF or NUL`, input);
  check(/^\S+ \/\S* HTTP\/1\.[01]$/.test(lines[0]!), `forwarded request line ${JSON.stringify(lines[0])}`, input);
  const names = lines.slice(1).map((line) => line.slice(0, line.indexOf(":")).toLowerCase());
  for (const name of names) check(TOKEN.test(name), `forwarded field name ${JSON.stringify(name)}`, input);
  check(names.filter((name) => name === "host").length === 1 && names[0] === "host", "one Host, first", input);
  check(names.at(-1) === "connection" && names.filter((name) => HOP_BY_HOP.includes(name)).length === 1, "no hop-by-hop field but our Connection: close", input);
  return result;
}

describe("HTTP proxy request heads from hostile clients", () => {
  it("a request to make or a 400, for mutated and random heads; a forwarded head carries only whole, clean lines", () => {
    fuzz("http-proxy head", { seed: 0x4778, cases: 4000 }, (rng) => {
      const head = rng.chance(0.85) ? mutateText(rng, randomHead(rng, true), ALPHABET) : rng.text(rng.int(200), ALPHABET);
      parseChecked(head);
    });
  });

  it("round trip: a valid request keeps its target, its fields (but the proxy's own) and its login", () => {
    fuzz("http-proxy round trip", { seed: 0x7274, cases: 1000 }, (rng) => {
      const head = randomHead(rng);
      const parsed = parseChecked(head);
      const input = () => JSON.stringify(head);
      check(parsed !== THREW, "a valid head parses", input);
      const target = head.slice(head.indexOf(" ") + 1, head.indexOf(" HTTP/"));
      const authority = parsed.method === "CONNECT" ? target : target.slice("http://".length, target.indexOf("/", "http://".length));
      const host = authority.replace(/:[0-9]+$/, "").replace(/^\[(.*)\]$/, "$1");
      const same = (a: string, b: string) => a === b || (parseIp(a) !== undefined && formatIp(parseIp(a)!) === formatIp(parseIp(b) ?? new Uint8Array(4)));
      check(same(parsed.host, host), `host ${parsed.host}, not ${host}`, input);
      const fields = head.split("\r\n").slice(1, -2).map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).trim()] as const);
      const login = fields.find(([name]) => name === "Proxy-Authorization");
      check(parsed.authorization === login?.[1], "the login is read", input);
      if (parsed.forwardHead === undefined) return;
      const kept = fields.filter(([name]) => !HOP_BY_HOP.includes(name.toLowerCase()) && name !== "Host");
      const forwarded = parsed.forwardHead.split("\r\n").slice(2, -3);
      check(forwarded.join("\n") === kept.map(([name, value]) => `${name}: ${value}`).join("\n"), "the other fields go on as they were", input);
    });
  });

  it("a field value with a bare LF, a bare CR or a NUL is a 400, never forwarded (RFC 9110 section 5.5)", () => {
    // Found by the property above: "X: a\nHost: evil" went upstream as it came, a second Host
    // to a server that ends lines at LF; a bare CR or a NUL went on too.
    for (const value of ["a\nHost: evil.test", "a\rb", "a\0b"]) {
      const head = `GET http://files.test/ HTTP/1.1\r\nX-Trace: ${value}\r\n\r\n`;
      expect(() => parseProxyRequest(head)).toThrow(HttpProxyError);
    }
  });

  it("an absolute URI to port 0 is a 400, as a CONNECT to it is", () => {
    // Found writing the property above (its heads now try port 0): http://files.test:0/ gave
    // port 0 to the dialer, which failed it as unreachable (502) instead of a bad request.
    expect(() => parseProxyRequest("GET http://files.test:0/ HTTP/1.1\r\n\r\n")).toThrow(HttpProxyError);
    expect(() => parseProxyRequest("CONNECT files.test:0 HTTP/1.1\r\n\r\n")).toThrow(HttpProxyError);
  });

  it("headEnd finds the first blank line, or says it has not come", () => {
    const sample = new TextEncoder().encode("GET http://a.test/ HTTP/1.1\r\nAccept: */*\r\n\r\nbody\r\n\r\n");
    fuzz("http-proxy headEnd", { seed: 0x4e4d, cases: 4000 }, (rng) => {
      const bytes = rng.chance(0.7) ? mutateBytes(rng, sample) : rng.bytes(rng.int(64)).map((byte) => [13, 10, 65][byte % 3]!);
      const text = Buffer.from(bytes).toString("latin1");
      const first = text.indexOf("\r\n\r\n");
      const end = headEnd(bytes);
      check(end === (first < 0 ? -1 : first + 4), `headEnd ${end}, not ${first < 0 ? -1 : first + 4}`, () => JSON.stringify(text));
    });
  });

  it("basicAuthMatches: true only for the login it was given, never throws", () => {
    fuzz("http-proxy basic auth", { seed: 0xba51c, cases: 3000 }, (rng) => {
      const user = rng.text(rng.range(1, 20), "abcXYZ019@é_-");
      const pass = rng.text(rng.range(1, 20), "abcXYZ019:@é_-");
      const encoded = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
      check(basicAuthMatches(encoded, { user, pass }), "its own login matches", encoded);
      check(!basicAuthMatches(encoded, { user, pass: `${pass}x` }), "another password does not", encoded);
      const mutated = mutateText(rng, encoded, "Basic +/=\t\r\n\0abcXYZ019é");
      const matched = basicAuthMatches(mutated, { user, pass });
      check(typeof matched === "boolean", "a boolean", mutated);
    });
  });
});
