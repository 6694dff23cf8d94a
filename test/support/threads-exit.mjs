// A process that runs two threaded servers (threads: 1) and ends them, then does nothing:
// it must exit by itself, which it cannot while a worker, a socket or a timer of theirs is
// left. test/threads.test.ts runs it under each runtime.
//
//   <runtime> test/support/threads-exit.mjs close   both servers closed with close()
//   <runtime> test/support/threads-exit.mjs trap    the server's engine traps; then the client is closed
//
// Prints one line per step; the test reads them.

import { genkey, pubkey, startServer } from "../../dist/index.js";
import { INTERNALS } from "../../dist/host/server.js";
import { startPair } from "./pair.mjs";

const mode = process.argv[2];
const errors = [];
const echo = async (conn) => {
  for await (const chunk of conn) await conn.write(chunk);
  await conn.end();
};
const { server, client } = await startPair({ startServer, genkey, pubkey }, { threads: 1, onTcp: echo, onError: (error) => void errors.push(error) }, { threads: 1 });
const conn = await client.connect({ host: "10.1.1.1", port: 7 });
await conn.write("ping");
console.log(`echo ${new TextDecoder().decode(await conn.read())}`);

if (mode === "close") {
  await conn.end();
  await Promise.all([client.close(), server.close()]);
  console.log("closed");
} else if (mode === "trap") {
  // 4 GiB of scratch: the allocation aborts and the worker's engine is poisoned, as a panic would.
  try {
    server[INTERNALS].engine.scratch(0xffff_fff0);
  } catch (error) {
    console.log(`trapped ${error.name}`);
  }
  void conn.write("the next pump calls into the broken engine").catch(() => {});
  await server.closed;
  console.log(`server failed: ${server.error?.message.startsWith("wg-netstack server failed")} reported: ${errors.includes(server.error)}`);
  await client.close();
  console.log("closed");
} else {
  throw new Error(`mode: close or trap, got ${mode}`);
}
