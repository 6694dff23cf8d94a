import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { UdpPacket } from "../host/udp-packet.js";
import type { Endpoint } from "../ip.js";
import type { FlowRecord } from "./flow-log.js";
import { UdpRelay } from "./udp-relay.js";

const sockets: Socket[] = [];
let relay: UdpRelay | undefined;
afterEach(() => {
  relay?.close();
  for (const socket of sockets.splice(0)) socket.close();
});

/** A UDP server on 127.0.0.1 that answers each datagram with `answer(data)`; remembers who sent. */
async function udpServer(answer: (data: Buffer) => Uint8Array | undefined): Promise<{ endpoint: Endpoint; senders: RemoteInfo[] }> {
  const socket = createSocket("udp4");
  sockets.push(socket);
  const senders: RemoteInfo[] = [];
  socket.on("message", (data, from) => {
    senders.push(from);
    const reply = answer(data);
    if (reply) socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { endpoint: { host: "127.0.0.1", port: socket.address().port }, senders };
}

interface Sent {
  data: string;
  from: Endpoint;
  to: Endpoint;
}

function startRelay(options: { idleMs?: number; dnsTimeoutMs?: number } = {}) {
  const sent: Sent[] = [];
  const ended: FlowRecord[] = [];
  relay = new UdpRelay({
    send: (data, from, to) => void sent.push({ data: Buffer.from(data).toString("latin1"), from, to }),
    onFlowEnd: (record) => void ended.push(record),
    peerName: (key) => `name-of-${key}`,
    ...options,
  });
  return { relay, sent, ended };
}

const client = { host: "10.77.0.2", port: 40000 };
/** How each packet was refused (packet.refuse), in order. */
const refusals: string[] = [];
const packet = (data: Uint8Array | string, dst: Endpoint, src = client) =>
  new UdpPacket(typeof data === "string" ? new TextEncoder().encode(data) : data, src, dst, "KEY", () => {}, (why) => void refusals.push(why));
const until = async (condition: () => boolean, ms = 3000) => {
  for (const start = Date.now(); !condition(); await new Promise((resolve) => setTimeout(resolve, 10))) {
    if (Date.now() - start > ms) throw new Error("timed out waiting");
  }
};

function dnsQuery(name: string): Uint8Array {
  const labels = name.split(".").flatMap((label) => [label.length, ...new TextEncoder().encode(label)]);
  return new Uint8Array([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

describe("UdpRelay", () => {
  it("relays both ways through one socket per flow, answers from the address the client used, and ends idle flows", async () => {
    const echo = await udpServer((data) => Buffer.concat([Buffer.from("re:"), data]));
    const { relay, sent, ended } = startRelay({ idleMs: 300 });
    const dst = { host: "192.0.2.7", port: 9999 }; // what the client asked for; the test routes it to the echo server
    relay.relay(packet("one", dst), () => ({ to: echo.endpoint }));
    relay.relay(packet("two", dst), () => ({ to: echo.endpoint }));
    relay.relay(packet("other", dst, { host: "10.77.0.2", port: 40001 }), () => ({ to: echo.endpoint }));
    await until(() => sent.length === 3);
    // UDP keeps no order (Deno's sockets do reorder here).
    expect(sent.filter((s) => s.to.port === 40000).sort((a, b) => a.data.localeCompare(b.data))).toEqual([
      { data: "re:one", from: dst, to: client },
      { data: "re:two", from: dst, to: client },
    ]);
    expect(new Set(echo.senders.map((s) => s.port)).size).toBe(2); // two flows, two sockets
    expect(relay.size).toBe(2);
    await until(() => ended.length === 2);
    expect(ended.find((r) => r.src.port === 40000)).toMatchObject({ peer: "name-of-KEY", protocol: "udp", dst, up: 6, down: 12, end: "idle" });
    expect(relay.size).toBe(0);
  });

  it("ends a DNS flow once its query is answered, naming the question", async () => {
    const resolver = await udpServer((query) => Buffer.concat([query.subarray(0, 2), Buffer.from([0x81, 0x80]), query.subarray(4)]));
    const { relay, sent, ended } = startRelay();
    const virtualResolver = { host: "10.77.0.1", port: 53 };
    relay.relay(packet(dnsQuery("example.test"), virtualResolver), () => ({ to: resolver.endpoint }));
    await until(() => ended.length === 1);
    expect(sent[0]).toMatchObject({ from: virtualResolver, to: client });
    expect(ended[0]).toMatchObject({ name: "example.test A", end: "answered", dst: virtualResolver });
  });

  it("ends an unanswered DNS flow after its timeout", async () => {
    const silent = await udpServer(() => undefined);
    const { relay, ended } = startRelay({ dnsTimeoutMs: 200 });
    relay.relay(packet(dnsQuery("slow.test"), { host: "10.77.0.1", port: 53 }), () => ({ to: silent.endpoint }));
    await until(() => ended.length === 1);
    expect(ended[0]).toMatchObject({ name: "slow.test A", end: "idle", down: 0 });
  });

  it("ignores datagrams from anyone but the upstream", async () => {
    const echo = await udpServer((data) => data);
    const { relay, sent } = startRelay();
    relay.relay(packet("hi", { host: "192.0.2.7", port: 7 }), () => ({ to: echo.endpoint }));
    await until(() => sent.length === 1);
    const stranger = createSocket("udp4");
    sockets.push(stranger);
    stranger.send("injected", echo.senders[0]!.port, "127.0.0.1");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sent.map((s) => s.data)).toEqual(["hi"]);
  });

  it("tells the client of the upstream's ICMP port unreachable and ends the flow as refused (Node, Bun; Deno's node:dgram reports none)", async () => {
    // A port that was free a moment ago: nothing listens there, so the kernel answers port unreachable.
    const probe = createSocket("udp4");
    await new Promise<void>((resolve) => probe.bind(0, "127.0.0.1", resolve));
    const { port } = probe.address();
    await new Promise<void>((resolve) => probe.close(resolve));
    const { relay, ended } = startRelay({ idleMs: 500 });
    refusals.length = 0;
    const dst = { host: "192.0.2.7", port: 9 };
    relay.relay(packet("anyone there?", dst), () => ({ to: { host: "127.0.0.1", port } }));
    relay.relay(packet("still?", dst), () => ({ to: { host: "127.0.0.1", port } })); // while connecting: kept, then sent
    await until(() => ended.length === 1);
    if ("Deno" in globalThis) {
      expect([refusals, ended[0]!.end]).toEqual([[], "idle"]);
    } else {
      expect(refusals).toEqual(["port"]);
      expect(ended[0]).toMatchObject({ dst, end: "refused", error: expect.stringContaining("ECONNREFUSED") });
    }
  });

  it("ends open flows with 'shutdown' on close", async () => {
    const echo = await udpServer((data) => data);
    const { relay, ended } = startRelay();
    relay.relay(packet("x", { host: "192.0.2.7", port: 7 }), () => ({ to: echo.endpoint }));
    relay.close();
    expect(ended).toMatchObject([{ end: "shutdown", up: 1 }]);
  });
});

describe("UdpRelay, a flow the route turns down", () => {
  it("opens no socket, answers each datagram with ICMP, counts what the client sent, and logs the flow once with why", async () => {
    const { relay, sent, ended } = startRelay({ idleMs: 200 });
    const loopback = { host: "127.0.0.1", port: 5000 };
    refusals.length = 0;
    relay.relay(packet("one", loopback), () => ({ end: "denied", why: "not there" }));
    relay.relay(packet("two", loopback), () => ({ end: "denied", why: "not there" }));
    relay.relay(packet("three", { host: "10.77.0.1", port: 80 }), () => ({ end: "refused", why: "only port 53" }));
    expect(relay.size).toBe(2);
    expect(refusals).toEqual(["host", "host", "port"]); // a denied address, a closed port of the gateway's
    await until(() => ended.length === 2);
    expect(ended).toMatchObject([
      { dst: loopback, up: 6, down: 0, end: "denied", error: "not there" },
      { dst: { host: "10.77.0.1", port: 80 }, up: 5, end: "refused" },
    ]);
    expect(sent).toEqual([]);
  });
});
