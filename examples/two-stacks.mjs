// "Join this network from code": a server, and a client-role stack that dials through
// the tunnel to it, in one process over loopback UDP. Prints what each side saw, exits.
// Runs under Node, Deno and Bun: node|bun examples/two-stacks.mjs, deno run -A examples/two-stacks.mjs

import { genkey, pubkey, startServer } from "wg-netstack";

const serverKey = genkey();
const clientKey = genkey();

const server = await startServer({
  privateKey: serverKey,
  host: "127.0.0.1",
  port: 0,
  peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
  onTcp: async (conn) => {
    await conn.write(`hello ${conn.remote.host}, you asked for ${conn.local.host}:${conn.local.port}`);
    await conn.close();
  },
  onUdp: (packet) => packet.reply(`pong to ${packet.src.host}`),
});

// The client role: same library, with an endpoint for its peer and a tunnel address.
const replies = [];
const client = await startServer({
  privateKey: clientKey,
  host: "127.0.0.1",
  port: 0,
  address: "10.0.0.2/32",
  peers: [{ publicKey: server.publicKey, endpoint: server.address }],
  onUdp: (packet) => replies.push(new TextDecoder().decode(packet.data)),
});

const conn = await client.connect({ host: "192.0.2.80", port: 80 });
let greeting = "";
for await (const chunk of conn) greeting += new TextDecoder().decode(chunk);
console.log(`tcp: ${greeting}`);

client.sendUdp("ping", { host: "10.0.0.2", port: 5353 }, { host: "192.0.2.53", port: 53 });
while (replies.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
console.log(`udp: ${replies[0]}`);

await client.close();
await server.close();
