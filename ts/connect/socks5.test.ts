import { createSocket } from "node:dgram";
import { once } from "node:events";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLoopbackTunnel } from "../../test/support/loopback-tunnel.js";
import type { Server, Tunnel } from "../index.js";
import { FlowLog } from "../gateway/flow-log.js";
import { peerLookup, type Door } from "./forward.js";
import { startSocks5 } from "./socks5.js";
import { encodeReply, encodeUdpDatagram, parseGreeting, parseRequest, parseUdpDatagram, parseUserPass, REPLY, SocksError } from "./socks5-wire.js";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("SOCKS5 messages", () => {
  it("waits for whole messages, then parses them", () => {
    expect(parseGreeting(bytes(5, 2, 0))).toBeUndefined();
    expect(parseGreeting(bytes(5, 2, 0, 2, 99))).toEqual({ value: [0, 2], length: 4 });
    expect(parseUserPass(bytes(1, 1, 0x61, 2, 0x62))).toBeUndefined();
    expect(parseUserPass(bytes(1, 1, 0x61, 2, 0x62, 0x63))).toEqual({ value: { user: "a", pass: "bc" }, length: 6 });
    const name = [...new TextEncoder().encode("files.test")];
    expect(parseRequest(bytes(5, 1, 0, 3, name.length, ...name, 0x1f))).toBeUndefined();
    expect(parseRequest(bytes(5, 1, 0, 3, name.length, ...name, 0x1f, 0x40))).toEqual({ value: { command: 1, address: { host: "files.test", port: 8000, isName: true } }, length: 7 + name.length });
    expect(parseRequest(bytes(5, 1, 0, 1, 10, 0, 0, 1, 0, 80))!.value.address).toEqual({ host: "10.0.0.1", port: 80, isName: false });
    expect(parseRequest(bytes(5, 1, 0, 4, 0xfd, ...new Array(14).fill(0), 1, 0, 53))!.value.address).toEqual({ host: "fd00::1", port: 53, isName: false });
  });

  it("rejects malformed messages with the reply RFC 1928 has for them", () => {
    expect(() => parseGreeting(bytes(4, 1, 0))).toThrow(SocksError);
    expect(() => parseGreeting(bytes(5, 0))).toThrow(/no method/);
    expect(() => parseUserPass(bytes(5, 1, 0x61))).toThrow(/RFC 1929/);
    const badType = (() => {
      try {
        parseRequest(bytes(5, 1, 0, 9, 1, 2, 3, 4, 0, 80));
      } catch (error) {
        return (error as SocksError).reply;
      }
    })();
    expect(badType).toBe(REPLY.addressTypeNotSupported);
    expect(() => parseRequest(bytes(5, 1, 0, 3, 0, 0, 80))).toThrow(/empty domain/);
  });

  it("reads and writes UDP ASSOCIATE datagrams, dropping fragments", () => {
    const datagram = encodeUdpDatagram({ host: "10.0.0.1", port: 53 }, bytes(1, 2, 3));
    expect([...datagram]).toEqual([0, 0, 0, 1, 10, 0, 0, 1, 0, 53, 1, 2, 3]);
    expect(parseUdpDatagram(datagram)).toEqual({ address: { host: "10.0.0.1", port: 53, isName: false }, data: bytes(1, 2, 3) });
    expect(parseUdpDatagram(bytes(0, 0, 1, 1, 10, 0, 0, 1, 0, 53, 9))).toBeUndefined();
    expect(() => parseUdpDatagram(bytes(0, 0, 0))).toThrow(SocksError);
    expect(() => parseUdpDatagram(bytes(0, 0, 0, 1, 10, 0))).toThrow(SocksError);
    expect([...encodeReply(REPLY.connectionRefused)]).toEqual([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
});

/** Sends `messages` one after another to the proxy and returns every byte it answered before closing. */
async function exchange(port: number, ...messages: Uint8Array[]): Promise<number[]> {
  const socket = net.connect({ port, host: "127.0.0.1" });
  const received: number[] = [];
  socket.on("data", (chunk) => received.push(...chunk));
  socket.on("error", () => {});
  await once(socket, "connect");
  for (const message of messages) socket.write(message);
  await once(socket, "close");
  return received;
}

describe("the SOCKS5 proxy against a tunnel on loopback", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let server: Server;
  let tunnel: Tunnel;
  let open: Door;
  let guarded: Door;
  const shutdown = new AbortController();
  const lines: string[] = [];

  beforeAll(async () => {
    // Every TCP port closed (RST); UDP port 7 of 10.0.0.1 echoes.
    stacks = await startLoopbackTunnel({ onTcp: (conn) => conn.refuse(), onUdp: (packet) => (packet.dst.port === 7 ? packet.reply(packet.data) : undefined) });
    ({ server, tunnel } = stacks);
    const log = new FlowLog((line) => lines.push(line), { json: true });
    const peerOf = peerLookup([{ publicKey: server.publicKey, allowedIps: ["10.0.0.0/24"] }]);
    open = await startSocks5({ tunnel, listen: { host: "127.0.0.1", port: 0 }, log, peerOf, signal: shutdown.signal });
    guarded = await startSocks5({ tunnel, listen: { host: "127.0.0.1", port: 0 }, credentials: { user: "u", pass: "p:w@d" }, log, peerOf, signal: shutdown.signal });
  });

  afterAll(async () => {
    shutdown.abort();
    await Promise.all([open?.close(), guarded?.close()]);
    await stacks?.close();
  });

  const port = (door: Door) => Number(door.address.split(":").pop());
  const connectTo = (a: number, b: number, c: number, d: number, p: number) => bytes(5, 1, 0, 1, a, b, c, d, p >> 8, p & 0xff);

  it("answers a refused connect with REP 5 and an unroutable one with REP 3", async () => {
    expect(await exchange(port(open), bytes(5, 1, 0), connectTo(10, 0, 0, 1, 80))).toEqual([5, 0, ...encodeReply(REPLY.connectionRefused)]);
    expect(await exchange(port(open), bytes(5, 1, 0), connectTo(192, 168, 7, 7, 80))).toEqual([5, 0, ...encodeReply(REPLY.networkUnreachable)]);
  });

  it("answers a CONNECT the tunnel cannot even try (a name that is no host name, port 0) with a reply, REP 4 or 1, and logs it", async () => {
    const name = [...new TextEncoder().encode("a b.test")];
    expect(await exchange(port(open), bytes(5, 1, 0), bytes(5, 1, 0, 3, name.length, ...name, 0, 80))).toEqual([5, 0, ...encodeReply(REPLY.hostUnreachable)]);
    expect(await exchange(port(open), bytes(5, 1, 0), connectTo(10, 0, 0, 1, 0))).toEqual([5, 0, ...encodeReply(REPLY.generalFailure)]);
    const flows = lines.map((line) => JSON.parse(line)).filter((event) => event.type === "flow");
    expect(flows.find((flow) => flow.dst.host === "a b.test")).toMatchObject({ end: "unreachable", name: "a b.test" });
    expect(flows.find((flow) => flow.dst.port === 0)).toMatchObject({ end: "unreachable", dst: { host: "10.0.0.1" } });
  });

  it("answers BIND with REP 7 and an unknown address type with REP 8", async () => {
    expect(await exchange(port(open), bytes(5, 1, 0), bytes(5, 2, 0, 1, 10, 0, 0, 1, 0, 80))).toEqual([5, 0, ...encodeReply(REPLY.commandNotSupported)]);
    expect(await exchange(port(open), bytes(5, 1, 0), bytes(5, 1, 0, 7, 10, 0, 0, 1, 0, 80))).toEqual([5, 0, ...encodeReply(REPLY.addressTypeNotSupported)]);
  });

  it("closes on a greeting that is not SOCKS5, and refuses clients without an acceptable method", async () => {
    expect(await exchange(port(open), new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"))).toEqual([]);
    expect(await exchange(port(guarded), bytes(5, 1, 0))).toEqual([5, 0xff]);
  });

  it("requires the RFC 1929 login when one is set", async () => {
    const login = (user: string, pass: string) => bytes(1, user.length, ...new TextEncoder().encode(user), pass.length, ...new TextEncoder().encode(pass));
    expect(await exchange(port(guarded), bytes(5, 1, 2), login("u", "wrong"))).toEqual([5, 2, 1, 1]);
    expect(await exchange(port(guarded), bytes(5, 1, 2), login("u", "p:w@d"), connectTo(10, 0, 0, 1, 80))).toEqual([5, 2, 1, 0, ...encodeReply(REPLY.connectionRefused)]);
  });

  it("UDP ASSOCIATE drops a datagram to port 0 and goes on relaying (it ended the process: the tunnel's send threw in the relay's listener)", async () => {
    const control = net.connect({ port: port(open), host: "127.0.0.1" });
    control.on("error", () => {});
    const replies: number[] = [];
    control.on("data", (chunk) => replies.push(...chunk));
    await once(control, "connect");
    control.write(bytes(5, 1, 0));
    control.write(bytes(5, 3, 0, 1, 0, 0, 0, 0, 0, 0));
    while (replies.length < 12) await once(control, "data");
    expect(replies.slice(0, 5)).toEqual([5, 0, 5, REPLY.succeeded, 0]);
    const relayPort = (replies[10]! << 8) | replies[11]!;
    const client = createSocket("udp4");
    try {
      client.bind(0, "127.0.0.1");
      await once(client, "listening");
      client.send(bytes(0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 1, 2, 3), relayPort, "127.0.0.1"); // DST.PORT 0
      client.send(encodeUdpDatagram({ host: "10.0.0.1", port: 7 }, bytes(4, 5, 6)), relayPort, "127.0.0.1");
      const [echo] = (await once(client, "message")) as [Buffer];
      expect(parseUdpDatagram(new Uint8Array(echo))).toEqual({ address: { host: "10.0.0.1", port: 7, isName: false }, data: bytes(4, 5, 6) });
    } finally {
      client.close();
      control.destroy();
    }
  });

  it("logs the refused connects as flows: through which peer, via which door", () => {
    const flows = lines.map((line) => JSON.parse(line)).filter((event) => event.type === "flow");
    const refused = flows.filter((flow) => flow.end === "refused" && flow.dst.host === "10.0.0.1");
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((flow) => flow.peer === server.publicKey && /^socks5 127\.0\.0\.1:\d+$/.test(flow.via))).toBe(true);
    // No peer's AllowedIPs hold it: no peer to name.
    expect(flows.find((flow) => flow.dst.host === "192.168.7.7")).toMatchObject({ peer: "-", end: "unreachable" });
  });
});
