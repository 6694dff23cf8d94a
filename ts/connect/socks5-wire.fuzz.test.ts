// Property tests for the SOCKS5 parsers: any bytes a local client (or, for UDP ASSOCIATE,
// anyone on this machine) sends give a message, "not yet", or a SocksError, never another
// exception; messages split anywhere wait for the rest; what we encode parses back.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, expect, it } from "vitest";
import { check, concat, fuzz, hex, mutateBytes, parsesOrRejects, type Rng, THREW } from "../../test/support/fuzz.js";
import { formatIp, parseIp } from "../ip.js";
import { encodeReply, encodeUdpDatagram, type Parsed, parseGreeting, parseRequest, parseUdpDatagram, parseUserPass, REPLY, SocksError } from "./socks5-wire.js";

const REPLIES = new Set<number | undefined>([undefined, ...Object.values(REPLY)]);
const text = new TextEncoder();

function randomIp(rng: Rng): string {
  return formatIp(rng.bytes(rng.chance(0.5) ? 4 : 16));
}

function randomAddress(rng: Rng): number[] {
  const port = [rng.int(256), rng.int(256)];
  switch (rng.int(3)) {
    case 0:
      return [1, ...rng.bytes(4), ...port];
    case 1:
      return [4, ...rng.bytes(16), ...port];
    default: {
      const name = text.encode(rng.text(rng.range(1, 40), "abcdefghijklmnopqrstuvwxyz0123456789.-"));
      return [3, name.length, ...name, ...port];
    }
  }
}

/** Valid messages of each kind. */
const samples = {
  greeting: (rng: Rng) => {
    const methods = rng.bytes(rng.range(1, 255));
    return new Uint8Array([5, methods.length, ...methods]);
  },
  userPass: (rng: Rng) => {
    // Up to 127 characters of at most 2 bytes: each fits its one-byte length.
    const user = text.encode(rng.text(rng.range(0, 127), "abcXYZ019:@é"));
    const pass = text.encode(rng.text(rng.range(0, 127), "abcXYZ019:@é"));
    return new Uint8Array([1, user.length, ...user, pass.length, ...pass]);
  },
  request: (rng: Rng) => new Uint8Array([5, rng.pick([1, 2, 3]), 0, ...randomAddress(rng)]),
  udp: (rng: Rng) => concat(new Uint8Array([0, 0, 0, ...randomAddress(rng)]), rng.bytes(rng.int(64))),
};

const parsers: Record<keyof typeof samples, (bytes: Uint8Array) => Parsed<unknown> | undefined> = {
  greeting: parseGreeting,
  userPass: parseUserPass,
  request: parseRequest,
  udp: (bytes) => {
    const parsed = parseUdpDatagram(bytes);
    return parsed && { value: parsed, length: bytes.length };
  },
};

/** Parses, allowing only a SocksError with a known reply; checks the length of a result. */
function parseChecked(kind: keyof typeof samples, bytes: Uint8Array): Parsed<unknown> | undefined | typeof THREW {
  const input = () => `${kind} ${hex(bytes)}`;
  const result = parsesOrRejects(() => parsers[kind](bytes), SocksError, input, (error) => expect(REPLIES.has((error as SocksError).reply)).toBe(true));
  if (result !== THREW && result !== undefined) check(Number.isInteger(result.length) && result.length > 0 && result.length <= bytes.length, `length ${result.length} of ${bytes.length} bytes`, input);
  return result;
}

describe("SOCKS5 parsers on hostile bytes", () => {
  for (const kind of Object.keys(samples) as (keyof typeof samples)[]) {
    it(`${kind}: a message, "not yet", or a SocksError for mutated and random bytes`, () => {
      fuzz(`socks5 ${kind}`, { seed: 0x50c5 + kind.length, cases: 3000 }, (rng) => {
        const bytes = rng.chance(0.8) ? mutateBytes(rng, samples[kind](rng)) : rng.bytes(rng.int(300));
        parseChecked(kind, bytes);
      });
    });
  }

  for (const kind of ["greeting", "userPass", "request"] as const) {
    it(`${kind}: a message split anywhere waits for the rest, and what follows it is left alone`, () => {
      fuzz(`socks5 ${kind} split`, { seed: 0x5b17 + kind.length, cases: 300 }, (rng) => {
        const message = samples[kind](rng);
        const whole = parseChecked(kind, message);
        check(whole !== THREW && whole?.length === message.length, "a valid message is read whole", () => hex(message));
        for (let cut = 0; cut < message.length; cut++) {
          check(parseChecked(kind, message.subarray(0, cut)) === undefined, `a prefix of ${cut} bytes is "not yet"`, () => hex(message));
        }
        const followed = parseChecked(kind, concat(message, rng.bytes(rng.range(1, 20))));
        expect(followed).toEqual(whole);
      });
    });
  }

  it("UDP ASSOCIATE: every datagram taken names a port the tunnel can send to (1..65535)", () => {
    fuzz("socks5 udp ports", { seed: 0x0d9, cases: 3000 }, (rng) => {
      const bytes = rng.chance(0.5) ? mutateBytes(rng, samples.udp(rng)) : samples.udp(rng);
      const parsed = parseChecked("udp", bytes);
      if (parsed === THREW || parsed === undefined) return;
      const { address } = parsed.value as ReturnType<typeof parseUdpDatagram> & object;
      check(address.port >= 1 && address.port <= 65535, `port ${address.port}`, () => hex(bytes));
      check(address.host.length > 0, "a host", () => hex(bytes));
    });
  });

  it("UDP ASSOCIATE: a datagram to port 0 is refused as malformed (the relay's send would throw)", () => {
    // Found by the property above: DST.PORT 0 went to tunnel.udp().send(), whose RangeError
    // escaped the relay socket's 'message' listener and ended the process.
    const datagram = new Uint8Array([0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 1, 2, 3]);
    expect(() => parseUdpDatagram(datagram)).toThrow(SocksError);
  });

  it("round trip: encodeUdpDatagram and encodeReply parse back to the same address and data", () => {
    fuzz("socks5 round trip", { seed: 0x7219, cases: 3000 }, (rng) => {
      const from = { host: randomIp(rng), port: rng.range(1, 65535) };
      const data = rng.bytes(rng.int(100));
      const datagram = encodeUdpDatagram(from, data);
      const parsed = parseUdpDatagram(datagram);
      const input = () => `${JSON.stringify(from)} ${hex(data)}: ${hex(datagram)}`;
      check(parsed?.address.host === from.host && parsed.address.port === from.port && !parsed.address.isName, "the address comes back", input);
      check(hex(parsed.data) === hex(data) && parsed.data.length === data.length, "the data comes back", input);
      // A reply has a request's layout: VER, REP (in CMD's place), RSV, the address.
      const reply = rng.pick(Object.values(REPLY));
      const bound = { host: randomIp(rng), port: rng.int(65536) };
      const request = parseRequest(encodeReply(reply, bound));
      check(request?.value.command === reply && request.value.address.host === bound.host && request.value.address.port === bound.port, "a reply parses back", () => JSON.stringify(bound));
      check(formatIp(parseIp(from.host)!) === from.host, "formatIp is canonical", from.host);
    });
  });
});
