// Property tests for the flow sniffers: the first bytes of a relayed flow come from a
// stranger, so any bytes give a name that is safe to print on a terminal, or undefined, and
// never an exception; ClientHellos (split over records anywhere), requests and DNS queries
// we build give back the name they carry.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, it } from "vitest";
import { check, concat, fuzz, hex, mutateBytes, type Rng } from "../../test/support/fuzz.js";
import { encodeQuery } from "../tunnel/dns.js";
import { dnsQuestion, httpHost, tlsServerName } from "./sniff.js";

const HOST = /^[A-Za-z0-9._:[\]*-]{1,255}$/;
const PRINTABLE = /^[\x20-\x7e]+$/;
const text = new TextEncoder();

function u16(value: number): number[] {
  return [value >> 8, value & 0xff];
}

function randomHostName(rng: Rng): string {
  const labels = [];
  for (let i = rng.range(1, 4); i > 0; i--) labels.push(rng.text(rng.range(1, 20), "abcXYZ019-_"));
  return labels.join(".");
}

function extension(type: number, data: Uint8Array): Uint8Array {
  return concat(new Uint8Array([...u16(type), ...u16(data.length)]), data);
}

/** A ClientHello with `name` in its server_name extension among others, in TLS records of random sizes. */
function clientHello(rng: Rng, name: string): Uint8Array {
  const nameBytes = text.encode(name);
  const serverName = extension(0, new Uint8Array([...u16(nameBytes.length + 3), 0, ...u16(nameBytes.length), ...nameBytes]));
  const others = Array.from({ length: rng.int(5) }, () => extension(rng.range(1, 65535), rng.bytes(rng.int(40))));
  others.splice(rng.int(others.length + 1), 0, serverName);
  const extensions = concat(...others);
  const sessionId = rng.bytes(rng.pick([0, 32]));
  const ciphers = rng.bytes(2 * rng.range(1, 20));
  const body = concat(
    new Uint8Array([3, 3]),
    rng.bytes(32),
    new Uint8Array([sessionId.length]),
    sessionId,
    new Uint8Array(u16(ciphers.length)),
    ciphers,
    new Uint8Array([1, 0]),
    new Uint8Array(u16(extensions.length)),
    extensions,
  );
  const handshake = concat(new Uint8Array([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body);
  const records: Uint8Array[] = [];
  for (let at = 0; at < handshake.length; ) {
    const size = rng.chance(0.5) ? handshake.length - at : rng.range(1, handshake.length - at);
    records.push(concat(new Uint8Array([22, 3, rng.pick([1, 3]), ...u16(size)]), handshake.subarray(at, at + size)));
    at += size;
  }
  return concat(...records);
}

function httpRequest(rng: Rng, host: string): Uint8Array {
  const before = Array.from({ length: rng.int(3) }, () => `X-${rng.text(rng.range(1, 8), "abc")}: ${rng.text(rng.int(20), "abc 019/")}\r\n`).join("");
  return text.encode(`${rng.pick(["GET", "POST", "OPTIONS"])} /${rng.text(rng.int(20), "abc/?=&")} HTTP/1.${rng.int(2)}\r\n${before}${rng.pick(["Host", "host", "HOST"])}:${rng.pick(["", " ", "\t"])}${host}\r\nAccept: */*\r\n\r\n`);
}

/** The handshake bytes of a ClientHello made by clientHello(), without their record headers. */
function unrecorded(records: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < records.length; at += 5 + ((records[at + 3]! << 8) | records[at + 4]!)) parts.push(records.subarray(at + 5, at + 5 + ((records[at + 3]! << 8) | records[at + 4]!)));
  return concat(...parts);
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const sniffers = { tlsServerName, httpHost, dnsQuestion };

/** Runs a sniffer: it must not throw, and must give undefined or printable text (a host name where it promises one). */
function sniff(kind: keyof typeof sniffers, bytes: Uint8Array): string | undefined {
  let result: string | undefined;
  try {
    result = sniffers[kind](bytes);
  } catch (error) {
    throw new Error(`${kind} threw ${(error as Error).name} (${(error as Error).message}) on ${hex(bytes)}`);
  }
  if (result === undefined) return result;
  check(typeof result === "string" && PRINTABLE.test(result), `${kind} gave ${JSON.stringify(result)}: not printable`, () => hex(bytes));
  if (kind !== "dnsQuestion") check(HOST.test(result), `${kind} gave ${JSON.stringify(result)}: not a host name`, () => hex(bytes));
  return result;
}

describe("sniffing names from a stranger's first bytes", () => {
  it("a printable name or undefined, never an exception, for mutated and random bytes", () => {
    fuzz("sniff", { seed: 0x5a1f, cases: 4000 }, (rng) => {
      const kind = rng.pick(Object.keys(sniffers) as (keyof typeof sniffers)[]);
      const sample =
        kind === "tlsServerName" ? clientHello(rng, randomHostName(rng)) : kind === "httpHost" ? httpRequest(rng, randomHostName(rng)) : encodeQuery(rng.int(65536), randomHostName(rng).toLowerCase(), rng.int(300));
      const bytes = rng.chance(0.85) ? mutateBytes(rng, sample) : rng.bytes(rng.int(300));
      sniff(kind, bytes);
      // Each sniffer is given every kind of input: flows are not what their port says.
      sniff(rng.pick(Object.keys(sniffers) as (keyof typeof sniffers)[]), bytes);
    });
  });

  it("a ClientHello or a request cut short anywhere gives its whole name or undefined, never a piece of it", () => {
    fuzz("sniff cut", { seed: 0xc17, cases: 40 }, (rng) => {
      const name = randomHostName(rng);
      const hello = clientHello(rng, name);
      for (let cut = 0; cut <= hello.length; cut++) {
        const found = sniff("tlsServerName", hello.subarray(0, cut));
        check(found === undefined || found === name, `cut at ${cut}: ${found}`, () => hex(hello));
      }
      const request = httpRequest(rng, name);
      for (let cut = 0; cut <= request.length; cut++) {
        const found = sniff("httpHost", request.subarray(0, cut));
        check(found === undefined || found === name, `cut at ${cut}: ${found}`, () => hex(request));
      }
    });
  });

  it("a name past the end the ClientHello declares is not read, whatever bytes follow", () => {
    fuzz("sniff declared end", { seed: 0xe2d, cases: 500 }, (rng) => {
      const name = randomHostName(rng);
      const handshake = unrecorded(clientHello(rng, name));
      // One record holding all: the handshake starts at 5, its length at 6..8.
      const whole = concat(new Uint8Array([22, 3, 1, ...u16(handshake.length)]), handshake);
      const body = whole.length - 9;
      const declared = rng.int(body);
      whole.set([declared >> 16, (declared >> 8) & 0xff, declared & 0xff], 6);
      const nameEnd = indexOf(whole, text.encode(name)) + name.length - 9;
      const found = sniff("tlsServerName", whole);
      check(found === undefined || (found === name && nameEnd <= declared), `declared ${declared} of ${body}, the name ends at ${nameEnd}: ${found}`, () => hex(whole));
    });
  });

  it("round trip: the SNI of a ClientHello in any records, the Host of a request, the question of a DNS query", () => {
    fuzz("sniff round trip", { seed: 0x2717, cases: 2000 }, (rng) => {
      const name = randomHostName(rng);
      const hello = clientHello(rng, name);
      check(sniff("tlsServerName", hello) === name, "the SNI", () => hex(hello));
      const request = httpRequest(rng, name);
      check(sniff("httpHost", request) === name, "the Host", () => hex(request));
      const lower = name.toLowerCase();
      const query = encodeQuery(rng.int(65536), lower, 28);
      check(sniff("dnsQuestion", query) === `${lower} AAAA`, "the question", () => hex(query));
    });
  });
});
