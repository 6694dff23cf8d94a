import { Worker } from "node:worker_threads";
import { describe, expect, it, vi } from "vitest";
import { Ring } from "./ring.js";

const record = (n: number, len: number) => {
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i++) bytes[i] = (n + i) & 0xff;
  return bytes;
};

const drainAll = (ring: Ring, max?: number) => {
  const out: Uint8Array[] = [];
  ring.drain((bytes, at, len) => out.push(bytes.slice(at, at + len)), max);
  return out;
};

describe("Ring", () => {
  it("hands records over in order, each whole", () => {
    const ring = Ring.create(1024);
    for (let n = 0; n < 10; n++) expect(ring.push(record(n, n * 7))).toBe(true);
    const out = drainAll(ring);
    expect(out.map((r) => r.length)).toEqual([0, 7, 14, 21, 28, 35, 42, 49, 56, 63]);
    expect(out).toEqual(out.map((_, n) => record(n, n * 7)));
    expect(ring.empty).toBe(true);
    expect(ring.used).toBe(0);
  });

  it("wraps around the end of the area many times, records contiguous and intact", () => {
    const ring = Ring.create(256);
    let written = 0;
    let read = 0;
    // Lengths that do not divide the area, so the wrap point moves about, thousands of times.
    for (let round = 0; round < 5000; round++) {
      while (ring.push(record(written, (written * 13) % 101))) written++;
      for (const r of drainAll(ring, 1 + (round % 3))) {
        expect(r).toEqual(record(read, (read * 13) % 101));
        read++;
      }
    }
    for (const r of drainAll(ring)) {
      expect(r).toEqual(record(read, (read * 13) % 101));
      read++;
    }
    expect(read).toBe(written);
    expect(written).toBeGreaterThan(5000);
  });

  it("refuses a write when full (backpressure), losing nothing, and takes it once the reader frees room", () => {
    const ring = Ring.create(256);
    let n = 0;
    while (ring.push(record(n, 60))) n++;
    expect(n).toBe(4); // 4 records of 4 + 60 bytes fill the 256 exactly
    expect(ring.refused).toBe(1); // the push that ended the loop
    expect(ring.push(record(n, 60))).toBe(false);
    expect(ring.refused).toBe(2);
    expect(ring.waitForRoom(60, 0)).toBe("timed-out");
    expect(drainAll(ring, 1)).toEqual([record(0, 60)]);
    expect(ring.waitForRoom(60, 0)).toBe("ready");
    expect(ring.push(record(n, 60))).toBe(true);
    expect(drainAll(ring)).toEqual([record(1, 60), record(2, 60), record(3, 60), record(4, 60)]);
  });

  it("refuses a record over half the area outright", () => {
    const ring = Ring.create(256);
    expect(() => ring.push(new Uint8Array(ring.maxRecord + 1))).toThrow(RangeError);
    expect(ring.push(new Uint8Array(ring.maxRecord))).toBe(true);
  });

  it("keeps positions right across 2^32 bytes", () => {
    // Drive head and tail near the wrap of their 32-bit counters through the shared header.
    const ring = Ring.create(64);
    const state = new Int32Array(ring.buffer, 0, 64);
    state[0] = -40; // head: 2^32 - 40
    state[16] = -40; // tail
    for (let n = 0; n < 100; n++) {
      expect(ring.push(record(n, 10))).toBe(true);
      expect(drainAll(ring)).toEqual([record(n, 10)]);
    }
  });

  it("a visit that throws frees its record and those before it", () => {
    const ring = Ring.create(256);
    for (let n = 0; n < 3; n++) ring.push(record(n, 8));
    let seen = 0;
    expect(() =>
      ring.drain(() => {
        if (++seen === 2) throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(drainAll(ring)).toEqual([record(2, 8)]);
  });

  it("wakes an async reader when a batch is published", async () => {
    const ring = Ring.create(256);
    const waiting = ring.dataAsync(5_000);
    setTimeout(() => {
      ring.push(record(1, 4));
      ring.notify();
    }, 5);
    expect(await waiting).toBe("ready");
    expect(await ring.dataAsync(0)).toBe("ready");
    drainAll(ring);
    expect(await ring.dataAsync(10)).toBe("timed-out");
  });

  it("signals only a side that waits: no Atomics.notify while the reader is busy", async () => {
    const ring = Ring.create(256);
    const notify = vi.spyOn(Atomics, "notify");
    try {
      ring.push(record(1, 4));
      ring.notify();
      drainAll(ring); // no writer waits for room either
      expect(notify).not.toHaveBeenCalled();
      const waiting = ring.dataAsync(5_000);
      ring.push(record(2, 4));
      ring.notify();
      expect(notify).toHaveBeenCalledTimes(1);
      expect(await waiting).toBe("ready");
      drainAll(ring);
      ring.push(record(3, 4));
      ring.notify(); // the wait is over: nobody to wake
      expect(notify).toHaveBeenCalledTimes(1);
    } finally {
      notify.mockRestore();
    }
  });

  it("between two threads, a small ring always full: every record arrives, in order, intact", async () => {
    // The writer is another thread running the built ring (dist/), blocking while the ring is
    // full; this thread reads without blocking. 4 KiB against ~100 MB written: the writer
    // waits for room thousands of times.
    const ring = Ring.create(4096);
    const count = 200_000;
    const source = `
      const { workerData } = require("node:worker_threads");
      import(workerData.ringModule).then(({ Ring }) => {
        const ring = new Ring(workerData.buffer);
        for (let n = 0; n < workerData.count; n++) {
          const len = 4 + ((n * 37) % 900);
          const fill = (bytes, at) => {
            new DataView(bytes.buffer, bytes.byteOffset + at, 4).setUint32(0, n, true);
            for (let i = 4; i < len; i++) bytes[at + i] = (n + i) & 0xff;
          };
          while (!ring.write(len, fill)) {
            ring.notify();
            ring.waitForRoom(len, 1000);
          }
          if (n % 16 === 0) ring.notify();
        }
        ring.notify();
      });`;
    const ringModule = new URL("../../../dist/host/worker/ring.js", import.meta.url).href;
    const worker = new Worker(source, { eval: true, workerData: { buffer: ring.buffer, count, ringModule } });
    const exited = new Promise((resolve, reject) => {
      worker.once("exit", resolve);
      worker.once("error", reject);
    });
    let next = 0;
    let bad = "";
    while (next < count && !bad) {
      await ring.dataAsync(1000);
      ring.drain((bytes, at, len) => {
        const n = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true);
        if (n !== next || len !== 4 + ((n * 37) % 900)) bad ||= `record ${n} (${len} bytes) where ${next} was due`;
        for (let i = 4; i < len && !bad; i++) if (bytes[at + i] !== ((n + i) & 0xff)) bad = `record ${n} byte ${i} wrong`;
        next++;
      });
    }
    await exited;
    expect(bad).toBe("");
    expect(next).toBe(count);
    expect(ring.empty).toBe(true);
  }, 60_000);
});
