// The flood's own checks: its BLAKE2s is right, its initiations pass mac1 (a server under
// load answers them with cookie replies), and everything else it sends is dropped quietly.

import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { genkey, pubkey, startServer } from "../../ts/index.js";
import { MemoryNetwork, VirtualClock } from "./virtual-network.js";
import { blake2s, floodDatagrams, mac1Initiation } from "./wg-flood.mjs";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("wg-flood", () => {
  it("computes BLAKE2s as node:crypto does, and keyed as the reference vectors", () => {
    for (const size of [0, 1, 63, 64, 65, 200]) {
      const data = randomBytes(size);
      expect(hex(blake2s(data))).toBe(createHash("blake2s256").update(data).digest("hex"));
    }
    // blake2s-kat.txt of the BLAKE2 reference: key 00..1f, input empty and 00.
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(hex(blake2s(new Uint8Array(0), 32, key))).toBe("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49");
    expect(hex(blake2s(new Uint8Array([0]), 32, key))).toBe("40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1");
  });

  it("makes initiations a server answers with cookie replies under load, and garbage it drops unanswered", async () => {
    const clock = new VirtualClock();
    const wire = new MemoryNetwork(clock);
    const serverKey = genkey();
    const server = await startServer({ privateKey: serverKey, host: "127.0.0.1", port: 51820, peers: [{ publicKey: pubkey(genkey()) }], runtime: wire.runtime() });
    const replies: Uint8Array[] = [];
    const flooder = await wire.runtime().bindUdp("127.0.0.9", 0, (data) => void replies.push(data), () => {});
    const publicKey = Buffer.from(pubkey(serverKey), "base64");
    try {
      // More initiations than the server handles in a second: the rest get cookie replies.
      for (let i = 0; i < 150; i++) flooder.send(mac1Initiation(publicKey), { host: "127.0.0.1", port: 51820 });
      await clock.advance(10);
      expect(replies.length).toBeGreaterThan(0);
      expect(replies.every((r) => r.length === 64 && r[0] === 3)).toBe(true);
      const cookies = replies.length;
      expect(server.stats().dropped.underLoad).toBe(cookies);

      // The other kinds get no answer at all; each is dropped and counted.
      const before = Object.values(server.stats().dropped).reduce((a, b) => a + b, 0);
      let sent = 0;
      for (const { kind, data } of floodDatagrams(publicKey, [])) {
        if (kind === "initiation") continue;
        flooder.send(data, { host: "127.0.0.1", port: 51820 });
        if (++sent === 500) break;
      }
      await clock.advance(10);
      expect(replies.length).toBe(cookies);
      expect(Object.values(server.stats().dropped).reduce((a, b) => a + b, 0) - before).toBe(sent);
    } finally {
      await flooder.close();
      await server.close();
    }
  });
});
