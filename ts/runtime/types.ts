// What the host needs from a JavaScript runtime: a UDP socket and a clock.
// The server is written against these, so tests can swap in an in-memory network
// and virtual time, and each runtime gets a small adapter.

import { endpointText, type Endpoint } from "../ip.js";

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

/**
 * Told about a failure of a bound socket. `fatal` means the socket closed under us and
 * will deliver nothing more; otherwise it goes on (a failed receive, say).
 */
export type SocketErrorHandler = (error: Error, fatal: boolean) => void;

/** `startServer` could not bind its UDP socket: another socket holds `host:port`. */
export class AddressInUseError extends Error {
  /** The errno name Node uses for the same failure. */
  readonly code = "EADDRINUSE";
  /** The address that was asked for. */
  readonly host: string;
  /** The port that was asked for. */
  readonly port: number;
  /** @internal Made by the runtime adapters from their own error, kept as `cause`. */
  constructor(host: string, port: number, cause: unknown) {
    super(`UDP ${endpointText({ host, port })} is already in use`, { cause });
    this.name = "AddressInUseError";
    this.host = host;
    this.port = port;
  }
}

/** True for the error each runtime raises when an address is taken (all name it EADDRINUSE). */
export function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "EADDRINUSE";
}

/** What the server needs from a JavaScript runtime; see `runtime/` for Node's and Deno's. */
export interface Runtime {
  /** Timers and the current time. */
  clock: Clock;
  /**
   * Binds a UDP socket on `host:port` (port 0 picks one) and calls `onMessage` for each
   * datagram and `onError` when the bound socket fails. Rejects with
   * {@link AddressInUseError} when the address is taken.
   */
  bindUdp(
    host: string,
    port: number,
    onMessage: (data: Uint8Array, from: Endpoint) => void,
    onError: SocketErrorHandler,
  ): Promise<DatagramSocket>;
}
