// TunnelUdpSocket: UDP through the tunnel, shaped like a `node:dgram` socket — bind(), send(),
// 'message' with rinfo, close(). Bound to a port of every tunnel address of ours.

import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import { endpointText, parseIp, sameEndpoint, type Endpoint, type IpFamily } from "../ip.js";
import type { UdpUnreachable } from "../host/server.js";
import { asTunnelError, checkPort, codedError, TunnelError } from "./errors.js";

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

/** Who takes what arrives for a bound port: datagrams, and ICMP errors about the ones it sent. */
export interface UdpListener {
  message(data: Uint8Array, from: Endpoint): void;
  /** A peer's side answered a datagram sent to `remote` with an ICMP destination unreachable. */
  unreachable?(remote: Endpoint, code: UdpUnreachable["code"]): void;
}

/** What a UDP socket needs from its tunnel. */
export interface UdpTransport {
  /** Our tunnel address of a family, if we have one. */
  localAddress(family: IpFamily): string | undefined;
  /** Resolves a name (or passes an IP through) for `send`, preferring an address we can reach. */
  resolve(host: string): Promise<string>;
  /** Throws a TunnelError when `host` cannot be reached; sends otherwise. */
  send(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  /** Delivers what arrives for `port` on our addresses to `listener`; throws EADDRINUSE if taken. Returns the unbind function. */
  bind(port: number, listener: UdpListener): () => void;
}

/** Where `connect` pointed a socket: what was asked, and its address (`endpoint` once resolved). */
interface ConnectedTo {
  asked: string;
  port: number;
  ready: Promise<Endpoint>;
  endpoint?: Endpoint;
}

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 16384;

/**
 * A UDP socket through the tunnel, from `tunnel.udp()`, used as a `node:dgram` socket is:
 * `bind(port?)` (a random port when omitted, or at the first `send`), `send(msg, port, host)`,
 * `'message'` events with `(msg, rinfo)`, `address()`, `close()`; `connect(port, host)` to
 * talk to one remote, then `send(msg)`, `remoteAddress()`, `disconnect()`. Failures come as
 * `'error'` (or to `send`'s and `connect`'s callbacks) with Node's codes. As on Linux, only a
 * connected socket hears of an ICMP error about its datagrams: an `'error'` with
 * `ECONNREFUSED` (no one listens there), `EHOSTUNREACH` or `ENETUNREACH`, and it stays open.
 */
export class TunnelUdpSocket extends EventEmitter {
  readonly #transport: UdpTransport;
  #port = 0;
  #unbind: (() => void) | undefined;
  #closed = false;
  #remote: ConnectedTo | undefined;

  /** @internal Made by `tunnel.udp()`. */
  constructor(transport: UdpTransport) {
    super();
    this.#transport = transport;
  }

  /** Binds to `port` (omitted or 0: a random free one) on our tunnel addresses; emits `'listening'`. Throws EADDRINUSE if taken. */
  bind(port = 0, onListening?: () => void): this {
    if (this.#closed) throw notRunning();
    if (this.#unbind) throw codedError("ERR_SOCKET_ALREADY_BOUND", "Socket is already bound");
    checkPort(port, true);
    const listener: UdpListener = {
      message: (data, from) => {
        // A connected socket takes datagrams from its remote only, as the kernel's does.
        if (this.#remote && !sameEndpoint(this.#remote.endpoint, from)) return;
        const family = parseIp(from.host)!.family === 4 ? "IPv4" : "IPv6";
        this.emit("message", Buffer.from(data.buffer, data.byteOffset, data.byteLength), { address: from.host, family, port: from.port, size: data.length });
      },
      unreachable: (to, code) => {
        if (!sameEndpoint(this.#remote?.endpoint, to)) return;
        this.emit("error", new TunnelError(code, `recvmsg ${code} ${endpointText(to)}`, { syscall: "recvmsg", address: to.host, port: to.port }));
      },
    };
    if (port !== 0) {
      this.#unbind = this.#transport.bind(port, listener);
      this.#port = port;
    } else {
      // A random ephemeral port (RFC 6056 3.3.1), the next one when it is taken.
      const start = Math.floor(Math.random() * EPHEMERAL_COUNT);
      for (let i = 0; i < EPHEMERAL_COUNT && !this.#unbind; i++) {
        const candidate = EPHEMERAL_FIRST + ((start + i) % EPHEMERAL_COUNT);
        try {
          this.#unbind = this.#transport.bind(candidate, listener);
          this.#port = candidate;
        } catch (error) {
          if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
        }
      }
      if (!this.#unbind) throw codedError("EADDRINUSE", "bind EADDRINUSE: no free UDP port in the tunnel", { syscall: "bind" });
    }
    if (onListening) this.once("listening", onListening);
    queueMicrotask(() => this.emit("listening"));
    return this;
  }

  /**
   * Points the socket at one remote, as `dgram`'s `connect`: `host` is resolved through the
   * tunnel, then `'connect'` is emitted (and `callback()` called). Afterwards `send(msg)`
   * goes there, only its datagrams arrive, and ICMP errors about ours come as `'error'`.
   * A failed resolve goes to `callback(error)`, else to `'error'`. Binds first if need be.
   */
  connect(port: number, host: string, callback?: (error?: Error) => void): this {
    if (this.#remote) throw alreadyConnected();
    checkPort(port);
    if (!this.#unbind) this.bind();
    const remote: ConnectedTo = { asked: host, port, ready: this.#transport.resolve(host).then((address) => ({ host: address, port })) };
    this.#remote = remote;
    if (callback) this.once("connect", callback);
    remote.ready.then(
      (endpoint) => {
        if (this.#remote !== remote) return; // disconnected or closed meanwhile
        remote.endpoint = endpoint;
        this.emit("connect");
      },
      (error: unknown) => {
        if (this.#remote !== remote) return;
        this.#remote = undefined;
        const coded = asTunnelError(error, { syscall: "connect", address: host, port });
        if (callback) {
          this.off("connect", callback);
          callback(coded);
        } else this.emit("error", coded);
      },
    );
    return this;
  }

  /** Forgets the remote `connect` set; throws ERR_SOCKET_DGRAM_NOT_CONNECTED if there is none. */
  disconnect(): void {
    if (!this.#remote) throw notConnected();
    this.#remote = undefined;
  }

  /** The remote `connect` set, as `dgram`'s `remoteAddress()`; throws ERR_SOCKET_DGRAM_NOT_CONNECTED before it is connected. */
  remoteAddress(): AddressInfo {
    const endpoint = this.#remote?.endpoint;
    if (!endpoint) throw notConnected();
    return { address: endpoint.host, family: parseIp(endpoint.host)!.family === 4 ? "IPv4" : "IPv6", port: endpoint.port };
  }

  /**
   * Sends one datagram to `host:port` through the tunnel (a name is resolved through the
   * tunnel's DNS), or on a connected socket to its remote (`send(msg, callback?)`); binds
   * first if need be. `callback(error)` is told how it went; without it a failure is an
   * `'error'` event.
   */
  send(message: Uint8Array | string, callback?: (error: Error | null) => void): void;
  send(message: Uint8Array | string, port: number, host: string, callback?: (error: Error | null) => void): void;
  send(
    message: Uint8Array | string,
    portOrCallback?: number | ((error: Error | null) => void),
    host?: string,
    maybeCallback?: (error: Error | null) => void,
  ): void {
    const data = typeof message === "string" ? new TextEncoder().encode(message) : message;
    const connected = typeof portOrCallback !== "number";
    const callback = connected ? portOrCallback : maybeCallback;
    const remote = this.#remote;
    if (this.#closed) throw notRunning();
    if (connected && !remote) throw notConnected();
    if (!connected && remote) throw alreadyConnected();
    const [port, asked] = remote ? [remote.port, remote.asked] : [portOrCallback as number, host!];
    const fail = (error: unknown) => {
      const coded = asTunnelError(error, { syscall: "send", address: asked, port });
      if (callback) callback(coded);
      else this.emit("error", coded);
    };
    checkPort(port);
    if (!this.#unbind) this.bind();
    (remote ? remote.ready.then((endpoint) => endpoint.host) : this.#transport.resolve(asked)).then(
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

  /** The bound port, as `dgram`'s `address()`; throws before `bind()` (EBADF, as getsockname on no port) and after `close()`. */
  address(): AddressInfo {
    if (this.#closed) throw notRunning();
    if (!this.#unbind) throw codedError("EBADF", "getsockname EBADF: the socket is not bound", { syscall: "getsockname" });
    const v4 = this.#transport.localAddress(4);
    const address = v4 ?? this.#transport.localAddress(6)!;
    return { address, family: v4 ? "IPv4" : "IPv6", port: this.#port };
  }

  /** Unbinds; emits `'close'`. */
  close(onClose?: () => void): this {
    if (this.#closed) return this;
    this.#closed = true;
    this.#remote = undefined;
    this.#unbind?.();
    if (onClose) this.once("close", onClose);
    queueMicrotask(() => this.emit("close"));
    return this;
  }
}

// Node's words and codes for a socket used out of turn.
function notRunning(): Error {
  return codedError("ERR_SOCKET_DGRAM_NOT_RUNNING", "Not running");
}

function notConnected(): Error {
  return codedError("ERR_SOCKET_DGRAM_NOT_CONNECTED", "Not connected");
}

function alreadyConnected(): Error {
  return codedError("ERR_SOCKET_DGRAM_IS_CONNECTED", "Already connected");
}
