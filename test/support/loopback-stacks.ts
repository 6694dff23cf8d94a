// Real WireGuard stacks on 127.0.0.1 (real UDP sockets and clock, no namespaces): a
// client-role stack that dials through the tunnel, and optionally the server it joins.
// For tests that mix the tunnel with node:net sockets, which virtual time cannot drive.

import { genkey, pubkey, startServer, type Server, type ServerOptions } from "../../ts/index.js";
import type { Endpoint } from "../../ts/ip.js";
import { withThreads } from "./threads.js";

export interface TunnelClientOptions {
  privateKey: string;
  serverPublicKey: string;
  endpoint: Endpoint;
  /** The client's tunnel addresses, e.g. ["10.0.0.2/32", "fd00::2/128"]. */
  address: string[];
}

/** A client-role stack: `client.connect(to)` and `client.sendUdp(...)` go through the tunnel. */
export function startTunnelClient(options: TunnelClientOptions, extra: Partial<ServerOptions> = {}): Promise<Server> {
  const endpoint = { host: options.endpoint.host === "0.0.0.0" || options.endpoint.host === "::" ? "127.0.0.1" : options.endpoint.host, port: options.endpoint.port };
  return startServer(
    withThreads({
      privateKey: options.privateKey,
      host: "127.0.0.1",
      port: 0,
      address: options.address,
      peers: [{ publicKey: options.serverPublicKey, endpoint, allowedIps: ["0.0.0.0/0", "::/0"] }],
      ...extra,
    }),
  );
}

/** A server with the given handlers and one client stack joined to it. */
export async function startLoopbackPair(serverOptions: Partial<ServerOptions>): Promise<{ server: Server; client: Server; close(): Promise<void> }> {
  const serverKey = genkey();
  const clientKey = genkey();
  const address = ["10.0.0.2/32", "fd00::2/128"];
  const server = await startServer(
    withThreads({
      privateKey: serverKey,
      host: "127.0.0.1",
      port: 0,
      peers: [{ publicKey: pubkey(clientKey), allowedIps: address }],
      ...serverOptions,
    }),
  );
  const client = await startTunnelClient({ privateKey: clientKey, serverPublicKey: server.publicKey, endpoint: server.address, address });
  return { server, client, close: async () => void (await Promise.all([client.close(), server.close()])) };
}
