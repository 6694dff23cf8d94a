// TEMPORARY ADAPTER — DELETE AT MERGE.
//
// The gateway is written against the API the lead is adding to the server:
//   conn.accept() / conn.refuse(how), server.addPeer() / removePeer(),
//   startServer({ onUnknownPeer, tap }).
// Until it lands, this file fakes it over today's Server and TcpConnection so the gateway
// compiles and runs:
//   - accept() does nothing (today the handshake is done before onTcp runs) and
//     refuse() is abort(): the client sees a reset after connecting, not a refusal;
//   - addPeer/removePeer restart the server on the same port (open flows are reset);
//   - onUnknownPeer and tap are never called (unknown peers are not shown, pcap stays empty).
// At merge: delete this file; in gateway.ts import startServer instead of
// startGatewayServer and use TcpConnection where GatewayConnection is written.

import type { PeerOptions } from "../config.js";
import { startServer, type Server } from "../host/server.js";
import type { TcpConnection } from "../host/tcp-connection.js";
import type { UdpPacket } from "../host/udp-packet.js";
import type { Endpoint } from "../ip.js";

/** A TcpConnection with the lead's accept()/refuse(). */
export type GatewayConnection = TcpConnection & {
  accept(): Promise<void>;
  refuse(how?: "reset" | "unreachable"): void;
};

/** The startServer options the gateway uses (a subset of the lead's ServerOptions). */
export interface GatewayServerOptions {
  privateKey: string;
  host: string;
  port: number;
  mtu?: number;
  address: string[];
  peers: PeerOptions[];
  onTcp(conn: GatewayConnection): Promise<void>;
  onUdp(packet: UdpPacket): void;
  onUnknownPeer(info: { publicKey: string; endpoint: Endpoint }): void;
  tap?(packet: Uint8Array, info: { direction: "in" | "out"; peer: string }): void;
  onError(error: Error): void;
}

/** The part of the lead's Server the gateway uses. */
export interface GatewayServer {
  readonly address: Endpoint;
  readonly publicKey: string;
  sendUdp(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  addPeer(peer: PeerOptions): void;
  removePeer(publicKey: string): void;
  close(): Promise<void>;
}

export async function startGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const adapter = new RestartingServer(options);
  await adapter.start(options.port);
  return adapter;
}

class RestartingServer implements GatewayServer {
  readonly #options: GatewayServerOptions;
  #peers: PeerOptions[];
  #server!: Server;
  #restarts: Promise<void> = Promise.resolve();

  constructor(options: GatewayServerOptions) {
    this.#options = options;
    this.#peers = [...options.peers];
  }

  async start(port: number): Promise<void> {
    const { onUnknownPeer: _unknown, tap: _tap, onTcp, ...rest } = this.#options;
    this.#server = await startServer({
      ...rest,
      port,
      peers: this.#peers,
      onTcp: (conn) => onTcp(Object.assign(conn, { accept: async () => {}, refuse: () => conn.abort() })),
    });
  }

  get address(): Endpoint {
    return this.#server.address;
  }

  get publicKey(): string {
    return this.#server.publicKey;
  }

  sendUdp(data: Uint8Array, from: Endpoint, to: Endpoint): void {
    this.#server.sendUdp(data, from, to);
  }

  addPeer(peer: PeerOptions): void {
    this.#peers = [...this.#peers, peer];
    this.#restart();
  }

  removePeer(publicKey: string): void {
    this.#peers = this.#peers.filter((peer) => peer.publicKey !== publicKey);
    this.#restart();
  }

  async close(): Promise<void> {
    await this.#restarts;
    await this.#server.close();
  }

  #restart(): void {
    this.#restarts = this.#restarts
      .then(async () => {
        const port = this.#server.address.port;
        await this.#server.close();
        // Deno's native UDP socket frees its port a moment after close() resolves.
        for (let attempt = 1; ; attempt++) {
          try {
            return await this.start(port);
          } catch (error) {
            if (attempt === 20 || !/in use/i.test(String((error as Error).message))) throw error;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      })
      .catch((error: Error) => this.#options.onError(error));
  }
}
