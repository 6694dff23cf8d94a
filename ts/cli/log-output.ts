// The command's lines on stdout and stderr (the flow log, the up line, errors), written so that
// a reader who stops reading cannot stop the process.
//
// A reader that stays but does not read (`| less` past its screen, a stalled CI log streamer,
// a terminal held with Ctrl-S) lets the pipe fill, and then a write to it may block the event
// loop, and with it every tunnel, proxy and timer: Deno's process.stdout and stderr write
// synchronously, and Node's do once the descriptor is in blocking mode — which starting a
// child that shares it (`connect -- COMMAND`) brings about: libuv clears O_NONBLOCK on the
// child's stdio, a flag of the description both hold. Here each line is queued and written
// by an asynchronous write (Node and Bun: `fs.write`, a thread of the pool, which may block;
// Deno: `Deno.stdout.write`), one at a time. A backlog stays bounded:
// past `QUEUE_LIMIT_BYTES` lines are dropped and counted, and the count is reported once the
// reader has caught up.

import fs from "node:fs";

/** How much text may wait for a slow reader before lines are dropped: some thousands of flow lines. */
export const QUEUE_LIMIT_BYTES = 1 << 20;

/** One of the process's standard output streams, written asynchronously. */
export interface Sink {
  /** Writes the start of `bytes`; resolves with how many bytes were taken (0 when the descriptor would block). */
  write(bytes: Uint8Array): Promise<number>;
}

/** How long to wait before trying again a descriptor that would block (left non-blocking by whoever shares it). */
const RETRY_MS = 20;

interface DenoWriter {
  write(bytes: Uint8Array): Promise<number>;
}

/** Standard output (1) or standard error (2) of this process. */
export function stdioSink(fd: 1 | 2): Sink {
  const deno = (globalThis as { Deno?: { stdout: DenoWriter; stderr: DenoWriter } }).Deno;
  // Deno's node:fs writes in the calling thread (it blocks as its process.stdout does); its own stdout does not.
  const write = deno ? (bytes: Uint8Array) => (fd === 1 ? deno.stdout : deno.stderr).write(bytes) : (bytes: Uint8Array) => new Promise<number>((resolve, reject) => fs.write(fd, bytes, (error, written) => (error ? reject(error) : resolve(written))));
  return {
    async write(bytes) {
      try {
        return await write(bytes);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        return 0;
      }
    },
  };
}

export interface LineOutput {
  /** Queues `text` and a line end; never blocks, never throws. */
  write(text: string): void;
  /** Resolves once every queued line was taken (or the reader went away). */
  drained(): Promise<void>;
}

/**
 * Lines to `sink`. A reader that went away (EPIPE; EIO from a closed terminal) costs the lines,
 * not the process: `onBroken` hears of it once, and later lines are dropped. Lines past the
 * queue's limit are dropped; once the queue has emptied, `onDropped` hears how many.
 */
export function lineOutput(sink: Sink, { onBroken, onDropped, limitBytes = QUEUE_LIMIT_BYTES }: { onBroken(error: NodeJS.ErrnoException): void; onDropped(lines: number): void; limitBytes?: number }): LineOutput {
  const encoder = new TextEncoder();
  const queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let dropped = 0;
  let broken = false;
  let writing = false;
  let idle: Array<() => void> = [];

  async function writeQueue(): Promise<void> {
    writing = true;
    try {
      while (queue.length > 0) {
        const bytes = queue[0]!;
        const written = await sink.write(bytes);
        if (written < bytes.length) {
          queue[0] = bytes.subarray(written);
        } else {
          queue.shift();
        }
        queuedBytes -= written;
      }
    } catch (error) {
      broken = true;
      queue.length = 0;
      queuedBytes = 0;
      onBroken(error as NodeJS.ErrnoException);
    }
    writing = false;
    if (dropped > 0 && !broken) {
      const lines = dropped;
      dropped = 0;
      onDropped(lines); // may queue a line here, and start the next round
    }
    if (!writing) {
      for (const resolve of idle) resolve();
      idle = [];
    }
  }

  return {
    write(text) {
      if (broken) return;
      const bytes = encoder.encode(`${text}\n`);
      if (queuedBytes + bytes.length > limitBytes) {
        dropped++;
        return;
      }
      queue.push(bytes);
      queuedBytes += bytes.length;
      if (!writing) void writeQueue();
    },
    drained: () => (writing ? new Promise((resolve) => idle.push(resolve)) : Promise.resolve()),
  };
}
