#!/usr/bin/env node
// One end of an integrity flow as a program, for the real-client tests (run inside a
// network namespace). Plays a role of roles.mjs over a kernel TCP socket:
//
//   node peer.mjs upstream HOST PORT SCENARIO CLIENT_KEY UPSTREAM_KEY
//       listens on HOST:PORT, prints {"listening":true}, plays the upstream for one
//       connection, prints its report and exits
//   node peer.mjs client HOST PORT SCENARIO CLIENT_KEY UPSTREAM_KEY
//       connects to HOST:PORT, plays the client, prints its report (with "localPort") and exits
//
// SCENARIO is an index into roles.mjs's SCENARIOS; the keys come from flowKeys().

import net from "node:net";
import { play, SCENARIOS, socketSide } from "./roles.mjs";

const [role, host, port, index, clientKey, upstreamKey] = process.argv.slice(2);
const scenario = Object.values(SCENARIOS)[Number(index)];
if ((role !== "client" && role !== "upstream") || !scenario || !clientKey || !upstreamKey) {
  console.error("usage: node peer.mjs client|upstream HOST PORT SCENARIO CLIENT_KEY UPSTREAM_KEY");
  process.exit(2);
}
const options = {
  slow: scenario.slow === role,
  sendKey: role === "client" ? clientKey : upstreamKey,
  receiveKey: role === "client" ? upstreamKey : clientKey,
};

async function run(socket) {
  const localPort = socket.localPort; // gone once the socket is reset
  const report = await play(scenario[role], socketSide(socket, options));
  console.log(JSON.stringify({ ...report, localPort }));
  socket.destroy();
  process.exit(0);
}

if (role === "upstream") {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    server.close();
    void run(socket);
  });
  server.listen(Number(port), host, () => console.log(JSON.stringify({ listening: true })));
} else {
  const socket = net.connect({ host, port: Number(port), allowHalfOpen: true });
  socket.once("connect", () => void run(socket));
  socket.once("error", (error) => {
    if (!socket.connecting) return; // after connecting, socketSide reports it
    console.log(JSON.stringify({ error: error.code ?? error.message }));
    process.exit(1);
  });
}
