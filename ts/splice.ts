// splice: relays a TcpConnection to a node:net socket and back until both are done.
//
// Each direction moves one chunk at a time and waits for the other side to take it, so
// a reader that stops reading stops the writer on the far side (TCP window or socket
// buffer) instead of growing memory here. A FIN is passed on as a FIN (half-close) and
// the other direction goes on; a reset on either side resets the other.

import type { Socket } from "node:net";
import type { TcpConnection } from "./host/tcp-connection.js";

/** Options for {@link splice}. */
export interface SpliceOptions {
  /**
   * Sees each chunk as it passes: `"up"` from the connection to the socket, `"down"`
   * from the socket to the connection. For looking (e.g. at a TLS ClientHello); it must
   * not keep or change the chunk, and must not throw.
   */
  onChunk?: (chunk: Uint8Array, direction: "up" | "down") => void;
  /** Aborting resets both sides and ends the splice with `"aborted"`. */
  signal?: AbortSignal;
}

/** How a splice ended, with the bytes it moved. */
export interface SpliceResult {
  /** Bytes from the connection to the socket. */
  up: number;
  /** Bytes from the socket to the connection. */
  down: number;
  /**
   * - `"closed"`: both sides sent FIN and everything was passed on: the socket took all the
   *   connection's data, and the client acknowledged all the socket's data and its FIN;
   * - `"connection-reset"`: the connection was reset or failed, so the socket was reset;
   * - `"socket-reset"`: the socket was reset (ECONNRESET, or EPIPE on a write after the
   *   reset was reported once, as Deno shows it), so the connection was reset;
   * - `"socket-error"`: the socket failed otherwise (see `error`), the connection was reset;
   * - `"aborted"`: the signal fired; both were reset.
   */
  end: "closed" | "connection-reset" | "socket-reset" | "socket-error" | "aborted";
  /** The error behind an end other than `"closed"` or `"aborted"`. */
  error?: Error;
}

/**
 * Relays `connection` to `socket` and back, with backpressure and half-close both ways,
 * until both directions have ended or one side resets. Resolves (never rejects) with the
 * byte counts and how it ended; by then both sides are closed or reset.
 *
 * A connection not accepted yet is accepted by the splice's first read, or refused if the
 * socket has already failed; a proxy usually accepts once its upstream socket connects.
 *
 * The socket must be made with `allowHalfOpen: true` (as `net.connect({ ..., allowHalfOpen: true })`),
 * else this throws a TypeError at once: Node would close it for writing when the far end
 * half-closes, and the rest of the client's data would be lost.
 *
 * @example
 * ```ts
 * onTcp: async (conn) => {
 *   const socket = net.connect({ ...conn.local, allowHalfOpen: true });
 *   await once(socket, "connect"); // a failure rejects the handler: the client is refused
 *   await conn.accept();
 *   const { up, down, end } = await splice(conn, socket);
 * }
 * ```
 */
export function splice(connection: TcpConnection, socket: Socket, options: SpliceOptions = {}): Promise<SpliceResult> {
  if (socket.allowHalfOpen !== true) {
    throw new TypeError("splice needs a socket made with allowHalfOpen: true, or half-closes are lost");
  }
  return new Promise((resolve) => new Splice(connection, socket, options, resolve).start());
}

class Splice {
  #up = 0;
  #down = 0;
  #upDone = false; // the connection's FIN was passed to the socket
  #socketEnded = false; // the socket's FIN arrived
  #downDone = false; // ... and was passed to the connection
  #connectionClosed = false; // the connection's FIN exchange is over, or it failed
  #finished = false;

  constructor(
    readonly connection: TcpConnection,
    readonly socket: Socket,
    readonly options: SpliceOptions,
    readonly resolve: (result: SpliceResult) => void,
  ) {}

  start(): void {
    const { socket, options } = this;
    if (options.signal?.aborted) return this.#abort();
    if (socket.destroyed) {
      // It failed before we started: its 'error' and 'close' have come and gone.
      return this.#onSocketError(socket.errored ?? Object.assign(new Error("socket closed before the splice began"), { code: "ECONNRESET" }));
    }
    options.signal?.addEventListener("abort", this.#abort);
    socket.on("data", this.#onSocketData);
    socket.on("end", this.#onSocketEnd);
    socket.on("error", this.#onSocketError);
    socket.on("close", this.#onSocketClose);
    // A reset while neither direction is waiting on the connection shows only here.
    this.connection.closed.then(() => this.#onConnectionClosed());
    void this.#pumpUp();
    // Its FIN came before we listened (a proxy's reply, then the target's FIN, read by dial).
    if (socket.readableEnded) this.#onSocketEnd();
  }

  /** Connection → socket: one chunk in flight; waits for the socket to drain. */
  async #pumpUp(): Promise<void> {
    for (;;) {
      let chunk: Uint8Array;
      try {
        chunk = await this.connection.read();
      } catch (error) {
        return this.#connectionFailed(error);
      }
      if (this.#finished) return;
      if (chunk.length === 0) {
        this.socket.end((error?: Error | null) => {
          if (error) return; // destroyed first: its 'close' (or 'error') ends the splice
          this.#upDone = true;
          this.#finishIfDone();
        });
        return;
      }
      this.#up += chunk.length;
      this.options.onChunk?.(chunk, "up");
      if (!this.socket.write(chunk)) await this.#socketDrained();
      if (this.#finished) return;
    }
  }

  #socketDrained(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /** Socket → connection: the socket stays paused while a write into the connection is pending. */
  readonly #onSocketData = (chunk: Uint8Array) => {
    this.#down += chunk.length;
    this.options.onChunk?.(chunk, "down");
    this.socket.pause();
    this.connection.write(chunk).then(
      () => {
        if (!this.#finished) this.socket.resume();
      },
      (error) => this.#connectionFailed(error),
    );
  };

  readonly #onSocketEnd = () => {
    this.#socketEnded = true;
    // Writes go out in order, so the FIN follows the data already queued.
    this.connection.end().then(
      () => {
        this.#downDone = true;
        this.#finishIfDone();
      },
      (error) => this.#connectionFailed(error),
    );
  };

  readonly #onSocketError = (error: Error & { code?: string }) => {
    if (this.#finished) return;
    this.connection.abort();
    this.#finish(error.code === "ECONNRESET" || error.code === "EPIPE" ? "socket-reset" : "socket-error", error);
  };

  readonly #onSocketClose = () => {
    // Closed without an error before both FINs went through: treat it as a reset. (A clean
    // close can come before the connection confirms the socket's FIN is queued.)
    if (!this.#finished && !(this.#upDone && this.#socketEnded)) {
      this.connection.abort();
      this.#finish("socket-reset", new Error("socket closed before the splice was done"));
    }
  };

  #onConnectionClosed(): void {
    if (this.#finished) return;
    this.#connectionClosed = true;
    // `errored`, not read(): a read here would take a chunk #pumpUp is about to pass on.
    const error = this.connection.errored;
    if (error) return this.#connectionFailed(error);
    // A clean close needs our FIN; without it, the socket's data can no longer be delivered.
    if (!this.#downDone) return this.#connectionFailed(new Error("connection closed before the socket's data was delivered"));
    // What the client sent is still queued in the connection: #pumpUp passes it on.
    this.#finishIfDone();
  }

  #connectionFailed(error: unknown): void {
    if (this.#finished) return;
    resetSocket(this.socket);
    this.#finish("connection-reset", error instanceof Error ? error : new Error(String(error)));
  }

  readonly #abort = () => {
    if (this.#finished) return;
    this.connection.abort();
    resetSocket(this.socket);
    this.#finish("aborted");
  };

  /** "closed" only once the client has acknowledged our FIN, and so every byte before it (RFC 9293 3.6). */
  #finishIfDone(): void {
    if (this.#upDone && this.#downDone && this.#connectionClosed) this.#finish("closed");
  }

  #finish(end: SpliceResult["end"], error?: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    const { socket } = this;
    socket.off("data", this.#onSocketData);
    socket.off("end", this.#onSocketEnd);
    socket.off("close", this.#onSocketClose);
    // Keep an error listener: a late error on a socket nobody listens to would crash the process.
    socket.off("error", this.#onSocketError);
    socket.on("error", () => {});
    this.options.signal?.removeEventListener("abort", this.#abort);
    this.resolve(error ? { up: this.#up, down: this.#down, end, error } : { up: this.#up, down: this.#down, end });
  }
}

/** RST when the runtime can (Node ≥ 18.3, Deno, Bun), else a plain close. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket.destroy();
}
