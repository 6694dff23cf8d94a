// UDP flows of a forward or a reverse forward: one listening socket; each sender on it gets an
// outbound socket of its own towards the target, so replies find their way back. The same table
// serves `--forward udp:` (local listener, tunnel sockets out) and `--reverse udp:` (tunnel
// listener, local sockets out): both socket kinds have dgram's shape.

import type { FlowEnd } from "../gateway/flow-log.js";
import { endpointText, parseIp, type Endpoint } from "../ip.js";

/** A flow with no datagram either way for this long is closed (RFC 4787 REQ-5: at least 2 minutes). */
const UDP_IDLE_MS = 120_000;

/** What `node:dgram` sockets and `TunnelUdpSocket`s have in common, as these flows use it. */
export interface DatagramPort {
  send(data: Uint8Array, port: number, host: string, callback?: (error: Error | null) => void): void;
  on(event: "message", listener: (data: Buffer, from: { address: string; port: number }) => void): this;
  on(event: "error", listener: (error: Error) => void): this;
  close(): void;
}

/** One sender's flow, as it is logged. */
export interface UdpFlow {
  src: Endpoint;
  /** Where its datagrams go, once known (at once for an IP target); who answered, once someone has. */
  dst?: Endpoint;
  start: number;
  up: number;
  down: number;
}

export interface UdpFlowsOptions {
  /** The listening socket: datagrams from senders arrive here, replies leave from here. */
  listener: DatagramPort;
  /** Where each sender's datagrams go. */
  target: Endpoint;
  /**
   * The address of a target given by name, looked up once as each flow opens: all the flow's
   * datagrams go there, and its record says so from the start. Without it, the name goes to
   * `send` with each datagram.
   */
  resolve?(name: string): Promise<string>;
  /** A new outbound socket for a new sender. */
  open(): DatagramPort;
  /** Called once per flow when it ends. */
  record(flow: UdpFlow, end: FlowEnd, error?: string): void;
  /** Fires at shutdown: new datagrams are dropped. */
  signal: AbortSignal;
}

interface Entry extends UdpFlow {
  key: string;
  outbound: DatagramPort;
  /** Where its datagrams go, once the name is resolved (rejects if it is not). */
  to: Promise<Endpoint>;
  idle?: ReturnType<typeof setTimeout>;
}

/** Relays the listener's senders to the target; returns a function that ends every flow ("shutdown"). */
export function relayUdpFlows({ listener, target, resolve, open, record, signal }: UdpFlowsOptions): () => void {
  const flows = new Map<string, Entry>();
  const finish = (flow: Entry, end: FlowEnd, error?: string) => {
    if (flows.get(flow.key) !== flow) return;
    flows.delete(flow.key);
    clearTimeout(flow.idle);
    flow.outbound.close();
    record({ src: flow.src, dst: flow.dst, start: flow.start, up: flow.up, down: flow.down }, end, error);
  };
  const touch = (flow: Entry) => {
    clearTimeout(flow.idle);
    flow.idle = setTimeout(() => finish(flow, "idle"), UDP_IDLE_MS);
    flow.idle.unref?.();
  };
  const start = (src: Endpoint, key: string): Entry => {
    const named = resolve !== undefined && !parseIp(target.host);
    const to = named ? resolve(target.host).then((host) => ({ host, port: target.port })) : Promise.resolve(target);
    const flow: Entry = { key, src, outbound: open(), to, start: Date.now(), up: 0, down: 0, ...(parseIp(target.host) ? { dst: target } : {}) };
    flows.set(key, flow);
    if (named) to.then((dst) => (flow.dst ??= dst), (error: Error) => finish(flow, "unreachable", error.message));
    flow.outbound.on("message", (reply, from) => {
      flow.down += reply.length;
      flow.dst = { host: from.address, port: from.port };
      touch(flow);
      listener.send(reply, src.port, src.host);
    });
    flow.outbound.on("error", (error) => finish(flow, "unreachable", error.message));
    return flow;
  };

  listener.on("message", (data, from) => {
    if (signal.aborted) return;
    const src = { host: from.address, port: from.port };
    const key = endpointText(src);
    const flow = flows.get(key) ?? start(src, key);
    flow.up += data.length;
    touch(flow);
    // In order: each datagram waits on the same lookup (and is dropped if the flow ended meanwhile).
    flow.to.then(
      (to) => {
        if (flows.get(key) !== flow) return;
        flow.outbound.send(data, to.port, to.host, (error) => {
          if (error) finish(flow, "unreachable", error.message);
        });
      },
      () => {}, // ended the flow as it failed
    );
  });
  return () => {
    for (const flow of [...flows.values()]) finish(flow, "shutdown");
  };
}
