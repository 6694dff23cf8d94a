// Node's adapter: `node:dgram` and Node timers. (Deno and Bun run it too, through
// their Node compatibility.)

import { createSocket, type Socket, type SocketOptions } from "node:dgram";
import { parseIp, type Endpoint } from "../ip.js";
import { AddressInUseError, isAddressInUse, type DatagramSocket, type Runtime, type SocketErrorHandler } from "./types.js";

// Large socket buffers: a burst of full-size datagrams must not be dropped by the kernel
// while the event loop is busy.
const SOCKET_BUFFER = 4 * 1024 * 1024;

export const nodeRuntime: Runtime = {
  clock: {
    now: () => performance.now(),
    setTimer: (delayMs, fn) => setTimeout(fn, delayMs),
    clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    defer: (fn) => setImmediate(fn),
  },

  bindUdp(host, port, onMessage, onError) {
    const family = parseIp(host)?.family === 6 ? "udp6" : "udp4";
    return listen(createSocket({ type: family, ipv6Only: false, lookup: literalLookup }), host, port, onMessage, onError);
  },
};

/** Binds `socket` and wires its events; exported so tests can make the socket fail. */
export function listen(
  socket: Socket,
  host: string,
  port: number,
  onMessage: (data: Uint8Array, from: Endpoint) => void,
  onError: SocketErrorHandler,
): Promise<DatagramSocket> {
  socket.on("message", (data, rinfo) => onMessage(data, { host: rinfo.address, port: rinfo.port }));
  return new Promise<DatagramSocket>((resolve, reject) => {
    const bindFailed = (error: Error) => {
      socket.close();
      reject(isAddressInUse(error) ? new AddressInUseError(host, port, error) : error);
    };
    socket.once("error", bindFailed);
    socket.bind(port, host, () => {
      socket.off("error", bindFailed);
      const bound = socket.address();
      const address: Endpoint = { host: bound.address, port: bound.port };
      let closing = false;
      let closed = false;
      // Sends report to their own callback, so what reaches here is a failed receive; the socket goes on.
      socket.on("error", (error) => onError(error, false));
      socket.on("close", () => {
        closed = true;
        if (!closing) onError(new Error(`UDP socket ${host}:${address.port} closed unexpectedly`), true);
      });
      try {
        socket.setRecvBufferSize(SOCKET_BUFFER);
        socket.setSendBufferSize(SOCKET_BUFFER);
      } catch {
        // Best effort: some systems cap buffer sizes.
      }
      resolve({
        address,
        // No lookup and no callback (with one, a send that succeeds at once still queues a
        // nextTick to call it): 4.4 → 3.6 µs of CPU per datagram, most of the rest the system
        // call. Without a callback a failed send is dropped silently; node:dgram would emit
        // "error" only for a failed lookup, which literalLookup cannot have.
        send: (data, to) => {
          try {
            socket.send(data, to.port, to.host);
          } catch {
            // Closed under us (the "close" event reports it): a lost datagram, as UDP goes.
          }
        },
        close: () => {
          closing = true;
          return closed ? Promise.resolve() : new Promise<void>((done) => socket.close(() => done()));
        },
      });
    });
  });
}

/**
 * node:dgram looks up the destination of every unconnected send through `dns.lookup`, which
 * answers an IP literal only on the next tick. Ours are always IP literals (from the engine,
 * or the validated config): hand them straight back.
 */
const literalLookup = ((host: string, family: number, done: (error: null, address: string, family: number) => void) =>
  done(null, host, family)) as unknown as SocketOptions["lookup"];
