import { describe, expect, it } from "vitest";
import { clientConfig } from "../client-config.js";
import { ConfigError, encodeKey } from "../config.js";
import { parseConfig } from "./config.js";

const key = (fill: number) => encodeKey(new Uint8Array(32).fill(fill));
const PRIVATE = key(1);
const SERVER = key(2);
const OTHER = key(4);
const PSK = key(3);

/** parseConfig that must throw a ConfigError; returns it. */
function failure(text: string): ConfigError {
  try {
    parseConfig(text, { onWarning: () => {} });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("parseConfig accepted it");
}

const minimal = (peer = `AllowedIPs = 0.0.0.0/0\n`) => `[Interface]\nPrivateKey = ${PRIVATE}\nAddress = 10.0.0.2/32\n\n[Peer]\nPublicKey = ${SERVER}\n${peer}`;

describe("parseConfig", () => {
  it("reads every key of a full config with several peers", () => {
    const text = `# from a provider
[Interface]
PrivateKey = ${PRIVATE}
Address = 10.0.0.2/24, FD00::2/64
Address = 10.9.0.2
DNS = 10.0.0.1, fd00::1, corp.example
MTU = 1380
ListenPort = 51821

[Peer]
PublicKey = ${SERVER}
PresharedKey = ${PSK}
AllowedIPs = 10.0.0.0/24, 192.168.7.9/16   # host bits cleared as wg does
AllowedIPs = fd00::/64
Endpoint = vpn.example.com:51820
PersistentKeepalive = 25

[peer]
publickey=${OTHER}
allowedips=0.0.0.0/0
endpoint=[2001:DB8::1]:4500
persistentkeepalive = off
`;
    expect(parseConfig(text)).toEqual({
      privateKey: PRIVATE,
      address: ["10.0.0.2/24", "fd00::2/64", "10.9.0.2/32"],
      dns: ["10.0.0.1", "fd00::1"],
      dnsSearch: ["corp.example"],
      mtu: 1380,
      listenPort: 51821,
      peers: [
        {
          publicKey: SERVER,
          presharedKey: PSK,
          allowedIps: ["10.0.0.0/24", "192.168.0.0/16", "fd00::/64"],
          endpoint: "vpn.example.com:51820",
          persistentKeepalive: 25,
        },
        { publicKey: OTHER, allowedIps: ["0.0.0.0/0"], endpoint: "[2001:db8::1]:4500" },
      ],
    });
  });

  it("reads what clientConfig writes", () => {
    const text = clientConfig({ privateKey: PRIVATE, address: ["10.0.0.2", "fd00::2"], serverPublicKey: SERVER, endpoint: "203.0.113.5:51820", dns: "10.0.0.1" });
    expect(parseConfig(text)).toEqual({
      privateKey: PRIVATE,
      address: ["10.0.0.2/32", "fd00::2/128"],
      dns: ["10.0.0.1"],
      dnsSearch: [],
      peers: [{ publicKey: SERVER, allowedIps: ["0.0.0.0/0", "::/0"], endpoint: "203.0.113.5:51820" }],
    });
  });

  it("ignores host-side keys with a warning naming their line, and never runs them", () => {
    const warnings: string[] = [];
    const text = `[Interface]\nPrivateKey = ${PRIVATE}\nAddress = 10.0.0.2/32\nPostUp = touch /tmp/wg-netstack-must-not-exist\nTable = off\nSaveConfig = true\n[Peer]\nPublicKey = ${SERVER}\nAllowedIPs = 0.0.0.0/0\n`;
    const config = parseConfig(text, { onWarning: (message) => warnings.push(message) });
    expect(config.peers).toHaveLength(1);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/line 4: PostUp is ignored/);
    expect(warnings[1]).toMatch(/line 5: Table is ignored/);
  });

  it("names the key and the line of each mistake", () => {
    const cases: [string, string, number, RegExp][] = [
      [minimal("AllowedIPs = 0.0.0.0/0\nEndpoint = vpn.example.com\n"), "Endpoint", 8, /not host:port/],
      [minimal("AllowedIPs = 0.0.0.0/0\nEndpoint = 10.0.0.1:99999\n"), "Endpoint", 8, /not host:port/],
      [minimal("AllowedIPs = 10.0.0.300/32\n"), "AllowedIPs", 7, /not an IP prefix/],
      [minimal("AllowedIPs = 10.0.0.0/24,\n"), "AllowedIPs", 7, /empty item/],
      [minimal(""), "AllowedIPs", 5, /required/],
      [minimal("AllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 70000\n"), "PersistentKeepalive", 8, /0 to 65535/],
      [minimal(`AllowedIPs = 0.0.0.0/0\nPublicKey = ${OTHER}\n`), "PublicKey", 8, /given twice/],
      [minimal("AllowedIPs = 0.0.0.0/0\nPostUp = x\n"), "PostUp", 8, /unknown key in \[Peer\]/],
      [minimal("AllowedIPs = 0.0.0.0/0\nPresharedKey = abc\n"), "PresharedKey", 8, /44 base64 characters/],
      [minimal().replace(`PrivateKey = ${PRIVATE}`, "PrivateKey = nope"), "PrivateKey", 2, /44 base64/],
      [minimal().replace("Address = 10.0.0.2/32", "Adress = 10.0.0.2/32"), "Adress", 3, /unknown key in \[Interface\]/],
      [minimal().replace("Address = 10.0.0.2/32", "MTU = 9"), "Address", 1, /required/],
      [minimal().replace("Address = 10.0.0.2/32", "Address = 10.0.0.2/32\nMTU = 1280.5"), "MTU", 4, /whole number/],
      [minimal().replace("Address = 10.0.0.2/32", "Address = 10.0.0.2/32\nDNS = 10.0.0.1/8"), "DNS", 4, /neither/],
      [minimal().replace("[Peer]", "[Peers]"), "[Peers]", 5, /unknown section/],
      [`PrivateKey = ${PRIVATE}\n`, "PrivateKey", 1, /before any/],
      [`${minimal()}garbage\n`, "garbage", 8, /Key = Value/],
      [`[Interface]\nAddress = 10.0.0.2/32\n[Peer]\nPublicKey = ${SERVER}\nAllowedIPs = 0.0.0.0/0\n`, "PrivateKey", 1, /required/],
      [`[Interface]\nPrivateKey = ${PRIVATE}\nAddress = 10.0.0.2/32\n`, "[Peer]", 4, /at least one/],
      [`${minimal()}[Interface]\n`, "[Interface]", 8, /twice/],
      [`${minimal()}[Peer]\nPublicKey = ${SERVER}\nAllowedIPs = 10.0.0.0/8\n`, "PublicKey", 9, /same peer as the \[Peer\] on line 5/],
    ];
    for (const [text, field, line, message] of cases) {
      const error = failure(text);
      expect({ field: error.field, line: error.line, text }).toEqual({ field, line, text });
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(new RegExp(`^line ${line}: `));
    }
  });

  it("never echoes a key in an error", () => {
    const secret = `${PRIVATE.slice(0, 40)}!!!=`;
    const error = failure(minimal().replace(PRIVATE, secret));
    expect(error.message).not.toContain(secret.slice(0, 20));
  });

  it("rejects a value that is not text without throwing anything but a ConfigError", () => {
    expect(() => parseConfig(42 as unknown as string)).toThrow(ConfigError);
  });
});
