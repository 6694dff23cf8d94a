// Captures from the web page: one at a time, one peer's packets or every peer's, written
// as pcap and kept until the next one; the listener is gone once stopped.

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { PacketListener } from "../gateway/gateway.js";
import { CaptureError, Captures } from "./capture.js";

const PCAP_HEADER = 24;
const RECORD_HEADER = 16;

/** A gateway's tap, driven by the test. */
function fakeTap() {
  const listeners = new Set<PacketListener>();
  return {
    tap: (listener: PacketListener) => (listeners.add(listener), () => listeners.delete(listener)),
    send: (packet: Uint8Array, peer: string) => {
      for (const listener of listeners) listener(packet, peer);
    },
    get listening() {
      return listeners.size;
    },
  };
}

const opened: Captures[] = [];
afterEach(async () => {
  for (const captures of opened.splice(0)) await captures.close();
});

describe("Captures", () => {
  it("writes only the chosen peer's packets, and stops listening when stopped", async () => {
    const gateway = fakeTap();
    const captures = new Captures(gateway.tap);
    opened.push(captures);
    await captures.start({ name: "phone", publicKey: "phone-key" });
    await expect(captures.start()).rejects.toThrow(CaptureError);
    gateway.send(new Uint8Array(40).fill(1), "phone-key");
    gateway.send(new Uint8Array(60).fill(2), "laptop-key");
    gateway.send(new Uint8Array(20).fill(3), "phone-key");
    const state = await captures.stop();
    expect(state).toMatchObject({ running: false, peer: "phone", packets: 2, bytes: 60, ready: true, note: null });
    expect(gateway.listening).toBe(0);
    gateway.send(new Uint8Array(10), "phone-key"); // after the stop: not written
    const file = readFileSync(captures.file);
    expect(file.length).toBe(PCAP_HEADER + 2 * RECORD_HEADER + 60);
    expect(file[PCAP_HEADER + RECORD_HEADER]).toBe(1);
    expect(file[PCAP_HEADER + 2 * RECORD_HEADER + 40]).toBe(3);
    await expect(captures.stop()).rejects.toThrow(CaptureError);
  });

  it("captures every peer without one, and the next capture replaces the last", async () => {
    const gateway = fakeTap();
    const captures = new Captures(gateway.tap);
    opened.push(captures);
    await captures.start();
    gateway.send(new Uint8Array(40), "phone-key");
    gateway.send(new Uint8Array(60), "laptop-key");
    expect(await captures.stop()).toMatchObject({ peer: null, packets: 2, bytes: 100 });
    await captures.start();
    expect(captures.state()).toMatchObject({ running: true, packets: 0, ready: false });
    await captures.stop();
    expect(readFileSync(captures.file).length).toBe(PCAP_HEADER);
  });
});
