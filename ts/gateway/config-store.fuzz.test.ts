// Property tests for the config folder's readers: whatever a user (or a half-finished edit)
// leaves in server.json and peers/NAME.json, the store gives records the gateway can use,
// or a StoreError that names the file, never another exception; and a record it gave is one
// `peer add` can write a client config from.
// Seeded and deterministic: a failure prints the seed and case to replay (test/support/fuzz.ts).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { check, fuzz, mutateText, parsesOrRejects, type Rng, THREW } from "../../test/support/fuzz.js";
import { encodeKey } from "../config.js";
import { ConfigStore, StoreError } from "./config-store.js";

const dir = mkdtempSync(join(tmpdir(), "wgn-store-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const JSON_ALPHABET = '{}[]":,. 0123456789abcdef/=+-_\\nulltrue';

function serverJson(rng: Rng): string {
  const record: Record<string, unknown> = { privateKey: encodeKey(rng.bytes(32)), address: ["10.77.0.1/24", "fd12:3456:789a::1/64"] };
  if (rng.chance(0.5)) record.endpoint = rng.pick(["192.0.2.1:51820", "vpn.example.com:51820", "[2001:db8::1]:51820"]);
  // Values damaged inside valid JSON too: a hand edit keeps the quotes.
  if (record.endpoint && rng.chance(0.3)) record.endpoint = mutateText(rng, record.endpoint as string, ":[]._-0123456789abc ");
  return JSON.stringify(record, null, 2);
}

function peerJson(rng: Rng): string {
  return JSON.stringify({ privateKey: encodeKey(rng.bytes(32)), address: [`10.77.0.${rng.range(2, 254)}/32`, `fd12:3456:789a::${rng.range(2, 254).toString(16)}/128`] }, null, 2);
}

describe("the config folder, whatever is in its files", () => {
  it("records the gateway can use, or a StoreError naming the file, for damaged server.json and peer files", () => {
    const conf = join(dir, "fuzz");
    mkdirSync(join(conf, "peers"), { recursive: true });
    fuzz("config-store", { seed: 0x5705e, cases: 200 }, (rng) => {
      const other = () => rng.pick(["null", "[]", "1", '"x"', "", "{}", '{"address": null}', "\ufeff{}"]); // JSON that is no record
      const server = rng.chance(0.05) ? other() : rng.chance(0.8) ? mutateText(rng, serverJson(rng), JSON_ALPHABET) : serverJson(rng);
      const peer = rng.chance(0.05) ? other() : rng.chance(0.5) ? mutateText(rng, peerJson(rng), JSON_ALPHABET) : peerJson(rng);
      writeFileSync(join(conf, "server.json"), server);
      writeFileSync(join(conf, "peers", "peer1.json"), peer);
      const input = () => `server.json ${JSON.stringify(server)}, peers/peer1.json ${JSON.stringify(peer)}`;
      const store = new ConfigStore(conf);
      const namesFile = (error: Error) => check(/(server|peer1)\.json/.test(error.message), `the message names the file: ${error.message}`, input);
      const record = parsesOrRejects(() => store.server(), StoreError, input, namesFile);
      const peers = parsesOrRejects(() => store.peers(), StoreError, input, namesFile);
      if (record === THREW || peers === THREW) return;
      // What `peer add` does with them: a client config for the peer, to the saved endpoint.
      const written = parsesOrRejects(() => store.writeClientConfig(peers[0]!, { endpoint: record.endpoint ?? "192.0.2.1:51820" }), StoreError, input, namesFile);
      if (written !== THREW) check(written.text.includes(`PrivateKey = ${peers[0]!.privateKey}`), "the client config holds the peer's key", input);
    });
  });

  it("a saved endpoint that is not host:port is a StoreError naming server.json, not a ConfigError when `peer add` writes a config", () => {
    // Found by the property above: server.json's endpoint was only checked to be a string;
    // `peer add` then made the peer and failed writing its config with
    // "endpoint: … is not host:port", naming neither the file nor the key in it.
    const conf = join(dir, "endpoint");
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, "server.json"), JSON.stringify({ privateKey: encodeKey(new Uint8Array(32).fill(1)), address: ["10.77.0.1/24", "fd12:3456:789a::1/64"], endpoint: "192.0.2.1" }));
    expect(() => new ConfigStore(conf).server()).toThrow(StoreError);
    expect(() => new ConfigStore(conf).server()).toThrow(/server\.json: endpoint/);
    // And the store never writes one it would refuse (serve saves its endpoint before writing configs).
    const fresh = join(dir, "save");
    const store = new ConfigStore(fresh);
    const before = store.server();
    expect(() => store.saveEndpoint("my host:51820")).toThrow(StoreError);
    expect(store.server()).toEqual(before);
  });
});
