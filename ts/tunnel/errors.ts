// The one table of what a tunnel's failures are called: the codes Node's own sockets and
// resolver use (errno names from POSIX connect(2) and getaddrinfo(3)), so code written for
// `net.Socket` recognises them.

import { ConnectionError } from "../host/tcp-connection.js";

/** Every code a {@link TunnelError} can carry, and what it means here. */
export const TUNNEL_ERROR_CODES = {
  /** Nothing listens on that port: the connect was answered with a reset or an ICMP port unreachable, or a datagram with the latter. */
  ECONNREFUSED: "nothing listens on that port: a reset or an ICMP port unreachable answered the connect, or the latter a datagram",
  /** The other end reset an open connection. */
  ECONNRESET: "the other end reset an open connection",
  /** We reset the connection (resetAndDestroy), or the tunnel closed under it. */
  ECONNABORTED: "we reset the connection (resetAndDestroy, or the tunnel closed)",
  /** A write after the connection closed, or once the other end's FIN ended our side too (no allowHalfOpen). */
  EPIPE: "a write after the connection closed, or once the other end's FIN ended ours (no allowHalfOpen)",
  /** No peer's AllowedIPs cover the address, we have no tunnel address of its family, or an ICMP net unreachable answered a connect or a datagram. */
  ENETUNREACH: "no peer's AllowedIPs cover the address, we have no tunnel address of its family, or an ICMP net unreachable answered a connect or a datagram",
  /** An ICMP host or protocol unreachable (or administratively prohibited) answered a connect or a datagram. */
  EHOSTUNREACH: "an ICMP host or protocol unreachable (or administratively prohibited) answered a connect or a datagram",
  /** No answer in time: the WireGuard handshake, a connect, or a DNS query. */
  ETIMEDOUT: "no answer in time: the WireGuard handshake, a connect, or a DNS query",
  /** The name does not resolve: through the tunnel's DNS, or for an Endpoint the system's resolver. */
  ENOTFOUND: "the name does not resolve (through the tunnel's DNS, or for an Endpoint the system's)",
  /** connect() again while the socket was connecting (it fails, as net's does). */
  EALREADY: "connect() again while the socket was connecting",
  /** The AbortSignal fired. */
  ABORT_ERR: "the AbortSignal fired",
} as const;

/** A code from {@link TUNNEL_ERROR_CODES}. */
export type TunnelErrorCode = keyof typeof TUNNEL_ERROR_CODES;

/** A failure of a tunnel or one of its sockets, with the `code` Node gives the same failure. */
export class TunnelError extends Error {
  /** What happened, as Node names it; see {@link TUNNEL_ERROR_CODES}. */
  readonly code: TunnelErrorCode;
  /** The call that failed, as in Node's errors: `connect`, `queryA`, `handshake`, … */
  readonly syscall: string | undefined;
  /** The address (or name) it was about. */
  readonly address: string | undefined;
  /** The port it was about. */
  readonly port: number | undefined;

  /** @internal Made by the tunnel. */
  constructor(code: TunnelErrorCode, message: string, details: { syscall?: string; address?: string; port?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = code === "ABORT_ERR" ? "AbortError" : "TunnelError";
    this.code = code;
    this.syscall = details.syscall;
    this.address = details.address;
    this.port = details.port;
  }
}

/** `error` as a TunnelError: a connection's own codes keep their meaning; anything else was the tunnel failing under us. */
export function asTunnelError(error: unknown, details: { syscall?: string; address?: string; port?: number } = {}): TunnelError {
  if (error instanceof TunnelError) return error;
  if (error instanceof ConnectionError) return new TunnelError(error.code, error.message, { ...details, cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new TunnelError("ECONNABORTED", message, { ...details, cause: error });
}

/** The error for a fired AbortSignal, as Node's own APIs make it (name AbortError, code ABORT_ERR). */
export function abortError(signal: AbortSignal): TunnelError {
  return new TunnelError("ABORT_ERR", "The operation was aborted", { cause: signal.reason });
}

/**
 * `work`, or a rejection with `why()` (by default the signal's reason) as soon as `signal`
 * fires: for a wait that cannot itself be aborted (a name lookup, a dial already under way).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, why: () => unknown = () => signal.reason): Promise<T> {
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(why());
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}

/**
 * An error as Node's own APIs make it, for callers that check its `code`: an Error (a TypeError
 * or RangeError for a bad argument, as Node throws them), with `syscall` where Node gives one.
 */
export function codedError(code: string, message: string, { Class = Error, syscall }: { Class?: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor; syscall?: string } = {}): Error & { code: string } {
  return Object.assign(new Class(message), syscall === undefined ? { code } : { code, syscall });
}

/** Throws ERR_SOCKET_BAD_PORT, as net and dgram do, unless `port` is a whole number from 1 (0 too with `allowZero`) to 65535. */
export function checkPort(port: unknown, allowZero = false): asserts port is number {
  const lowest = allowZero ? 0 : 1;
  if (typeof port !== "number" || !Number.isInteger(port) || port < lowest || port > 65535) {
    throw codedError("ERR_SOCKET_BAD_PORT", `port must be an integer from ${lowest} to 65535, got ${String(port)}`, { Class: RangeError });
  }
}

/** Throws as Node's timers do (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE) unless `ms` is a finite number of milliseconds, at least 0 (above 0 unless `allowZero`). */
export function checkMilliseconds(ms: unknown, name: string, allowZero: boolean): asserts ms is number {
  if (typeof ms !== "number") throw codedError("ERR_INVALID_ARG_TYPE", `${name} must be a number of milliseconds, got ${typeof ms}`, { Class: TypeError });
  if (!Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero)) {
    throw codedError("ERR_OUT_OF_RANGE", `${name} must be a ${allowZero ? "non-negative" : "positive"} finite number of milliseconds, got ${ms}`, { Class: RangeError });
  }
}
