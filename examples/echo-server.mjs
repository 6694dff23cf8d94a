// An echo server any WireGuard client can join: prints a client config, then echoes
// every TCP connection and UDP datagram the client sends, to any address, and answers
// ping. Run with `npm start` (or `node examples/echo-server.mjs [port]`).

import { networkInterfaces } from "node:os";
import { genkey, pubkey, startServer } from "wg-netstack";

const port = Number(process.argv[2] ?? process.env.PORT ?? 51820);
const serverKey = genkey();
const clientKey = genkey();

const server = await startServer({
  privateKey: serverKey,
  port,
  peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32", "fd00::2/128"] }],
  onTcp: async (conn) => {
    console.log(`tcp ${conn.remote.host}:${conn.remote.port} -> ${conn.local.host}:${conn.local.port}`);
    for await (const chunk of conn) await conn.write(chunk);
    await conn.end();
  },
  onUdp: (packet) => {
    console.log(`udp ${packet.src.host}:${packet.src.port} -> ${packet.dst.host}:${packet.dst.port} (${packet.data.length} bytes)`);
    packet.reply(packet.data);
  },
});

// The client needs an address it can reach, never 0.0.0.0.
const lan = Object.values(networkInterfaces())
  .flat()
  .find((addr) => addr && addr.family === "IPv4" && !addr.internal);
const host = lan?.address ?? "127.0.0.1";

console.log(`wg-netstack echo server listening on udp ${server.address.host}:${server.address.port}
Client config (save as wg-echo.conf and \`wg-quick up ./wg-echo.conf\`, or import it in a WireGuard app):

[Interface]
PrivateKey = ${clientKey}
Address = 10.0.0.2/32, fd00::2/128

[Peer]
PublicKey = ${server.publicKey}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = ${host}:${server.address.port}

Every TCP connection and UDP datagram is echoed, whatever its destination; pings are answered.
Ctrl-C to stop.`);

const stop = async () => {
  console.log("\nstats:", JSON.stringify(server.stats()));
  await server.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
