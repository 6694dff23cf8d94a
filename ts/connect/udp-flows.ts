// UDP flows of a forward or a reverse forward: one listening socket; each sender on it gets an
// outbound socket of its own towards the target, so replies find their way back. The same table
// serves `--forward udp:` (local listener, tunnel sockets out) and `--reverse udp:` (tunnel
// listener, local sockets out): both socket kinds have dgram's shape.

import { type ConnectableSocket, connectForSending, icmpError } from "../gateway/connected-udp.js";
import type { FlowEnd } from "../gateway/flow-log.js";
import { endpointText, parseIp, type Endpoint } from "../ip.js";

/** A flow with no datagram either way for this long is closed (RFC 4787 REQ-5: at least 2 minutes). */
const UDP_IDLE_MS = 120_000;

/** The listening side: what `node:dgram` sockets and `TunnelUdpSocket`s have in common, as these flows use it. */
export interface ListeningPort {
  send(data: Uint8Array, port: number, host: string): void;
  on(event: "message", listener: (data: Buffer, from: { address: string; port: number }) => void): this;
}

/** An outbound socket, connected to the target (connected-udp.ts): a name resolves once for the whole flow. */
export interface ConnectedPort extends ConnectableSocket {
  remoteAddress(): { address: string; port: number };
  on(event: "message", listener: (data: Buffer, from: { address: string; port: number }) => void): this;
  on(event: "error", listener: (error: Error) => void): this;
  close(): void;
}

/** One sender's flow, as it is logged. */
export interface UdpFlow {
  src: Endpoint;
  /** Where its datagrams go, once known (the address a name resolved to). */
  dst?: Endpoint;
  start: number;
  up: number;
  down: number;
}

export interface UdpFlowsOptions {
  /** The listening socket: datagrams from senders arrive here, replies leave from here. */
  listener: ListeningPort;
  /** Where each sender's datagrams go. */
  target: Endpoint;
  /** A new outbound socket for a new sender. */
  open(): ConnectedPort;
  /** Called once per flow when it ends. */
  record(flow: UdpFlow, end: FlowEnd, error?: string): void;
  /** Fires at shutdown: new datagrams are dropped. */
  signal: AbortSignal;
}

interface Entry extends UdpFlow {
  key: string;
  outbound: ConnectedPort;
  send: (data: Uint8Array) => void;
  idle?: ReturnType<typeof setTimeout>;
}

/** Relays the listener's senders to the target; returns a function that ends every flow ("shutdown"). */
export function relayUdpFlows({ listener, target, open, record, signal }: UdpFlowsOptions): () => void {
  const flows = new Map<string, Entry>();
  const finish = (flow: Entry, end: FlowEnd, error?: string) => {
    if (flows.get(flow.key) !== flow) return;
    flows.delete(flow.key);
    clearTimeout(flow.idle);
    flow.outbound.close();
    record({ src: flow.src, dst: flow.dst, start: flow.start, up: flow.up, down: flow.down }, end, error);
  };
  // An ICMP error (port unreachable: refused) or any other failure of the outbound socket ends its flow.
  const failed = (flow: Entry) => (error: Error) => finish(flow, icmpError(error)?.end ?? "unreachable", error.message);
  const touch = (flow: Entry) => {
    clearTimeout(flow.idle);
    flow.idle = setTimeout(() => finish(flow, "idle"), UDP_IDLE_MS);
    flow.idle.unref?.();
  };
  const start = (src: Endpoint, key: string): Entry => {
    const outbound = open();
    const flow: Entry = { key, src, outbound, send: () => {}, start: Date.now(), up: 0, down: 0, ...(parseIp(target.host) ? { dst: target } : {}) };
    flows.set(key, flow);
    flow.outbound.on("message", (reply, from) => {
      flow.down += reply.length;
      flow.dst = { host: from.address, port: from.port };
      touch(flow);
      listener.send(reply, src.port, src.host);
    });
    flow.outbound.on("error", failed(flow));
    flow.send = connectForSending(outbound, target, () => {
      if (flows.get(key) !== flow) return false;
      const remote = outbound.remoteAddress();
      flow.dst = { host: remote.address, port: remote.port };
      return true;
    }, failed(flow));
    return flow;
  };

  listener.on("message", (data, from) => {
    if (signal.aborted) return;
    const src = { host: from.address, port: from.port };
    const key = endpointText(src);
    const flow = flows.get(key) ?? start(src, key);
    flow.up += data.length;
    touch(flow);
    flow.send(data);
  });
  return () => {
    for (const flow of [...flows.values()]) finish(flow, "shutdown");
  };
}
