// Node's adapter: `node:dgram` and Node timers. (Deno and Bun run it too, through
// their Node compatibility.)

import { createSocket } from "node:dgram";
import { parseIp, type Endpoint } from "../ip.js";
import type { DatagramSocket, Runtime } from "./types.js";

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

  bindUdp(host, port, onMessage) {
    const family = parseIp(host)?.family === 6 ? "udp6" : "udp4";
    const socket = createSocket({ type: family, ipv6Only: false });
    socket.on("message", (data, rinfo) => onMessage(data, { host: rinfo.address, port: rinfo.port }));
    return new Promise<DatagramSocket>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        // A send to an unreachable endpoint can surface as an async error; it is not fatal.
        socket.on("error", () => {});
        try {
          socket.setRecvBufferSize(SOCKET_BUFFER);
          socket.setSendBufferSize(SOCKET_BUFFER);
        } catch {
          // Best effort: some systems cap buffer sizes.
        }
        const bound = socket.address();
        const address: Endpoint = { host: bound.address, port: bound.port };
        resolve({
          address,
          send: (data, to) => socket.send(data, to.port, to.host),
          close: () => new Promise<void>((done) => socket.close(() => done())),
        });
      });
    });
  },
};
