// Relays UDP flows: each (peer, client address, destination) gets its own host socket,
// so replies find their way back and the upstream sees one source port per flow. Replies
// go back into the tunnel from the address the client sent to. A flow ends after a quiet
// spell; a DNS flow (port 53) ends as soon as every query has its answer. A flow the
// route turns down gets no socket: its datagrams are counted, answered with ICMP and logged
// once. The host socket is connected to the upstream (connected-udp.ts), and an ICMP error
// from there is passed on to the client, as a router would.
// A peer may have `maxFlowsPerPeer` flows open here (each holds a socket); past it a new
// flow's datagram gets ICMP port unreachable, as the server's own limit answers. The
// server's limit counts a flow until it has been quiet for its timeout, so a DNS flow ended
// by its answer would count for a minute: the gateway gives the server a higher one.

import { createSocket, type Socket } from "node:dgram";
import { formatIp, parseIp, type Endpoint } from "../ip.js";
import type { UdpPacket } from "../host/udp-packet.js";
import type { FlowBytes, FlowEnd, FlowRecord, OpenFlow } from "./flow-log.js";
import type { Route } from "./route.js";
import { dnsQuestion } from "./sniff.js";
import { connectForSending, icmpError } from "./connected-udp.js";

export interface UdpRelayOptions {
  /** Sends a datagram into the tunnel, `from` the destination the client used, `to` the client. */
  send(data: Uint8Array, from: Endpoint, to: Endpoint): void;
  /** Called once per flow as its first datagram arrives (for a live view); `onFlowEnd` follows with the same start. */
  onFlowOpen?(flow: OpenFlow, bytes: FlowBytes): void;
  /** Called once per flow when it ends. */
  onFlowEnd(record: FlowRecord): void;
  /** The name to log for a peer's public key. */
  peerName(publicKey: string): string;
  /** A flow with no datagram either way for this long ends; default 60 s (give the server's `udpFlowTimeout`). */
  idleMs?: number;
  /** A DNS query with no answer for this long ends its flow; default 10 s. */
  dnsTimeoutMs?: number;
  /** Flows one peer may have open; default no limit here. */
  maxFlowsPerPeer?: number;
}

interface Flow {
  key: string;
  record: FlowRecord;
  /** Both none for a flow the route turned down. */
  socket: Socket | undefined;
  upstream: Endpoint | undefined;
  dns: boolean;
  /** DNS queries sent and not yet answered. */
  unanswered: number;
  /** Sends to the upstream on the connected socket. */
  send: (data: Uint8Array) => void;
  /** The client's latest datagram: an ICMP error from the upstream answers it. */
  latest: UdpPacket | undefined;
  lastActivity: number;
}

export class UdpRelay {
  readonly #options: UdpRelayOptions;
  readonly #idleMs: number;
  readonly #dnsTimeoutMs: number;
  readonly #flows = new Map<string, Flow>();
  /** Open flows by peer key. */
  readonly #perPeer = new Map<string, number>();
  readonly #sweeper: ReturnType<typeof setInterval>;

  constructor(options: UdpRelayOptions) {
    this.#options = options;
    this.#idleMs = options.idleMs ?? 60_000;
    this.#dnsTimeoutMs = options.dnsTimeoutMs ?? 10_000;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, this.#idleMs, this.#dnsTimeoutMs) / 2);
    this.#sweeper.unref?.(); // idle flows alone do not keep the process running
  }

  /** Number of open flows. */
  get size(): number {
    return this.#flows.size;
  }

  /**
   * Sends the client's datagram where `route` says (usually `packet.dst`; the DNS upstream
   * for the virtual resolver), or turns it down with an ICMP error, as a denied TCP connect
   * is: port unreachable for a closed port of the gateway's own, host unreachable for a
   * denied address. `route` is asked once per flow, when it opens.
   */
  relay(packet: UdpPacket, route: (dst: Endpoint) => Route): void {
    const key = `${packet.peer} ${packet.src.host} ${packet.src.port} ${packet.dst.host} ${packet.dst.port}`;
    let flow = this.#flows.get(key);
    if (!flow) {
      if ((this.#perPeer.get(packet.peer) ?? 0) >= (this.#options.maxFlowsPerPeer ?? Number.POSITIVE_INFINITY)) return packet.refuse("port");
      flow = this.#open(key, packet, route(packet.dst));
    }
    flow.lastActivity = Date.now();
    flow.record.up += packet.data.length;
    if (flow.dns) flow.record.name ??= dnsQuestion(packet.data);
    if (!flow.socket || !flow.upstream) return packet.refuse(flow.record.end === "refused" ? "port" : "host");
    if (flow.dns) flow.unanswered++;
    flow.latest = packet;
    flow.send(packet.data);
  }

  /**
   * Ends every flow of a peer (`client-reset`, as its TCP connections end), and closes their
   * sockets: a removed peer's address may soon be another device's, which must not get
   * what answers the old one's flows.
   */
  endPeer(publicKey: string, why: string): void {
    for (const flow of [...this.#flows.values()]) {
      if (flow.key.startsWith(`${publicKey} `)) this.#end(flow, "client-reset", why);
    }
  }

  /** Ends every flow ("shutdown") and stops. */
  close(): void {
    clearInterval(this.#sweeper);
    for (const flow of [...this.#flows.values()]) this.#end(flow, "shutdown");
  }

  #open(key: string, packet: UdpPacket, route: Route): Flow {
    const flow: Flow = {
      key,
      socket: undefined,
      send: () => {},
      upstream: undefined,
      latest: undefined,
      dns: packet.dst.port === 53,
      unanswered: 0,
      lastActivity: Date.now(),
      record: {
        start: Date.now(),
        durationMs: 0,
        peer: this.#options.peerName(packet.peer),
        protocol: "udp",
        src: packet.src,
        dst: packet.dst,
        up: 0,
        down: 0,
        end: "idle",
      },
    };
    this.#flows.set(key, flow);
    this.#perPeer.set(packet.peer, (this.#perPeer.get(packet.peer) ?? 0) + 1);
    const { start, peer, protocol, src, dst } = flow.record;
    this.#options.onFlowOpen?.({ start, peer, protocol, src, dst }, () => ({ up: flow.record.up, down: flow.record.down }));
    if (!("to" in route)) {
      flow.record.end = route.end;
      flow.record.error = route.why;
      return flow;
    }
    const upstream = (flow.upstream = route.to);
    const socket = (flow.socket = createSocket(parseIp(upstream.host)?.family === 6 ? "udp6" : "udp4"));
    const client = packet.src;
    const upstreamHost = formatIp(parseIp(upstream.host)!);
    socket.on("message", (data, from) => {
      // Only the upstream may answer through this flow: no one else can inject into it.
      if (from.port !== upstream.port || formatIp(parseIp(from.address) ?? new Uint8Array(4)) !== upstreamHost) return;
      flow.lastActivity = Date.now();
      flow.record.down += data.length;
      try {
        this.#options.send(data, flow.record.dst, client);
      } catch {
        // The server is closing: the datagram is lost, as UDP goes.
      }
      if (flow.dns && --flow.unanswered <= 0) this.#end(flow, "answered");
    });
    const failed = (error: Error) => {
      // An ICMP error from the upstream, passed on to the client, which may try the next address at once.
      const icmp = icmpError(error);
      if (icmp) flow.latest?.refuse(icmp.why);
      this.#end(flow, icmp?.end ?? "upstream-error", error.message);
    };
    socket.on("error", failed);
    flow.send = connectForSending(socket, upstream, () => this.#flows.get(key) === flow, failed);
    return flow;
  }

  #sweep(): void {
    const now = Date.now();
    for (const flow of [...this.#flows.values()]) {
      const answerDue = flow.dns && flow.socket;
      if (now - flow.lastActivity >= (answerDue ? this.#dnsTimeoutMs : this.#idleMs)) this.#end(flow, "idle");
    }
  }

  #end(flow: Flow, end: FlowEnd, error?: string): void {
    if (this.#flows.get(flow.key) !== flow) return;
    this.#flows.delete(flow.key);
    const peer = flow.key.slice(0, flow.key.indexOf(" "));
    const left = this.#perPeer.get(peer)! - 1;
    if (left === 0) this.#perPeer.delete(peer);
    else this.#perPeer.set(peer, left);
    flow.socket?.close();
    // A flow turned down ends as it began, however long it lasted.
    const record: FlowRecord = { ...flow.record, durationMs: Date.now() - flow.record.start, end: flow.socket ? end : flow.record.end };
    if (error && flow.socket) record.error = error; // a turned-down flow keeps its why
    this.#options.onFlowEnd(record);
  }
}
