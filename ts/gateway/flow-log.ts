// The gateway's log: one line per finished flow (text for people, JSON lines with
// --json), a few events (peers added or removed, unknown peers), and a summary on exit.

import { endpointText, type Endpoint } from "../ip.js";

/** How a flow ended. */
export type FlowEnd =
  | "closed" // both sides finished (TCP)
  | "client-reset" // the client reset or went away (or its peer was removed); the upstream was reset, a UDP flow's socket closed
  | "upstream-reset" // the upstream reset; the client was reset
  | "upstream-error" // the upstream socket failed otherwise
  | "refused" // the upstream refused the connection (or nothing listens there); so was the client
  | "denied" // the gateway's rules turn the destination down (the host's loopback)
  | "unreachable" // the upstream could not be reached; the client was told so
  | "idle" // no datagram either way for a while (UDP)
  | "answered" // every DNS query got its answer
  | "shutdown"; // the gateway stopped

/** One finished TCP connection or UDP flow. */
export interface FlowRecord {
  /** When it started, ms since the epoch. */
  start: number;
  durationMs: number;
  /**
   * The WireGuard peer the flow went through: serve names it from its config folder (or its
   * key when it has none); connect gives the key of the peer whose AllowedIPs hold the
   * network side's address ("-" when none do).
   */
  peer: string;
  /** connect only: the door the flow came through, as `forward 127.0.0.1:8080`, `socks5 …`, `http …` or `reverse 10.0.0.2:80`. */
  via?: string;
  protocol: "tcp" | "udp";
  /** The client's tunnel address. */
  src: Endpoint;
  /** Where the client sent it. */
  dst: Endpoint;
  /** What the client asked for by name, when it showed: TLS SNI, HTTP Host or the DNS question. */
  name?: string;
  /** Bytes from the client. */
  up: number;
  /** Bytes to the client. */
  down: number;
  end: FlowEnd;
  /** Why, for ends that come from an error. */
  error?: string;
}

/** A flow as it opens: what its record will say, before it ends. */
export type OpenFlow = Pick<FlowRecord, "start" | "peer" | "protocol" | "src" | "dst">;

/** An open flow's bytes so far, each way (as its record will count them). */
export type FlowBytes = () => { up: number; down: number };

/** Lines of unknown-peer reports per minute, whatever the number of keys. */
const UNKNOWN_PEER_LINES_PER_MINUTE = 10;
/** Unknown keys remembered (each is shown once); beyond this, new ones are not shown. */
const UNKNOWN_PEER_KEYS = 10_000;

export class FlowLog {
  readonly #write: (line: string) => void;
  readonly #json: boolean;
  readonly #now: () => number;
  readonly #started: number;
  #flows = 0;
  #byProtocol = { tcp: 0, udp: 0 };
  #up = 0;
  #down = 0;
  #ends: Partial<Record<FlowEnd, number>> = {};
  #unknownKeys = new Set<string>();
  #unknownMinute = 0;
  #unknownLinesThisMinute = 0;

  /** `write` takes one line without its newline; `now` is the clock (ms since the epoch). */
  constructor(write: (line: string) => void, options: { json?: boolean; now?: () => number } = {}) {
    this.#write = write;
    this.#json = options.json ?? false;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
  }

  flow(record: FlowRecord): void {
    this.#flows++;
    this.#byProtocol[record.protocol]++;
    this.#up += record.up;
    this.#down += record.down;
    this.#ends[record.end] = (this.#ends[record.end] ?? 0) + 1;
    if (this.#json) {
      this.#write(JSON.stringify({ type: "flow", time: new Date(record.start).toISOString(), ...withoutStart(record) }));
      return;
    }
    const name = record.name ? ` ${record.name}` : "";
    const via = record.via ? ` via ${record.via}` : "";
    const error = record.error ? ` (${record.error})` : "";
    this.#write(
      `${clockTime(record.start)} ${record.peer} ${record.protocol} ${endpointText(record.src)} -> ${endpointText(record.dst)}${name}${via}` +
        ` up ${bytesText(record.up)} down ${bytesText(record.down)} ${durationText(record.durationMs)} ${record.end}${error}`,
    );
  }

  /** A handshake from a key that is not a configured peer: shown once per key, a few lines a minute at most. */
  unknownPeer(publicKey: string, endpoint: Endpoint): void {
    if (this.#unknownKeys.has(publicKey) || this.#unknownKeys.size >= UNKNOWN_PEER_KEYS) return;
    const minute = Math.floor(this.#now() / 60_000);
    if (minute !== this.#unknownMinute) {
      this.#unknownMinute = minute;
      this.#unknownLinesThisMinute = 0;
    }
    // Over the limit the key is not remembered, so it shows when it tries again later.
    if (this.#unknownLinesThisMinute >= UNKNOWN_PEER_LINES_PER_MINUTE) return;
    this.#unknownLinesThisMinute++;
    this.#unknownKeys.add(publicKey);
    this.event("unknown-peer", `handshake from unknown key ${publicKey} at ${endpointText(endpoint)}`, { publicKey, endpoint });
  }

  /** Something other than a flow: `text` for the text log, `fields` for the JSON line. */
  event(type: string, text: string, fields: Record<string, unknown> = {}): void {
    const now = this.#now();
    if (this.#json) this.#write(JSON.stringify({ type, time: new Date(now).toISOString(), ...fields }));
    else this.#write(`${clockTime(now)} ${text}`);
  }

  /** The totals since the log started, as the last line. */
  summary(): void {
    const durationMs = this.#now() - this.#started;
    if (this.#json) {
      this.event("summary", "", { flows: this.#flows, ...this.#byProtocol, up: this.#up, down: this.#down, ends: this.#ends, durationMs });
      return;
    }
    const ends = Object.entries(this.#ends).map(([end, count]) => `${end} ${count}`).join(", ");
    this.event(
      "summary",
      `summary: ${this.#flows} flows (${this.#byProtocol.tcp} tcp, ${this.#byProtocol.udp} udp), up ${bytesText(this.#up)}, down ${bytesText(this.#down)}` +
        ` in ${durationText(durationMs)}${ends ? `; ${ends}` : ""}`,
    );
  }
}

function withoutStart(record: FlowRecord): Omit<FlowRecord, "start"> {
  const { start: _start, ...rest } = record;
  return rest;
}

/** Local time of day, to the millisecond: 14:03:27.412 */
function clockTime(ms: number): string {
  const date = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

/** 512 B, 1.2 kB, 45.0 MB (SI units, as download tools print) */
export function bytesText(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) { // so 999,999 B is 1.0 MB, not 1000.0 kB
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** 230 ms, 2.3 s, 3m12s, 2h05m */
export function durationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}
