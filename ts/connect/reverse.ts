// Reverse forwards of `wg-netstack connect --reverse`: a port on our tunnel address whose
// connections (or datagrams) from the network are passed to a service on this machine.
// The same flow records as the forwards; `src` is the peer-side client, `dst` the local service.

import { createSocket } from "node:dgram";
import net from "node:net";
import type { FlowEnd } from "../gateway/flow-log.js";
import { endpointText, parseIp, type Endpoint } from "../ip.js";
import type { Tunnel } from "../tunnel/tunnel.js";
import type { TunnelSocket } from "../tunnel/socket.js";
import type { TunnelUdpSocket } from "../tunnel/udp.js";
import { connected, viaText, type Door, type FlowContext } from "./forward.js";
import { relay, reset } from "./relay.js";
import { relayUdpFlows } from "./udp-flows.js";

export interface ReverseOptions extends FlowContext {
  tunnel: Tunnel;
  /** The port on our tunnel addresses. */
  port: number;
  /** Our tunnel address, for the door's description (the port is open on all of them). */
  tunnelAddress: string;
  /** The local service: an IP or a name the system resolves (`localhost`). */
  target: Endpoint;
  /** Fires at shutdown: every flow is reset and logged as "shutdown". */
  signal: AbortSignal;
}


function door(protocol: "tcp" | "udp", options: ReverseOptions): Omit<Door, "close"> & { via: string } {
  const address = endpointText({ host: options.tunnelAddress, port: options.port });
  const targetText = endpointText(options.target);
  const description = `reverse ${protocol} ${address} -> ${targetText}`;
  return { protocol: `reverse-${protocol}`, address, target: targetText, description, via: viaText("reverse", address) };
}

/** Accepts TCP on the tunnel port and relays each connection to the local service. Throws EADDRINUSE if the port is taken. */
export function startTcpReverse(options: ReverseOptions): Door {
  const { via, ...labels } = door("tcp", options);
  const flows = new Set<Promise<void>>();
  const listener = options.tunnel.listen(
    options.port,
    (socket) => {
      const flow = serveReverse(socket, via, options).finally(() => flows.delete(flow));
      flows.add(flow);
    },
    { allowHalfOpen: true },
  );
  return {
    ...labels,
    close: async () => {
      listener.close();
      await Promise.all(flows);
    },
  };
}

async function serveReverse(socket: TunnelSocket, via: string, options: ReverseOptions): Promise<void> {
  const start = Date.now();
  const src = { host: socket.remoteAddress ?? "?", port: socket.remotePort ?? 0 };
  const { target, signal } = options;
  socket.on("error", () => {}); // told through the relay's result
  const record = (dst: Endpoint, fields: { up: number; down: number; end: FlowEnd; error?: string }) =>
    options.log.flow({ start, durationMs: Date.now() - start, peer: options.peerOf(src.host), via, protocol: "tcp", src, dst, ...fields, ...(parseIp(target.host) ? {} : { name: target.host }) });

  const local = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
  const failure = await connected(local, signal);
  if (failure) {
    // The peer's connect meets a reset, as if nothing listened there.
    local.on("error", () => {});
    local.destroy();
    reset(socket);
    if (failure === "aborted") return record(target, { up: 0, down: 0, end: "shutdown" });
    return record(target, { up: 0, down: 0, end: failure.code === "ECONNREFUSED" ? "refused" : "unreachable", error: failure.message });
  }
  const dst = { host: local.remoteAddress ?? target.host, port: target.port };
  const result = await relay(socket, local, signal);
  record(dst, { up: result.up, down: result.down, end: result.end, ...(result.error ? { error: result.error.message } : {}) });
}

/** Receives datagrams on the tunnel port; each peer-side sender gets a local UDP socket towards the service. */
export function startUdpReverse(options: ReverseOptions): Door {
  const { via, ...labels } = door("udp", options);
  const { tunnel, target, log, signal, peerOf } = options;
  const socket: TunnelUdpSocket = tunnel.udp();
  socket.on("error", () => {}); // a reply to a sender that cannot be reached: lost, as UDP's are
  socket.bind(options.port);
  const family = parseIp(target.host)?.family === 6 ? "udp6" : "udp4";
  const named = parseIp(target.host) ? {} : { name: target.host };
  const endAll = relayUdpFlows({
    listener: socket,
    target,
    open: () => createSocket({ type: family }),
    signal,
    record: (flow, end, error) =>
      log.flow({ start: flow.start, durationMs: Date.now() - flow.start, peer: peerOf(flow.src.host), via, protocol: "udp", src: flow.src, dst: flow.dst ?? target, up: flow.up, down: flow.down, end, ...(error ? { error } : {}), ...named }),
  });

  return {
    ...labels,
    close: async () => {
      endAll();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}
