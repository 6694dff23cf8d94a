import { describe, expect, it } from "vitest";
import { bytesText, durationText, FlowLog, type FlowRecord } from "./flow-log.js";

const flow: FlowRecord = {
  start: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  durationMs: 2345,
  peer: "phone",
  protocol: "tcp",
  src: { host: "10.77.0.2", port: 41234 },
  dst: { host: "2001:db8::7", port: 443 },
  name: "example.test",
  up: 517,
  down: 1_234_567,
  end: "closed",
};

function capture(options: { json?: boolean; now?: () => number } = {}) {
  const lines: string[] = [];
  return { lines, log: new FlowLog((line) => lines.push(line), options) };
}

describe("FlowLog", () => {
  it("writes one text line per flow with peer, protocol, both ends, name, bytes, duration and end", () => {
    const { lines, log } = capture();
    log.flow(flow);
    log.flow({ ...flow, protocol: "udp", name: undefined, end: "refused", error: "ECONNREFUSED", up: 0, down: 0, durationMs: 3 });
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} phone tcp 10\.77\.0\.2:41234 -> \[2001:db8::7\]:443 example\.test up 517 B down 1\.2 MB 2\.3 s closed$/);
    expect(lines[1]).toMatch(/ phone udp 10\.77\.0\.2:41234 -> \[2001:db8::7\]:443 up 0 B down 0 B 3 ms refused \(ECONNREFUSED\)$/);
  });

  it("writes JSON lines with --json", () => {
    const { lines, log } = capture({ json: true });
    log.flow(flow);
    expect(JSON.parse(lines[0]!)).toEqual({
      type: "flow",
      time: "2026-01-02T03:04:05.006Z",
      durationMs: 2345,
      peer: "phone",
      protocol: "tcp",
      src: { host: "10.77.0.2", port: 41234 },
      dst: { host: "2001:db8::7", port: 443 },
      name: "example.test",
      up: 517,
      down: 1_234_567,
      end: "closed",
    });
  });

  it("sums up flows, bytes and ends", () => {
    let now = 1_000_000;
    const { lines, log } = capture({ now: () => now });
    log.flow(flow);
    log.flow({ ...flow, protocol: "udp", up: 40, down: 60, end: "idle" });
    log.flow({ ...flow, up: 0, down: 0, end: "refused" });
    now += 192_000;
    log.summary();
    expect(lines.at(-1)).toMatch(/ summary: 3 flows \(2 tcp, 1 udp\), up 557 B, down 1\.2 MB in 3m12s; closed 1, idle 1, refused 1$/);

    const json = capture({ json: true, now: () => now });
    json.log.flow(flow);
    json.log.summary();
    expect(JSON.parse(json.lines.at(-1)!)).toMatchObject({ type: "summary", flows: 1, tcp: 1, udp: 0, up: 517, down: 1_234_567, ends: { closed: 1 }, durationMs: 0 });
  });

  it("shows each unknown key once, and at most 10 lines a minute", () => {
    let now = 0;
    const { lines, log } = capture({ now: () => now });
    const endpoint = { host: "192.0.2.9", port: 51000 };
    log.unknownPeer("key-0", endpoint);
    log.unknownPeer("key-0", endpoint);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/handshake from unknown key key-0 at 192\.0\.2\.9:51000$/);
    for (let i = 1; i < 30; i++) log.unknownPeer(`key-${i}`, endpoint);
    expect(lines).toHaveLength(10);
    now += 60_000; // a new minute: the keys held back show now
    log.unknownPeer("key-25", endpoint);
    log.unknownPeer("key-0", endpoint);
    expect(lines).toHaveLength(11);
    expect(lines[10]).toContain("key-25");
  });
});

describe("units", () => {
  it("prints bytes in SI units and durations by size", () => {
    expect([0, 999, 1000, 1_234_567, 999_999, 5e12].map(bytesText)).toEqual(["0 B", "999 B", "1.0 kB", "1.2 MB", "1.0 MB", "5.0 TB"]);
    expect([4, 999, 1000, 59_940, 60_000, 3_600_000 + 5 * 60_000].map(durationText)).toEqual(["4 ms", "999 ms", "1.0 s", "59.9 s", "1m00s", "1h05m"]);
  });
});
