import { describe, expect, it } from "vitest";
import { ConfigError, decodeKey, encodeKey } from "./config.js";
import { genkey, genpsk, pubkey } from "./keys.js";

const hex = (text: string) => Uint8Array.from(text.match(/../g)!, (byte) => parseInt(byte, 16));

describe("keys", () => {
  it("derives the public key as X25519 does (RFC 7748, section 6.1)", () => {
    const alice = encodeKey(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    expect(decodeKey(pubkey(alice), "k")).toEqual(hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
  });

  it("reads a private key with the newline `wg genkey > key` leaves", () => {
    const key = genkey();
    expect(pubkey(`${key}\n`)).toBe(pubkey(key));
  });

  it("names privateKey when the key is bad", () => {
    expect(() => pubkey("nope")).toThrow(ConfigError);
    expect(() => pubkey("nope")).toThrow(/^privateKey: expected 44 base64 characters/);
  });

  it("makes clamped private keys and random preshared keys", () => {
    const keys = new Set<string>();
    for (let i = 0; i < 32; i++) {
      const key = decodeKey(genkey(), "k");
      expect(key[0]! & 7).toBe(0);
      expect(key[31]! & 0xc0).toBe(0x40);
      keys.add(encodeKey(key));
      keys.add(genpsk());
    }
    expect(keys.size).toBe(64);
  });
});
