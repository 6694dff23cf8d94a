// Two servers on loopback, the second a client-role server joined to the first (tunnel
// address 10.0.0.2), each with its extra options (`threads`, handlers): the pair
// test/threads.test.ts starts in-process, test/support/threads-exit.mjs as a program run from
// dist/, and bench/threads-bulk.mjs and bench/udp-echo.mjs from the build they measure. Plain
// JavaScript that is handed the package's functions, so the TypeScript sources and any built
// package share it.

/**
 * @param {{ startServer: (options: any) => Promise<any>, genkey: () => string, pubkey: (key: string) => string }} wg
 * @param {object} serverOptions extra options of the server (its handlers)
 * @param {object} clientOptions extra options of the client-role server
 * @param {(server: any) => void} started called with each server once it runs (to close it later)
 * @returns {Promise<{ server: any, client: any }>}
 */
export async function startPair(wg, serverOptions = {}, clientOptions = {}, started = () => {}) {
  const serverKey = wg.genkey();
  const clientKey = wg.genkey();
  const server = await wg.startServer({
    privateKey: serverKey,
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: wg.pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
    ...serverOptions,
  });
  started(server);
  const client = await wg.startServer({
    privateKey: clientKey,
    host: "127.0.0.1",
    port: 0,
    address: "10.0.0.2/32",
    peers: [{ publicKey: wg.pubkey(serverKey), endpoint: server.address, allowedIps: ["0.0.0.0/0"] }],
    ...clientOptions,
  });
  started(client);
  return { server, client };
}
