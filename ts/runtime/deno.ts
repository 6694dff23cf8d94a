// Deno's adapter: Deno's own UDP socket (`Deno.listenDatagram`, which Deno still marks
// unstable: it needs `--unstable-net`), and the same timers as Node.
//
// Measured on loopback (bench/README.md): a round trip through the tunnel takes ~0.6 ms
// with it and ~4.5 ms through Deno's `node:dgram` emulation. Neither lets us enlarge the
// socket's receive buffer (Node's does): a client's burst above ~90 datagrams loses its
// tail, which TCP's SACK recovery resends.

import type { Endpoint } from "../ip.js";
import { nodeRuntime } from "./node.js";
import { AddressInUseError, isAddressInUse, type DatagramSocket, type Runtime } from "./types.js";

interface DenoAddr {
  hostname: string;
  port: number;
}

interface DenoDatagramConn {
  readonly addr: DenoAddr;
  /** Reads into `buffer` (a new 64 KiB one if absent); returns a view of it. */
  receive(buffer?: Uint8Array): Promise<[Uint8Array, DenoAddr]>;
  send(data: Uint8Array, to: DenoAddr & { transport: "udp" }): Promise<number>;
  close(): void;
}

interface DenoGlobal {
  listenDatagram?(options: { transport: "udp"; hostname: string; port: number }): DenoDatagramConn;
}

/** True when this Deno exposes its native UDP API (run with `--unstable-net`). */
export function hasDenoUdp(): boolean {
  return typeof (globalThis as unknown as { Deno?: DenoGlobal }).Deno?.listenDatagram === "function";
}

/** Receives that fail this many times in a row mean a broken socket: give up rather than spin. */
export const MAX_RECEIVE_FAILURES = 100;

/** Big enough for any UDP datagram. */
const RECEIVE_BUFFER_BYTES = 65_536;

/** Datagrams waiting for the socket at most; past it a datagram is lost, as in a full socket buffer. */
export const MAX_QUEUED_SENDS = 4096;

export const denoRuntime: Runtime = {
  clock: nodeRuntime.clock,

  async bindUdp(host, port, onMessage, onError) {
    const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
    let conn: DenoDatagramConn;
    try {
      conn = deno.listenDatagram!({ transport: "udp", hostname: host, port });
    } catch (error) {
      throw isAddressInUse(error) ? new AddressInUseError(host, port, error) : error;
    }
    let closing = false;
    // One buffer for every receive: without it Deno allocates 64 KiB per datagram, which
    // measured twice the CPU per datagram received (8.6 against 4.4 µs). Several receives
    // in flight, each with its own buffer, measured no different.
    const buffer = new Uint8Array(RECEIVE_BUFFER_BYTES);
    const receiveLoop = async () => {
      for (let failures = 0; ; ) {
        let received: [Uint8Array, DenoAddr];
        try {
          received = await conn.receive(buffer);
        } catch (error) {
          if (closing) return;
          // Interrupted or BadResource: the socket was closed under us.
          const gone = ["Interrupted", "BadResource"].includes((error as Error)?.name);
          const fatal = gone || ++failures >= MAX_RECEIVE_FAILURES;
          onError(error instanceof Error ? error : new Error(String(error)), fatal);
          if (fatal) return;
          continue;
        }
        failures = 0;
        // A copy of the datagram's size: the buffer takes the next one at once.
        onMessage(received[0].slice(), { host: received[1].hostname, port: received[1].port });
      }
    };
    void receiveLoop();
    // One send at a time, in order. Deno's sends that wait for a full socket buffer complete
    // in any order: a burst of 2,000 datagrams on loopback arrived with 15,000 of 20,000 out
    // of order, which TCP takes for loss. Sends that find room complete at once, so this
    // costs about a microtask per datagram.
    const queue: [Uint8Array, DenoAddr & { transport: "udp" }][] = [];
    let next = 0;
    let sending = false;
    const sendQueued = async () => {
      sending = true;
      while (next < queue.length && !closing) {
        const [data, to] = queue[next]!;
        queue[next++] = undefined!; // let it go once sent
        try {
          await conn.send(data, to);
        } catch {
          // A failed send is a lost datagram, as on any UDP socket.
        }
      }
      queue.length = next = 0;
      sending = false;
    };
    const address: Endpoint = { host, port: conn.addr.port };
    const socket: DatagramSocket = {
      address,
      send: (data, to) => {
        if (closing || queue.length - next >= MAX_QUEUED_SENDS) return;
        queue.push([data, { transport: "udp", hostname: to.host, port: to.port }]);
        if (!sending) void sendQueued();
      },
      close: async () => {
        if (closing) return;
        closing = true;
        try {
          conn.close();
        } catch {
          // Already closed under us; the receive loop has said so.
        }
      },
    };
    return socket;
  },
};
