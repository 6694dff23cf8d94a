// What the host needs from a JavaScript runtime: a UDP socket and a clock.
// The server is written against these, so tests can swap in an in-memory network
// and virtual time, and each runtime gets a small adapter.

import type { Endpoint } from "../ip.js";

/** Time as the server sees it: the real clock, or a virtual one in tests. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `fn` after `delayMs`; returns a handle for `clearTimer`. */
  setTimer(delayMs: number, fn: () => void): unknown;
  /** Cancels a timer from `setTimer`. */
  clearTimer(handle: unknown): void;
  /** Calls `fn` soon, after the I/O callbacks that are ready now (so datagrams batch up). */
  defer(fn: () => void): void;
}

/** A bound UDP socket. */
export interface DatagramSocket {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: Endpoint;
  /** Sends one datagram; a failure is a lost datagram, as UDP goes. */
  send(data: Uint8Array, to: Endpoint): void;
  /** Releases the socket. */
  close(): Promise<void>;
}

/** What the server needs from a JavaScript runtime; see `runtime/` for Node's and Deno's. */
export interface Runtime {
  /** Timers and the current time. */
  clock: Clock;
  /** Binds a UDP socket on `host:port` (port 0 picks one) and calls `onMessage` for each datagram. */
  bindUdp(host: string, port: number, onMessage: (data: Uint8Array, from: Endpoint) => void): Promise<DatagramSocket>;
}
