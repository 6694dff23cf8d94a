// The main thread's side of `threads: 1`: an object with the calls the Server makes on an
// Engine, backed by the engine's worker (engine-worker.ts). Commands are written with the
// generated writers into a plain buffer and shipped as ring records at each pump (UDP sends,
// pings and keepalives among them: a datagram costs no round trip to the worker); events
// come back as records and are read with the generated readEvent (EventReader); the calls
// that answer at once go through the control block.

import { AddressInUseError } from "../../runtime/types.js";
import { startWorker, type WorkerHandle } from "../../runtime/worker.js";
import type { Endpoint, Ip } from "../../ip.js";
import { Commands, EngineError, EventReader, type EngineStats, type EventHandler, type TcpConnectionStats } from "../../wasm/engine.js";
import { ControlBlock, type RemoteError } from "./control.js";
import { RECORD, type WorkerConfig, type WorkerMessage } from "./protocol.js";
import { Ring } from "./ring.js";

/** Each ring's data area: 4 MiB, a TCP window's worth of events or commands in one go. */
export const RING_BYTES = 4 * 1024 * 1024;

/**
 * @internal The size of the rings the next threaded servers get. Tests make it small, so that
 * an ordinary transfer finds its rings full again and again. At least 256 KiB: a record of
 * up to half the ring must hold a whole UDP datagram's event.
 */
export const ringSize = { bytes: RING_BYTES };

/** Datagrams the worker keeps while the events ring is full: past these it drops them, counted as `queueFull`. */
export const INBOUND_DATAGRAMS = 8192;

/** @internal How many datagrams the next threaded servers' workers keep while paused. Tests make it small. */
export const inboundQueue = { datagrams: INBOUND_DATAGRAMS };

/** Command bytes waiting for room in the ring past which the datagrams the user sends are dropped. */
export const BACKLOG_BYTES = 1024 * 1024;

/** The worker's module: from ts/host/worker/ and from dist/host/worker/ alike, the built one. */
const WORKER_URL = new URL("../../../dist/host/worker/engine-worker.js", import.meta.url);

export class ThreadedEngine {
  readonly commands: Commands;
  readonly address: Endpoint;
  readonly publicKeyBytes: Uint8Array;
  readonly peerIds: number[];
  readonly #worker: WorkerHandle;
  readonly #toWorker: Ring;
  readonly #toMain: Ring;
  readonly #control: ControlBlock;
  /** Command bytes shipped in ring records at most this big. */
  readonly #chunk: number;
  /** Command batches that did not fit in the ring yet (the worker is behind), in order. */
  readonly #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Datagrams the user sent that takesDatagram() refused. */
  #datagramsDropped = 0;
  #waitingForRoom = false;
  #memory = new ArrayBuffer(4096);
  #stderr = "";
  #gone = false;
  #exited: Promise<void>;
  #onFailure: (error: Error) => void = () => {};

  /** Starts the worker and waits until its socket is bound. */
  static async start(config: WorkerConfig): Promise<ThreadedEngine> {
    if (ringSize.bytes < 256 * 1024) throw new RangeError(`rings of ${ringSize.bytes} bytes cannot carry a 64 KiB datagram's event`);
    const toWorker = Ring.create(ringSize.bytes);
    const toMain = Ring.create(ringSize.bytes);
    const control = new ControlBlock();
    const worker = startWorker(WORKER_URL, { config, inboundLimit: inboundQueue.datagrams, toWorker: toWorker.buffer, toMain: toMain.buffer, control: control.buffer });
    const messages: ((message: WorkerMessage) => void)[] = [];
    worker.onMessage((message) => messages[0]?.(message as WorkerMessage));
    const exited = new Promise<void>((resolve) => worker.onExit(() => resolve()));
    const first = await new Promise<WorkerMessage>((resolve, reject) => {
      messages.push(resolve);
      worker.onError(reject);
      void exited.then(() => reject(new Error("the engine's worker exited while starting")));
    });
    messages.length = 0;
    if (first.kind !== "ready") {
      await worker.terminate();
      if (first.kind === "start-failed" && first.code === "EADDRINUSE") throw new AddressInUseError(config.host, config.port, new Error(first.message));
      if (first.kind === "peer-refused") throw Object.assign(new Error(first.message), { peerIndex: first.index });
      throw new Error(`the engine's worker did not start: ${"message" in first ? first.message : first.kind}`);
    }
    return new ThreadedEngine(worker, toWorker, toMain, control, first, exited, messages);
  }

  private constructor(
    worker: WorkerHandle,
    toWorker: Ring,
    toMain: Ring,
    control: ControlBlock,
    ready: Extract<WorkerMessage, { kind: "ready" }>,
    exited: Promise<void>,
    listeners: ((message: WorkerMessage) => void)[],
  ) {
    this.#worker = worker;
    this.#toWorker = toWorker;
    this.#toMain = toMain;
    this.#control = control;
    this.#chunk = Math.min(256 * 1024, toWorker.maxRecord - 1);
    this.address = ready.address;
    this.publicKeyBytes = ready.publicKey;
    this.peerIds = ready.peerIds;
    this.#exited = exited.then(() => {
      this.#gone = true;
      // Wakes the Server's wait for events, which then sees it is closed and ends.
      toMain.notify();
    });
    this.commands = new Commands({
      grow: (capacity, used) => {
        const memory = new ArrayBuffer(capacity);
        new Uint8Array(memory).set(new Uint8Array(this.#memory, 0, used));
        this.#memory = memory;
        return 0;
      },
      buffer: () => this.#memory,
    });
    listeners.push((message) => {
      if (message.kind === "failed") {
        this.#stderr = message.stderr;
        this.#onFailure(new Error(message.message));
      }
    });
    worker.onError((error) => this.#onFailure(error));
    void exited.then(() => this.#onFailure(new Error("the engine's worker exited")));
  }

  /** Called once when the worker fails (a trap, an uncaught error, an exit we did not ask for). */
  set onFailure(listener: (error: Error) => void) {
    let called = false;
    this.#onFailure = (error) => {
      if (called) return;
      called = true;
      listener(error);
    };
  }

  /** What the engine printed before it failed. */
  get stderr(): string {
    return this.#stderr;
  }

  get memoryBytes(): number {
    return this.#call("memoryBytes", []).value as number;
  }

  /** @internal How often each ring was full when written to (its writer waited for room). */
  get ringsRefused(): { commands: number; events: number } {
    return { commands: this.#toWorker.refused, events: this.#toMain.refused };
  }

  /** @internal Tests: calls the worker's engine's wgn_scratch (a size too big for memory traps it). */
  scratch(size: number): void {
    this.#call("scratch", [size]);
  }

  /** True when the worker has sent events not taken yet. */
  get eventsPending(): boolean {
    return !this.#toMain.empty;
  }

  /** Resolves when there may be events to take (or after `timeoutMs`). */
  eventsReady(timeoutMs: number): Promise<unknown> {
    return this.#toMain.dataAsync(timeoutMs);
  }

  /**
   * Ships the commands written since the last call; the worker pumps on its own clock.
   * Returns Infinity: the worker keeps the engine's deadlines.
   */
  pump(_nowMs: number, datagrams: readonly unknown[]): number {
    if (datagrams.length > 0) throw new Error("a threaded engine takes no datagrams: its socket is in the worker");
    const len = this.commands.take();
    let wrote = false;
    if (len > 0) {
      // Straight from the command buffer into the ring when nothing waits before it; only
      // what does not fit is copied aside (the buffer is written over from the next command on).
      const batch = new Uint8Array(this.#memory, 0, len);
      const rest = this.#pending.length === 0 ? this.#ship(batch) : batch;
      wrote = rest.length < batch.length;
      if (rest.length > 0) {
        this.#pending.push(rest.slice());
        this.#pendingBytes += rest.length;
      }
    }
    if (this.#flush() || wrote) this.#toWorker.notify();
    return Number.POSITIVE_INFINITY;
  }

  /**
   * Writes the rest of a batch into the ring, in records of at most `#chunk` bytes, the last
   * one marked as the batch's end; returns what did not fit (empty when all did).
   */
  #ship(batch: Uint8Array): Uint8Array {
    let at = 0;
    while (at < batch.length) {
      const part = batch.subarray(at, at + this.#chunk);
      // The worker keeps the chunks of a batch and applies it when its last one arrives.
      const kind = at + part.length === batch.length ? RECORD.COMMANDS_END : RECORD.COMMANDS;
      if (!this.#toWorker.write(part.length + 1, (bytes, offset) => ((bytes[offset] = kind), bytes.set(part, offset + 1)))) break;
      at += part.length;
    }
    return batch.subarray(at);
  }

  /** Ships the batches that waited for room, in order; true if it wrote any. When the ring is full again, tries again once the worker has taken some (the connections' room bounds this). */
  #flush(): boolean {
    let wrote = false;
    while (this.#pending.length > 0) {
      const batch = this.#pending[0]!;
      const rest = this.#ship(batch);
      this.#pendingBytes -= batch.length - rest.length;
      if (rest.length < batch.length) wrote = true;
      if (rest.length > 0) {
        this.#pending[0] = rest;
        if (!this.#waitingForRoom) {
          this.#waitingForRoom = true;
          void this.#toWorker.roomAsync(Math.min(rest.length, this.#chunk) + 1, 100).then(() => {
            this.#waitingForRoom = false;
            if (!this.#gone && this.#flush()) this.#toWorker.notify();
          });
        }
        break;
      }
      this.#pending.shift();
    }
    return wrote;
  }

  /** Hands the events the worker sent to `handler`, in order. */
  takeEvents(handler: EventHandler): void {
    const reader = new EventReader(handler);
    this.#toMain.drain((bytes, at) => reader.read(bytes, at));
  }

  addPeer(publicKey: Uint8Array, presharedKey: Uint8Array | undefined, persistentKeepalive: number, endpoint: Endpoint | undefined): number {
    return this.#call("addPeer", [Array.from(publicKey), presharedKey ? Array.from(presharedKey) : null, persistentKeepalive, endpoint ?? null]).value as number;
  }

  allow(peer: number, ip: Ip, prefix: number): void {
    this.#call("allow", [peer, { family: ip.family, bytes: Array.from(ip.bytes) }, prefix]);
  }

  removePeer(publicKey: Uint8Array): number {
    return this.#call("removePeer", [Array.from(publicKey)]).value as number;
  }

  tcpConnect(_nowMs: number, local: Endpoint, remote: Endpoint): { id: number; local: Endpoint } {
    return this.#call("tcpConnect", [local, remote]).value as { id: number; local: Endpoint };
  }

  /**
   * Whether a datagram the user sends now (UDP, a ping) is to go: not while the commands
   * waiting for room in the ring pass BACKLOG_BYTES, the worker being behind. One that does
   * not is dropped and counted (stats().dropped.queueFull), as a full socket buffer drops
   * it: a flood faster than the worker can encrypt and send must not grow this queue without
   * bound. TCP's commands are never dropped; the connections' room bounds them.
   */
  takesDatagram(): boolean {
    if (this.#pendingBytes <= BACKLOG_BYTES) return true;
    this.#datagramsDropped++;
    return false;
  }

  /** @internal Command bytes waiting for room in the ring. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  stats(): EngineStats {
    const stats = this.#call("stats", []).value as EngineStats;
    stats.dropped.queueFull = (stats.dropped.queueFull ?? 0) + this.#datagramsDropped;
    return stats;
  }

  tcpStats(conn: number): TcpConnectionStats {
    return this.#call("tcpStats", [conn]).value as TcpConnectionStats;
  }

  /** Sends the last commands, then asks the worker to close its socket and exit; resolves once it has. */
  async stop(): Promise<void> {
    if (!this.#gone) {
      this.#onFailure = () => {};
      // STOP goes after every command still waiting for room (close()'s aborts among them, whose
      // RSTs the clients are owed): the worker takes what is ahead of them. 2 s at most.
      const deadline = performance.now() + 2000;
      let stopped = false;
      while (!this.#gone && performance.now() < deadline) {
        if (this.#flush()) this.#toWorker.notify();
        if (this.#pending.length === 0 && this.#toWorker.write(1, (bytes, at) => (bytes[at] = RECORD.STOP))) {
          this.#toWorker.notify();
          stopped = true;
          break;
        }
        await this.#toWorker.roomAsync(this.#pending.length > 0 ? Math.min(this.#pending[0]!.length, this.#chunk) + 1 : 1, 100);
      }
      if (stopped) {
        const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref?.());
        await Promise.race([this.#exited, timeout]);
      }
      if (!this.#gone) await this.#worker.terminate();
    }
    await this.#exited;
  }

  #call(op: string, args: unknown[]): { value: unknown } {
    if (this.#gone) throw new Error("the engine's worker has exited");
    return this.#control.call(op, args, rebuild);
  }
}

function rebuild(error: RemoteError): Error {
  if (error.name === "EngineError" && error.code !== undefined) return new EngineError(error.code, error.message);
  if (error.name === "TypeError") return new TypeError(error.message);
  if (error.name === "RuntimeError") return new WebAssembly.RuntimeError(error.message);
  return new Error(error.message);
}
