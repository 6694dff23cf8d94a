// Picks the UDP socket and clock for the runtime we are in.
//
// Node: `node:dgram`. Bun: also `node:dgram` — measured against `Bun.udpSocket`, which
// cannot enlarge its receive buffer and lost 97 % of a 3,000-datagram burst on loopback,
// where `node:dgram` lost none. Deno: its native UDP socket when run with
// `--unstable-net`, otherwise `node:dgram`.

import { denoRuntime, hasDenoUdp } from "./deno.js";
import { nodeRuntime } from "./node.js";
import type { Runtime } from "./types.js";

export function defaultRuntime(): Runtime {
  if ("Deno" in globalThis) {
    return hasDenoUdp() ? denoRuntime : nodeRuntime;
  }
  return nodeRuntime;
}
