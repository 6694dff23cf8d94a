// Two servers with `threads: 1` on loopback, the second a client-role server joined to the
// first (tunnel address 10.0.0.2): the pair test/threads.test.ts starts in-process and
// test/support/threads-exit.mjs starts as a program run from dist/. Plain JavaScript that is
// handed the package's functions, so the TypeScript sources and the built package share it.

/**
 * @param {{ startServer: (options: any) => Promise<any>, genkey: () => string, pubkey: (key: string) => string }} wg
 * @param {object} serverOptions extra options of the server (its handlers)
 * @param {object} clientOptions extra options of the client-role server
 * @param {(server: any) => void} started called with each server once it runs (to close it later)
 * @returns {Promise<{ server: any, client: any }>}
 */
export async function startThreadedPair(wg, serverOptions = {}, clientOptions = {}, started = () => {}) {
  const serverKey = wg.genkey();
  const clientKey = wg.genkey();
  const server = await wg.startServer({
    threads: 1,
    privateKey: serverKey,
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: wg.pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
    ...serverOptions,
  });
  started(server);
  const client = await wg.startServer({
    threads: 1,
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
