// A wg-netstack server on 127.0.0.1 and a client-role Tunnel (connectTunnel) joined to it,
// for tests of what is built on a Tunnel (TunnelSocket, connect's proxies and forwards) over
// real sockets. The server's handlers play the network behind the tunnel.

import { clientConfig, connectTunnel, genkey, pubkey, startServer, type Server, type ServerOptions, type Tunnel } from "../../ts/index.js";
import type { Endpoint } from "../../ts/ip.js";
import { THREADS } from "./threads.js";

export interface LoopbackTunnelOptions {
  /** The tunnel's own address, the one the server's peer entry allows: 10.0.0.2 unless given. */
  address?: string;
  /** Where the tunnel sends its datagrams, once the server is up: the server itself unless given
   * (a lossy relay in front of it, say). */
  route?: (server: Server) => Endpoint | Promise<Endpoint>;
  /** The tunnel's DNS server (the config's `DNS`), for names: none unless given. */
  dns?: string;
}

/** A server with `serverOptions` and a Tunnel to it that routes 10.0.0.0/24 through it. */
export async function startLoopbackTunnel(
  serverOptions: Partial<ServerOptions>,
  { address = "10.0.0.2", route = (server) => ({ host: "127.0.0.1", port: server.address.port }), dns }: LoopbackTunnelOptions = {},
): Promise<{ server: Server; tunnel: Tunnel; close(): Promise<void> }> {
  const clientKey = genkey();
  const server = await startServer({
    ...THREADS,
    privateKey: genkey(),
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: pubkey(clientKey), allowedIps: [`${address}/32`] }],
    ...serverOptions,
  });
  try {
    const endpoint = await route(server);
    const tunnel = await connectTunnel(
      clientConfig({ privateKey: clientKey, address: `${address}/32`, serverPublicKey: server.publicKey, endpoint: `${endpoint.host}:${endpoint.port}`, allowedIps: "10.0.0.0/24", ...(dns ? { dns } : {}) }),
      THREADS,
    );
    return {
      server,
      tunnel,
      close: async () => {
        await tunnel.close();
        await server.close();
      },
    };
  } catch (error) {
    await server.close();
    throw error;
  }
}
