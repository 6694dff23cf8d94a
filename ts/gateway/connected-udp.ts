// A relay's outbound UDP socket, connected to its one destination before the first send: the
// kernel (or the tunnel) then tells it of an ICMP error about its datagrams, as it tells no
// unconnected socket. Node and Bun report those errors; Deno's node:dgram does not.

import { UNREACHABLE_CODES } from "../host/server.js";
import type { Endpoint } from "../ip.js";
import type { FlowEnd } from "./flow-log.js";

/** What `node:dgram` sockets and `TunnelUdpSocket`s have in common, as a connected sender. */
export interface ConnectableSocket {
  connect(port: number, host: string, callback: (error?: Error) => void): void;
  send(data: Uint8Array, callback: (error: Error | null) => void): void;
}

/** Datagrams kept while the socket connects (a name resolving, say): more are dropped, as by a full buffer. */
const CONNECTING_QUEUE = 64;

type Why = keyof typeof UNREACHABLE_CODES;

/** An ICMP error's kind (by the code a socket reports it with) and how it ends a flow: nothing listens there, or it cannot be reached. */
export function icmpError(error: Error): { end: FlowEnd; why: Why } | undefined {
  const code = (error as { code?: string }).code;
  const why = (Object.keys(UNREACHABLE_CODES) as Why[]).find((kind) => UNREACHABLE_CODES[kind] === code);
  return why && { end: why === "port" ? "refused" : "unreachable", why };
}

/**
 * Connects `socket` to `to` and returns the function that sends on it; what is sent before
 * it is connected waits. `connected` runs once it is (false: the flow ended meanwhile, drop
 * what waits); `failed` hears a failed connect or send. The kernel reports an ICMP error to
 * the next receive or send, whichever comes first, so a send's error is the same news (on
 * loopback it comes back within the send before).
 */
export function connectForSending(socket: ConnectableSocket, to: Endpoint, connected: () => boolean, failed: (error: Error) => void): (data: Uint8Array) => void {
  let waiting: Uint8Array[] | undefined = [];
  const sent = (error: Error | null) => {
    if (error) failed(error);
  };
  socket.connect(to.port, to.host, (error) => {
    if (error) return failed(error);
    const queued = waiting ?? [];
    waiting = undefined;
    if (connected()) for (const data of queued) socket.send(data, sent);
  });
  return (data) => {
    if (!waiting) socket.send(data, sent);
    else if (waiting.length < CONNECTING_QUEUE) waiting.push(data);
  };
}
