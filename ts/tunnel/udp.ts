// TunnelUdpSocket: UDP through the tunnel, shaped like a `node:dgram` socket — bind(), send(),
// 'message' with rinfo, close(). Bound to a port of every tunnel address of ours.

import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import { parseIp, type Endpoint, type IpFamily } from "../ip.js";
import { asTunnelError, TunnelError } from "./errors.js";

/** Where a datagram came from, as `node:dgram` tells it. */
export interface TunnelRemoteInfo {
  /** The sender's IP. */
  address: string;
  /** `'IPv4'` or `'IPv6'`. */
  family: "IPv4" | "IPv6";
  /** The sender's port. */
  port: number;
  /** The payload's length. */
  size: number;
}

/** What a UDP socket needs from its tunnel. */
export interface UdpTransport {
  /** Our tunnel address of a family, if we have one. */
  localAddress(family: IpFamily): string | undefined;
  /** Resolves a name (or passes an IP through) for `send`, preferring an address we can reach. */
  resolve(host: string): Promise<string>;
  /** Throws a TunnelError when `host` cannot be reached; sends otherwise. */
  send(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  /** Delivers datagrams for `port` on our addresses to `onMessage`; throws EADDRINUSE if taken. Returns the unbind function. */
  bind(port: number, onMessage: (data: Uint8Array, from: Endpoint) => void): () => void;
}

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 16384;

/**
 * A UDP socket through the tunnel, from `tunnel.udp()`, used as a `node:dgram` socket is:
 * `bind(port?)` (a random port when omitted, or at the first `send`), `send(msg, port, host)`,
 * `'message'` events with `(msg, rinfo)`, `address()`, `close()`. Failures come as `'error'`
 * (or to `send`'s callback) with Node's codes.
 */
export class TunnelUdpSocket extends EventEmitter {
  readonly #transport: UdpTransport;
  #port = 0;
  #unbind: (() => void) | undefined;
  #closed = false;

  /** @internal Made by `tunnel.udp()`. */
  constructor(transport: UdpTransport) {
    super();
    this.#transport = transport;
  }

  /** Binds to `port` (omitted or 0: a random free one) on our tunnel addresses; emits `'listening'`. Throws EADDRINUSE if taken. */
  bind(port = 0, onListening?: () => void): this {
    if (this.#closed) throw new Error("the socket is closed");
    if (this.#unbind) throw new Error("the socket is already bound");
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be an integer from 0 to 65535, got ${String(port)}`);
    const onMessage = (data: Uint8Array, from: Endpoint) => {
      const family = parseIp(from.host)!.family === 4 ? "IPv4" : "IPv6";
      this.emit("message", Buffer.from(data.buffer, data.byteOffset, data.byteLength), { address: from.host, family, port: from.port, size: data.length });
    };
    if (port !== 0) {
      this.#unbind = this.#transport.bind(port, onMessage);
      this.#port = port;
    } else {
      // A random ephemeral port (RFC 6056 3.3.1), the next one when it is taken.
      const start = Math.floor(Math.random() * EPHEMERAL_COUNT);
      for (let i = 0; i < EPHEMERAL_COUNT && !this.#unbind; i++) {
        const candidate = EPHEMERAL_FIRST + ((start + i) % EPHEMERAL_COUNT);
        try {
          this.#unbind = this.#transport.bind(candidate, onMessage);
          this.#port = candidate;
        } catch (error) {
          if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
        }
      }
      if (!this.#unbind) throw Object.assign(new Error("bind EADDRINUSE: no free UDP port in the tunnel"), { code: "EADDRINUSE" });
    }
    if (onListening) this.once("listening", onListening);
    queueMicrotask(() => this.emit("listening"));
    return this;
  }

  /**
   * Sends one datagram to `host:port` through the tunnel (a name is resolved through the
   * tunnel's DNS); binds first if need be. `callback(error)` is told how it went; without it
   * a failure is an `'error'` event.
   */
  send(message: Uint8Array | string, port: number, host: string, callback?: (error: Error | null) => void): void {
    const data = typeof message === "string" ? new TextEncoder().encode(message) : message;
    const fail = (error: unknown) => {
      const coded = asTunnelError(error, { syscall: "send", address: host, port });
      if (callback) callback(coded);
      else this.emit("error", coded);
    };
    if (this.#closed) return fail(new TunnelError("EPIPE", "send after close", { syscall: "send" }));
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port must be an integer from 1 to 65535, got ${String(port)}`);
    if (!this.#unbind) this.bind();
    this.#transport.resolve(host).then(
      (address) => {
        if (this.#closed) return fail(new TunnelError("EPIPE", "send after close", { syscall: "send" }));
        const family = parseIp(address)!.family;
        const from = this.#transport.localAddress(family);
        if (!from) throw new TunnelError("ENETUNREACH", `send ENETUNREACH ${address}: we have no IPv${family} tunnel address`, { syscall: "send", address, port });
        this.#transport.send(data, { host: from, port: this.#port }, { host: address, port });
        callback?.(null);
      },
    ).catch(fail);
  }

  /** The bound port, as `dgram`'s `address()`; throws before `bind()`. */
  address(): AddressInfo {
    if (!this.#unbind) throw new Error("the socket is not bound");
    const v4 = this.#transport.localAddress(4);
    const address = v4 ?? this.#transport.localAddress(6)!;
    return { address, family: v4 ? "IPv4" : "IPv6", port: this.#port };
  }

  /** Unbinds; emits `'close'`. */
  close(onClose?: () => void): this {
    if (this.#closed) return this;
    this.#closed = true;
    this.#unbind?.();
    if (onClose) this.once("close", onClose);
    queueMicrotask(() => this.emit("close"));
    return this;
  }
}
