// What the web page shows live: the flows open now and the recent ones (as the flow log
// will say and has said), and each peer's byte rate over the last minute, sampled once
// a second from the server's counters. Listeners get each change as it happens.

import { endpointText } from "../ip.js";
import type { FlowBytes, FlowRecord, OpenFlow } from "../gateway/flow-log.js";
import type { PeerStats } from "../host/server.js";

/** Finished flows kept for the page; older ones are only in the log. */
export const RECENT_FLOWS = 1000;
/** Seconds of rate history per peer (one sample a second). */
export const RATE_SAMPLES = 60;

/**
 * A flow on the board: open ones have no `end` yet, and their bytes so far. `id` stays the same
 * from open to end.
 */
export type BoardFlow = (OpenFlow & { id: number; end?: undefined; up?: number; down?: number }) | (FlowRecord & { id: number });

/** An open flow's bytes so far. */
export interface FlowProgress {
  id: number;
  up: number;
  down: number;
}

export type BoardEvent = { type: "flow-open"; flow: BoardFlow } | { type: "flow-end"; flow: BoardFlow };

/** A peer's rate: bytes a second from the peer (up) and to it (down), oldest first, the last one now. */
export interface RateHistory {
  up: number[];
  down: number[];
}

export class FlowBoard {
  readonly #open = new Map<string, { flow: BoardFlow; bytes: FlowBytes | undefined }>();
  readonly #recent: BoardFlow[] = [];
  readonly #listeners = new Set<(event: BoardEvent) => void>();
  #nextId = 1;
  #totals = { flows: 0, up: 0, down: 0 };

  /** A flow opened; `bytes` tells its bytes so far whenever asked. */
  open(flow: OpenFlow, bytes?: FlowBytes): void {
    const entry: BoardFlow = { ...flow, id: this.#nextId++ };
    this.#open.set(flowKey(flow), { flow: entry, bytes });
    this.#emit({ type: "flow-open", flow: entry });
  }

  end(record: FlowRecord): void {
    const key = flowKey(record);
    const id = this.#open.get(key)?.flow.id ?? this.#nextId++;
    this.#open.delete(key);
    const entry: BoardFlow = { ...record, id };
    this.#recent.push(entry);
    if (this.#recent.length > RECENT_FLOWS) this.#recent.shift();
    this.#totals.flows++;
    this.#totals.up += record.up;
    this.#totals.down += record.down;
    this.#emit({ type: "flow-end", flow: entry });
  }

  /** Open flows, then the recent finished ones, newest last. */
  flows(): { open: BoardFlow[]; recent: BoardFlow[] } {
    const open = [...this.#open.values()].map(({ flow, bytes }) => (bytes ? { ...flow, ...bytes() } : flow));
    return { open, recent: [...this.#recent] };
  }

  /** The open flows' bytes so far (those that count them). */
  progress(): FlowProgress[] {
    return [...this.#open.values()].flatMap(({ flow, bytes }) => (bytes ? [{ id: flow.id, ...bytes() }] : []));
  }

  /** Flows ended so far, and their bytes. */
  totals(): { flows: number; open: number; up: number; down: number } {
    return { ...this.#totals, open: this.#open.size };
  }

  /** Calls `listener` with each change; returns its removal. */
  listen(listener: (event: BoardEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: BoardEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

/** One flow's identity from open to end: its record's start, protocol and both addresses. */
function flowKey(flow: OpenFlow): string {
  return `${flow.protocol} ${endpointText(flow.src)} ${endpointText(flow.dst)} ${flow.start}`;
}

/** Bytes a second per peer, from counters read once a second. */
export class RateMeter {
  readonly #last = new Map<string, { at: number; up: number; down: number }>();
  readonly #history = new Map<string, RateHistory>();

  /** Records the counters read at `nowMs`; peers no longer there are forgotten. */
  sample(peers: PeerStats[], nowMs: number): void {
    const seen = new Set<string>();
    for (const peer of peers) {
      seen.add(peer.publicKey);
      const now = { at: nowMs, up: peer.rxBytes, down: peer.txBytes };
      const last = this.#last.get(peer.publicKey);
      this.#last.set(peer.publicKey, now);
      if (!last || now.at <= last.at) continue;
      const history = this.#history.get(peer.publicKey) ?? { up: [], down: [] };
      this.#history.set(peer.publicKey, history);
      const seconds = (now.at - last.at) / 1000;
      // A counter that went back (the peer was removed and added again) starts over.
      history.up.push(Math.max(0, now.up - last.up) / seconds);
      history.down.push(Math.max(0, now.down - last.down) / seconds);
      if (history.up.length > RATE_SAMPLES) history.up.shift();
      if (history.down.length > RATE_SAMPLES) history.down.shift();
    }
    for (const key of [...this.#last.keys()]) {
      if (seen.has(key)) continue;
      this.#last.delete(key);
      this.#history.delete(key);
    }
  }

  history(publicKey: string): RateHistory {
    const history = this.#history.get(publicKey);
    return history ? { up: [...history.up], down: [...history.down] } : { up: [], down: [] };
  }
}
