// relay: moves bytes between a local socket and a tunnel socket, both ways, until both
// are done. Backpressure: a side whose peer will not take more is paused until 'drain'.
// A FIN is passed on as a FIN (end()) and the other direction goes on. How each side
// ended is learnt from its events ('end', 'error', 'close') and state (`readableEnded`,
// for a FIN that came before the relay listened), never from a read: an error or an
// early close on one side resets the other (issue 14's lesson).

import type { Duplex } from "node:stream";

export interface RelayResult {
  /** Bytes from the local client to the tunnel. */
  up: number;
  /** Bytes from the tunnel to the local client. */
  down: number;
  /**
   * - `"closed"`: both sides ended and closed cleanly (a tunnel side once the peer
   *   acknowledged our FIN, and so every byte before it);
   * - `"client-reset"`: the local side failed or closed early, so the tunnel side was reset;
   * - `"upstream-reset"`: the upstream was reset (ECONNRESET, or EPIPE on a write after the
   *   reset, as Deno reports it for a net.Socket), so the client was reset;
   * - `"upstream-error"`: the tunnel side failed otherwise;
   * - `"shutdown"`: the signal fired; both were reset.
   */
  end: "closed" | "client-reset" | "upstream-reset" | "upstream-error" | "shutdown";
  error?: Error;
}

/**
 * Relays `client` (a net.Socket made with `allowHalfOpen: true`) to `upstream` (a
 * connected TunnelSocket, also half-open) and back. Resolves (never rejects) once both
 * have closed. `early`: bytes the client sent before the relay began (read with a
 * proxy's handshake), passed on first and counted in `up`; handing them here rather
 * than unshift()ing them works even after the client's 'end' has come.
 */
export function relay(client: Duplex, upstream: Duplex, signal?: AbortSignal, early?: Uint8Array): Promise<RelayResult> {
  if (client.destroyed || upstream.destroyed) {
    // One side went before the relay could listen: its 'close' has come and gone.
    const end = client.destroyed ? "client-reset" : "upstream-reset";
    reset(client);
    reset(upstream);
    return Promise.resolve({ up: 0, down: 0, end, error: new Error("closed before the relay began") });
  }
  return new Promise((resolve) => {
    const counts = { up: 0, down: 0 };
    let outcome: Omit<RelayResult, "up" | "down"> | undefined;
    let open = 2;

    const fail = (end: RelayResult["end"], error?: Error) => {
      outcome ??= error ? { end, error } : { end };
      reset(client);
      reset(upstream);
    };
    if (early && early.length > 0) {
      counts.up += early.length;
      upstream.write(early);
    }
    const pipe = (from: Duplex, to: Duplex, count: "up" | "down") => {
      from.on("data", (chunk: Buffer) => {
        counts[count] += chunk.length;
        if (to.destroyed) return;
        if (!to.write(chunk)) {
          from.pause();
          to.once("drain", () => from.resume());
        }
      });
      // Writes go out in order: the FIN follows the data already queued.
      const passFin = () => {
        if (!to.destroyed) to.end();
      };
      // Its 'end' may have come and gone (a proxy's handshake read it): passed on all the same.
      if (from.readableEnded) passFin();
      else from.on("end", passFin);
    };
    pipe(client, upstream, "up");
    pipe(upstream, client, "down");

    client.on("error", (error: Error) => fail("client-reset", error));
    upstream.on("error", (error: Error) => fail(upstreamEnd(error), error));
    const onClose = (side: Duplex, end: RelayResult["end"]) => () => {
      // A clean close only after its FIN came in and ours went out; otherwise data was cut.
      if (!(side.readableEnded && side.writableFinished)) fail(end, new Error(`${end === "client-reset" ? "the local socket" : "the tunnel socket"} closed before the relay was done`));
      if (--open === 0) {
        signal?.removeEventListener("abort", abort);
        void acknowledged().then(() => resolve({ ...counts, ...(outcome ?? { end: "closed" }) }));
      }
    };
    // Both sides said 'close'; a tunnel side closes once our FIN is handed over, so "closed"
    // waits until the peer acknowledged it and everything before it (RFC 9293 3.6).
    const acknowledged = async () => {
      if (outcome) return;
      for (const [side, end] of [
        [client, "client-reset"],
        [upstream, "upstream-reset"],
      ] as const) {
        const error = await settledOf(side);
        if (error) outcome ??= { end: end === "upstream-reset" ? upstreamEnd(error) : end, error };
      }
    };
    client.on("close", onClose(client, "client-reset"));
    upstream.on("close", onClose(upstream, "upstream-reset"));
    const abort = () => fail("shutdown");
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort);
  });
}

/** ECONNRESET, or EPIPE on a write after the reset (as Deno reports it), is a reset; anything else an error. */
function upstreamEnd(error: Error & { code?: string }): "upstream-reset" | "upstream-error" {
  return error.code === "ECONNRESET" || error.code === "EPIPE" ? "upstream-reset" : "upstream-error";
}

/** A tunnel socket's `settled` (see TunnelSocket); other sockets are done at 'close'. */
function settledOf(socket: Duplex): Promise<Error | null> {
  return (socket as Duplex & { settled?: Promise<Error | null> }).settled ?? Promise.resolve(null);
}

/** RST when the socket can, else a plain close. */
export function reset(socket: Duplex): void {
  if (socket.destroyed) return;
  const resettable = socket as Duplex & { resetAndDestroy?: () => void };
  if (typeof resettable.resetAndDestroy === "function") resettable.resetAndDestroy();
  else socket.destroy();
}
