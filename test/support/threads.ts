// The engine threads the real-socket tests run with: WG_NETSTACK_TEST_THREADS=1 runs them with
// the engine in a worker (`threads: 1`), to show it behaves as the single-threaded one.
// Servers on a custom runtime (virtual time, counting sockets) stay on the main thread.

import type { ServerOptions } from "../../ts/index.js";

const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;

function fromEnv(value: string | undefined): 0 | 1 {
  if (value === undefined || value === "" || value === "0") return 0;
  if (value === "1") return 1;
  throw new Error(`WG_NETSTACK_TEST_THREADS: expected 0 or 1, got ${JSON.stringify(value)}`);
}

/** 0 unless the environment asks for threads. */
export const TEST_THREADS = fromEnv(env?.WG_NETSTACK_TEST_THREADS);

/** `options` with the test's `threads`, unless they bring their own runtime. */
export function withThreads<T extends Partial<ServerOptions>>(options: T): T {
  return options.runtime !== undefined || TEST_THREADS === 0 ? options : { threads: TEST_THREADS, ...options };
}

/** Spread into `startServer`'s, `connectTunnel`'s or `startGateway`'s options: the test's `threads`, or nothing. */
export const THREADS: { threads?: 1 } = TEST_THREADS === 1 ? { threads: 1 } : {};

/** `wg-netstack serve` / `connect` flags for the test's threads: `--threads 1`, or none. */
export const THREADS_FLAGS: string[] = TEST_THREADS === 1 ? ["--threads", "1"] : [];
