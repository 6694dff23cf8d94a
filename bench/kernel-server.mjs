// The reference's server side: the benchmark programs on the kernel's TCP (node:net),
// run inside the reference wireguard-go server's namespace by bench/real-client.mjs.
//
//   node bench/kernel-server.mjs      prints {"listening":[7,9,19]} once ready; runs until killed

import net from "node:net";
import { PORTS, programFor, streamConnection } from "./programs.mjs";

const ports = Object.values(PORTS);
await Promise.all(
  ports.map(
    (port) =>
      new Promise((resolve, reject) => {
        const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
          socket.on("error", () => socket.destroy());
          programFor(port)(streamConnection(socket)).catch(() => socket.destroy());
        });
        server.once("error", reject);
        server.listen({ port, host: "0.0.0.0" }, () => resolve(undefined));
      }),
  ),
);
process.stdout.write(`${JSON.stringify({ listening: ports })}\n`);
process.once("SIGTERM", () => process.exit(0));
