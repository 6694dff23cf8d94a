// Threads, through node:worker_threads (Node; Deno and Bun implement it too): the host starts
// the engine's worker here, and the worker's side finds what it was given here, so that the
// rest of the library stays free of node:* modules.

import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

/** The main thread's handle on a worker. */
export interface WorkerHandle {
  /** Messages the worker posts (start-up and failure only: traffic goes through shared memory). */
  onMessage(listener: (message: unknown) => void): void;
  /** An uncaught error in the worker; it exits after. */
  onError(listener: (error: Error) => void): void;
  /** The worker ended, however. */
  onExit(listener: (code: number) => void): void;
  /** Ends the worker now. */
  terminate(): Promise<void>;
  /** Lets the process exit while the worker runs (for a worker that only serves a server). */
  unref(): void;
  ref(): void;
}

/** Starts the module at `url` in a worker, with `data` (structured-cloned; SharedArrayBuffers are shared). */
export function startWorker(url: URL, data: unknown): WorkerHandle {
  const worker = new Worker(url, { workerData: data });
  return {
    onMessage: (listener) => void worker.on("message", listener),
    onError: (listener) => void worker.on("error", listener),
    onExit: (listener) => void worker.on("exit", listener),
    terminate: async () => void (await worker.terminate()),
    unref: () => worker.unref(),
    ref: () => worker.ref(),
  };
}

/** In a worker: what it was started with, and how to post to the main thread. Undefined on the main thread. */
export function workerContext(): { data: unknown; post(message: unknown): void; close(): void } | undefined {
  if (isMainThread || !parentPort) return undefined;
  const port = parentPort;
  return {
    data: workerData,
    post: (message) => port.postMessage(message),
    close: () => {
      // Node and Bun: closing the port lets the worker end once nothing else is pending.
      // Deno's port has no close(), and its workers end only by the worker global's close().
      if (typeof port.close === "function") port.close();
      const scope = globalThis as { close?: () => void; Deno?: unknown };
      if (scope.Deno !== undefined && typeof scope.close === "function") scope.close();
    },
  };
}
