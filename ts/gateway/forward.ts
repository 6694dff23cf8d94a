// Forward mode for one TCP connection: open the upstream first, and only then accept
// the client (so a refused or unreachable destination is refused to the client, at
// once), splice the two, and log one record for the flow.

import type { Socket } from "node:net";
import type { TcpConnection } from "../host/tcp-connection.js";
import type { Endpoint } from "../ip.js";
import { splice, type SpliceResult } from "../splice.js";
import { DialError } from "./dial.js";
import type { FlowBytes, FlowEnd, FlowRecord, OpenFlow } from "./flow-log.js";
import type { Route } from "./route.js";
import { dnsQuestion, httpHost, tlsServerName } from "./sniff.js";

export interface TcpForwardOptions {
  /** Where to connect for a destination, or why not. */
  route(destination: Endpoint): Route;
  /** Opens the upstream connection (directly or through --via); rejects with a DialError. */
  dial(target: Endpoint): Promise<Socket>;
  /** The name to log for a peer's public key. */
  peerName(publicKey: string): string;
  /** Called once as the client's SYN arrives (for a live view); `onFlowEnd` follows with the same start. */
  onFlowOpen?(flow: OpenFlow, bytes: FlowBytes): void;
  /** Called once when the flow is over. */
  onFlowEnd(record: FlowRecord): void;
  /** Aborts at shutdown: the flow is reset both ways and logged as "shutdown". */
  signal: AbortSignal;
}

const SPLICE_ENDS: Record<SpliceResult["end"], FlowEnd> = {
  closed: "closed",
  "connection-reset": "client-reset",
  "socket-reset": "upstream-reset",
  "socket-error": "upstream-error",
  aborted: "shutdown",
};

export async function forwardTcp(conn: TcpConnection, options: TcpForwardOptions): Promise<void> {
  const start = Date.now();
  const record = (fields: Pick<FlowRecord, "up" | "down" | "end"> & { name?: string; error?: string }): FlowRecord => ({
    start,
    durationMs: Date.now() - start,
    peer: options.peerName(conn.peer),
    protocol: "tcp",
    src: conn.remote,
    dst: conn.local,
    ...fields,
  });
  const relayed = { up: 0, down: 0 };
  options.onFlowOpen?.({ start, peer: options.peerName(conn.peer), protocol: "tcp", src: conn.remote, dst: conn.local }, () => relayed);

  const route: Route = options.signal.aborted ? { end: "refused", why: "the gateway is stopping" } : options.route(conn.local);
  if (!("to" in route)) {
    // A closed port answers with RST; a destination we will not reach, as a router would.
    conn.refuse(route.end === "refused" ? "reset" : "unreachable");
    return options.onFlowEnd(record({ up: 0, down: 0, end: route.end, error: route.why }));
  }

  let socket: Socket;
  try {
    socket = await options.dial(route.to);
  } catch (error) {
    const refusal = error instanceof DialError ? error.refusal : "reset";
    conn.refuse(refusal);
    // A dial given up because the gateway stops says nothing about the destination.
    const end = options.signal.aborted ? "shutdown" : refusal === "reset" ? "refused" : "unreachable";
    return options.onFlowEnd(record({ up: 0, down: 0, end, error: (error as Error).message }));
  }

  try {
    await conn.accept();
  } catch (error) {
    socket.destroy();
    return options.onFlowEnd(record({ up: 0, down: 0, end: "client-reset", error: (error as Error).message }));
  }

  const namer = new FlowNamer(conn.local.port === 53);
  const result = await splice(conn, socket, {
    signal: options.signal,
    onChunk: (chunk, direction) => {
      relayed[direction] += chunk.length;
      if (direction === "up") namer.add(chunk);
    },
  });
  const fields = { up: result.up, down: result.down, end: SPLICE_ENDS[result.end], ...(namer.name ? { name: namer.name } : {}) };
  options.onFlowEnd(record(result.error ? { ...fields, error: result.error.message } : fields));
}

/** The most of a flow's first bytes kept while looking for its name. */
const SNIFF_LIMIT = 16 * 1024;

/** Collects the client's first bytes until they name the flow (SNI, Host, or a DNS-over-TCP question). */
class FlowNamer {
  name: string | undefined;
  #seen = new Uint8Array(0);
  #done = false;

  constructor(readonly dns: boolean) {}

  add(chunk: Uint8Array): void {
    if (this.#done) return;
    const seen = new Uint8Array(Math.min(SNIFF_LIMIT, this.#seen.length + chunk.length));
    seen.set(this.#seen);
    seen.set(chunk.subarray(0, seen.length - this.#seen.length), this.#seen.length);
    this.#seen = seen;
    // DNS over TCP puts a 2-byte length before each message.
    this.name = this.dns ? dnsQuestion(seen.subarray(2)) : (tlsServerName(seen) ?? httpHost(seen));
    if (this.name || seen.length >= SNIFF_LIMIT) {
      this.#done = true;
      this.#seen = new Uint8Array(0);
    }
  }
}
