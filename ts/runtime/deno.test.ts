// Deno's native UDP adapter against a scripted stand-in for `Deno.listenDatagram`, so the
// failures a real socket rarely shows can be made to happen. (runtime.test.ts runs the
// real one under Deno.)

import { afterEach, describe, expect, it } from "vitest";
import { denoRuntime, MAX_QUEUED_SENDS, MAX_RECEIVE_FAILURES } from "./deno.js";
import { AddressInUseError } from "./types.js";

type Receive = { data: Uint8Array } | { error: Error };

/** Named like Deno's own error classes, which is what the adapter looks at. */
function denoError(name: string, message: string, code?: string): Error {
  return Object.assign(new Error(message), { name, code });
}

/** A fake connection whose receive() answers from a script, then waits. */
class FakeConn {
  readonly addr = { hostname: "127.0.0.1", port: 40000 };
  readonly script: Receive[] = [];
  closed = false;
  receives = 0;
  #waiting: ((value: Receive) => void) | undefined;

  push(item: Receive): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting) waiting(item);
    else this.script.push(item);
  }

  async receive(buffer?: Uint8Array): Promise<[Uint8Array, { hostname: string; port: number }]> {
    this.receives++;
    const item = this.script.shift() ?? (await new Promise<Receive>((resolve) => (this.#waiting = resolve)));
    if ("error" in item) throw item.error;
    // As Deno does: the datagram lands in the given buffer and comes back as a view of it.
    const view = (buffer ?? new Uint8Array(item.data.length)).subarray(0, item.data.length);
    view.set(item.data);
    return [view, { hostname: "10.9.9.9", port: 1234 }];
  }

  /** Datagrams handed to send(), in order; sends wait for completeSend() unless `sendAtOnce`. */
  readonly sent: Uint8Array[] = [];
  sendAtOnce = false;
  #sending: ((error?: Error) => void) | undefined;

  send(data: Uint8Array): Promise<number> {
    this.sent.push(data);
    if (this.sendAtOnce) return Promise.resolve(data.length);
    return new Promise((resolve, reject) => (this.#sending = (error) => (error ? reject(error) : resolve(data.length))));
  }

  /** Completes the send in flight, or fails it. */
  completeSend(error?: Error): void {
    const sending = this.#sending;
    this.#sending = undefined;
    sending?.(error);
  }

  close(): void {
    if (this.closed) throw denoError("BadResource", "Bad resource ID");
    this.closed = true;
    this.push({ error: denoError("Interrupted", "operation canceled") });
  }
}

const realDeno = (globalThis as { Deno?: unknown }).Deno;
afterEach(() => {
  (globalThis as { Deno?: unknown }).Deno = realDeno;
});

/** Binds through the adapter with `listen` standing in for `Deno.listenDatagram`. */
async function bind(listen: () => FakeConn) {
  (globalThis as { Deno?: unknown }).Deno = { listenDatagram: listen };
  const received: string[] = [];
  const reported: { error: Error; fatal: boolean }[] = [];
  const socket = await denoRuntime.bindUdp("127.0.0.1", 0, (data) => void received.push(new TextDecoder().decode(data)), (error, fatal) => void reported.push({ error, fatal }));
  return { socket, received, reported };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const text = (value: string) => ({ data: new TextEncoder().encode(value) });

describe("Deno UDP adapter", () => {
  it("rejects with AddressInUseError naming the address", async () => {
    const taken = denoError("AddrInUse", "Address already in use (os error 98)", "EADDRINUSE");
    const error = await bind(() => {
      throw taken;
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AddressInUseError);
    expect((error as Error).message).toBe("UDP 127.0.0.1:0 is already in use");
    expect((error as Error).cause).toBe(taken);
  });

  it("passes other bind errors through", async () => {
    const denied = denoError("PermissionDenied", "Requires net access");
    await expect(bind(() => { throw denied; })).rejects.toBe(denied);
  });

  it("reports a failed receive as not fatal and goes on receiving", async () => {
    const conn = new FakeConn();
    const failure = new Error("recv failed");
    conn.script.push(text("one"), { error: failure }, text("two"));
    const { socket, received, reported } = await bind(() => conn);
    await tick();
    expect(received).toEqual(["one", "two"]);
    expect(reported).toEqual([{ error: failure, fatal: false }]);
    await socket.close();
    await tick();
    expect(reported).toHaveLength(1);
    expect(conn.closed).toBe(true);
  });

  it("reports a socket closed under it as fatal, and close() still resolves", async () => {
    const conn = new FakeConn();
    const { socket, reported } = await bind(() => conn);
    conn.close();
    await tick();
    expect(reported).toHaveLength(1);
    expect(reported[0]!.fatal).toBe(true);
    expect(reported[0]!.error.name).toBe("Interrupted");
    const receives = conn.receives;
    await socket.close();
    await tick();
    expect(conn.receives).toBe(receives);
  });

  it("hands out each datagram as a copy of its own size", async () => {
    const conn = new FakeConn();
    const { received } = await bind(() => conn);
    for (const word of ["three", "one", "two"]) conn.push(text(word));
    await tick();
    // The receive buffer is reused: a view of it would show "two" as "twoee".
    expect(received).toEqual(["three", "one", "two"]);
  });

  it("sends one datagram at a time, in order, and drops what does not fit the queue", async () => {
    const conn = new FakeConn();
    const { socket } = await bind(() => conn);
    const to = { host: "10.9.9.9", port: 1234 };
    for (let i = 0; i < MAX_QUEUED_SENDS + 10; i++) socket.send(Uint8Array.of(i >> 8, i & 255), to);
    expect(conn.sent).toHaveLength(1);
    // A failed send is a lost datagram; the next one goes.
    conn.completeSend(new Error("send failed"));
    await tick();
    expect(conn.sent).toHaveLength(2);
    conn.sendAtOnce = true;
    conn.completeSend();
    await tick();
    // The one in flight, then a full queue behind it; the rest were dropped.
    const numbers = conn.sent.map((d) => (d[0]! << 8) | d[1]!);
    expect(numbers).toEqual(Array.from({ length: MAX_QUEUED_SENDS + 1 }, (_, i) => i));
    // The queue empties: it takes more.
    socket.send(Uint8Array.of(0xff, 0xff), to);
    await tick();
    expect(conn.sent).toHaveLength(MAX_QUEUED_SENDS + 2);
  });

  it(`gives up after ${MAX_RECEIVE_FAILURES} failed receives in a row instead of spinning`, async () => {
    const conn = new FakeConn();
    conn.script.push(...Array.from({ length: MAX_RECEIVE_FAILURES - 1 }, () => ({ error: new Error("again") })), text("ok"));
    conn.script.push(...Array.from({ length: MAX_RECEIVE_FAILURES + 5 }, () => ({ error: new Error("again") })));
    const { received, reported } = await bind(() => conn);
    await tick();
    // The datagram in between resets the count: the second run of failures is fatal on its 100th.
    expect(received).toEqual(["ok"]);
    expect(reported).toHaveLength(2 * MAX_RECEIVE_FAILURES - 1);
    expect(reported.map((r) => r.fatal).lastIndexOf(false)).toBe(2 * MAX_RECEIVE_FAILURES - 3);
    expect(reported.at(-1)!.fatal).toBe(true);
    expect(conn.script).toHaveLength(5); // it stopped receiving
  });
});
