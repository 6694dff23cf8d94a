import { describe, it, expect } from "vitest";
import { SocketAddress } from "node:net";
import {
  ADDRESS_SIZE,
  decodeAddress,
  encodeAddress,
  formatIp,
  parseCidr,
  parseEndpoint,
  parseIp,
} from "./ip.js";

const bytes = (...values: number[]) => Uint8Array.from(values);
const v6 = (...words: number[]) => {
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
};

describe("parseIp IPv4", () => {
  it.each([
    ["0.0.0.0", [0, 0, 0, 0]],
    ["10.0.0.1", [10, 0, 0, 1]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["192.168.100.200", [192, 168, 100, 200]],
  ])("parses %s", (text, expected) => {
    expect(parseIp(text)).toEqual({ family: 4, bytes: bytes(...expected) });
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.256",
    "1.2.3.-1",
    "1..3.4",
    ".1.2.3",
    "1.2.3.",
    "01.2.3.4",
    "1.2.3.04",
    "0x1.2.3.4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "1.2.3.4/32",
    "1.2.3.4:80",
    "a.b.c.d",
    "1e1.2.3.4",
    "1.2.3.0004",
    "localhost",
    "١.٢.٣.٤",
  ])("rejects %j", (text) => {
    expect(parseIp(text)).toBeUndefined();
  });

  it("rejects non-strings", () => {
    expect(parseIp(undefined as unknown as string)).toBeUndefined();
    expect(parseIp(1234 as unknown as string)).toBeUndefined();
  });
});

describe("parseIp IPv6", () => {
  it.each([
    ["::", v6()],
    ["::1", v6(0, 0, 0, 0, 0, 0, 0, 1)],
    ["1::", v6(1)],
    ["fd00::2", v6(0xfd00, 0, 0, 0, 0, 0, 0, 2)],
    ["FD00::ABCD", v6(0xfd00, 0, 0, 0, 0, 0, 0, 0xabcd)],
    ["2001:db8:0:0:0:0:2:1", v6(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1)],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", v6(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1)],
    ["1:2:3:4:5:6:7:8", v6(1, 2, 3, 4, 5, 6, 7, 8)],
    ["1:2:3:4:5:6:7::", v6(1, 2, 3, 4, 5, 6, 7, 0)],
    ["::2:3:4:5:6:7:8", v6(0, 2, 3, 4, 5, 6, 7, 8)],
    ["1::8", v6(1, 0, 0, 0, 0, 0, 0, 8)],
    ["::ffff:1.2.3.4", v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)],
    ["::1.2.3.4", v6(0, 0, 0, 0, 0, 0, 0x0102, 0x0304)],
    ["1:2:3:4:5:6:1.2.3.4", v6(1, 2, 3, 4, 5, 6, 0x0102, 0x0304)],
    ["64:ff9b::192.0.2.33", v6(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0221)],
  ])("parses %s", (text, expected) => {
    expect(parseIp(text)).toEqual({ family: 6, bytes: expected });
  });

  it.each([
    ":",
    ":::",
    "1:::2",
    "1::2::3",
    ":1::2",
    "1::2:",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1:2:3:4::5:6:7:8",
    "12345::",
    "g::1",
    "[::1]",
    "fe80::1%eth0",
    "fe80::1%1",
    " ::1",
    "::1 ",
    "::1/128",
    "1.2.3.4::",
    "::1.2.3.4:5",
    "::1.2.3",
    "::1.2.3.256",
    "::01.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::ffff:1.2.3.4.5",
    "-1::",
    "+1::",
    "0x1::",
  ])("rejects %j", (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe("formatIp", () => {
  it("formats IPv4 from an Ip or raw bytes", () => {
    expect(formatIp(bytes(10, 0, 0, 1))).toBe("10.0.0.1");
    expect(formatIp({ family: 4, bytes: bytes(255, 0, 128, 7) })).toBe("255.0.128.7");
  });

  it.each([
    [v6(), "::"],
    [v6(0, 0, 0, 0, 0, 0, 0, 1), "::1"],
    [v6(1), "1::"],
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1), "2001:db8::2:1"],
    // RFC 5952 4.1: no leading zeros; 4.3: lowercase.
    [v6(0x2001, 0x0db8, 0x00ab, 0xcdef, 1, 2, 3, 4), "2001:db8:ab:cdef:1:2:3:4"],
    // 4.2.2: a single zero group is not compressed.
    [v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), "2001:db8:0:1:1:1:1:1"],
    // 4.2.3: the longest run wins, the first one on a tie.
    [v6(0x2001, 0, 0, 1, 0, 0, 0, 1), "2001:0:0:1::1"],
    [v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), "2001:db8::1:0:0:1"],
    [v6(1, 0, 0, 2, 0, 0, 3, 4), "1::2:0:0:3:4"],
    [v6(1, 2, 3, 4, 5, 6, 7, 8), "1:2:3:4:5:6:7:8"],
    [v6(0, 1, 2, 3, 4, 5, 6, 7), "0:1:2:3:4:5:6:7"],
    [v6(1, 2, 3, 4, 5, 6, 7, 0), "1:2:3:4:5:6:7:0"],
    [v6(0, 0, 1, 2, 3, 4, 5, 6), "::1:2:3:4:5:6"],
    [v6(1, 2, 3, 4, 5, 6, 0, 0), "1:2:3:4:5:6::"],
    [v6(0xfd00, 0, 0, 0, 0, 0, 0, 2), "fd00::2"],
    // IPv4-mapped addresses print a dotted tail, as Node does.
    [v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304), "::ffff:1.2.3.4"],
    [v6(0, 0, 0, 0, 0, 0xffff, 0, 0), "::ffff:0.0.0.0"],
    // Only ::ffff:0:0/96 is special.
    [v6(0, 0, 0, 0, 0xffff, 0, 0x0102, 0x0304), "::ffff:0:102:304"],
    [v6(0, 0, 0, 0, 0, 0xfffe, 0x0102, 0x0304), "::fffe:102:304"],
  ])("formats %s as %s", (input, expected) => {
    expect(formatIp(input)).toBe(expected);
    expect(formatIp({ family: 6, bytes: input })).toBe(expected);
  });

  it("throws on a byte length that is no address", () => {
    expect(() => formatIp(new Uint8Array(5))).toThrow(RangeError);
    expect(() => formatIp(new Uint8Array(0))).toThrow(RangeError);
  });

  it("round trips canonical text", () => {
    for (const text of ["0.0.0.0", "1.2.3.4", "::", "::1", "fd00::2", "2001:db8::1:0:0:1", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8"]) {
      expect(formatIp(parseIp(text)!)).toBe(text);
    }
  });

  it("canonicalizes other spellings", () => {
    expect(formatIp(parseIp("2001:0DB8:0000:0000:0000:0000:0000:0001")!)).toBe("2001:db8::1");
    expect(formatIp(parseIp("0:0:0:0:0:ffff:102:304")!)).toBe("::ffff:1.2.3.4");
    expect(formatIp(parseIp("::0.0.0.2")!)).toBe("::2");
    expect(formatIp(parseIp("fd00:0::0:2")!)).toBe("fd00::2");
  });

  it("agrees with Node on random addresses with many zero groups", () => {
    // Small deterministic generator: zero-heavy words exercise the run logic.
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let n = 0; n < 500; n++) {
      const words = Array.from({ length: 8 }, () => (next() % 3 === 0 ? next() : 0));
      // Node also prints the deprecated IPv4-compatible ::a.b.c.d form; skip it.
      if (words.slice(0, 6).every((w) => w === 0)) continue;
      const input = v6(...words);
      const text = formatIp(input);
      expect(text).toBe(new SocketAddress({ address: text, family: "ipv6" }).address);
      expect(parseIp(text)?.bytes).toEqual(input);
    }
  });
});

describe("parseCidr", () => {
  it.each([
    ["10.0.0.0/24", 4, [10, 0, 0, 0], 24],
    ["0.0.0.0/0", 4, [0, 0, 0, 0], 0],
    ["10.0.0.2/32", 4, [10, 0, 0, 2], 32],
    ["10.0.0.2", 4, [10, 0, 0, 2], 32],
    // Host bits are kept as written.
    ["10.0.0.1/24", 4, [10, 0, 0, 1], 24],
  ])("parses %s", (text, family, expected, prefix) => {
    expect(parseCidr(text)).toEqual({ family, bytes: bytes(...expected), prefix });
  });

  it("parses IPv6 prefixes", () => {
    expect(parseCidr("fd00::/64")).toEqual({ family: 6, bytes: v6(0xfd00), prefix: 64 });
    expect(parseCidr("::/0")).toEqual({ family: 6, bytes: v6(), prefix: 0 });
    expect(parseCidr("fd00::2/128")).toEqual({ family: 6, bytes: v6(0xfd00, 0, 0, 0, 0, 0, 0, 2), prefix: 128 });
    expect(parseCidr("fd00::2")).toEqual({ family: 6, bytes: v6(0xfd00, 0, 0, 0, 0, 0, 0, 2), prefix: 128 });
    expect(parseCidr("::ffff:1.2.3.4/96")?.prefix).toBe(96);
  });

  it.each([
    "",
    "/24",
    "10.0.0.0/",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/+8",
    "10.0.0.0/08",
    "10.0.0.0/8.0",
    "10.0.0.0/0x8",
    "10.0.0.0/ 8",
    "10.0.0.0 /8",
    "10.0.0.0/8 ",
    "10.0.0.0/8/8",
    "10.0.0.0/1e1",
    "10.0.0.300/32",
    "fd00::/129",
    "fd00::/1000",
    "[fd00::]/64",
    "fd00::%eth0/64",
    "example.com/24",
  ])("rejects %j", (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });
});

describe("parseEndpoint", () => {
  it.each([
    ["1.2.3.4:51820", "1.2.3.4", 51820],
    ["0.0.0.0:1", "0.0.0.0", 1],
    ["10.0.0.1:65535", "10.0.0.1", 65535],
    ["[fd00::1]:51820", "fd00::1", 51820],
    ["[::]:80", "::", 80],
    // The host comes back canonical.
    ["[FD00:0:0:0:0:0:0:1]:443", "fd00::1", 443],
    ["[::ffff:1.2.3.4]:53", "::ffff:1.2.3.4", 53],
  ])("parses %s", (text, host, port) => {
    expect(parseEndpoint(text)).toEqual({ host, port });
  });

  it.each([
    "",
    "1.2.3.4",
    "1.2.3.4:",
    "1.2.3.4:0",
    "1.2.3.4:65536",
    "1.2.3.4:-1",
    "1.2.3.4:+80",
    "1.2.3.4:080",
    "1.2.3.4:80.0",
    "1.2.3.4:1e3",
    "1.2.3.4: 80",
    "1.2.3.4:80 ",
    "[1.2.3.4]:80",
    "fd00::1:51820",
    "[fd00::1]",
    "[fd00::1]:",
    "[fd00::1:51820",
    "fd00::1]:51820",
    "[[fd00::1]]:51820",
    "[fe80::1%eth0]:51820",
    "example.com:51820",
    "localhost:80",
    ":80",
  ])("rejects %j", (text) => {
    expect(parseEndpoint(text)).toBeUndefined();
  });
});

describe("binary addresses", () => {
  it("has the size the wasm engine uses", () => {
    expect(ADDRESS_SIZE).toBe(19);
  });

  it("encodes IPv4 as family, zero-padded bytes and little-endian port", () => {
    const target = new Uint8Array(ADDRESS_SIZE + 2).fill(0xaa);
    encodeAddress(target, 1, parseIp("10.1.2.3")!, 0x1234);
    expect(Array.from(target)).toEqual([
      0xaa, 4, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x34, 0x12, 0xaa,
    ]);
  });

  it("encodes IPv6", () => {
    const target = new Uint8Array(ADDRESS_SIZE);
    encodeAddress(target, 0, parseIp("fd00::2")!, 51820);
    expect(target[0]).toBe(6);
    expect(target.subarray(1, 17)).toEqual(v6(0xfd00, 0, 0, 0, 0, 0, 0, 2));
    expect(target[17]).toBe(51820 & 0xff);
    expect(target[18]).toBe(51820 >> 8);
  });

  it.each([
    ["10.0.0.1", 0],
    ["255.255.255.255", 65535],
    ["fd00::2", 51820],
    ["::", 1],
    ["::ffff:1.2.3.4", 80],
    ["2001:db8::1:0:0:1", 443],
  ])("round trips %s port %d", (host, port) => {
    const ip = parseIp(host)!;
    const buffer = new Uint8Array(ADDRESS_SIZE * 2);
    encodeAddress(buffer, ADDRESS_SIZE, ip, port);
    expect(decodeAddress(buffer, ADDRESS_SIZE)).toEqual({ family: ip.family, host, port });
  });

  it("rejects unknown families and short buffers when decoding", () => {
    const buffer = new Uint8Array(ADDRESS_SIZE);
    expect(() => decodeAddress(buffer, 0)).toThrow(RangeError);
    buffer[0] = 5;
    expect(() => decodeAddress(buffer, 0)).toThrow(RangeError);
    buffer[0] = 4;
    expect(decodeAddress(buffer, 0)).toEqual({ family: 4, host: "0.0.0.0", port: 0 });
    expect(() => decodeAddress(buffer, 1)).toThrow(RangeError);
    expect(() => decodeAddress(buffer, -1)).toThrow(RangeError);
  });

  it("rejects bad arguments when encoding", () => {
    const buffer = new Uint8Array(ADDRESS_SIZE);
    const ip = parseIp("10.0.0.1")!;
    expect(() => encodeAddress(buffer, 1, ip, 80)).toThrow(RangeError);
    expect(() => encodeAddress(buffer, 0, ip, 65536)).toThrow(RangeError);
    expect(() => encodeAddress(buffer, 0, ip, -1)).toThrow(RangeError);
    expect(() => encodeAddress(buffer, 0, ip, 1.5)).toThrow(RangeError);
    expect(() => encodeAddress(buffer, 0, { family: 4, bytes: new Uint8Array(16) }, 80)).toThrow(RangeError);
    expect(() => encodeAddress(buffer, 0, { family: 6, bytes: new Uint8Array(4) }, 80)).toThrow(RangeError);
  });

  it("clears stale bytes when an IPv4 address overwrites an IPv6 one", () => {
    const buffer = new Uint8Array(ADDRESS_SIZE);
    encodeAddress(buffer, 0, parseIp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!, 1);
    encodeAddress(buffer, 0, parseIp("1.2.3.4")!, 2);
    expect(Array.from(buffer.subarray(5, 17))).toEqual(new Array(12).fill(0));
  });
});
