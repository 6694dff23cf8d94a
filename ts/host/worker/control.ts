// Synchronous calls from the main thread into the engine's worker: `connect` returns an id,
// `stats()` a record, `addPeer` throws on a key the engine refuses. The caller writes a
// request into a shared block and waits for the answer in Atomics.wait (allowed on the main
// thread in Node, Deno and Bun); the worker answers from its event loop (Atomics.waitAsync).
// The worker never waits for the main thread, so the wait always ends.
//
// Block: Int32 slots for the request and answer numbers, then the message: a u32 length and
// JSON ({ op, args } or { value } / { error }).

const REQUEST = 0;
const ANSWER = 16;
const HEADER_BYTES = 128;
/** Requests are a little JSON; the largest answer is stats() of many peers. */
const MESSAGE_BYTES = 256 * 1024;
/** A worker that does not answer in this long is gone (it traps and exits, or was killed). */
const ANSWER_TIMEOUT_MS = 30_000;

/** A refusal or failure from the worker, rebuilt on the main thread. */
export interface RemoteError {
  name: string;
  message: string;
  code?: number;
}

export class ControlBlock {
  readonly buffer: SharedArrayBuffer;
  readonly #state: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  constructor(buffer = new SharedArrayBuffer(HEADER_BYTES + MESSAGE_BYTES)) {
    this.buffer = buffer;
    this.#state = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#bytes = new Uint8Array(buffer, HEADER_BYTES);
    this.#view = new DataView(buffer, HEADER_BYTES);
  }

  /** Main thread: runs `op` in the worker and returns its answer; throws what it threw (`rebuild` makes the Error). */
  call(op: string, args: unknown[], rebuild: (error: RemoteError) => Error): { value: unknown } {
    this.#write({ op, args });
    const number = (Atomics.load(this.#state, REQUEST) + 1) | 0;
    Atomics.store(this.#state, REQUEST, number);
    Atomics.notify(this.#state, REQUEST);
    const deadline = performance.now() + ANSWER_TIMEOUT_MS;
    while (Atomics.load(this.#state, ANSWER) !== number) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`the engine's worker did not answer ${op} in ${ANSWER_TIMEOUT_MS} ms`);
      Atomics.wait(this.#state, ANSWER, Atomics.load(this.#state, ANSWER), Math.min(left, 1000));
    }
    const answer = this.#read() as { value?: unknown; error?: RemoteError };
    if (answer.error) throw rebuild(answer.error);
    return { value: answer.value };
  }

  /** Worker: answers requests with `handle` until `stopped()`; resolves then. */
  async serve(handle: (op: string, args: unknown[]) => { value: unknown }, stopped: () => boolean): Promise<void> {
    const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: unknown } }).waitAsync;
    let answered = Atomics.load(this.#state, ANSWER);
    while (!stopped()) {
      const request = Atomics.load(this.#state, REQUEST);
      if (request === answered) {
        const wait = waitAsync(this.#state, REQUEST, request, 200);
        if (wait.async) await wait.value;
        continue;
      }
      const json = this.#read() as { op: string; args: unknown[] };
      try {
        const result = handle(json.op, json.args);
        this.#write({ value: result.value });
      } catch (error) {
        const e = error as { name?: string; message?: string; code?: unknown };
        this.#write({ error: { name: e?.name ?? "Error", message: e?.message ?? String(error), code: typeof e?.code === "number" ? e.code : undefined } });
      }
      answered = request;
      Atomics.store(this.#state, ANSWER, request);
      Atomics.notify(this.#state, ANSWER);
    }
  }

  /** Worker: wakes `serve` to look at `stopped()` again. */
  wake(): void {
    Atomics.notify(this.#state, REQUEST);
  }

  #write(json: unknown): void {
    const text = new TextEncoder().encode(JSON.stringify(json));
    if (4 + text.length > this.#bytes.length) throw new RangeError(`control message of ${text.length} bytes is too big`);
    this.#view.setUint32(0, text.length, true);
    this.#bytes.set(text, 4);
  }

  #read(): unknown {
    const textLen = this.#view.getUint32(0, true);
    // TextDecoder refuses views of shared memory: decode a copy.
    return JSON.parse(new TextDecoder().decode(this.#bytes.slice(4, 4 + textLen)));
  }
}
