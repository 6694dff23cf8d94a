// Property tests for parseConfig: any text a user or a VPN provider hands us is a config or
// a ConfigError that names the key (field) and a line of the text, never another exception;
// configs we write with random values, spacing, case and comments parse back to them.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { describe, it } from "vitest";
import { check, fuzz, mutateText, parsesOrRejects, type Rng, THREW } from "../../test/support/fuzz.js";
import { ConfigError, encodeKey } from "../config.js";
import { formatIp } from "../ip.js";
import { parseConfig, type TunnelConfig } from "./config.js";

const ALPHABET = "[]=#,:./ \t\r\n-_abcdefABCDEF0123456789+/PeerInterfacePrivateKeyAddressDNSMTU";

function spaced(rng: Rng, key: string, value: string): string {
  const name = rng.pick([key, key.toLowerCase(), key.toUpperCase()]);
  return `${rng.pick(["", " ", "\t"])}${name}${rng.pick(["", " ", "  "])}=${rng.pick(["", " "])}${value}${rng.chance(0.2) ? " # a comment" : ""}`;
}

function randomPrefix(rng: Rng, mask: boolean): { text: string; canonical: string } {
  const v4 = rng.chance(0.6);
  const bytes = rng.bytes(v4 ? 4 : 16);
  const prefix = rng.int((v4 ? 32 : 128) + 1);
  const masked = bytes.slice();
  if (mask) for (let i = 0; i < masked.length; i++) masked[i] = masked[i]! & (0xff00 >> Math.min(8, Math.max(0, prefix - i * 8)));
  return { text: `${formatIp(bytes)}/${prefix}`, canonical: `${formatIp(masked)}/${prefix}` };
}

/** A valid config as text, and what parseConfig must make of it. */
function randomConfig(rng: Rng): { text: string; expected: TunnelConfig } {
  const lines: string[] = [];
  if (rng.chance(0.3)) lines.push("# written by a test");
  lines.push(rng.pick(["[Interface]", "[interface]", "[ Interface ]"]));
  const privateKey = encodeKey(rng.bytes(32));
  lines.push(spaced(rng, "PrivateKey", privateKey));
  const address = Array.from({ length: rng.range(1, 3) }, () => randomPrefix(rng, false));
  lines.push(spaced(rng, "Address", address.map((item) => item.text).join(rng.pick([",", ", "]))));
  const expected: TunnelConfig = { privateKey, address: address.map((item) => item.canonical), dns: [], dnsSearch: [], peers: [] };
  if (rng.chance(0.5)) {
    expected.dns = [formatIp(rng.bytes(4))];
    expected.dnsSearch = rng.chance(0.5) ? ["corp.example"] : [];
    lines.push(spaced(rng, "DNS", [...expected.dns, ...expected.dnsSearch].join(", ")));
  }
  if (rng.chance(0.3)) {
    expected.mtu = rng.range(1280, 65535);
    lines.push(spaced(rng, "MTU", String(expected.mtu)));
  }
  if (rng.chance(0.3)) {
    expected.listenPort = rng.int(65536);
    lines.push(spaced(rng, "ListenPort", String(expected.listenPort)));
  }
  if (rng.chance(0.2)) lines.push(spaced(rng, "PostUp", "iptables -A FORWARD -i %i -j ACCEPT"));
  for (let peers = rng.range(1, 3); peers > 0; peers--) {
    lines.push("", rng.pick(["[Peer]", "[peer]"]));
    const publicKey = encodeKey(rng.bytes(32));
    lines.push(spaced(rng, "PublicKey", publicKey));
    const allowed = Array.from({ length: rng.range(1, 3) }, () => randomPrefix(rng, true));
    lines.push(spaced(rng, "AllowedIPs", allowed.map((item) => item.text).join(", ")));
    const peer: TunnelConfig["peers"][number] = { publicKey, allowedIps: allowed.map((item) => item.canonical) };
    if (rng.chance(0.5)) {
      peer.presharedKey = encodeKey(rng.bytes(32));
      lines.push(spaced(rng, "PresharedKey", peer.presharedKey));
    }
    if (rng.chance(0.7)) {
      peer.endpoint = `${rng.pick([`vpn${rng.int(100)}.example.com`, formatIp(rng.bytes(4))])}:${rng.range(1, 65535)}`;
      lines.push(spaced(rng, "Endpoint", peer.endpoint));
    }
    if (rng.chance(0.4)) {
      const seconds = rng.int(65536);
      if (seconds) peer.persistentKeepalive = seconds;
      lines.push(spaced(rng, "PersistentKeepalive", String(seconds)));
    }
    expected.peers.push(peer);
  }
  return { text: lines.join(rng.chance(0.2) ? "\r\n" : "\n") + (rng.chance(0.5) ? "\n" : ""), expected };
}

/** Line-level damage: a line dropped, repeated, moved or replaced by junk. */
function mutateLines(rng: Rng, text: string): string {
  const lines = text.split("\n");
  const at = rng.int(lines.length);
  switch (rng.int(4)) {
    case 0:
      lines.splice(at, 1);
      break;
    case 1:
      lines.splice(at, 0, lines[rng.int(lines.length)]!);
      break;
    case 2:
      lines.splice(rng.int(lines.length), 0, ...lines.splice(at, 1));
      break;
    default:
      lines[at] = rng.pick(["[Peer", "Key", "= value", "[Other]", "Table = off", "Address = 10.0.0.1/33", "DNS = ,", "MTU = 0100", "Endpoint = host", `PrivateKey = ${"A".repeat(43)}B`]);
  }
  return lines.join("\n");
}

function parseChecked(text: string): TunnelConfig | typeof THREW {
  const input = () => JSON.stringify(text);
  const lineCount = text.split(/\r?\n/).length;
  return parsesOrRejects(() => parseConfig(text, { onWarning: () => {} }), ConfigError, input, (error) => {
    const { field, line } = error as ConfigError;
    check(typeof field === "string" && field.length > 0, `a ConfigError names its field (got ${JSON.stringify(field)})`, input);
    check(Number.isInteger(line) && line! >= 1 && line! <= lineCount, `a ConfigError names a line of the text (got ${line} of ${lineCount})`, input);
    check(error.message.startsWith(`line ${line}: ${field}: `), `the message says where: ${JSON.stringify(error.message)}`, input);
  });
}

describe("parseConfig on any text", () => {
  it("a config, or a ConfigError naming the key and its line, for damaged and random texts", () => {
    fuzz("parseConfig", { seed: 0xc0f, cases: 2000 }, (rng) => {
      const { text } = randomConfig(rng);
      const choice = rng.int(10);
      const damaged = choice < 5 ? mutateText(rng, text, ALPHABET) : choice < 9 ? mutateLines(rng, text) : rng.text(rng.int(200), ALPHABET);
      parseChecked(damaged);
    });
  });

  it("round trip: a config written with any spacing, case and comments reads back as written", () => {
    fuzz("parseConfig round trip", { seed: 0x2c0f, cases: 1000 }, (rng) => {
      const { text, expected } = randomConfig(rng);
      const parsed = parseChecked(text);
      check(parsed !== THREW, "a valid config parses", () => JSON.stringify(text));
      check(JSON.stringify(parsed) === JSON.stringify(expected), `parsed ${JSON.stringify(parsed)}, not ${JSON.stringify(expected)}`, () => JSON.stringify(text));
    });
  });
});
