import { describe, it, expect } from "vitest";
import { type Limits, ConfigError, decodeKey, encodeKey, validateConfig, wholeNumber } from "./config.js";
import { formatIp } from "./ip.js";
import type { Cidr } from "./ip.js";

// Keys made from fixed byte patterns, so tests never depend on randomness.
const key = (fill: number) => encodeKey(new Uint8Array(32).fill(fill));
const PRIVATE = key(1);
const PEER_A = key(2);
const PEER_B = key(3);
const PEER_C = key(4);
const PSK = key(5);
const KNOWN_BYTES = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const KNOWN_TEXT = "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=";

const prefix = (c: Cidr) => `${formatIp(c)}/${c.prefix}`;

/** Runs validateConfig and returns the ConfigError it must throw. */
function configError(input: unknown): ConfigError {
  try {
    validateConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(Error);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

function expectError(input: unknown, field: string, reason?: RegExp | string): ConfigError {
  const error = configError(input);
  expect(error.field).toBe(field);
  expect(error.message.startsWith(`${field}: `)).toBe(true);
  if (reason !== undefined) expect(error.message).toMatch(reason);
  return error;
}

const onePeer = (peer: Record<string, unknown>, rest: Record<string, unknown> = {}) => ({
  privateKey: PRIVATE,
  peers: [{ publicKey: PEER_A, ...peer }],
  ...rest,
});

describe("keys", () => {
  it("decodes and encodes like wg", () => {
    expect(decodeKey(KNOWN_TEXT, "k")).toEqual(KNOWN_BYTES);
    expect(encodeKey(KNOWN_BYTES)).toBe(KNOWN_TEXT);
    expect(decodeKey("//////////////////////////////////////////8=", "k")).toEqual(new Uint8Array(32).fill(255));
    expect(encodeKey(new Uint8Array(32))).toBe("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  });

  it("round trips many byte patterns", () => {
    for (let n = 0; n < 64; n++) {
      const bytes = Uint8Array.from({ length: 32 }, (_, i) => (i * 31 + n * 17) & 0xff);
      const text = encodeKey(bytes);
      expect(text).toHaveLength(44);
      expect(decodeKey(text, "k")).toEqual(bytes);
    }
  });

  it("encodes other lengths with standard padding", () => {
    expect(encodeKey(new Uint8Array(0))).toBe("");
    expect(encodeKey(Uint8Array.of(0x66))).toBe("Zg==");
    expect(encodeKey(Uint8Array.of(0x66, 0x6f))).toBe("Zm8=");
    expect(encodeKey(Uint8Array.of(0x66, 0x6f, 0x6f))).toBe("Zm9v");
  });

  it.each([
    ["too short", KNOWN_TEXT.slice(0, 43), /got 43 characters/],
    ["too long", `${KNOWN_TEXT}A`, /got 45 characters/],
    ["no padding", `${KNOWN_TEXT.slice(0, 43)}A`, /got 44 characters/],
    ["double padding", `${KNOWN_TEXT.slice(0, 42)}==`, /not base64/],
    ["url-safe alphabet", `-${KNOWN_TEXT.slice(1)}`, /character 1 is not base64/],
    ["split by a space", `${KNOWN_TEXT.slice(0, 10)} ${KNOWN_TEXT.slice(11)}`, /character 11 is not base64/],
    ["too long inside its whitespace", ` ${KNOWN_TEXT}A\n`, /got 45 characters/],
    ["only whitespace", " \n", /got 0 characters/],
    ["non-zero padding bits", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", /not canonical/],
    ["empty", "", /got 0 characters/],
  ])("rejects a key that is %s", (_, text, reason) => {
    expect(() => decodeKey(text, "peers[0].publicKey")).toThrow(ConfigError);
    try {
      decodeKey(text, "peers[0].publicKey");
    } catch (error) {
      expect((error as ConfigError).field).toBe("peers[0].publicKey");
      expect((error as Error).message).toMatch(/^peers\[0\]\.publicKey: expected 44 base64 characters/);
      expect((error as Error).message).toMatch(reason);
    }
  });

  it.each([
    ["a trailing newline (wg genkey > key)", `${KNOWN_TEXT}\n`],
    ["CRLF", `${KNOWN_TEXT}\r\n`],
    ["spaces and tabs around it", ` \t${KNOWN_TEXT}  `],
  ])("accepts a key with %s, as wg does", (_, text) => {
    expect(decodeKey(text, "k")).toEqual(KNOWN_BYTES);
  });

  it("rejects keys that are not strings", () => {
    expect(() => decodeKey(undefined, "privateKey")).toThrow(/^privateKey: is required/);
    expect(() => decodeKey(null, "privateKey")).toThrow(/got null$/);
    expect(() => decodeKey(new Uint8Array(32), "privateKey")).toThrow(/got object$/);
  });
});

describe("wholeNumber: the one rule for numbers written as text (config files, flags)", () => {
  it("reads plain decimal digits within the range", () => {
    expect(wholeNumber("0", 0, 10)).toBe(0);
    expect(wholeNumber("1420", 1280, 65535)).toBe(1420);
    expect(wholeNumber("65535", 1280, 65535)).toBe(65535);
  });

  it("refuses signs, fractions, exponents, spaces, a leading zero and what is out of range", () => {
    for (const text of ["", "-1", "+1", "1280.5", "1e3", "0x10", " 1420", "1420 ", "01420", "1279", "65536", "99999999999999999"]) {
      expect(wholeNumber(text, 1280, 65535), text).toBeUndefined();
    }
  });
});

describe("validateConfig defaults", () => {
  it("fills in every default", () => {
    const config = validateConfig({ privateKey: PRIVATE, peers: [] });
    expect(config).toEqual({
      privateKey: new Uint8Array(32).fill(1),
      threads: 0,
      host: "0.0.0.0",
      port: 51820,
      mtu: 1420,
      addresses: [],
      tcpReceiveBuffer: 4 * 1024 * 1024,
      tcpSendBuffer: 4 * 1024 * 1024,
      limits: {
        tcpMaxConnectionsPerPeer: 16_384,
        tcpMaxConnections: 65_536,
        tcpMaxHalfOpenPerPeer: 4_096,
        maxBufferedBytes: 256 * 1024 * 1024,
        udpMaxFlowsPerPeer: 4_096,
        tcpHalfOpenTimeout: 20_000,
        tcpFinWait2Timeout: 60_000,
        tcpKeepalive: 60_000,
        tcpUserTimeout: 60_000,
        udpFlowTimeout: 60_000,
      },
      peers: [],
    });
  });

  it("gives a lone peer every address and no extras", () => {
    const config = validateConfig(onePeer({}));
    expect(config.peers).toHaveLength(1);
    const peer = config.peers[0]!;
    expect(peer.publicKey).toEqual(new Uint8Array(32).fill(2));
    expect(peer.publicKeyText).toBe(PEER_A);
    expect(peer.persistentKeepalive).toBe(0);
    expect(peer.allowedIps.map(prefix)).toEqual(["0.0.0.0/0", "::/0"]);
    expect(peer.allowedIps.map((c) => c.family)).toEqual([4, 6]);
    expect("endpoint" in peer).toBe(false);
    expect("presharedKey" in peer).toBe(false);
  });

  it("keeps explicit values", () => {
    const config = validateConfig({
      privateKey: PRIVATE,
      host: "::",
      port: 0,
      mtu: 1280,
      address: ["10.0.0.1/24", "fd00::1/64"],
      tcpReceiveBuffer: 4096,
      tcpSendBuffer: 67108864,
      peers: [
        {
          publicKey: PEER_A,
          allowedIps: ["10.0.0.2/32", "fd00::2/128"],
          endpoint: "203.0.113.5:51820",
          persistentKeepalive: 25,
          presharedKey: PSK,
        },
        { publicKey: PEER_B, allowedIps: [], endpoint: { host: "2001:DB8:0::1", port: 1 } },
      ],
    });
    expect(config.host).toBe("::");
    expect(config.port).toBe(0);
    expect(config.mtu).toBe(1280);
    expect(config.tcpReceiveBuffer).toBe(4096);
    expect(config.tcpSendBuffer).toBe(67108864);
    // Our own addresses keep their host bits.
    expect(config.addresses.map(prefix)).toEqual(["10.0.0.1/24", "fd00::1/64"]);
    const [a, b] = config.peers;
    expect(a!.allowedIps.map(prefix)).toEqual(["10.0.0.2/32", "fd00::2/128"]);
    expect(a!.endpoint).toEqual({ host: "203.0.113.5", port: 51820 });
    expect(a!.persistentKeepalive).toBe(25);
    expect(a!.presharedKey).toEqual(new Uint8Array(32).fill(5));
    expect(b!.allowedIps).toEqual([]);
    expect(b!.endpoint).toEqual({ host: "2001:db8::1", port: 1 });
  });

  it("accepts a single address string and bare addresses", () => {
    expect(validateConfig({ privateKey: PRIVATE, peers: [], address: "10.0.0.1" }).addresses.map(prefix)).toEqual(["10.0.0.1/32"]);
    expect(validateConfig({ privateKey: PRIVATE, peers: [], address: ["fd00::1"] }).addresses.map(prefix)).toEqual(["fd00::1/128"]);
  });

  it("normalizes the bind host and bracketed endpoints", () => {
    expect(validateConfig({ privateKey: PRIVATE, peers: [], host: "0:0::0" }).host).toBe("::");
    expect(validateConfig(onePeer({ endpoint: "[FD00:0::1]:443" })).peers[0]!.endpoint).toEqual({ host: "fd00::1", port: 443 });
  });

  it("clears host bits in allowed IPs, as wg does", () => {
    const config = validateConfig(onePeer({ allowedIps: ["10.1.2.3/24", "10.1.2.3/0", "10.255.255.255/9", "fd00::1234:5678/100", "fd00::1/128"] }));
    expect(config.peers[0]!.allowedIps.map(prefix)).toEqual(["10.1.2.0/24", "0.0.0.0/0", "10.128.0.0/9", "fd00::1000:0/100", "fd00::1/128"]);
  });

  it("accepts every option name startServer knows, and keys with whitespace", () => {
    const runtime = { clock: {}, bindUdp: () => {} };
    const handlers = { onTcp: () => {}, onUdp: () => {}, onError: () => {}, onUnknownPeer: () => {}, onUdpUnreachable: () => {}, tap: () => {} };
    const limits = {
      tcpMaxConnectionsPerPeer: 1,
      tcpMaxConnections: 2,
      tcpMaxHalfOpenPerPeer: 3,
      maxBufferedBytes: 1 << 20,
      udpMaxFlowsPerPeer: 4,
      tcpHalfOpenTimeout: 1_000,
      tcpFinWait2Timeout: 2_000,
      tcpKeepalive: 3_000,
      tcpUserTimeout: 4_000,
      udpFlowTimeout: 5_000,
    };
    const config = validateConfig({ ...onePeer({ publicKey: `${PEER_A}\n`, presharedKey: ` ${PSK}` }, { privateKey: `${PRIVATE}\n` }), ...handlers, ...limits, runtime });
    expect(config.limits).toEqual(limits);
    expect(config.privateKey).toEqual(new Uint8Array(32).fill(1));
    expect(config.peers[0]!.publicKeyText).toBe(PEER_A);
    expect(config.peers[0]!.presharedKey).toEqual(new Uint8Array(32).fill(5));
  });

  it("treats undefined handlers as absent", () => {
    expect(validateConfig({ privateKey: PRIVATE, peers: [], onTcp: undefined, runtime: undefined }).peers).toEqual([]);
  });

  it("does not mutate its input", () => {
    const input = onePeer({ allowedIps: ["10.0.0.1/24"] });
    const before = JSON.stringify(input);
    validateConfig(input);
    expect(JSON.stringify(input)).toBe(before);
  });

  it("canonicalizes publicKeyText", () => {
    expect(validateConfig(onePeer({ publicKey: KNOWN_TEXT })).peers[0]!.publicKeyText).toBe(KNOWN_TEXT);
  });
});

describe("validateConfig errors", () => {
  it.each([null, undefined, 42, "options", [], true])("rejects options %j", (input) => {
    expectError(input, "options", /expected an object/);
  });

  it.each([
    ["allowedIPs", "peers[0].allowedIPs", "peers[0].allowedIPs: unknown option; did you mean allowedIps?"],
    ["publickey", "peers[0].publickey", "peers[0].publickey: unknown option; did you mean publicKey?"],
    ["persistentKeepAlive", "peers[0].persistentKeepAlive", "peers[0].persistentKeepAlive: unknown option; did you mean persistentKeepalive?"],
    ["presharedkey", "peers[0].presharedkey", "peers[0].presharedkey: unknown option; did you mean presharedKey?"],
    ["endpiont", "peers[0].endpiont", "peers[0].endpiont: unknown option; did you mean endpoint?"],
  ])("names the unknown peer option %s and suggests the nearest", (name, field, message) => {
    const peer = { publicKey: PEER_A, [name]: "x" };
    expect(expectError({ privateKey: PRIVATE, peers: [peer] }, field).message).toBe(message);
  });

  it.each([
    ["onTCP", "onTcp"],
    ["onudp", "onUdp"],
    ["privatekey", "privateKey"],
    ["peer", "peers"],
    ["prot", "port"],
    ["tcpRecieveBuffer", "tcpReceiveBuffer"],
    ["MTU", "mtu"],
    ["onUnknownPeers", "onUnknownPeer"],
    ["tcpMaxConnection", "tcpMaxConnections"],
    ["addresses", "address"],
  ])("names the unknown option %s and suggests %s", (name, near) => {
    const error = expectError({ privateKey: PRIVATE, peers: [], [name]: 1 }, name);
    expect(error.message).toBe(`${name}: unknown option; did you mean ${near}?`);
  });

  it("lists the known options when nothing is close", () => {
    const error = expectError({ privateKey: PRIVATE, peers: [], listenPort: 51820 }, "listenPort", /unknown option; known options: privateKey, peers, host, port,/);
    expect(error.message).toMatch(/onTcp, onUdp, onError, onUnknownPeer, onUdpUnreachable, tap, runtime, threads, tcpMaxConnectionsPerPeer/);
    expectError(onePeer({ name: "laptop" }), "peers[0].name", "peers[0].name: unknown option; known options: publicKey, allowedIps, endpoint, persistentKeepalive, presharedKey");
  });

  it("reports an unknown name before the problems it causes", () => {
    // Without the name check this would be "privateKey: is required".
    expectError({ privatekey: PRIVATE, peers: [] }, "privatekey", /did you mean privateKey/);
    expectError({ privateKey: PRIVATE, peers: [{ publickey: PEER_A }] }, "peers[0].publickey");
    expectError({ privateKey: PRIVATE, peers: [{ publicKey: PEER_A, allowedIps: [] }, { PublicKey: PEER_B, allowedIps: [] }] }, "peers[1].PublicKey");
  });

  it.each(["onTcp", "onUdp", "onError", "onUnknownPeer", "onUdpUnreachable", "tap"])("requires %s to be a function", (name) => {
    for (const [value, got] of [["yes", '"yes"'], [true, "true"], [null, "null"], [{}, "an object"]] as const) {
      const error = expectError({ privateKey: PRIVATE, peers: [], [name]: value }, name);
      expect(error.message).toBe(`${name}: expected a function, got ${got}`);
    }
  });

  it("requires runtime to look like a Runtime", () => {
    for (const runtime of [null, "node", {}, { clock: {} }, { bindUdp: () => {} }, { clock: 1, bindUdp: () => {} }]) {
      expectError({ privateKey: PRIVATE, peers: [], runtime }, "runtime", /^runtime: expected a Runtime \(an object with clock and bindUdp\)/);
    }
  });

  it("takes threads 0 or 1, 0 by default, and refuses anything else naming the option", () => {
    expect(validateConfig({ privateKey: PRIVATE, peers: [] }).threads).toBe(0);
    expect(validateConfig({ privateKey: PRIVATE, peers: [], threads: 0 }).threads).toBe(0);
    expect(validateConfig({ privateKey: PRIVATE, peers: [], threads: 1 }).threads).toBe(1);
    for (const [threads, got] of [[2, "2"], [-1, "-1"], [0.5, "0.5"], ["1", '"1"'], [true, "true"], [null, "null"]] as const) {
      const error = expectError({ privateKey: PRIVATE, peers: [], threads }, "threads");
      expect(error.message).toBe(`threads: expected 0 (the engine on the main thread) or 1 (the engine and its socket in a worker), got ${got}`);
    }
  });

  it("refuses threads: 1 with a custom runtime, which cannot cross into a worker", () => {
    const runtime = { clock: {}, bindUdp: () => {} };
    expect(validateConfig({ privateKey: PRIVATE, peers: [], threads: 0, runtime }).threads).toBe(0);
    expectError({ privateKey: PRIVATE, peers: [], threads: 1, runtime }, "threads", "threads: a custom runtime runs on the main thread only: use threads: 0 with it");
  });

  it("requires a valid privateKey", () => {
    expectError({ peers: [] }, "privateKey", /is required/);
    expectError({ privateKey: 7, peers: [] }, "privateKey", /got number/);
    expectError({ privateKey: "not a key", peers: [] }, "privateKey", /got 9 characters/);
  });

  it("requires peers to be an array", () => {
    expectError({ privateKey: PRIVATE }, "peers", /expected an array.*got undefined/);
    expectError({ privateKey: PRIVATE, peers: {} }, "peers", /got an object/);
    expectError({ privateKey: PRIVATE, peers: "x" }, "peers", /got "x"/);
  });

  it.each([null, "peer", 3, [[]]])("rejects peer %j that is not an object", (peer) => {
    expectError({ privateKey: PRIVATE, peers: [peer] }, "peers[0]", /expected an object with a publicKey/);
  });

  it("names the failing peer by index", () => {
    expectError({ privateKey: PRIVATE, peers: [{ publicKey: PEER_A, allowedIps: [] }, null] }, "peers[1]");
  });

  it("checks publicKey", () => {
    expectError({ privateKey: PRIVATE, peers: [{}] }, "peers[0].publicKey", /is required/);
    expectError({ privateKey: PRIVATE, peers: [{ publicKey: 1 }] }, "peers[0].publicKey", /got number/);
    expectError({ privateKey: PRIVATE, peers: [{ publicKey: PEER_A.slice(1) }] }, "peers[0].publicKey", /got 43 characters/);
  });

  it("reports a duplicate publicKey with the first index", () => {
    const peers = [
      { publicKey: PEER_A, allowedIps: [] },
      { publicKey: PEER_B, allowedIps: [] },
      { publicKey: PEER_A, allowedIps: [] },
    ];
    const error = expectError({ privateKey: PRIVATE, peers }, "peers[2].publicKey");
    expect(error.message).toBe("peers[2].publicKey: duplicate of peers[0]");
  });

  it("requires allowedIps when there is more than one peer", () => {
    const peers = [{ publicKey: PEER_A, allowedIps: ["10.0.0.2/32"] }, { publicKey: PEER_B }];
    expectError({ privateKey: PRIVATE, peers }, "peers[1].allowedIps", /required when there is more than one peer/);
    expectError({ privateKey: PRIVATE, peers: [{ publicKey: PEER_A }, { publicKey: PEER_B }, { publicKey: PEER_C }] }, "peers[0].allowedIps");
  });

  it("checks allowedIps", () => {
    expectError(onePeer({ allowedIps: "10.0.0.2/32" }), "peers[0].allowedIps", /expected an array of strings.*got "10.0.0.2\/32"/);
    expectError(onePeer({ allowedIps: null }), "peers[0].allowedIps", /got null/);
    expectError(onePeer({ allowedIps: ["10.0.0.2/32", 5] }), "peers[0].allowedIps[1]", /expected a string.*got 5/);
    expectError(onePeer({ allowedIps: ["fd00::/129"] }), "peers[0].allowedIps[0]", /"fd00::\/129" is not an IP prefix/);
  });

  it("uses the documented message for a bad prefix", () => {
    const peers = [
      { publicKey: PEER_A, allowedIps: ["10.0.0.2/32"] },
      { publicKey: PEER_B, allowedIps: ["10.0.0.300/32"] },
    ];
    const error = expectError({ privateKey: PRIVATE, peers }, "peers[1].allowedIps[0]");
    expect(error.message).toBe('peers[1].allowedIps[0]: "10.0.0.300/32" is not an IP prefix (expected like 10.0.0.2/32 or fd00::2/128)');
  });

  it("checks endpoint strings", () => {
    for (const endpoint of ["example.com:51820", "1.2.3.4", "1.2.3.4:0", "fd00::1:51820", "[fd00::1]:70000", ""]) {
      expectError(onePeer({ endpoint }), "peers[0].endpoint", /is not an IP endpoint.*host names are not resolved/);
    }
  });

  it("checks endpoint objects", () => {
    expectError(onePeer({ endpoint: 51820 }), "peers[0].endpoint", /expected a string or \{host, port\}, got 51820/);
    expectError(onePeer({ endpoint: null }), "peers[0].endpoint", /got null/);
    expectError(onePeer({ endpoint: { host: "example.com", port: 1 } }), "peers[0].endpoint.host", /"example.com" is not an IP address/);
    expectError(onePeer({ endpoint: { host: "[::1]", port: 1 } }), "peers[0].endpoint.host");
    expectError(onePeer({ endpoint: { port: 1 } }), "peers[0].endpoint.host", /undefined/);
    expectError(onePeer({ endpoint: { host: "1.2.3.4" } }), "peers[0].endpoint.port", /from 1 to 65535, got undefined/);
    expectError(onePeer({ endpoint: { host: "1.2.3.4", port: 0 } }), "peers[0].endpoint.port");
    expectError(onePeer({ endpoint: { host: "1.2.3.4", port: "80" } }), "peers[0].endpoint.port", /got "80"/);
    expectError(onePeer({ endpoint: { host: "1.2.3.4", port: 80.5 } }), "peers[0].endpoint.port");
  });

  it.each([-1, 65536, 1.5, "25", NaN, Infinity, null])("rejects persistentKeepalive %j", (value) => {
    expectError(onePeer({ persistentKeepalive: value }), "peers[0].persistentKeepalive", /expected an integer from 0 to 65535/);
  });

  it("accepts persistentKeepalive bounds", () => {
    expect(validateConfig(onePeer({ persistentKeepalive: 0 })).peers[0]!.persistentKeepalive).toBe(0);
    expect(validateConfig(onePeer({ persistentKeepalive: 65535 })).peers[0]!.persistentKeepalive).toBe(65535);
  });

  it("checks presharedKey", () => {
    expectError(onePeer({ presharedKey: "short" }), "peers[0].presharedKey", /got 5 characters/);
    expectError(onePeer({ presharedKey: null }), "peers[0].presharedKey", /got null/);
  });

  it("checks host", () => {
    expectError({ privateKey: PRIVATE, peers: [], host: "localhost" }, "host", /"localhost" is not an IP address/);
    expectError({ privateKey: PRIVATE, peers: [], host: "[::]" }, "host");
    expectError({ privateKey: PRIVATE, peers: [], host: 0 }, "host", /^host: 0 is not/);
    expectError({ privateKey: PRIVATE, peers: [], host: null }, "host");
  });

  it("checks address", () => {
    expectError({ privateKey: PRIVATE, peers: [], address: "10.0.0.1/33" }, "address", /is not an IP prefix/);
    expectError({ privateKey: PRIVATE, peers: [], address: ["10.0.0.1/24", "nope"] }, "address[1]", /"nope" is not an IP prefix/);
    expectError({ privateKey: PRIVATE, peers: [], address: [1] }, "address[0]", /expected a string/);
    expectError({ privateKey: PRIVATE, peers: [], address: 5 }, "address", /expected a string or an array/);
  });

  const ranges: [string, number, number][] = [
    ["port", 0, 65535],
    ["mtu", 1280, 65535],
    ["tcpReceiveBuffer", 4096, 67108864],
    ["tcpSendBuffer", 4096, 67108864],
  ];

  it.each(ranges)("checks the range of %s", (field, min, max) => {
    const base = { privateKey: PRIVATE, peers: [] };
    for (const value of [min - 1, max + 1, min + 0.5, NaN, Infinity, `${min}`, null, true]) {
      expectError({ ...base, [field]: value }, field, `expected an integer from ${min} to ${max}`);
    }
    expect(validateConfig({ ...base, [field]: min })[field as "port"]).toBe(min);
    expect(validateConfig({ ...base, [field]: max })[field as "port"]).toBe(max);
  });

  const limitRanges: [keyof Limits, number, number][] = [
    ["tcpMaxConnectionsPerPeer", 1, 1 << 20],
    ["tcpMaxConnections", 1, 1 << 20],
    ["tcpMaxHalfOpenPerPeer", 1, 1 << 20],
    ["maxBufferedBytes", 1 << 20, 2 ** 31],
    ["udpMaxFlowsPerPeer", 1, 1 << 20],
    ["tcpHalfOpenTimeout", 1_000, 3_600_000],
    ["tcpFinWait2Timeout", 1_000, 3_600_000],
    ["tcpKeepalive", 1_000, 86_400_000],
    ["tcpUserTimeout", 1_000, 86_400_000],
    ["udpFlowTimeout", 1_000, 86_400_000],
  ];

  it.each(limitRanges)("checks the range of the limit %s", (field, min, max) => {
    const base = { privateKey: PRIVATE, peers: [] };
    for (const value of [min - 1, max + 1, min + 0.5, `${min}`]) {
      expectError({ ...base, [field]: value }, field, `expected an integer from ${min} to ${max}`);
    }
    expect(validateConfig({ ...base, [field]: min }).limits[field]).toBe(min);
    expect(validateConfig({ ...base, [field]: max }).limits[field]).toBe(max);
  });

  it("shows what it got without dumping long strings", () => {
    const error = expectError({ privateKey: PRIVATE, peers: [], host: "x".repeat(500) }, "host");
    expect(error.message.length).toBeLessThan(200);
  });

  it("never echoes secret key material", () => {
    // A plausible but broken key: one bad character in an otherwise real key.
    const secret = `${KNOWN_TEXT.slice(0, 20)}!${KNOWN_TEXT.slice(21)}`;
    const messages = [
      configError({ privateKey: secret, peers: [] }).message,
      configError({ privateKey: secret.slice(0, 43), peers: [] }).message,
      configError(onePeer({ presharedKey: secret })).message,
      configError(onePeer({ presharedKey: `${KNOWN_TEXT.slice(0, 42)}B=` })).message,
    ];
    for (const message of messages) {
      expect(message).not.toContain(KNOWN_TEXT.slice(0, 8));
      expect(message).not.toContain(KNOWN_TEXT.slice(30, 38));
    }
    // And a valid private key never shows up in an error about something else.
    const other = configError({ privateKey: KNOWN_TEXT, peers: [{ publicKey: KNOWN_TEXT, allowedIps: 1 }] }).message;
    expect(other).not.toContain(KNOWN_TEXT);
  });
});
