// Deno's adapter: Deno's own UDP socket (`Deno.listenDatagram`, which Deno still marks
// unstable: it needs `--unstable-net`), and the same timers as Node.
//
// Measured on loopback (bench/README.md): a round trip through the tunnel takes ~0.6 ms
// with it and ~4.5 ms through Deno's `node:dgram` emulation. Neither lets us enlarge the
// socket's receive buffer (Node's does): a client's burst above ~90 datagrams loses its
// tail, which TCP's SACK recovery resends.

import type { Endpoint } from "../ip.js";
import { nodeRuntime } from "./node.js";
import type { DatagramSocket, Runtime } from "./types.js";

interface DenoAddr {
  hostname: string;
  port: number;
}

interface DenoDatagramConn extends AsyncIterable<[Uint8Array, DenoAddr]> {
  readonly addr: DenoAddr;
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

export const denoRuntime: Runtime = {
  clock: nodeRuntime.clock,

  async bindUdp(host, port, onMessage) {
    const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
    const conn = deno.listenDatagram!({ transport: "udp", hostname: host, port });
    let open = true;
    void (async () => {
      try {
        for await (const [data, from] of conn) onMessage(data, { host: from.hostname, port: from.port });
      } catch (error) {
        if (open) throw error;
      }
    })();
    const address: Endpoint = { host, port: conn.addr.port };
    const socket: DatagramSocket = {
      address,
      // A failed send is a lost datagram, as on any UDP socket.
      send: (data, to) => void conn.send(data, { transport: "udp", hostname: to.host, port: to.port }).catch(() => {}),
      close: async () => {
        open = false;
        conn.close();
      },
    };
    return socket;
  },
};
