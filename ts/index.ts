// wg-netstack: a userspace WireGuard endpoint with its own TCP/IP stack.
//
// Where things are: runtime/ (UDP socket and clock adapters) → host/server.ts (the
// pump) → wasm/ (the binding to the engine) → crates/engine (decryption in tunnel/, TCP state in
// tcp/) → back out as host/tcp-connection.ts and host/udp-packet.ts objects.

// The Node-shaped parts (TunnelSocket is a stream.Duplex, the http agents, undici's
// dispatcher) are typed with Node's types: this line makes the published types load them from
// @types/node, a dependency, so a project without it (or with `"types": []`) still type-checks.
/// <reference types="node" preserve="true" />

export { startServer, Server } from "./host/server.js";
export type { ServerOptions, ServerStats, PeerStats, ConnectOptions, UdpUnreachable } from "./host/server.js";
export { TcpConnection, ConnectionError } from "./host/tcp-connection.js";
export type { TcpTotals, TcpConnectionStats, UdpTotals } from "./wasm/engine.js";
export { UdpPacket } from "./host/udp-packet.js";
export { genkey, pubkey, genpsk } from "./keys.js";
export { clientConfig, reachableHost } from "./client-config.js";
export type { ClientConfigOptions } from "./client-config.js";
export { qrCode } from "./qr.js";
export { splice, type SpliceOptions, type SpliceResult } from "./splice.js";
export { ConfigError } from "./config.js";
export type { PeerOptions } from "./config.js";
export type { Endpoint } from "./ip.js";
export { AddressInUseError } from "./runtime/types.js";
export type { Runtime, Clock, DatagramSocket, SocketErrorHandler } from "./runtime/types.js";
export { parseConfig } from "./tunnel/config.js";
export type { TunnelConfig, TunnelPeerConfig, ParseConfigOptions } from "./tunnel/config.js";
export { connectTunnel, Tunnel } from "./tunnel/tunnel.js";
export type { TunnelOptions, TunnelListener } from "./tunnel/tunnel.js";
export { TunnelSocket } from "./tunnel/socket.js";
export { TunnelUdpSocket } from "./tunnel/udp.js";
export type { TunnelRemoteInfo } from "./tunnel/udp.js";
export type { TunnelConnectOptions, TunnelSocketOptions } from "./tunnel/socket.js";
export { TunnelError, TUNNEL_ERROR_CODES } from "./tunnel/errors.js";
export type { TunnelErrorCode } from "./tunnel/errors.js";
export type { ResolveOptions } from "./tunnel/dns.js";
