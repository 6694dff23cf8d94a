// A TCP connection that came out of (or goes into) the tunnel.
//
// A client's connection starts pending: its SYN waits until the handler accepts (or
// reads, writes, or returns), so a proxy can open its upstream first and refuse if that
// fails. Flow control both ways is real: the engine hands over only what fits the TCP
// window, and the window opens as you read (each read reports what it consumed), so a
// connection you do not read stops the client. The engine grants room in the send buffer
// as it frees up (TCP_WRITABLE); writes take it as it comes, and `write()` resolves when
// its last bytes are handed to the engine.
//
// Received data is handed over in as few pieces as it came in pumps: the engine reports each
// segment as its own event, and everything a pump brought for a connection goes to the
// reader as one chunk (read() takes all that waits), so a relay writes it to its socket
// with one system call instead of one per segment.

import type { CloseReason, Commands, TcpConnectionStats } from "../wasm/engine.js";
import { parseIp, type Endpoint } from "../ip.js";

/** What a connection needs from its server. */
export interface ConnectionLink {
  /** Writes a request for the next pump (and schedules one). */
  command(write: (commands: Commands) => void): void;
  stats(conn: number): TcpConnectionStats | undefined;
}

interface PendingWrite {
  data: Uint8Array;
  resolve(): void;
  reject(error: Error): void;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** An error from a connection, with a Node-style `code`. */
export class ConnectionError extends Error {
  constructor(
    message: string,
    /**
     * What happened, as Node names it: reset by the peer, refused, aborted by us, timed out,
     * written after close, or an ICMP host or net unreachable answering the connect.
     */
    readonly code: "ECONNRESET" | "ECONNREFUSED" | "ECONNABORTED" | "ETIMEDOUT" | "EPIPE" | "EHOSTUNREACH" | "ENETUNREACH",
  ) {
    super(message);
    this.name = "ConnectionError";
  }
}

/**
 * The error for how the engine says a connection ended (none for a clean close), with Node's
 * code. `remote`, the other end, names the ICMP of an unreachable: ICMPv6 for an IPv6 one
 * (ICMP, IPv4's, when not given).
 */
export function closeError(reason: CloseReason, remote?: Endpoint): ConnectionError | undefined {
  const v6 = remote !== undefined && parseIp(remote.host)?.family === 6;
  switch (reason) {
    case "closed":
      return undefined;
    case "reset":
      return new ConnectionError("connection reset by peer", "ECONNRESET");
    case "refused":
      return new ConnectionError("connection refused", "ECONNREFUSED");
    case "aborted":
      return new ConnectionError("connection aborted", "ECONNABORTED");
    case "timeout":
      return new ConnectionError("connection timed out", "ETIMEDOUT");
    // An ICMP destination unreachable answered our SYN (RFC 1122 4.2.3.9). The engine takes
    // ICMPv6's code 0 (RFC 4443 3.1) as net unreachable, its other codes as host unreachable.
    case "host-unreachable":
      return new ConnectionError(`no route to host (${v6 ? "ICMPv6 destination unreachable" : "ICMP host unreachable"})`, "EHOSTUNREACH");
    case "net-unreachable":
      return new ConnectionError(`network is unreachable (${v6 ? "ICMPv6 no route to destination" : "ICMP net unreachable"})`, "ENETUNREACH");
  }
}

/**
 * A TCP connection a client opened through the tunnel (or one `server.connect()` opened
 * towards a client). Read with `read()`, `for await`, or `readable`; write with
 * `write()` or `writable`.
 *
 * A client's connection is handed to `onTcp` as soon as its SYN arrives. The handshake
 * completes when you call `accept()`, or first read or write, or when the handler
 * returns (or its promise settles) — whichever comes first. `refuse()` turns it down.
 */
export class TcpConnection {
  /** The client's end: its tunnel address and port. */
  readonly remote: Endpoint;
  /** Our end: for a connection from a client, the destination it asked for. */
  readonly local: Endpoint;
  /** Public key (base64) of the peer the connection goes through. */
  readonly peer: string;

  readonly #id: number;
  readonly #link: ConnectionLink;
  #pending: boolean;
  #chunks: Uint8Array[] = [];
  #readers: Waiter<Uint8Array>[] = [];
  /** A hand-off to waiting readers is queued for when the pump's events are all in. */
  #handOffQueued = false;
  #eof = false;
  #writes: PendingWrite[] = [];
  /** Bytes the engine has room for and has not been sent yet. */
  #room = 0;
  #drains: Waiter<void>[] = [];
  #ending = false; // end() was called
  #finQueued = false;
  #closed = false;
  #error: Error | undefined;
  #whenClosed: Promise<void>;
  #markClosed!: () => void;
  #whenEstablished: Promise<void>;
  #established!: Waiter<void>;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  /** @internal Made by the server; `pending` for a client's SYN not answered yet. */
  constructor(id: number, link: ConnectionLink, remote: Endpoint, local: Endpoint, peer: string, pending: boolean) {
    this.#id = id;
    this.#link = link;
    this.remote = remote;
    this.local = local;
    this.peer = peer;
    this.#pending = pending;
    this.#whenClosed = new Promise((resolve) => (this.#markClosed = resolve));
    this.#whenEstablished = handled(new Promise((resolve, reject) => (this.#established = { resolve, reject })));
    if (!pending) this.#established.resolve();
  }

  /** Completes the handshake (sends the SYN-ACK); resolves once the connection is established. */
  accept(): Promise<void> {
    if (this.#pending && !this.#closed) {
      this.#pending = false;
      this.#link.command((c) => c.accept(this.#id));
    }
    return this.#whenEstablished;
  }

  /**
   * Turns the connection down before it is accepted: `"reset"` (the default) answers the
   * SYN with RST, as a closed port does; `"unreachable"` with ICMP host unreachable, as
   * a router that cannot reach the destination does. After `accept()` it does nothing.
   */
  refuse(how: "reset" | "unreachable" = "reset"): void {
    if (!this.#pending || this.#closed) return;
    this.#pending = false;
    this.#link.command((c) => c.refuse(this.#id, how));
  }

  /**
   * Resolves to the data received and not read yet, as one chunk (it waits for some); an
   * empty array means the client sent FIN (end of stream).
   */
  read(): Promise<Uint8Array> {
    this.acceptIfPending();
    // Readers are served in order: one already waiting gets the data first.
    if (this.#chunks.length > 0 && this.#readers.length === 0) return Promise.resolve(this.#takeAll());
    if (this.#readers.length === 0) {
      if (this.#error) return Promise.reject(this.#error);
      if (this.#eof || this.#closed) return Promise.resolve(new Uint8Array(0));
    }
    return new Promise((resolve, reject) => this.#readers.push({ resolve, reject }));
  }

  /** Queues data to send; resolves once all of it is handed to the TCP stack (it has room for it). */
  write(data: Uint8Array | string): Promise<void> {
    this.acceptIfPending();
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ending || this.#closed) {
      return Promise.reject(new ConnectionError("write after end", "EPIPE"));
    }
    if (bytes.length === 0) return Promise.resolve();
    const written = new Promise<void>((resolve, reject) => {
      this.#writes.push({ data: bytes, resolve, reject });
    });
    this.#flush();
    return handled(written);
  }

  /** Resolves once everything written so far has gone into the TCP stack. */
  drain(): Promise<void> {
    if (this.#writes.length === 0) return Promise.resolve();
    if (this.#error) return Promise.reject(this.#error);
    return handled(new Promise((resolve, reject) => this.#drains.push({ resolve, reject })));
  }

  /**
   * Sends FIN after the queued data (half-close); reading goes on. Resolves when the FIN is
   * queued; rejects (with `errored`, or EPIPE) if the connection ended before it could be.
   */
  end(): Promise<void> {
    this.acceptIfPending();
    if (!this.#ending && !this.#closed) {
      this.#ending = true;
      this.#flush();
    }
    if (this.#finQueued) return Promise.resolve();
    // Closed first: our FIN never went out, so the far end did not get a clean end of stream.
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.reject(new ConnectionError("connection closed before end()", "EPIPE"));
    return this.drain();
  }

  /** Graceful full close: FIN after queued data, received data discarded; resolves when the connection is closed. A connection not accepted yet is refused. */
  async close(): Promise<void> {
    if (this.#pending) {
      this.refuse();
      return this.#whenClosed;
    }
    if (!this.#closed) {
      this.#chunks = [];
      this.#eof = true;
      this.#settleReaders();
      this.#link.command((c) => c.discard(this.#id));
      await this.end().catch(() => {});
    }
    return this.#whenClosed;
  }

  /** Resets the connection (RST); pending reads and writes fail. A connection not accepted yet is refused. */
  abort(): void {
    if (this.#closed) return;
    if (this.#pending) return this.refuse();
    this.#fail(new ConnectionError("connection aborted", "ECONNABORTED"));
    this.#link.command((c) => c.abort(this.#id));
  }

  /** Resolves when the connection is fully closed (either way); `errored` then says which. */
  get closed(): Promise<void> {
    return this.#whenClosed;
  }

  /**
   * Why the connection failed (reset by the client, refused, aborted, timed out, or the
   * server stopped), as Node's `socket.errored`; `null` while it is open and after a clean
   * close (both FINs sent and acknowledged). Reading it consumes nothing: use it, not
   * `read()`, to learn how a connection ended while someone else may still be reading.
   */
  get errored(): Error | null {
    return this.#error ?? null;
  }

  /** Retransmissions, timeouts, round-trip time and window of this connection, while it is open. */
  stats(): TcpConnectionStats | undefined {
    return this.#closed ? undefined : this.#link.stats(this.#id);
  }

  /** The received data as a Web Stream (pull-based: it reads only as fast as you consume). */
  get readable(): ReadableStream<Uint8Array> {
    this.#readable ??= new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const chunk = await this.read();
          if (chunk.length === 0) controller.close();
          else controller.enqueue(chunk);
        },
        cancel: () => this.close(),
      },
      { highWaterMark: 0 },
    );
    return this.#readable;
  }

  /** A Web Stream that writes to the connection; closing it sends FIN. */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.end(),
      abort: () => this.abort(),
    });
    return this.#writable;
  }

  /** Yields received chunks until the client's FIN. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk.length === 0) return;
      yield chunk;
    }
  }

  // ---- called by the server ----

  /** @internal A pending connection is taken when it is first used, or when its handler returns. */
  acceptIfPending(): void {
    if (this.#pending) void this.accept();
  }

  /** @internal */
  onEstablished(): void {
    this.#established.resolve();
  }

  /**
   * @internal One segment's data. A waiting reader gets it, with the rest of the pump's, once
   * the pump's events are all handled (a microtask: the pump hands them over synchronously).
   */
  onData(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    if (this.#readers.length > 0 && !this.#handOffQueued) {
      this.#handOffQueued = true;
      queueMicrotask(() => this.#handOff());
    }
  }

  /** @internal */
  onEof(): void {
    this.#eof = true;
    this.#settleReaders();
  }

  /** @internal The engine has room for `room` more bytes. */
  onWritable(room: number): void {
    this.#room += room;
    this.#flush();
  }

  /** @internal */
  onClosed(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = false;
    const error = closeError(reason, this.remote);
    if (error) this.#fail(error);
    else {
      this.#eof = true;
      this.#settleReaders();
      this.#rejectWrites(new ConnectionError("connection closed", "EPIPE"));
    }
    this.#established.reject(this.#error ?? new ConnectionError("connection closed", "EPIPE"));
    this.#markClosed();
  }

  /** @internal The server stopped; the connection is gone. */
  onServerClosed(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = false;
    this.#fail(error);
    this.#established.reject(error);
    this.#markClosed();
  }

  #flush(): void {
    while (this.#writes.length > 0 && this.#room > 0 && !this.#closed) {
      const head = this.#writes[0]!;
      const data = head.data.subarray(0, this.#room);
      this.#room -= data.length;
      this.#link.command((c) => c.send(this.#id, data));
      if (data.length < head.data.length) {
        head.data = head.data.subarray(data.length);
        break; // the rest waits for room
      }
      this.#writes.shift();
      head.resolve();
    }
    if (this.#writes.length === 0) {
      if (this.#ending && !this.#finQueued && !this.#closed) {
        this.#finQueued = true;
        this.#link.command((c) => c.shutdown(this.#id));
      }
      for (const drain of this.#drains.splice(0)) drain.resolve();
    }
  }

  /** Gives waiting readers the data that waits (all of it to the first), then the end if it came. */
  #handOff(): void {
    this.#handOffQueued = false;
    while (this.#readers.length > 0 && this.#chunks.length > 0) this.#readers.shift()!.resolve(this.#takeAll());
    this.#settleReaders();
  }

  /** Everything received and not read, as one chunk, reported consumed (the window opens by as much). */
  #takeAll(): Uint8Array {
    const chunks = this.#chunks;
    this.#chunks = [];
    let data = chunks[0]!;
    if (chunks.length > 1) {
      let total = 0;
      for (const chunk of chunks) total += chunk.length;
      data = new Uint8Array(total);
      let at = 0;
      for (const chunk of chunks) {
        data.set(chunk, at);
        at += chunk.length;
      }
    }
    this.#consumed(data.length);
    return data;
  }

  #consumed(bytes: number): void {
    if (!this.#closed) this.#link.command((c) => c.consumed(this.#id, bytes));
  }

  /** Ends waiting reads (end of stream, or the error) once no data waits for them. */
  #settleReaders(): void {
    if (this.#chunks.length > 0 && this.#handOffQueued) return; // the hand-off settles them after the data
    for (const reader of this.#readers.splice(0)) {
      if (this.#error) reader.reject(this.#error);
      else reader.resolve(new Uint8Array(0));
    }
  }

  #rejectWrites(error: Error): void {
    for (const write of this.#writes.splice(0)) write.reject(error);
    for (const drain of this.#drains.splice(0)) drain.reject(error);
  }

  #fail(error: Error): void {
    this.#error ??= error;
    // Data that came before the failure, in the same pump, still goes to a reader that waited for it.
    if (this.#handOffQueued) this.#handOff();
    this.#chunks = [];
    this.#settleReaders();
    this.#rejectWrites(this.#error);
  }
}

/** Marks a promise as handled so a write nobody awaits cannot crash the process with an
 * unhandled rejection; whoever awaits it still sees the error. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
