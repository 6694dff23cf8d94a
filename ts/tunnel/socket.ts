// TunnelSocket: a TCP connection through the tunnel that behaves as a `net.Socket` does for
// the libraries that take one (pg, mysql2, ioredis, http.Agent, undici, tls.connect):
// connect later or at once, 'connect' then 'ready', half-close with allowHalfOpen, timeouts
// that only tell, the address properties.
//
// Flow control is the connection's own: data is read from the connection only while the
// readable side wants more (push() returned true), so a reader that stops closes the TCP
// window; writes complete when the TCP stack took the bytes, so `write()` returns false
// once writableHighWaterMark bytes wait.

import type { AddressInfo } from "node:net";
import { Duplex } from "node:stream";
import type { TcpConnection } from "../host/tcp-connection.js";
import { isDialName, parseIp } from "../ip.js";
import { abortError, asTunnelError, codedError, checkMilliseconds, checkPort, TunnelError, untilAborted } from "./errors.js";

/** What a socket needs from its tunnel. */
export interface Dialer {
  /**
   * Opens a connection to `host` (an IP or a name resolved through the tunnel), or fails with a
   * TunnelError; `resolved` hears the address a name resolved to, before the connect.
   */
  dial(host: string, port: number, family: 0 | 4 | 6, signal: AbortSignal, resolved: (address: string) => void): Promise<TcpConnection>;
  /** Milliseconds a connect may take when the caller gives no `timeout`. */
  connectTimeout: number;
}

/** Options of `tunnel.connect()` and `socket.connect()`, as `net.connect` takes them. */
export interface TunnelConnectOptions {
  /** The destination port. */
  port: number;
  /** An IP address in the tunnel's network, or a name resolved through the tunnel's DNS. */
  host: string;
  /** Only addresses of this family for a name: 4, 6, or 0 (default) for either. */
  family?: 0 | 4 | 6;
  /**
   * Milliseconds the connect may take before it fails with `ETIMEDOUT` (default: the tunnel's
   * `connectTimeout`); once connected it is the idle timeout of `setTimeout()`, as in `net`.
   */
  timeout?: number;
  /** Aborting it destroys the socket with an `AbortError` (code `ABORT_ERR`). */
  signal?: AbortSignal;
}

/** Options of `tunnel.socket()`. */
export interface TunnelSocketOptions {
  /** Keep the writable side open after the other end's FIN, as `net`'s option (default false: end it too). */
  allowHalfOpen?: boolean;
}

const FAMILY_NAMES = { 4: "IPv4", 6: "IPv6" } as const;

/**
 * A TCP connection through a tunnel, as a `stream.Duplex` that honours `net.Socket`'s contract.
 * Made by `tunnel.connect()`, or unconnected by `tunnel.socket()` for libraries that call
 * `connect(port, host)` themselves (pg's `stream` option). Errors carry Node's codes
 * (see `TUNNEL_ERROR_CODES`).
 */
export class TunnelSocket extends Duplex {
  readonly #dialer: Dialer;
  #connection: TcpConnection | undefined;
  #state: "new" | "connecting" | "open" | "closed" = "new";
  /** Settles when the connection is established, or fails if the socket closes first: writes and end() wait on it. */
  #whenOpen: Promise<void>;
  #opened!: (error?: Error) => void;
  #abortDial: AbortController | undefined;
  #reading = false;
  #wantsData = false;
  #resetOnDestroy = false;
  #bytesRead = 0;
  #bytesSent = 0;
  #timeout: number | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #referenced = true;

  /** @internal Made by `tunnel.connect()` and `tunnel.socket()`. */
  constructor(dialer: Dialer, options: TunnelSocketOptions = {}) {
    // 'close' is ours to emit (in _destroy), with net's hadError argument.
    super({ allowHalfOpen: options.allowHalfOpen ?? false, emitClose: false, autoDestroy: true, decodeStrings: true });
    this.#dialer = dialer;
    this.#whenOpen = new Promise((resolve, reject) => (this.#opened = (error) => (error ? reject(error) : resolve())));
    this.#whenOpen.catch(() => {}); // not unhandled when nothing waits; writes that wait hear it
  }

  /**
   * Dials through the tunnel, as `net.Socket#connect`: `connect(port, host, onConnect)` or
   * `connect({ port, host, timeout, signal, family }, onConnect)`. Emits `'connect'` and
   * `'ready'`, or `'error'` with a coded {@link TunnelError}. Bad arguments throw, as in `net`.
   */
  connect(options: TunnelConnectOptions, onConnect?: () => void): this;
  connect(port: number, host: string, onConnect?: () => void): this;
  connect(portOrOptions: number | TunnelConnectOptions, hostOrCallback?: string | (() => void), onConnect?: () => void): this {
    const options: TunnelConnectOptions =
      typeof portOrOptions === "object" && portOrOptions !== null ? portOrOptions : { port: portOrOptions, host: hostOrCallback as string };
    const callback = typeof hostOrCallback === "function" ? hostOrCallback : onConnect;
    checkConnectOptions(options);
    if (this.#state === "connecting") {
      // As net's, which hears it from connect(2): the socket fails, the first dial with it.
      this.destroy(new TunnelError("EALREADY", `connect EALREADY ${options.host}:${options.port}: the socket is already connecting`, { syscall: "connect", address: options.host, port: options.port }));
      return this;
    }
    // net would dial again from an open socket, and reconnect a closed one; ours are made once.
    if (this.#state === "open") throw codedError("EISCONN", "connect EISCONN: the socket is already connected", { syscall: "connect" });
    if (this.#state === "closed") throw codedError("ERR_SOCKET_CLOSED", "Socket is closed: make a new one with tunnel.socket()");
    this.#state = "connecting";
    if (callback) this.once("connect", callback);
    void this.#connect(options);
    return this;
  }

  async #connect(options: TunnelConnectOptions): Promise<void> {
    const abort = (this.#abortDial = new AbortController());
    const timeoutMs = options.timeout ?? this.#dialer.connectTimeout;
    const where = `${options.host}:${options.port}`;
    const timer = setTimeout(
      () => abort.abort(new TunnelError("ETIMEDOUT", `connect ETIMEDOUT ${where}: no answer within ${timeoutMs} ms`, { syscall: "connect", address: options.host, port: options.port })),
      timeoutMs,
    );
    const onUserAbort = () => abort.abort(abortError(options.signal!));
    if (options.signal?.aborted) onUserAbort();
    options.signal?.addEventListener("abort", onUserAbort, { once: true });
    try {
      // As net.Socket: 'lookup' once the name resolved, before the connect (which may fail).
      const lookup = (address: string) => {
        if (this.#state === "connecting") this.emit("lookup", null, address, parseIp(address)!.family, options.host);
      };
      const dialing = this.#dialer.dial(options.host, options.port, options.family ?? 0, abort.signal, lookup);
      const connection = await untilAborted(dialing, abort.signal).catch((error: unknown) => {
        // Given up (timeout, abort, destroy): a connection that opens later is reset.
        void dialing.then((late) => late.abort(), () => {});
        throw error;
      });
      if (this.#state !== "connecting") return connection.abort();
      if (options.timeout !== undefined) this.setTimeout(options.timeout);
      this.#attach(connection);
      this.emit("connect");
      this.emit("ready");
    } catch (error) {
      if (this.#state === "connecting") this.destroy(asTunnelError(error, { syscall: "connect", address: options.host, port: options.port }));
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onUserAbort);
      this.#abortDial = undefined;
    }
  }

  /** @internal An accepted connection (from `tunnel.listen()`), open from the start. */
  static accepted(dialer: Dialer, connection: TcpConnection, options: TunnelSocketOptions = {}): TunnelSocket {
    const socket = new TunnelSocket(dialer, options);
    socket.#attach(connection);
    return socket;
  }

  /** Takes an established connection: reads may start, writes waiting for it go out. */
  #attach(connection: TcpConnection): void {
    this.#connection = connection;
    this.#state = "open";
    // A reset while nobody reads (paused, or after the FIN) is still news, as in net; learnt
    // from `errored`, never by reading, so no data is taken from the reader.
    void connection.closed.then(() => {
      const error = connection.errored;
      if (error && !this.destroyed) this.destroy(asTunnelError(error, this.#where()));
    });
    this.#opened();
    this.#touch();
    if (this.#wantsData) this.#pull();
  }

  // ---- stream.Duplex ----

  /** @internal */
  override _read(): void {
    this.#wantsData = true;
    if (this.#state === "open") this.#pull();
  }

  /** Reads while the readable side wants more; the one reader of the connection. */
  async #pull(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    const connection = this.#connection!;
    try {
      for (;;) {
        const chunk = await connection.read();
        if (this.destroyed) return;
        if (chunk.length === 0) {
          this.push(null); // the other end's FIN
          return;
        }
        this.#bytesRead += chunk.length;
        this.#touch();
        if (!this.push(chunk)) {
          this.#wantsData = false;
          return;
        }
      }
    } catch (error) {
      this.destroy(asTunnelError(error, this.#where()));
    } finally {
      this.#reading = false;
    }
  }

  /**
   * As `stream.Duplex#write`, but once the other end's FIN has ended our side too (no
   * `allowHalfOpen`) a write fails with EPIPE and destroys the socket, as net's does, instead
   * of the stream's ERR_STREAM_WRITE_AFTER_END.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | ((error?: Error | null) => void), callback?: (error?: Error | null) => void): boolean {
    if (this.allowHalfOpen || !this.readableEnded || !this.writableEnded) return super.write(chunk, encoding as BufferEncoding, callback);
    const error = new TunnelError("EPIPE", "This socket has been ended by the other party", { syscall: "write", ...this.#where() });
    const done = typeof encoding === "function" ? encoding : callback;
    if (done) process.nextTick(done, error);
    this.destroy(error);
    return false;
  }

  /** @internal */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map(({ chunk }) => chunk));
    this.#onceOpen(async (connection) => {
      await connection.write(data);
      this.#bytesSent += data.length;
      this.#touch();
    }, callback);
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    // A FIN after what was written (half-close); reading goes on.
    this.#onceOpen((connection) => connection.end(), callback);
  }

  /**
   * Does `work` on the connection once it is open and tells `callback` how it went: the
   * tunnel's error, or the one a socket closed before it connected gets.
   */
  #onceOpen(work: (connection: TcpConnection) => Promise<void>, callback: (error?: Error | null) => void): void {
    this.#whenOpen.then(
      () =>
        work(this.#connection!).then(
          () => callback(),
          (error: unknown) => callback(asTunnelError(error, this.#where())),
        ),
      callback,
    );
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#state = "closed";
    this.#clearIdleTimer();
    this.#abortDial?.abort(error ?? new TunnelError("ECONNABORTED", "socket destroyed while connecting", { syscall: "connect" }));
    // As net's: writes held for a connection that never came fail with this, not the connect's error.
    this.#opened(codedError("ERR_SOCKET_CLOSED_BEFORE_CONNECTION", "Socket closed before the connection was established"));
    const connection = this.#connection;
    if (connection) {
      // As closing a kernel socket: FIN after what was handed over, or RST when asked to.
      if (this.#resetOnDestroy) connection.abort();
      else void connection.close();
    }
    callback(error);
    // After the 'error' the callback schedules, as net's.
    process.nextTick(() => this.emit("close", Boolean(error)));
  }

  // ---- net.Socket ----

  /**
   * Ends the writable side and destroys the socket once that end is done, without waiting
   * for the other end's FIN, as `net.Socket#destroySoon` (http's server and client call it
   * for `Connection: close`; without it they only end()).
   */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once("finish", () => this.destroy());
  }

  /** Closes with a reset (RST) instead of FIN, as `net.Socket#resetAndDestroy`. */
  resetAndDestroy(): this {
    this.#resetOnDestroy = true;
    return this.destroy();
  }

  /** Emits `'timeout'` after `ms` without data either way, connecting included (0 turns it off); it does not close the socket, as in `net`. */
  setTimeout(ms: number, onTimeout?: () => void): this {
    checkMilliseconds(ms, "timeout", true);
    this.#timeout = ms;
    if (onTimeout) {
      if (ms === 0) this.off("timeout", onTimeout);
      else this.once("timeout", onTimeout);
    }
    this.#touch();
    return this;
  }

  /** The idle timeout `setTimeout()` set, in ms (0: none); undefined until it is called, as `net.Socket#timeout`. */
  get timeout(): number | undefined {
    return this.#timeout;
  }

  /** Accepted for compatibility: segments already go out as soon as the window allows (no Nagle delay here). */
  setNoDelay(_noDelay = true): this {
    return this;
  }

  /** Accepted for compatibility: keep-alive probes follow the tunnel's `tcpKeepalive` setting. */
  setKeepAlive(_enable = false, _initialDelay = 0): this {
    return this;
  }

  /**
   * @internal Settles once the tunnel connection is gone: with `null` when it closed cleanly,
   * the peer having acknowledged every byte and the FIN we sent (RFC 9293 3.6), else with the
   * error that ended it. `'close'` comes earlier, once our FIN is handed over (as a
   * `net.Socket`'s does), so a relay waits on this before it calls a flow "closed".
   */
  get settled(): Promise<Error | null> {
    const connection = this.#connection;
    if (!connection) return Promise.resolve(new TunnelError("ECONNABORTED", "the socket never connected", { syscall: "connect" }));
    return connection.closed.then(() => {
      const error = connection.errored;
      return error ? asTunnelError(error, this.#where()) : null;
    });
  }

  /** Lets the process exit while only this socket's idle timer is pending, as `net.Socket#unref` (the tunnel itself stays referenced until closed). */
  unref(): this {
    this.#referenced = false;
    (this.#idleTimer as { unref?: () => void } | undefined)?.unref?.();
    return this;
  }

  /** Undoes {@link unref}. */
  ref(): this {
    this.#referenced = true;
    (this.#idleTimer as { ref?: () => void } | undefined)?.ref?.();
    return this;
  }

  /** True unless connected: not yet dialed, dialing, or closed again, as `net.Socket#pending` (true whenever it has no handle). */
  get pending(): boolean {
    return this.#state !== "open";
  }

  /** True while dialing. */
  get connecting(): boolean {
    return this.#state === "connecting";
  }

  /** `'opening'`, `'open'`, `'readOnly'`, `'writeOnly'` or `'closed'`, as `net.Socket#readyState`. */
  get readyState(): "opening" | "open" | "readOnly" | "writeOnly" | "closed" {
    if (this.#state === "new" || this.#state === "connecting") return "opening";
    if (this.#state === "closed" || this.destroyed) return "closed";
    if (this.readable && this.writable) return "open";
    if (this.readable) return "readOnly";
    if (this.writable) return "writeOnly";
    return "closed";
  }

  /** Bytes waiting to be written, from `connect()` until closed (else undefined), as `net.Socket#bufferSize`; deprecated there for `writableLength`, kept for code written against it. */
  get bufferSize(): number | undefined {
    return this.#state === "connecting" || this.#state === "open" ? this.writableLength : undefined;
  }

  /** Bytes received. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Bytes written: handed to the TCP stack, or still waiting in the stream (`writableLength`), as net.Socket counts them. */
  get bytesWritten(): number {
    return this.#bytesSent + this.writableLength;
  }

  /** The destination's address (an IP), once connected. */
  get remoteAddress(): string | undefined {
    return this.#connection?.remote.host;
  }

  /** The destination port, once connected. */
  get remotePort(): number | undefined {
    return this.#connection?.remote.port;
  }

  /** `'IPv4'` or `'IPv6'`, once connected. */
  get remoteFamily(): "IPv4" | "IPv6" | undefined {
    return this.#family(this.#connection?.remote.host);
  }

  /** Our tunnel address, once connected. */
  get localAddress(): string | undefined {
    return this.#connection?.local.host;
  }

  /** Our port, once connected. */
  get localPort(): number | undefined {
    return this.#connection?.local.port;
  }

  /** `'IPv4'` or `'IPv6'`, once connected. */
  get localFamily(): "IPv4" | "IPv6" | undefined {
    return this.#family(this.#connection?.local.host);
  }

  /** Our end as `net.Socket#address()` gives it; `{}` before connecting. */
  address(): AddressInfo | Record<string, never> {
    const local = this.#connection?.local;
    return local ? { address: local.host, family: this.#family(local.host)!, port: local.port } : {};
  }

  #family(host: string | undefined): "IPv4" | "IPv6" | undefined {
    const ip = host === undefined ? undefined : parseIp(host);
    return ip && FAMILY_NAMES[ip.family];
  }

  #where() {
    return { address: this.remoteAddress, port: this.remotePort };
  }

  /** Activity: the idle timer starts over. */
  #touch(): void {
    this.#clearIdleTimer();
    // It runs while connecting too, as net's: http.get's `timeout` option counts on that.
    if (!this.#timeout || this.#state === "closed") return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.emit("timeout");
    }, this.#timeout);
    if (!this.#referenced) (this.#idleTimer as { unref?: () => void }).unref?.();
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }
}

function checkConnectOptions(options: TunnelConnectOptions): void {
  const { port, host, family, timeout } = options;
  checkPort(port);
  if (typeof host !== "string") throw codedError("ERR_INVALID_ARG_TYPE", `host must be a string, got ${typeof host}`, { Class: TypeError });
  // Stricter than net, which would look such a name up and fail later with ENOTFOUND.
  if (!(parseIp(host) || isDialName(host))) {
    throw codedError("ERR_INVALID_ARG_VALUE", `host must be an IP address or a host name in the tunnel's network, got ${JSON.stringify(host)}`, { Class: TypeError });
  }
  if (family !== undefined && family !== 0 && family !== 4 && family !== 6) throw codedError("ERR_INVALID_ARG_VALUE", `family must be 0, 4 or 6, got ${String(family)}`, { Class: TypeError });
  if (timeout !== undefined) checkMilliseconds(timeout, "timeout", false);
}
