// An echo server any WireGuard client can join: prints a client config (and its QR code
// for the phone apps), then echoes every TCP connection and UDP datagram the client
// sends, to any address, and answers ping. Runs under Node, Deno and Bun:
//   node examples/echo-server.mjs [port]
//   deno run -A --unstable-net examples/echo-server.mjs [port]
//   bun examples/echo-server.mjs [port]

import { clientConfig, genkey, pubkey, qrCode, startServer } from "wg-netstack";

const args = globalThis.Deno?.args ?? process.argv.slice(2);
const port = Number(args[0] ?? 51820);
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

// clientConfig turns the 0.0.0.0 we listen on into an address the client can reach.
const config = clientConfig({
  privateKey: clientKey,
  address: ["10.0.0.2/32", "fd00::2/128"],
  serverPublicKey: server.publicKey,
  endpoint: server.address,
});

console.log(`wg-netstack echo server listening on udp ${server.address.host}:${server.address.port}
Client config (save as wg-echo.conf and \`wg-quick up ./wg-echo.conf\`, or scan the code in a WireGuard app):

${config}
${await qrCode(config, "terminal")}
Every TCP connection and UDP datagram is echoed, whatever its destination; pings are answered.
Ctrl-C to stop.`);

const stop = async () => {
  console.log("\nstats:", JSON.stringify(server.stats()));
  await server.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
