// Property tests for the address parsers every option, flag and config key goes through:
// any text is an address or undefined, never an exception; what we take, Node's net takes
// too (as the same family); every address reads back from its canonical form, and the
// forms people write (uncompressed, upper case, zero-padded groups, dotted tails) read as it.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import net from "node:net";
import { describe, it } from "vitest";
import { check, fuzz, mutateText, type Rng } from "../test/support/fuzz.js";
import { formatIp, isDialName, isHostName, parseCidr, parseEndpoint, parseHostEndpoint, parseIp } from "./ip.js";

const ALPHABET = "0123456789abcdefABCDEF:.[]/% -_xyz";

/** An address as people write it: canonical, uncompressed, upper case, zero-padded, or with a dotted IPv4 tail. */
function written(rng: Rng, bytes: Uint8Array): string {
  if (bytes.length === 4 || rng.chance(0.3)) return formatIp(bytes);
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  const style = rng.int(3);
  if (style === 0) return words.map((word) => word.toString(16).toUpperCase()).join(":");
  if (style === 1) return words.map((word) => word.toString(16).padStart(4, "0")).join(":");
  return `${words.slice(0, 6).map((word) => word.toString(16)).join(":")}:${[...bytes.subarray(12)].join(".")}`;
}

function randomBytes(rng: Rng): Uint8Array {
  const bytes = rng.bytes(rng.chance(0.5) ? 4 : 16);
  // Runs of zero words, where "::" goes.
  if (bytes.length === 16 && rng.chance(0.5)) bytes.fill(0, 2 * rng.int(8), 2 * rng.int(9));
  return bytes;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((byte, i) => byte === b[i]);

describe("addresses as users write them", () => {
  it("any text: an address Node takes too, or undefined; never an exception", () => {
    fuzz("parseIp", { seed: 0x1b, cases: 4000 }, (rng) => {
      const address = written(rng, randomBytes(rng));
      const edgy = () => rng.pick([0, 1, 32, 33, 128, 129, 65535, 65536, 99999, rng.int(1000)]);
      const sample = rng.pick([address, `${address}/${edgy()}`, address.includes(":") ? `[${address}]:${edgy()}` : `${address}:${edgy()}`, `host${rng.int(9)}.example:${edgy()}`]);
      const text = rng.chance(0.8) ? mutateText(rng, sample, ALPHABET) : rng.chance(0.5) ? sample : rng.text(rng.int(40), ALPHABET);
      const ip = parseIp(text);
      if (ip) {
        check(ip.bytes.length === (ip.family === 4 ? 4 : 16), `family ${ip.family} with ${ip.bytes.length} bytes`, text);
        check(net.isIP(text) === ip.family, `Node's net reads it as IPv${net.isIP(text)}`, text);
        check(same(parseIp(formatIp(ip))!.bytes, ip.bytes), "its canonical form reads back", text);
      }
      const cidr = parseCidr(text);
      if (cidr) check(cidr.prefix >= 0 && cidr.prefix <= cidr.bytes.length * 8, `prefix ${cidr.prefix}`, text);
      for (const endpoint of [parseEndpoint(text), parseHostEndpoint(text)]) {
        if (!endpoint) continue;
        check(Number.isInteger(endpoint.port) && endpoint.port >= 1 && endpoint.port <= 65535, `port ${endpoint.port}`, text);
        check(parseIp(endpoint.host) !== undefined || isHostName(endpoint.host), `host ${endpoint.host}`, text);
      }
      check(!isHostName(text) || (parseIp(text) === undefined && isDialName(text)), "a host name is no IP, and can be dialled", text);
    });
  });

  it("round trip: every address, in each form people write it, reads back as its bytes; prefixes and endpoints too", () => {
    fuzz("parseIp round trip", { seed: 0x2b, cases: 4000 }, (rng) => {
      const bytes = randomBytes(rng);
      const text = written(rng, bytes);
      const ip = parseIp(text);
      check(ip && same(ip.bytes, bytes) && formatIp(ip) === formatIp(bytes), `read ${ip && formatIp(ip)}`, text);
      // RFC 5952 canonical form, as WHATWG URL serializes it (but IPv4-mapped addresses, which keep their dotted tail here).
      const canonical = formatIp(bytes);
      if (bytes.length === 16 && !canonical.startsWith("::ffff:")) check(new URL(`http://[${canonical}]/`).hostname === `[${canonical}]`, `${canonical} is canonical`, text);
      const prefix = rng.int(bytes.length * 8 + 1);
      const cidr = parseCidr(`${text}/${prefix}`);
      check(cidr?.prefix === prefix && same(cidr.bytes, bytes), "the prefix reads back", text);
      const port = rng.range(1, 65535);
      const endpointText = bytes.length === 4 ? `${text}:${port}` : `[${text}]:${port}`;
      const endpoint = parseEndpoint(endpointText);
      check(endpoint?.host === formatIp(bytes) && endpoint.port === port, "the endpoint reads back", endpointText);
    });
  });

  it("non-strings are not addresses", () => {
    for (const value of [undefined, null, 4, {}, [], ["1.2.3.4"]]) {
      for (const parse of [parseIp, parseCidr, parseEndpoint, parseHostEndpoint]) check(parse(value as unknown as string) === undefined, `${parse.name} took it`, String(value));
      check(!isHostName(value as unknown as string), "isHostName took it", String(value));
    }
  });
});
