// The live board: a flow keeps its id from open to end, the recent list is bounded, and
// rates come from counter differences.

import { describe, expect, it } from "vitest";
import type { FlowRecord, OpenFlow } from "../gateway/flow-log.js";
import type { PeerStats } from "../host/server.js";
import { type BoardEvent, FlowBoard, RATE_SAMPLES, RateMeter, RECENT_FLOWS } from "./board.js";

const opened = (port: number, start = 1000): OpenFlow => ({ start, peer: "peer1", protocol: "tcp", src: { host: "10.77.0.2", port }, dst: { host: "192.0.2.1", port: 80 } });
const ended = (flow: OpenFlow, up = 10, down = 20): FlowRecord => ({ ...flow, durationMs: 5, up, down, end: "closed" });

describe("FlowBoard", () => {
  it("ends the flow that opened with the same start and addresses, under the same id, and tells listeners both", () => {
    const board = new FlowBoard();
    const events: BoardEvent[] = [];
    board.listen((event) => events.push(event));
    const a = opened(40000);
    const b = opened(40001);
    board.open(a);
    board.open(b);
    expect(board.flows().open.map((flow) => flow.id)).toEqual([1, 2]);
    board.end(ended(b));
    expect(board.flows()).toMatchObject({ open: [{ id: 1 }], recent: [{ id: 2, end: "closed", up: 10, down: 20 }] });
    // The same client port reused later is another flow.
    board.end(ended(opened(40000, 2000)));
    expect(board.flows()).toMatchObject({ open: [{ id: 1 }], recent: [{ id: 2 }, { id: 3 }] });
    expect(events.map((event) => `${event.type} ${event.flow.id}`)).toEqual(["flow-open 1", "flow-open 2", "flow-end 2", "flow-end 3"]);
    expect(board.totals()).toEqual({ flows: 2, open: 1, up: 20, down: 40 });
  });

  it("shows an open flow's bytes so far, read when asked, and its record's bytes once it ends", () => {
    const board = new FlowBoard();
    const relayed = { up: 0, down: 0 };
    const flow = opened(40000);
    board.open(flow, () => relayed);
    board.open(opened(40001)); // one that does not count
    relayed.up = 300;
    relayed.down = 7000;
    expect(board.progress()).toEqual([{ id: 1, up: 300, down: 7000 }]);
    expect(board.flows().open).toMatchObject([{ id: 1, up: 300, down: 7000 }, { id: 2 }]);
    expect(board.flows().open[1]).not.toHaveProperty("up");
    board.end(ended(flow, 400, 9000));
    expect(board.progress()).toEqual([]);
    expect(board.flows().recent).toMatchObject([{ id: 1, up: 400, down: 9000 }]);
  });

  it(`keeps the last ${RECENT_FLOWS} finished flows`, () => {
    const board = new FlowBoard();
    for (let i = 0; i < RECENT_FLOWS + 5; i++) board.end(ended(opened(i)));
    const recent = board.flows().recent;
    expect(recent).toHaveLength(RECENT_FLOWS);
    expect(recent[0]!.src.port).toBe(5);
    expect(board.totals().flows).toBe(RECENT_FLOWS + 5);
  });
});

describe("RateMeter", () => {
  const stats = (rx: number, tx: number, publicKey = "key1"): PeerStats => ({ publicKey, endpoint: undefined, sinceHandshakeMs: undefined, rxBytes: rx, txBytes: tx });

  it("gives bytes a second from one reading to the next, up from the peer and down to it", () => {
    const meter = new RateMeter();
    meter.sample([stats(0, 0)], 0);
    meter.sample([stats(1000, 4000)], 1000);
    meter.sample([stats(1500, 4000)], 1500);
    expect(meter.history("key1")).toEqual({ up: [1000, 1000], down: [4000, 0] });
  });

  it(`keeps ${RATE_SAMPLES} samples, starts over when a counter goes back, and forgets a peer that left`, () => {
    const meter = new RateMeter();
    for (let t = 0; t <= RATE_SAMPLES + 3; t++) meter.sample([stats(t * 10, 0)], t * 1000);
    expect(meter.history("key1").up).toEqual(new Array(RATE_SAMPLES).fill(10));
    meter.sample([stats(0, 0)], (RATE_SAMPLES + 4) * 1000);
    expect(meter.history("key1").up.at(-1)).toBe(0);
    meter.sample([stats(0, 0, "key2")], (RATE_SAMPLES + 5) * 1000);
    expect(meter.history("key1")).toEqual({ up: [], down: [] });
  });
});
