// The gateway end to end on loopback: a client stack joins with a peer's config, and its
// flows reach upstream servers on 127.0.0.1 (TCP, UDP, DNS through the virtual resolver,
// TCP through a SOCKS5 proxy); peers added and removed in the folder apply while it runs.
// The upstreams are on loopback, so these gateways allow it, except where a test checks
// that the default denies it.

import { createHash, randomBytes } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTunnelClient } from "../../test/support/loopback-stacks.js";
import { startSocks5Proxy } from "../../test/support/test-proxies.js";
import { genkey, pubkey, type Server, type ServerOptions, type UdpPacket, type UdpUnreachable } from "../index.js";
import type { Endpoint } from "../ip.js";
import { ConfigStore, type PeerRecord } from "./config-store.js";
import { parseProxy } from "./dial.js";
import { FlowLog } from "./flow-log.js";
import { startGateway, type Gateway, type GatewayOptions } from "./gateway.js";
import { THREADS } from "../../test/support/threads.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Running {
  gateway: Gateway;
  store: ConfigStore;
  lines: string[];
  /** A client stack using `peer`'s keys and addresses. */
  join(peer: Pick<PeerRecord, "privateKey" | "address">, extra?: Partial<ServerOptions>): Promise<Server>;
}

async function runGateway(options: Partial<GatewayOptions> = {}): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "wgn-gateway-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = new ConfigStore(dir);
  const lines: string[] = [];
  const gateway = await startGateway({
    store,
    peers: 1,
    listen: { host: "127.0.0.1", port: 0 },
    dnsUpstream: { host: "127.0.0.1", port: 9 }, // tests that use DNS pass their own
    log: new FlowLog((line) => lines.push(line), { json: true }),
    show: () => {},
    pollMs: 100,
    allowLoopback: true,
    ...THREADS,
    ...options,
  });
  let stopped = false;
  cleanups.push(() => stopped || gateway.stop());
  const stop = gateway.stop;
  gateway.stop = () => ((stopped = true), stop());
  return {
    gateway,
    store,
    lines,
    join: async (peer, extra = {}) => {
      const client = await startTunnelClient(
        { privateKey: peer.privateKey, serverPublicKey: gateway.publicKey, endpoint: gateway.address, address: peer.address },
        extra,
      );
      cleanups.push(() => client.close());
      return client;
    },
  };
}

async function tcpServer(onSocket: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => onSocket(socket.on("error", () => {})));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as net.AddressInfo).port;
}

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const REQUEST = "GET /file HTTP/1.1\r\nHost: files.example.test\r\n\r\n";
const responseHead = (body: Uint8Array) => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`;

/** An HTTP-ish server: answers any request with `body` and closes. */
function download(body: Uint8Array): Promise<number> {
  return tcpServer((socket) => {
    socket.once("data", () => socket.end(Buffer.concat([Buffer.from(responseHead(body)), body])));
  });
}

async function udpServer(answer: (data: Buffer) => Uint8Array): Promise<Endpoint> {
  const socket: UdpSocket = createSocket("udp4");
  socket.on("message", (data, from) => socket.send(answer(data), from.port, from.address));
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { host: "127.0.0.1", port: socket.address().port };
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const flows = (lines: string[]) => lines.map((line) => JSON.parse(line)).filter((event) => event.type === "flow");
const until = async (condition: () => boolean, ms = 5000) => {
  for (const start = Date.now(); !condition(); await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (Date.now() - start > ms) throw new Error("timed out waiting");
  }
};

/** GETs through the tunnel and returns the body. */
async function httpGet(client: Server, port: number): Promise<Buffer> {
  const conn = await client.connect({ host: "127.0.0.1", port });
  await conn.write(REQUEST);
  const parts: Uint8Array[] = [];
  for await (const chunk of conn) parts.push(chunk);
  await conn.end();
  const response = Buffer.concat(parts);
  return response.subarray(response.indexOf("\r\n\r\n") + 4);
}

function dnsQuery(name: string): Uint8Array {
  const labels = name.split(".").flatMap((label) => [label.length, ...Buffer.from(label)]);
  return new Uint8Array([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 28, 0, 1]);
}

describe("gateway", () => {
  it("forwards a TCP download to its original destination and logs the flow", async () => {
    const body = randomBytes(4 << 20);
    const port = await download(body);
    const { gateway, store, lines, join: joinAs } = await runGateway();
    const client = await joinAs(store.peers()[0]!);
    expect(sha256(await httpGet(client, port))).toBe(sha256(body));
    await until(() => flows(lines).length === 1);
    expect(flows(lines)[0]).toMatchObject({
      peer: "peer1",
      protocol: "tcp",
      src: { host: "10.77.0.2" },
      dst: { host: "127.0.0.1", port },
      name: "files.example.test",
      up: REQUEST.length,
      down: responseHead(body).length + body.length,
      end: "closed",
    });
    await gateway.stop();
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: "summary", flows: 1, tcp: 1 });
  });

  it("refuses the client's connection when the destination refuses, not at the dial's timeout", async () => {
    const closed = await closedPort();
    const { store, lines, join: joinAs } = await runGateway();
    const client = await joinAs(store.peers()[0]!);
    // A refusal (RST), where the dial's timeout would end the flow "unreachable": it did not wait.
    await expect(client.connect({ host: "127.0.0.1", port: closed })).rejects.toThrow("connection refused");
    await until(() => flows(lines).some((flow) => flow.dst.port === closed));
    expect(flows(lines).find((flow) => flow.dst.port === closed)).toMatchObject({ end: "refused", error: expect.stringContaining("ECONNREFUSED") });
  });

  it("relays UDP both ways and DNS through the virtual resolver", async () => {
    const echo = await udpServer((data) => Buffer.concat([Buffer.from("echo:"), data]));
    const resolver = await udpServer((query) => Buffer.concat([query.subarray(0, 2), Buffer.from([0x81, 0x80]), query.subarray(4)]));
    const { store, lines, join: joinAs } = await runGateway({ dnsUpstream: resolver });
    const received: { from: Endpoint; data: Uint8Array }[] = [];
    const peer = store.peers()[0]!;
    const client = await joinAs(peer, { onUdp: (packet) => void received.push({ from: packet.src, data: packet.data }) });
    const [gateway4] = store.server().address;
    const virtualResolver = { host: gateway4.replace("/24", ""), port: 53 };
    client.sendUdp("ping", { host: "10.77.0.2", port: 4000 }, echo);
    client.sendUdp(dnsQuery("www.example.test"), { host: "10.77.0.2", port: 4001 }, virtualResolver);
    await until(() => received.length === 2);
    expect(received.find((r) => r.from.port === echo.port)).toMatchObject({ from: echo, data: new Uint8Array(Buffer.from("echo:ping")) });
    const answer = received.find((r) => r.from.port === 53)!;
    expect(answer.from).toEqual(virtualResolver); // answered from the resolver's address
    expect(answer.data[2]! & 0x80).toBe(0x80);
    await until(() => flows(lines).some((flow) => flow.end === "answered"));
    expect(flows(lines).find((flow) => flow.end === "answered")).toMatchObject({ protocol: "udp", name: "www.example.test AAAA", dst: virtualResolver });
  });

  it("counts against --max-flows the UDP flows open, not DNS queries answered and done", async () => {
    const resolver = await udpServer((query) => Buffer.concat([query.subarray(0, 2), Buffer.from([0x81, 0x80]), query.subarray(4)]));
    const echo = await udpServer((data) => data);
    const { store, join: joinAs } = await runGateway({ dnsUpstream: resolver, maxFlowsPerPeer: 3 });
    const answered: number[] = [];
    const refused: number[] = [];
    const client = await joinAs(store.peers()[0]!, {
      onUdp: (packet) => void answered.push(packet.dst.port),
      onUdpUnreachable: (info) => void refused.push(info.local.port),
    });
    // Each query from its own port, as resolvers send them: each flow ends with its answer.
    for (let port = 5000; port < 5006; port++) {
      client.sendUdp(dnsQuery("www.example.test"), { host: "10.77.0.2", port }, { host: "10.77.0.1", port: 53 });
      await until(() => answered.length + refused.length === port - 4999);
    }
    expect({ answered, refused }).toEqual({ answered: [5000, 5001, 5002, 5003, 5004, 5005], refused: [] });
    // Flows that stay open hold their sockets: past three, a datagram is turned down.
    for (let port = 6000; port < 6004; port++) {
      client.sendUdp("hi", { host: "10.77.0.2", port }, echo);
      await until(() => answered.length + refused.length === port - 5993);
    }
    expect(answered.slice(6)).toEqual([6000, 6001, 6002]);
    expect(refused).toEqual([6003]);
  });

  it("relays DNS over TCP to the virtual resolver, naming the question", async () => {
    // A DNS-over-TCP server: answers the first framed query with a framed copy marked as a response.
    const port = await tcpServer((socket) =>
      socket.once("data", (framed) => {
        const answer = Buffer.from(framed);
        answer[4]! |= 0x80;
        socket.end(answer);
      }),
    );
    const { store, lines, join: joinAs } = await runGateway({ dnsUpstream: { host: "127.0.0.1", port } });
    const client = await joinAs(store.peers()[0]!);
    const query = dnsQuery("tcp.example.test");
    const conn = await client.connect({ host: "10.77.0.1", port: 53 });
    await conn.write(new Uint8Array([query.length >> 8, query.length & 255, ...query]));
    const answer = await conn.read();
    expect(answer[4]! & 0x80).toBe(0x80);
    await conn.end();
    await until(() => flows(lines).length === 1);
    expect(flows(lines)[0]).toMatchObject({ protocol: "tcp", dst: { host: "10.77.0.1", port: 53 }, name: "tcp.example.test AAAA", end: "closed" });
  });

  it("sends TCP through a SOCKS5 proxy with --via", async () => {
    const body = randomBytes(1 << 20);
    const port = await download(body);
    const proxy = await startSocks5Proxy();
    cleanups.push(proxy.close);
    const { store, lines, join: joinAs } = await runGateway({ via: parseProxy(`socks5://127.0.0.1:${proxy.port}`) });
    const client = await joinAs(store.peers()[0]!);
    expect(sha256(await httpGet(client, port))).toBe(sha256(body));
    expect(proxy.targets).toEqual([`127.0.0.1:${port}`]);
    await until(() => flows(lines).length === 1);
    expect(flows(lines)[0]).toMatchObject({ end: "closed", down: responseHead(body).length + body.length });
  });

  it("lets a peer added to the folder connect, and a removed one not", async () => {
    const port = await download(Buffer.from("hello"));
    const { store, lines, join: joinAs } = await runGateway();
    const tablet = store.addPeer("tablet"); // what `wg-netstack peer add tablet` does
    await until(() => lines.some((line) => line.includes('"peer-added"')));
    const client = await joinAs(tablet);
    expect((await httpGet(client, port)).toString()).toBe("hello");
    await until(() => flows(lines).some((flow) => flow.peer === "tablet"));

    store.removePeer("tablet");
    await until(() => lines.some((line) => line.includes('"peer-removed"')));
    const attempt = client.connect({ host: "127.0.0.1", port }).then(() => "connected", () => "failed");
    expect(await Promise.race([attempt, new Promise((resolve) => setTimeout(() => resolve("no answer"), 3000))])).not.toBe("connected");
  });

  it("ends a removed peer's UDP flows at once: a late reply never reaches the device that takes its name and address", async () => {
    // An upstream that answers at once, and once more when the test says so, to whoever last wrote.
    let lastSender: { port: number; address: string } | undefined;
    const upstream: UdpSocket = createSocket("udp4");
    upstream.on("message", (data, from) => {
      lastSender = from;
      upstream.send(data, from.port, from.address);
    });
    await new Promise<void>((resolve) => upstream.bind(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => upstream.close(() => resolve())));
    const echo = { host: "127.0.0.1", port: upstream.address().port };

    const { store, lines, join: joinAs } = await runGateway();
    const tablet = store.addPeer("tablet");
    await until(() => lines.some((line) => line.includes('"peer-added"')));
    const received: string[] = [];
    const client = await joinAs(tablet, { onUdp: (packet) => void received.push(`old ${Buffer.from(packet.data)}`) });
    const tabletHost = tablet.address[0].split("/")[0]!;
    client.sendUdp("hello", { host: tabletHost, port: 4000 }, echo);
    await until(() => received.length === 1);
    const oldFlow = lastSender!; // the gateway's socket for this flow

    store.removePeer("tablet");
    // Its flow ends with it, not at the idle timeout or the gateway's stop.
    await until(() => flows(lines).some((flow) => flow.protocol === "udp"));
    expect(flows(lines).find((flow) => flow.protocol === "udp")).toMatchObject({ peer: "tablet", up: 5, down: 5, end: "client-reset" });

    // `peer add tablet` again: a new key, and the lowest free address, which is the old one.
    const again = store.addPeer("tablet");
    expect(again.publicKey).not.toBe(tablet.publicKey);
    expect(again.address).toEqual(tablet.address);
    await until(() => lines.filter((line) => line.includes('"peer-added"')).length === 2);
    const newDevice: string[] = [];
    const replacement = await joinAs(again, { onUdp: (packet) => void newDevice.push(`${Buffer.from(packet.data)} to port ${packet.dst.port}`) });
    replacement.sendUdp("up", { host: tabletHost, port: 4001 }, echo); // its tunnel is up once this comes back
    await until(() => newDevice.length === 1);
    // The old flow's upstream writes again, as a game server or a QUIC peer would.
    upstream.send("late reply for the removed device", oldFlow.port, oldFlow.address);
    // Then the new device's own datagram to the same upstream, from the same port: its reply
    // is the only one it may get.
    replacement.sendUdp("mine", { host: tabletHost, port: 4000 }, echo);
    await until(() => newDevice.length >= 2);
    expect(newDevice).toEqual(["up to port 4001", "mine to port 4000"]);
  });

  it("removes a peer while another peer's file is broken, names that file, and takes it once mended", async () => {
    const port = await download(Buffer.from("hello"));
    const { store, lines, join: joinAs } = await runGateway();
    const [peer1] = store.peers();
    const tablet = store.addPeer("tablet");
    await until(() => lines.some((line) => line.includes('"peer-added"')));
    const client = await joinAs(tablet);
    expect((await httpGet(client, port)).toString()).toBe("hello");

    // A hand edit of another peer's file, saved half-way.
    const laptopFile = join(store.dir, "peers", "laptop.json");
    writeFileSync(laptopFile, '{"privateKey": ');
    await until(() => lines.some((line) => line.includes('"warning"')));
    expect(lines.map((line) => JSON.parse(line)).find((e) => e.type === "warning").message).toBe(`${laptopFile}: not valid JSON`);
    // A stolen tablet is removed all the same.
    store.removePeer("tablet");
    await until(() => lines.some((line) => line.includes('"peer-removed"')));
    const attempt = client.connect({ host: "127.0.0.1", port }).then(() => "connected", () => "failed");
    expect(await Promise.race([attempt, new Promise((resolve) => setTimeout(() => resolve("no answer"), 3000))])).not.toBe("connected");
    // The other peers are still served.
    expect((await httpGet(await joinAs(peer1!), port)).toString()).toBe("hello");

    writeFileSync(laptopFile, JSON.stringify({ privateKey: genkey(), address: ["10.77.0.9/32", `${store.server().address[1].replace("::1/64", "::9")}/128`] }));
    await until(() => lines.some((line) => line.includes('"peer-added"') && line.includes('"laptop"')));
  });

  it("serves no peer whose address or key another peer's file already holds, and says which file and field", async () => {
    const port = await download(Buffer.from("hello"));
    const { store, lines, join: joinAs } = await runGateway();
    const peer1 = store.peers()[0]!;
    // A hand-made file: a new key, but peer1's addresses (copied from its file, say).
    const copyFile = join(store.dir, "peers", "copy.json");
    writeFileSync(copyFile, JSON.stringify({ privateKey: genkey(), address: peer1.address }));
    // And a second copy of peer1's file under another name: the same key.
    const twinFile = join(store.dir, "peers", "twin.json");
    writeFileSync(twinFile, JSON.stringify({ privateKey: peer1.privateKey, address: ["10.77.0.9/32", peer1.address[1].replace(/::2\/128$/, "::9/128")] }));
    // And one with the gateway's own address, where its resolver answers.
    const gatewayFile = join(store.dir, "peers", "gw.json");
    const [gateway4] = store.server().address;
    writeFileSync(gatewayFile, JSON.stringify({ privateKey: genkey(), address: [gateway4.replace("/24", "/32"), peer1.address[1].replace(/::2\/128$/, "::8/128")] }));
    await until(() => lines.filter((line) => line.includes('"warning"')).length === 3);
    const warnings = lines.map((line) => JSON.parse(line)).filter((e) => e.type === "warning").map((e) => e.message);
    expect(warnings.sort()).toEqual([
      `${copyFile}: address: ${peer1.address[0]} is peer1's`,
      `${gatewayFile}: address: ${gateway4.replace("/24", "/32")} is the gateway's`,
      `${twinFile}: privateKey: the same key as peer1's`,
    ]);
    expect(lines.some((line) => line.includes('"peer-added"'))).toBe(false);
    // Removing the copy leaves peer1 its addresses: it still gets its answers.
    rmSync(copyFile);
    rmSync(twinFile);
    rmSync(gatewayFile);
    await new Promise((resolve) => setTimeout(resolve, 300)); // three polls
    expect(lines.some((line) => line.includes('"peer-removed"'))).toBe(false);
    const client = await joinAs(peer1);
    expect((await httpGet(client, port)).toString()).toBe("hello");

    // An address changed by hand applies too: the peer is served anew from its new address.
    const moved: [string, string] = ["10.77.0.20/32", peer1.address[1].replace(/::2\/128$/, "::20/128")];
    writeFileSync(join(store.dir, "peers", "peer1.json"), JSON.stringify({ privateKey: peer1.privateKey, address: moved }));
    await until(() => lines.some((line) => line.includes('"peer-added"')));
    expect(lines.map((line) => JSON.parse(line)).filter((e) => e.type.startsWith("peer-"))).toMatchObject([
      { type: "peer-removed", peer: "peer1" },
      { type: "peer-added", peer: "peer1", address: moved },
    ]);
    const movedClient = await joinAs({ ...peer1, address: moved });
    expect((await httpGet(movedClient, port)).toString()).toBe("hello");
  });

  it("denies the host's loopback by default: ICMP unreachable for TCP and UDP, both logged", async () => {
    let reached = 0;
    const port = await tcpServer(() => reached++);
    const echo = await udpServer((data) => data);
    const { store, lines, join: joinAs } = await runGateway({ allowLoopback: false, udpIdleMs: 1000 });
    const icmp: Uint8Array[] = [];
    const received: UdpPacket[] = [];
    const unreachable: UdpUnreachable[] = [];
    const client = await joinAs(store.peers()[0]!, {
      tap: (packet, { direction }) => void (direction === "in" && packet[9] === 1 && icmp.push(packet)),
      onUdp: (packet) => void received.push(packet),
      onUdpUnreachable: (info) => void unreachable.push(info),
    });
    // Our client stack does not act on ICMP (a kernel's fails the connect: see the interop test), so watch for the packet.
    void client.connect({ host: "127.0.0.1", port }).catch(() => {});
    await until(() => icmp.length > 0, 1000);
    const message = icmp[0]!.subarray((icmp[0]![0]! & 15) * 4);
    expect([message[0], message[1]]).toEqual([3, 1]); // destination unreachable: host unreachable
    client.sendUdp("hello", { host: "10.77.0.2", port: 4000 }, echo);
    await until(() => flows(lines).some((flow) => flow.protocol === "udp"), 5000);
    const [tcp, udp] = ["tcp", "udp"].map((protocol) => flows(lines).find((flow) => flow.protocol === protocol));
    expect(tcp).toMatchObject({ dst: { host: "127.0.0.1", port }, end: "denied", error: expect.stringContaining("loopback") });
    expect(udp).toMatchObject({ dst: echo, up: 5, down: 0, end: "denied" });
    expect([reached, received.length]).toEqual([0, 0]);
    // The datagram was answered with ICMP host unreachable, as the SYN was.
    await until(() => unreachable.length > 0, 1000);
    expect(unreachable).toMatchObject([{ local: { host: "10.77.0.2", port: 4000 }, remote: echo, code: "EHOSTUNREACH" }]);
  });

  it("logs a handshake from a key it does not know, with the key and the IPv4 endpoint as such, when listening on every address", async () => {
    const { gateway, store, lines } = await runGateway({ listen: { port: 0 } }); // [::], IPv4 clients mapped
    const strangerKey = genkey();
    const stranger = await startTunnelClient({ privateKey: strangerKey, serverPublicKey: gateway.publicKey, endpoint: gateway.address, address: store.peers()[0]!.address });
    cleanups.push(() => stranger.close());
    void stranger.connect({ host: "127.0.0.1", port: 9 }).catch(() => {}); // sends the handshake
    await until(() => lines.some((line) => line.includes('"unknown-peer"')));
    const event = lines.map((line) => JSON.parse(line)).find((e) => e.type === "unknown-peer");
    expect(event).toMatchObject({ publicKey: pubkey(strangerKey), endpoint: { host: "127.0.0.1", port: stranger.address.port } });
  });

  it("ends open flows as 'shutdown' when it stops", async () => {
    const port = await tcpServer((socket) => socket.resume()); // holds the connection open
    const { gateway, store, lines, join: joinAs } = await runGateway();
    const client = await joinAs(store.peers()[0]!);
    const conn = await client.connect({ host: "127.0.0.1", port });
    await conn.write("hi");
    await new Promise((resolve) => setTimeout(resolve, 100));
    await gateway.stop();
    expect(flows(lines)).toMatchObject([{ end: "shutdown", up: 2 }]);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: "summary", ends: { shutdown: 1 } });
  });

  it("logs a connection still dialing when it stops as 'shutdown', not as refused by its destination", async () => {
    // A SOCKS5 proxy that takes the connection and never answers: the dial waits (up to its 10 s).
    let dialing = 0;
    const silentProxy = await tcpServer((socket) => {
      dialing++;
      socket.resume().on("end", () => socket.destroy());
    });
    const { gateway, store, lines, join: joinAs } = await runGateway({ via: parseProxy(`socks5://127.0.0.1:${silentProxy}`) });
    const client = await joinAs(store.peers()[0]!);
    void client.connect({ host: "127.0.0.1", port: 9 }).catch(() => {});
    await until(() => dialing === 1);
    await gateway.stop();
    expect(flows(lines)).toMatchObject([{ dst: { port: 9 }, up: 0, down: 0, end: "shutdown" }]);
  });
});
