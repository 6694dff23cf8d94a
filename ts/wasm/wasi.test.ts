import { describe, expect, it } from "vitest";
import { wasiImports } from "./wasi.js";

describe("the WASI shim", () => {
  it("gives the wall clock as CLOCK_REALTIME: boringtun stamps handshakes with it (whitepaper 5.4.2)", () => {
    // A key reused by a new process must send newer TAI64N timestamps than the last process
    // did, or the peer drops its handshakes as replays; only wall time gives that.
    const memory = new WebAssembly.Memory({ initial: 1 });
    const wasi = wasiImports(() => memory, { stderr: "" });
    const before = Date.now();
    expect(wasi.clock_time_get(0, 1n, 8)).toBe(0);
    const realtimeMs = Number(new DataView(memory.buffer).getBigUint64(8, true) / 1_000_000n);
    expect(realtimeMs).toBeGreaterThanOrEqual(before - 1);
    expect(realtimeMs).toBeLessThanOrEqual(Date.now() + 1);
  });
});
