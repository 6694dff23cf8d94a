// A single-producer, single-consumer ring of byte records in a SharedArrayBuffer: how the
// engine's thread and the main thread hand each other datagrams, commands and events without
// a postMessage per packet.
//
// Layout: a 256-byte header of Int32 slots (each on its own 64-byte line, so the two threads
// do not share a cache line for their counters), then the data area, a power of two in size.
// A record is its length (u32, little-endian), its bytes, and padding to 4. A record that
// does not fit before the end of the area leaves a WRAP marker and starts again at offset 0,
// so every record is contiguous and the reader can look at it in place.
//
// `head` (bytes ever written) and `tail` (bytes ever read) count up and wrap at 2^32; only
// the writer stores `head`, only the reader stores `tail`, each with Atomics.store after the
// plain writes of the data, which orders them for the other thread. A full ring refuses the
// write (`write` returns false): the caller keeps what it had and waits for room
// (`waitForRoom` / `roomAsync`), which the reader signals when it frees records. Nothing is
// ever dropped or reordered by the ring itself.
//
// Atomics.notify costs even when nobody waits (a tenth of the engine thread's time in a bulk
// download), so a side only signals when the other has announced a wait. A waiter counts
// itself in, then checks for data (or room), then sleeps on the signal's value read before
// the check; the other side publishes, then reads the count. All four are sequentially
// consistent, so either the waiter's check sees what was published or the publisher sees the
// waiter and bumps the signal (the sleep then returns at once or is woken).

/** Int32 slots of the header. */
const HEAD = 0;
const TAIL = 16;
/** Bumped by the writer when records were added and the reader sleeps on it. */
const DATA_SIGNAL = 32;
/** How many reader waits are under way: only then does the writer bump and notify. */
const DATA_WAITERS = 33;
/** Bumped by the reader when records were freed and a writer facing a full ring sleeps on it. */
const ROOM_SIGNAL = 48;
/** Writes refused for want of room, counted by the writer (on the reader's line: it is rare). */
const REFUSED = 49;
/** How many writer waits for room are under way. */
const ROOM_WAITERS = 50;
const HEADER_BYTES = 256;
/** A length no record has: "the rest of the area is empty, go on at 0". */
const WRAP = 0xffffffff;

const pad4 = (n: number) => (n + 3) & ~3;

/** `Atomics.waitAsync` (ES2024; V8 and JavaScriptCore have it), which the ES2022 typings lack. */
interface AtomicsWithWaitAsync {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
}

/** What waiting returned: data (or room) is there, or the time ran out. */
export type WaitResult = "ready" | "timed-out";

export class Ring {
  /** The shared memory: pass it to the other thread and build a Ring on it there. */
  readonly buffer: SharedArrayBuffer;
  /** The data area's size in bytes (a power of two). */
  readonly capacity: number;
  readonly #mask: number;
  readonly #state: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  /** A new, empty ring of `capacity` data bytes (rounded up to a power of two, at least 64). */
  static create(capacity: number): Ring {
    let size = 64;
    while (size < capacity) size *= 2;
    if (size > 1 << 30) throw new RangeError(`ring capacity ${capacity} is over 1 GiB`);
    return new Ring(new SharedArrayBuffer(HEADER_BYTES + size));
  }

  /** The ring another thread created, on its shared memory. */
  constructor(buffer: SharedArrayBuffer) {
    const size = buffer.byteLength - HEADER_BYTES;
    if (size < 64 || (size & (size - 1)) !== 0) throw new RangeError("not a ring's buffer: the data area must be a power of two");
    this.buffer = buffer;
    this.capacity = size;
    this.#mask = size - 1;
    this.#state = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#bytes = new Uint8Array(buffer, HEADER_BYTES, size);
    this.#view = new DataView(buffer, HEADER_BYTES, size);
  }

  /** The largest record a write takes: half the area, so that one always fits once the ring is empty. */
  get maxRecord(): number {
    return this.capacity / 2 - 4;
  }

  /** Bytes in use (records, their headers and padding, wrap gaps). */
  get used(): number {
    return (Atomics.load(this.#state, HEAD) - Atomics.load(this.#state, TAIL)) >>> 0;
  }

  /** How many writes the ring refused because it was full (each a writer that had to wait), ever. */
  get refused(): number {
    return Atomics.load(this.#state, REFUSED) >>> 0;
  }

  /** True when there is nothing to read. */
  get empty(): boolean {
    return Atomics.load(this.#state, HEAD) === Atomics.load(this.#state, TAIL);
  }

  /**
   * Writer side: adds a record of `len` bytes, which `fill` writes into `bytes` from `at`
   * (it must not throw, or the record is left half-written and not published). Returns false,
   * writing nothing, when the ring has no room: the caller keeps the data and waits for room.
   * Does not wake the reader: call `notify()` after a batch.
   */
  write(len: number, fill: (bytes: Uint8Array, at: number) => void): boolean {
    if (len > this.maxRecord) throw new RangeError(`record of ${len} bytes is over the ring's limit of ${this.maxRecord}`);
    const need = 4 + pad4(len);
    let head = Atomics.load(this.#state, HEAD) >>> 0;
    const tail = Atomics.load(this.#state, TAIL) >>> 0;
    let offset = head & this.#mask;
    const toEnd = this.capacity - offset;
    const wraps = need > toEnd;
    if (((head - tail) >>> 0) + (wraps ? toEnd + need : need) > this.capacity) {
      Atomics.add(this.#state, REFUSED, 1);
      return false;
    }
    if (wraps) {
      this.#view.setUint32(offset, WRAP, true);
      head = (head + toEnd) >>> 0;
      offset = 0;
    }
    this.#view.setUint32(offset, len, true);
    fill(this.#bytes, offset + 4);
    Atomics.store(this.#state, HEAD, (head + need) | 0);
    return true;
  }

  /** Writer side: adds a copy of `data` as one record; false when full (see `write`). */
  push(data: Uint8Array): boolean {
    return this.write(data.length, (bytes, at) => bytes.set(data, at));
  }

  /** Writer side: wakes the reader if it waits (once per batch of writes is enough). */
  notify(): void {
    this.#signal(DATA_SIGNAL, DATA_WAITERS);
  }

  /**
   * Reader side: calls `visit` with each record in order (at most `max`), then frees them and
   * wakes a writer waiting for room. The bytes are the ring's own, valid only during the
   * call: copy what you keep. Returns how many records it visited.
   */
  drain(visit: (bytes: Uint8Array, at: number, len: number) => void, max = Number.POSITIVE_INFINITY): number {
    const head = Atomics.load(this.#state, HEAD) >>> 0;
    let tail = Atomics.load(this.#state, TAIL) >>> 0;
    let count = 0;
    try {
      while (tail !== head && count < max) {
        const offset = tail & this.#mask;
        const len = this.#view.getUint32(offset, true);
        if (len === WRAP) {
          tail = (tail + this.capacity - offset) >>> 0;
          continue;
        }
        // Freed even if visit throws: a record that breaks its reader is not read twice.
        tail = (tail + 4 + pad4(len)) >>> 0;
        count++;
        visit(this.#bytes, offset + 4, len);
      }
    } finally {
      if (count > 0 || tail !== Atomics.load(this.#state, TAIL) >>> 0) {
        Atomics.store(this.#state, TAIL, tail | 0);
        this.#signal(ROOM_SIGNAL, ROOM_WAITERS);
      }
    }
    return count;
  }

  /** Reader side, blocking (a worker only): until there is a record, or `timeoutMs` passed. */
  waitForData(timeoutMs: number): WaitResult {
    return this.#wait(DATA_SIGNAL, DATA_WAITERS, () => !this.empty, timeoutMs);
  }

  /** Reader side, without blocking the thread: resolves when there may be a record, or after `timeoutMs`. */
  dataAsync(timeoutMs = Number.POSITIVE_INFINITY): Promise<WaitResult> {
    return this.#async(DATA_SIGNAL, DATA_WAITERS, () => !this.empty, timeoutMs);
  }

  /** Writer side, blocking (a worker only): until the reader freed something, or `timeoutMs` passed. */
  waitForRoom(bytes: number, timeoutMs: number): WaitResult {
    return this.#wait(ROOM_SIGNAL, ROOM_WAITERS, () => this.#hasRoom(bytes), timeoutMs);
  }

  /** Writer side, without blocking: resolves when the reader may have made room for a `bytes` record. */
  roomAsync(bytes: number, timeoutMs = Number.POSITIVE_INFINITY): Promise<WaitResult> {
    return this.#async(ROOM_SIGNAL, ROOM_WAITERS, () => this.#hasRoom(bytes), timeoutMs);
  }

  /** Room for a record of `len` bytes where the next one goes (wrapping if need be). */
  #hasRoom(len: number): boolean {
    const need = 4 + pad4(len);
    const head = Atomics.load(this.#state, HEAD) >>> 0;
    const toEnd = this.capacity - (head & this.#mask);
    return this.used + (need > toEnd ? toEnd + need : need) <= this.capacity;
  }

  /** The other side's half of a wait (see the top of the file): wake it only if it waits. */
  #signal(slot: number, waiters: number): void {
    if (Atomics.load(this.#state, waiters) === 0) return;
    Atomics.add(this.#state, slot, 1);
    Atomics.notify(this.#state, slot);
  }

  #wait(slot: number, waiters: number, ready: () => boolean, timeoutMs: number): WaitResult {
    Atomics.add(this.#state, waiters, 1);
    try {
      const seen = Atomics.load(this.#state, slot);
      if (ready()) return "ready";
      return Atomics.wait(this.#state, slot, seen, timeoutMs) === "timed-out" ? "timed-out" : "ready";
    } finally {
      Atomics.sub(this.#state, waiters, 1);
    }
  }

  #async(slot: number, waiters: number, ready: () => boolean, timeoutMs: number): Promise<WaitResult> {
    Atomics.add(this.#state, waiters, 1);
    const done = (value: WaitResult) => {
      Atomics.sub(this.#state, waiters, 1);
      return value;
    };
    const seen = Atomics.load(this.#state, slot);
    if (ready()) return Promise.resolve(done("ready"));
    const result = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(this.#state, slot, seen, timeoutMs);
    if (!result.async) return Promise.resolve(done(result.value === "timed-out" ? "timed-out" : "ready"));
    // Deno does not count a pending waitAsync as work: with nothing else pending its event loop
    // would end under it. A timer for the same time holds it open.
    const hold = Number.isFinite(timeoutMs) ? setTimeout(() => {}, timeoutMs + 1) : undefined;
    return result.value.then((value) => {
      if (hold !== undefined) clearTimeout(hold);
      return done(value === "timed-out" ? "timed-out" : "ready");
    });
  }
}
