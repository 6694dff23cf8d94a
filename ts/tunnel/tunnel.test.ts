// The client role end to end on loopback: connectTunnel() joins a wg-netstack server on
// 127.0.0.1 whose handlers play the network behind it — an echo service, a closed port, an
// address that never answers, a DNS server (UDP, and TCP for truncated answers).

import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig } from "../client-config.js";
import { genkey, pubkey } from "../keys.js";
import { startServer, type Server, type UdpUnreachable } from "../host/server.js";
import type { TcpConnection } from "../host/tcp-connection.js";
import type { UdpPacket } from "../host/udp-packet.js";
import { connectTunnel, type Tunnel } from "./tunnel.js";
import { TunnelError } from "./errors.js";
import { encodeQuery, parseReply } from "./dns.js";
import { parseConfig } from "./config.js";
import type { TunnelSocket } from "./socket.js";
import { THREADS } from "../../test/support/threads.js";

const ECHO = "10.0.0.1";
const SILENT = "10.0.0.66"; // SYNs there are never answered
const REJECTED = "10.0.0.67"; // SYNs there get ICMP host unreachable; datagrams to its port N the Nth of UNREACHABLE_REASONS
const DNS = "10.0.0.53";
const DNS_NO_TCP = "10.0.0.54"; // answers every UDP question truncated; its TCP port 53 refuses
const DNS_SILENT_TCP = "10.0.0.55"; // the same, but SYNs to its TCP port 53 go unanswered
const NAMES: Record<string, string> = { "echo.test": ECHO, "cached.test": ECHO, "burst.test": ECHO, "under_score.test": ECHO, "soa.test": ECHO, "db.corp.test": "10.0.0.21", "db.sub.corp.test": "10.0.0.22" };
const BIG_NAME = "big.test"; // answered truncated over UDP, in full over TCP
const BIG_ADDRESSES = Array.from({ length: 40 }, (_, i) => `10.0.1.${i + 1}`);
const CUT_NAME = "cut.test"; // over UDP: the full answer cut at 512 bytes, TC set, ANCOUNT still 40 (RFC 1035 4.2.1)

let server: Server;
let tunnel: Tunnel;
let clientKey: string;
const dnsQueries = { udp: 0, tcp: 0, aaaa: 0 };
/** What onUdpUnreachable told the server. */
const unreachable: UdpUnreachable[] = [];
/** How each echo connection ended, seen from the service: "end" or an error code. */
const echoEndings: string[] = [];
const SOURCE_CHUNK = new Uint8Array(64 * 1024).map((_, i) => (i * 31) & 0xff);
const SOURCE_SIZE = 32 * 1024 * 1024;
/** Bytes the port-19 source has handed to its TCP so far. */
let sourceWritten = 0;
/** What the half-closing service on port 13 heard after its FIN, per connection. */
const halfCloseHeard: string[] = [];

/** The code of what `call` throws, or "no error". */
function codeOf(call: () => unknown): string | undefined {
  try {
    call();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return "no error";
}

/** A DNS answer to `query` (RFC 1035 4.1): A records for the name, or NXDOMAIN. */
function dnsAnswer(query: Uint8Array, overTcp: boolean): Uint8Array {
  let at = 12;
  const labels: string[] = [];
  while (query[at] !== 0) {
    labels.push(new TextDecoder().decode(query.subarray(at + 1, at + 1 + query[at]!)));
    at += 1 + query[at]!;
  }
  const questionEnd = at + 5;
  const name = labels.join(".");
  const type = (query[at + 1]! << 8) | query[at + 2]!;
  const known = name === BIG_NAME || name === CUT_NAME ? BIG_ADDRESSES : NAMES[name] ? [NAMES[name]!] : undefined;
  const truncated = (name === BIG_NAME || name === CUT_NAME) && !overTcp;
  const records = type === 1 && known && (!truncated || name === CUT_NAME) ? known : [];
  // No records of a known name: soa.test's answer carries its zone's SOA (RFC 2308 2.2), TTL 300,
  // MINIMUM 30; so does gone.test's NXDOMAIN (RFC 2308 2.1).
  const soa = (name === "soa.test" && known && records.length === 0) || name === "gone.test";
  const out = [query[0]!, query[1]!, 0x81 | (truncated ? 0x02 : 0), known ? 0x80 : 0x83, 0, 1, 0, records.length, 0, soa ? 1 : 0, 0, 0];
  out.push(...query.subarray(12, questionEnd));
  for (const address of records) out.push(0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...address.split(".").map(Number));
  if (soa) out.push(0xc0, 12, 0, 6, 0, 1, 0, 0, 1, 44, 0, 22, 0, 0, 0, 0, 0, 1, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0, 30);
  return new Uint8Array(name === CUT_NAME && truncated ? out.slice(0, 512) : out);
}

async function serveTcp(connection: TcpConnection): Promise<void> {
  const { host, port } = connection.local;
  if (host === SILENT || host === DNS_SILENT_TCP) return new Promise(() => {}); // never accepted: the SYN goes unanswered
  if (host === REJECTED) return connection.refuse("unreachable");
  if (host === DNS && port === 53) {
    dnsQueries.tcp++;
    let received = new Uint8Array(0);
    for await (const chunk of connection) {
      received = new Uint8Array([...received, ...chunk]);
      if (received.length >= 2 && received.length >= 2 + ((received[0]! << 8) | received[1]!)) break;
    }
    const answer = dnsAnswer(received.subarray(2), true);
    await connection.write(new Uint8Array([answer.length >> 8, answer.length & 0xff, ...answer]));
    return void (await connection.end());
  }
  if (host === ECHO && port === 13) {
    // Says its piece and half-closes first, then reads what still comes.
    await connection.write(new TextEncoder().encode("bye"));
    await connection.end();
    let heard = "";
    for await (const chunk of connection) heard += new TextDecoder().decode(chunk);
    return void halfCloseHeard.push(heard);
  }
  if (host === ECHO && port === 19) {
    // chargen: SOURCE_SIZE bytes of a fixed pattern as fast as the window lets them go.
    for (let at = 0; at < SOURCE_SIZE; at += SOURCE_CHUNK.length) {
      await connection.write(SOURCE_CHUNK);
      sourceWritten += SOURCE_CHUNK.length;
    }
    return void (await connection.end());
  }
  if (host === ECHO && port === 80) {
    // Just enough HTTP/1.1: one response per connection.
    await connection.read();
    await connection.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"));
    return void (await connection.end());
  }
  if (host === ECHO && port === 14) {
    await connection.accept(); // established on both sides (the client's ACK came)
    await connection.write(new TextEncoder().encode("x"));
    return connection.abort(); // a reset, with our byte maybe still unread
  }
  if (host !== ECHO || port !== 7) return connection.refuse();
  try {
    for await (const chunk of connection) await connection.write(chunk);
    await connection.end();
    echoEndings.push("end");
  } catch (error) {
    echoEndings.push((error as { code?: string }).code ?? String(error));
  }
}

function serveUdp(packet: UdpPacket): void {
  if (packet.dst.host === ECHO && packet.dst.port === 7) return packet.reply(packet.data);
  if (packet.dst.host === REJECTED) return packet.refuse((["net", "host", "port"] as const)[packet.dst.port % 3]);
  if ((packet.dst.host === DNS_NO_TCP || packet.dst.host === DNS_SILENT_TCP) && packet.dst.port === 53) {
    const truncated = new Uint8Array(packet.data);
    truncated.set([0x83, 0x80], 2); // QR, TC, RD; RA
    return packet.reply(truncated);
  }
  if (packet.dst.host !== DNS || packet.dst.port !== 53) return;
  dnsQueries.udp++;
  if (packet.data[packet.data.length - 3] === 28) dnsQueries.aaaa++; // QTYPE, before QCLASS
  packet.reply(dnsAnswer(packet.data, false));
}

beforeAll(async () => {
  clientKey = genkey();
  const serverKey = genkey();
  server = await startServer({
    ...THREADS,
    privateKey: serverKey,
    host: "127.0.0.1",
    port: 0,
    peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
    onTcp: serveTcp,
    onUdp: serveUdp,
    onUdpUnreachable: (info) => unreachable.push(info),
  });
  tunnel = await connectTunnel(configText(), THREADS);
});

afterAll(async () => {
  await tunnel?.close();
  await server?.close();
});

function configText(overrides: { endpoint?: string; allowedIps?: string } = {}): string {
  return clientConfig({
    privateKey: clientKey,
    address: "10.0.0.2/32",
    serverPublicKey: server.publicKey,
    endpoint: overrides.endpoint ?? `127.0.0.1:${server.address.port}`,
    dns: DNS,
    allowedIps: overrides.allowedIps ?? "10.0.0.0/16",
  });
}

/** Writes `data` then ends, and collects what comes back until the other end's FIN. */
async function echoRoundTrip(socket: TunnelSocket, data: Uint8Array): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.end(data);
  await once(socket, "close");
  return Buffer.concat(chunks);
}

async function failure(socket: TunnelSocket): Promise<TunnelError> {
  const [error] = (await once(socket, "error")) as [TunnelError];
  expect(error).toBeInstanceOf(TunnelError);
  return error;
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("connectTunnel", () => {
  it("comes up once the handshake completed", () => {
    const peer = tunnel.stats().peers[0]!;
    expect(peer.sinceHandshakeMs).toBeDefined();
    expect(tunnel.publicKey).toBe(pubkey(clientKey));
  });

  it("takes parseConfig()'s result as well as the text", async () => {
    const otherKey = genkey();
    server.addPeer({ publicKey: pubkey(otherKey), allowedIps: ["10.0.0.4/32"] });
    const text = clientConfig({ privateKey: otherKey, address: "10.0.0.4/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, allowedIps: "10.0.0.0/16" });
    const other = await connectTunnel(parseConfig(text), THREADS);
    try {
      const socket = other.connect(7, ECHO);
      expect((await echoRoundTrip(socket, new TextEncoder().encode("parsed"))).toString()).toBe("parsed");
    } finally {
      await other.close();
    }
  });

  it("closes: its open sockets fail with ECONNABORTED, and it says it has closed", async () => {
    const otherKey = genkey();
    server.addPeer({ publicKey: pubkey(otherKey), allowedIps: ["10.0.0.5/32"] });
    const text = clientConfig({ privateKey: otherKey, address: "10.0.0.5/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, allowedIps: "10.0.0.0/16" });
    const other = await connectTunnel(text, THREADS);
    const socket = other.connect(7, ECHO);
    await once(socket, "connect");
    const failed = failure(socket);
    await other.close();
    expect(await failed).toMatchObject({ code: "ECONNABORTED" });
    await other.closed;
  });

  it("rejects with ETIMEDOUT when no handshake completes in time", async () => {
    // A UDP port where nothing answers: the server's own port with a key it does not know.
    const stranger = clientConfig({ privateKey: genkey(), address: "10.0.0.9/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}` });
    const attempt = connectTunnel(stranger, { ...THREADS, handshakeTimeout: 300 });
    await expect(attempt).rejects.toMatchObject({ code: "ETIMEDOUT", syscall: "handshake" });
  });

  it("gives up at once when its signal fires before the first handshake: AbortError, code ABORT_ERR", async () => {
    const stranger = clientConfig({ privateKey: genkey(), address: "10.0.0.9/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}` });
    const controller = new AbortController();
    const attempt = connectTunnel(stranger, { ...THREADS, handshakeTimeout: 30_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await expect(attempt).rejects.toMatchObject({ name: "AbortError", code: "ABORT_ERR" });
    expect(Date.now() - started).toBeLessThan(5_000); // not the 30 s handshake timeout
    await expect(connectTunnel(stranger, { ...THREADS, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "ABORT_ERR" });
    // An Endpoint name whose lookup never answers: the signal still ends the wait.
    const hanging = connectTunnel(configText({ endpoint: "slow.example:51820" }), { ...THREADS, lookup: () => new Promise<string>(() => {}), signal: AbortSignal.timeout(100) });
    await expect(hanging).rejects.toMatchObject({ code: "ABORT_ERR" });
    await expect(connectTunnel(stranger, { signal: "soon" as unknown as AbortSignal })).rejects.toMatchObject({ name: "TypeError", code: "ERR_INVALID_ARG_TYPE" });
  });

  it("rejects, never throws, for a bad config or an Endpoint name that does not resolve", async () => {
    const bad = connectTunnel("[Interface]\nPrivateKey = x\n");
    await expect(bad).rejects.toMatchObject({ name: "ConfigError", field: "PrivateKey", line: 2 });
    // Endpoint names go to `lookup` (the system's resolver by default; tests ask no real resolver).
    const lookup = async (name: string) => {
      if (name === "wg.example") return "127.0.0.1";
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND" });
    };
    const unresolvable = connectTunnel(configText({ endpoint: "no-such-host.example:51820" }), { ...THREADS, lookup });
    await expect(unresolvable).rejects.toMatchObject({ code: "ENOTFOUND", address: "no-such-host.example" });
    // Another key, so that this tunnel does not take over the shared one's session.
    const otherKey = genkey();
    server.addPeer({ publicKey: pubkey(otherKey), allowedIps: ["10.0.0.3/32"] });
    const text = clientConfig({ privateKey: otherKey, address: "10.0.0.3/32", serverPublicKey: server.publicKey, endpoint: `wg.example:${server.address.port}` });
    const named = await connectTunnel(text, { ...THREADS, lookup });
    expect(named.stats().peers[0]!.endpoint).toEqual({ host: "127.0.0.1", port: server.address.port });
    await named.close();
  });
});

describe("TunnelSocket", () => {
  it("carries data both ways intact and half-closes as net does", async () => {
    const data = randomBytes(1 << 20);
    const socket = tunnel.connect(7, ECHO);
    expect(socket.connecting).toBe(true);
    expect(socket.pending).toBe(true);
    await once(socket, "connect");
    expect(socket.connecting).toBe(false);
    expect(socket.pending).toBe(false);
    expect(socket.readyState).toBe("open");
    expect({ remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, remoteFamily: socket.remoteFamily, localAddress: socket.localAddress }).toEqual({
      remoteAddress: ECHO,
      remotePort: 7,
      remoteFamily: "IPv4",
      localAddress: "10.0.0.2",
    });
    expect(socket.address()).toMatchObject({ address: "10.0.0.2", family: "IPv4" });
    const back = await echoRoundTrip(socket, data);
    expect(sha256(back)).toBe(sha256(data));
    expect(socket.bytesRead).toBe(data.length);
    expect(socket.bytesWritten).toBe(data.length);
  });

  it("dials later from tunnel.socket(), taking setNoDelay and setKeepAlive first (as pg does)", async () => {
    const socket = tunnel.socket();
    expect(socket.pending).toBe(true);
    expect(socket.connecting).toBe(false);
    expect(socket.setNoDelay(true)).toBe(socket);
    expect(socket.setKeepAlive(true, 1000)).toBe(socket);
    socket.write("early "); // buffered until connected, as net does
    const connected = once(socket, "ready");
    socket.connect(7, ECHO);
    await connected;
    expect((await echoRoundTrip(socket, new TextEncoder().encode("bird"))).toString()).toBe("early bird");
  });

  it("keeps writing after the other end's FIN with allowHalfOpen, and ends with it otherwise", async () => {
    const halfOpen = tunnel.connect({ port: 13, host: ECHO, allowHalfOpen: true });
    halfOpen.setEncoding("utf8");
    const [said] = (await once(halfOpen, "data")) as [string];
    expect(said).toBe("bye");
    await once(halfOpen, "end");
    expect(halfOpen.writable).toBe(true);
    halfOpen.end("still talking");
    await once(halfOpen, "close");
    await until(() => halfCloseHeard.length === 1);
    expect(halfCloseHeard[0]).toBe("still talking");

    const closing = tunnel.connect(13, ECHO); // allowHalfOpen false, as net's default
    closing.resume();
    await once(closing, "end");
    await once(closing, "close");
    expect(closing.writable).toBe(false);
    await until(() => halfCloseHeard.length === 2);
    expect(halfCloseHeard[1]).toBe("");
  });

  it("connects by name through the tunnel's DNS", async () => {
    const socket = tunnel.connect(7, "echo.test");
    const [, address, family, host] = (await once(socket, "lookup")) as [null, string, number, string];
    expect({ address, family, host }).toEqual({ address: ECHO, family: 4, host: "echo.test" });
    expect((await echoRoundTrip(socket, new TextEncoder().encode("by name"))).toString()).toBe("by name");
  });

  it("asks only for A records when we have no IPv6 tunnel address (net.connect's ADDRCONFIG): connect, udp().send and ping by name", async () => {
    const before = dnsQueries.aaaa;
    const socket = tunnel.connect(7, "echo.test");
    expect((await echoRoundTrip(socket, new TextEncoder().encode("v4 only"))).toString()).toBe("v4 only");
    const udp = tunnel.udp();
    udp.send("v4 only", 7, "echo.test");
    await once(udp, "message");
    udp.close();
    await tunnel.ping("echo.test");
    expect(dnsQueries.aaaa - before).toBe(0);
  });

  it("connects to a name with an underscore, as net.connect does (DNS holds them: Docker's service names, Windows hosts)", async () => {
    const socket = tunnel.connect(7, "under_score.test");
    const [, address] = (await once(socket, "lookup")) as [null, string];
    expect(address).toBe(ECHO);
    expect((await echoRoundTrip(socket, new TextEncoder().encode("_"))).toString()).toBe("_");
  });

  it("holds back a fast sender while the reader is paused (TCP's window closes), then delivers everything", async () => {
    sourceWritten = 0;
    const socket = tunnel.connect(19, ECHO);
    await once(socket, "connect");
    // Reading starts, then pauses (as a pipe to a slow destination does): wait until the
    // sender stalls (its writes stop completing).
    const first = (await once(socket, "data")) as [Buffer];
    socket.pause();
    let last = -1;
    for (let i = 0; i < 200 && sourceWritten !== last; i++) {
      last = sourceWritten;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(sourceWritten).toBeLessThan(SOURCE_SIZE);
    // What waits here is bounded by the readable side's high-water mark and one chunk.
    expect(socket.readableLength).toBeLessThanOrEqual(socket.readableHighWaterMark + 64 * 1024);
    const hash = createHash("sha256").update(first[0]);
    let received = first[0].length;
    socket.removeAllListeners("data");
    socket.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
    });
    socket.resume();
    await once(socket, "end");
    expect(received).toBe(SOURCE_SIZE);
    const expected = createHash("sha256");
    for (let at = 0; at < SOURCE_SIZE; at += SOURCE_CHUNK.length) expected.update(SOURCE_CHUNK);
    expect(hash.digest("hex")).toBe(expected.digest("hex"));
  });

  it("emits 'timeout' after setTimeout's idle time and stays open; activity starts it over", async () => {
    const socket = tunnel.connect(7, ECHO);
    await once(socket, "connect");
    socket.setTimeout(50);
    await once(socket, "timeout");
    expect(socket.destroyed).toBe(false);
    // Writing every 100 ms for 1.5 s with a 500 ms idle time: no 'timeout' (each write and
    // each echo starts it over; the margin is wide so that a loaded machine does not matter).
    let timeouts = 0;
    socket.on("timeout", () => timeouts++);
    socket.setTimeout(500);
    const echoed: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => echoed.push(chunk));
    for (let i = 0; i < 15; i++) {
      socket.write("x");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(timeouts).toBe(0);
    socket.setTimeout(0);
    socket.end("still here");
    await once(socket, "close");
    expect(Buffer.concat(echoed).toString()).toBe(`${"x".repeat(15)}still here`);
    // connect's `timeout` bounds the connect, then is the idle time, as net.connect's.
    const timed = tunnel.connect({ port: 7, host: ECHO, timeout: 50 });
    await once(timed, "connect");
    await once(timed, "timeout");
    expect(timed.destroyed).toBe(false);
    timed.destroy();
  });

  it("emits 'timeout' while it connects too, as net does: http.get's timeout option fires for an address that never answers", async () => {
    const socket = tunnel.socket();
    socket.setTimeout(50);
    socket.connect({ port: 80, host: SILENT });
    await once(socket, "timeout");
    expect(socket.connecting).toBe(true);
    socket.destroy();
    const request = http.get(`http://${SILENT}/`, { agent: tunnel.httpAgent, timeout: 50 });
    request.on("error", () => {});
    await once(request, "timeout");
    request.destroy();
  }, 5_000);

  it("fails with Node's codes: ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT, ENETUNREACH, ENOTFOUND, ABORT_ERR", async () => {
    expect(await failure(tunnel.connect(9, ECHO))).toMatchObject({ code: "ECONNREFUSED", syscall: "connect", address: ECHO, port: 9 });

    // ICMP host unreachable for the SYN ends the connect at once (else ETIMEDOUT after 30 s);
    // the cause is server.connect()'s own error, with the same code.
    const rejected = await failure(tunnel.connect({ port: 80, host: REJECTED, timeout: 30_000 }));
    expect(rejected).toMatchObject({ code: "EHOSTUNREACH", syscall: "connect", address: REJECTED, port: 80 });
    expect(rejected.cause).toMatchObject({ name: "ConnectionError", code: "EHOSTUNREACH" });

    const started = Date.now();
    expect(await failure(tunnel.connect({ port: 80, host: SILENT, timeout: 300 }))).toMatchObject({ code: "ETIMEDOUT", address: SILENT });
    expect(Date.now() - started).toBeLessThan(10_000); // a bound that only catches a hang

    expect(await failure(tunnel.connect(80, "192.0.2.1"))).toMatchObject({ code: "ENETUNREACH" });
    expect(await failure(tunnel.connect(80, "fd00::1"))).toMatchObject({ code: "ENETUNREACH" });
    expect(await failure(tunnel.connect(80, "nowhere.test"))).toMatchObject({ code: "ENOTFOUND" });

    const controller = new AbortController();
    const aborted = tunnel.connect({ port: 80, host: SILENT, signal: controller.signal });
    controller.abort();
    expect(await failure(aborted)).toMatchObject({ code: "ABORT_ERR", name: "AbortError" });
  });

  it("reports a reset as ECONNRESET even while nobody reads", async () => {
    const socket = tunnel.connect(14, ECHO); // no 'data' listener: paused
    expect(await failure(socket)).toMatchObject({ code: "ECONNRESET" });
    expect(socket.destroyed).toBe(true);
  });

  it("throws for bad arguments with Node's codes: where it is stricter than net, for listen, and for udp as dgram does", () => {
    // net would dial port 0 and be refused, look the name up and fail with ENOTFOUND, ignore the family.
    expect(() => tunnel.connect(0, ECHO)).toThrow(expect.objectContaining({ name: "RangeError", code: "ERR_SOCKET_BAD_PORT" }));
    expect(() => tunnel.connect(80, "not a host")).toThrow(expect.objectContaining({ name: "TypeError", code: "ERR_INVALID_ARG_VALUE" }));
    expect(() => tunnel.connect({ port: 80, host: ECHO, family: 5 as 4 })).toThrow(expect.objectContaining({ name: "TypeError", code: "ERR_INVALID_ARG_VALUE" }));
    expect(() => tunnel.listen(65536, () => {})).toThrow(expect.objectContaining({ name: "RangeError", code: "ERR_SOCKET_BAD_PORT" }));
    const udp = tunnel.udp();
    expect(() => udp.bind(65536)).toThrow(expect.objectContaining({ name: "RangeError", code: "ERR_SOCKET_BAD_PORT" }));
    expect(() => udp.send(new Uint8Array(1), 0, ECHO)).toThrow(expect.objectContaining({ name: "RangeError", code: "ERR_SOCKET_BAD_PORT" }));
    udp.close();
  });

  it("resets with resetAndDestroy: the other end sees ECONNRESET", async () => {
    const socket = tunnel.connect(7, ECHO);
    await once(socket, "connect");
    const count = echoEndings.length;
    socket.write("x");
    await once(socket, "data");
    socket.resetAndDestroy();
    await once(socket, "close");
    await until(() => echoEndings.length > count);
    expect(echoEndings.at(-1)).toBe("ECONNRESET");
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("tunnel.listen", () => {
  it("serves an http.Server to the network, and refuses ports nobody listens on", async () => {
    const web = http.createServer((request, response) => response.end(`hello ${request.url} from ${request.socket.localAddress}`));
    const listener = tunnel.listen(8080, (socket) => web.emit("connection", socket));
    expect(() => tunnel.listen(8080, () => {})).toThrow(/EADDRINUSE/);
    try {
      const connection = await server.connect({ host: "10.0.0.2", port: 8080 }, { from: ECHO });
      await connection.write(new TextEncoder().encode("GET /page HTTP/1.0\r\n\r\n"));
      let reply = "";
      for await (const chunk of connection) reply += new TextDecoder().decode(chunk);
      expect(reply).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(reply).toMatch(/hello \/page from 10\.0\.0\.2$/);
      await expect(server.connect({ host: "10.0.0.2", port: 8081 }, { from: ECHO })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    } finally {
      listener.close();
      web.close();
    }
    await expect(server.connect({ host: "10.0.0.2", port: 8080 }, { from: ECHO })).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("tunnel.udp", () => {
  it("sends and receives datagrams as node:dgram does, by IP and by name", async () => {
    const udp = tunnel.udp();
    udp.send("ping", 7, ECHO);
    const [message, rinfo] = (await once(udp, "message")) as [Buffer, unknown];
    expect(message.toString()).toBe("ping");
    expect(rinfo).toEqual({ address: ECHO, family: "IPv4", port: 7, size: 4 });
    const { port } = udp.address();
    expect(port).toBeGreaterThanOrEqual(49152);

    // Datagrams anyone in the network sends to our address and port arrive too.
    server.sendUdp("unasked", { host: "10.0.0.99", port: 5000 }, { host: "10.0.0.2", port });
    const [unasked, from] = (await once(udp, "message")) as [Buffer, { address: string; port: number }];
    expect([unasked.toString(), from.address, from.port]).toEqual(["unasked", "10.0.0.99", 5000]);

    udp.send("by name", 7, "echo.test");
    expect(((await once(udp, "message")) as [Buffer])[0].toString()).toBe("by name");

    const error = await new Promise<Error | null>((resolve) => udp.send("x", 7, "192.0.2.1", resolve));
    expect(error).toMatchObject({ code: "ENETUNREACH" });
    udp.close();
    await once(udp, "close");
  });

  it("connects to one remote as node:dgram does: send(msg) goes there, only its datagrams arrive", async () => {
    const udp = tunnel.udp();
    expect([codeOf(() => udp.send("x")), codeOf(() => udp.remoteAddress()), codeOf(() => udp.disconnect())]).toEqual(Array(3).fill("ERR_SOCKET_DGRAM_NOT_CONNECTED"));
    udp.connect(7, "echo.test");
    await once(udp, "connect");
    expect(udp.remoteAddress()).toEqual({ address: ECHO, family: "IPv4", port: 7 });
    expect([codeOf(() => udp.connect(7, ECHO)), codeOf(() => udp.send("x", 7, ECHO))]).toEqual(Array(2).fill("ERR_SOCKET_DGRAM_IS_CONNECTED"));
    // Someone else's datagram to our port is not for a connected socket; the echo's answer is.
    const { port } = udp.address();
    server.sendUdp("stranger", { host: "10.0.0.99", port: 5000 }, { host: "10.0.0.2", port });
    udp.send("connected");
    const [message, rinfo] = (await once(udp, "message")) as [Buffer, unknown];
    expect([message.toString(), rinfo]).toEqual(["connected", { address: ECHO, family: "IPv4", port: 7, size: 9 }]);
    // Disconnected, it hears from anyone again and sends anywhere.
    udp.disconnect();
    server.sendUdp("stranger", { host: "10.0.0.99", port: 5000 }, { host: "10.0.0.2", port });
    expect(((await once(udp, "message")) as [Buffer])[0].toString()).toBe("stranger");
    udp.close();
    // A name that does not resolve fails the connect, to its callback.
    const lost = tunnel.udp();
    const error = await new Promise<Error | undefined>((resolve) => lost.connect(7, "nowhere.test", resolve));
    expect(error).toMatchObject({ code: "ENOTFOUND" });
    expect(codeOf(() => lost.remoteAddress())).toBe("ERR_SOCKET_DGRAM_NOT_CONNECTED");
    lost.close();
  });

  it("says what node:dgram says when used out of turn: bound twice, used after close, address() before bind", async () => {
    const udp = tunnel.udp();
    expect(codeOf(() => udp.address())).toBe("EBADF"); // getsockname on a socket with no port
    udp.bind();
    expect(codeOf(() => udp.bind())).toBe("ERR_SOCKET_ALREADY_BOUND");
    udp.close();
    await once(udp, "close");
    expect([codeOf(() => udp.bind()), codeOf(() => udp.address()), codeOf(() => udp.send("x", 7, ECHO))]).toEqual(Array(3).fill("ERR_SOCKET_DGRAM_NOT_RUNNING"));
  });

  it("hears packet.refuse() on a connected socket as node:dgram hears ICMP errors, and answers a datagram to a port nothing is bound to with port unreachable", async () => {
    for (const [port, code] of [[3, "ENETUNREACH"], [4, "EHOSTUNREACH"], [5, "ECONNREFUSED"]] as const) {
      const udp = tunnel.udp();
      udp.connect(port, REJECTED);
      await once(udp, "connect");
      udp.send("anyone there?");
      const [error] = (await once(udp, "error")) as [Error];
      expect(error).toMatchObject({ code, syscall: "recvmsg", address: REJECTED, port, message: `recvmsg ${code} ${REJECTED}:${port}` });
      // It stays open, as a dgram socket does.
      udp.send("still here?");
      expect(((await once(udp, "error")) as [Error])[0]).toMatchObject({ code });
      udp.close();
    }
    // Unconnected, it hears nothing of them (Linux tells only a connected socket).
    const open = tunnel.udp();
    const errors: Error[] = [];
    open.on("error", (error: Error) => errors.push(error));
    open.send("to a closed port", 5, REJECTED);
    open.send("ping", 7, ECHO);
    await once(open, "message");
    expect(errors).toEqual([]);
    open.close();

    // The other way: a datagram the server sends to our port 9, which nothing is bound to.
    unreachable.length = 0;
    server.sendUdp("anyone there?", { host: ECHO, port: 7000 }, { host: "10.0.0.2", port: 9 });
    for (let i = 0; i < 100 && unreachable.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(unreachable).toEqual([{ local: { host: ECHO, port: 7000 }, remote: { host: "10.0.0.2", port: 9 }, peer: pubkey(clientKey), code: "ECONNREFUSED" }]);
  });

  it("binds a chosen port once: a second bind is EADDRINUSE", async () => {
    const first = tunnel.udp().bind(5353);
    expect(() => tunnel.udp().bind(5353)).toThrow(/EADDRINUSE/);
    first.close();
    const again = tunnel.udp().bind(5353);
    again.close();
  });
});

describe("HTTP", () => {
  it("fetches with tunnel.fetch", async () => {
    const response = await tunnel.fetch(`http://${ECHO}/`);
    expect([response.status, await response.text()]).toEqual([200, "hello"]);
  });

  // Only Node's own fetch takes an undici dispatcher; Deno's and Bun's would ignore it and
  // dial the address outside the tunnel, so they do not run this.
  it.skipIf("Deno" in globalThis || "Bun" in globalThis)("serves Node's built-in fetch through tunnel.dispatcher (undici 7 with Node 20's undici 6)", async () => {
    const response = await fetch(`http://${ECHO}/`, { dispatcher: tunnel.dispatcher } as RequestInit);
    expect([response.status, await response.text()]).toEqual([200, "hello"]);
  });
});

describe("tunnel.ping", () => {
  it("gets an echo reply (the server's engine answers for any address) and says why it cannot", async () => {
    const rtt = await tunnel.ping(ECHO);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(await tunnel.ping("echo.test")).toBeGreaterThanOrEqual(0);
    await expect(tunnel.ping("192.0.2.1")).rejects.toMatchObject({ code: "ENETUNREACH" });
    await expect(tunnel.ping("nowhere.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
  });
});

describe("server.connect", () => {
  it("rejects, never throws: a bad address, no route (ENETUNREACH)", async () => {
    const bad = server.connect({ host: "nowhere", port: 1 });
    await expect(bad).rejects.toThrow(TypeError);
    const unrouted = server.connect({ host: "10.9.9.9", port: 1 }, { from: "10.0.0.1" });
    await expect(unrouted).rejects.toMatchObject({ code: "ENETUNREACH" });
  });
});

describe("tunnel.resolve", () => {
  it("asks the config's DNS server through the tunnel, and caches for the TTL", async () => {
    const before = dnsQueries.udp;
    expect(await tunnel.resolve("cached.test", { family: 4 })).toEqual([ECHO]);
    expect(await tunnel.resolve("CACHED.test.", { family: 4 })).toEqual([ECHO]);
    expect(dnsQueries.udp - before).toBe(1);
  });

  it("caches an empty answer for its SOA's TTL (RFC 2308 5): a name without AAAA records is not asked for them again and again", async () => {
    const before = dnsQueries.aaaa;
    for (let i = 0; i < 3; i++) await expect(tunnel.resolve("soa.test", { family: 6 })).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(await tunnel.resolve("soa.test")).toEqual([ECHO]);
    expect(dnsQueries.aaaa - before).toBe(1);
    // Without an SOA there is no TTL to keep it for (RFC 2308 5): asked each time.
    for (let i = 0; i < 2; i++) await expect(tunnel.resolve("echo.test", { family: 6 })).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(dnsQueries.aaaa - before).toBe(3);
  });

  it("caches an NXDOMAIN for its SOA's TTL (RFC 2308 5), and asks again for one without an SOA", async () => {
    for (const [name, asked] of [["gone.test", 1], ["never.test", 3]] as const) {
      const before = dnsQueries.udp;
      for (let i = 0; i < 3; i++) {
        const failure = await tunnel.resolve(name, { family: 4 }).catch((error: unknown) => error);
        expect(failure).toMatchObject({ code: "ENOTFOUND", message: `${name} does not exist (NXDOMAIN from ${DNS})` });
      }
      expect([name, dnsQueries.udp - before]).toEqual([name, asked]);
    }
  });

  it("asks once for a name several callers want at the same time (a burst of sends by name)", async () => {
    const before = dnsQueries.udp;
    const answers = await Promise.all(Array.from({ length: 5 }, () => tunnel.resolve("burst.test", { family: 4 })));
    expect(answers).toEqual(Array.from({ length: 5 }, () => [ECHO]));
    expect(dnsQueries.udp - before).toBe(1);
  });

  it("asks again over TCP when the UDP answer is truncated", async () => {
    const before = dnsQueries.tcp;
    expect(await tunnel.resolve(BIG_NAME, { family: 4 })).toEqual(BIG_ADDRESSES);
    expect(dnsQueries.tcp - before).toBe(1);
  });

  it("asks over TCP when a truncated UDP answer is cut in the middle of a record (TC read before the records)", async () => {
    const before = dnsQueries.tcp;
    expect(await tunnel.resolve(CUT_NAME, { family: 4 })).toEqual(BIG_ADDRESSES);
    expect(dnsQueries.tcp - before).toBe(1);
  });

  it("rejects with ENOTFOUND for a name that does not exist, and returns IP literals as they are", async () => {
    await expect(tunnel.resolve("nowhere.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(await tunnel.resolve("10.0.0.7")).toEqual(["10.0.0.7"]);
  });

  it("rejects a name no query can carry (an empty label, a label over 63 bytes, over 255 bytes) with ENOTFOUND, asking nobody", async () => {
    const before = dnsQueries.udp;
    for (const name of ["echo.test..x", "", ".", `${"a".repeat(64)}.test`, `${"a.".repeat(127)}test`]) {
      await expect(tunnel.resolve(name)).rejects.toMatchObject({ code: "ENOTFOUND" });
    }
    const udp = tunnel.udp();
    const error = await new Promise<Error | null>((resolve) => udp.send("x", 7, "echo.test..x", resolve));
    udp.close();
    expect(error).toMatchObject({ code: "ENOTFOUND" });
    expect(dnsQueries.udp).toBe(before);
  });

  it("tries the config's search domains (DNS entries that are names) as resolv.conf's search: a single label there first, a dotted name as it is first", async () => {
    const otherKey = genkey();
    server.addPeer({ publicKey: pubkey(otherKey), allowedIps: ["10.0.0.6/32"] });
    const text = clientConfig({ privateKey: otherKey, address: "10.0.0.6/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, dns: DNS, allowedIps: "10.0.0.0/16" });
    const searching = await connectTunnel(text.replace(`DNS = ${DNS}`, `DNS = ${DNS}, corp.test`), THREADS);
    try {
      expect(await searching.resolve("db", { family: 4 })).toEqual(["10.0.0.21"]);
      expect(await searching.resolve("db.sub", { family: 4 })).toEqual(["10.0.0.22"]);
      expect(await searching.resolve("echo.test", { family: 4 })).toEqual([ECHO]);
      await expect(searching.resolve("db.", { family: 4 })).rejects.toMatchObject({ code: "ENOTFOUND" });
      await expect(searching.resolve("nowhere", { family: 4 })).rejects.toMatchObject({ code: "ENOTFOUND", address: "nowhere" });
    } finally {
      await searching.close();
    }
  });

  it("gives up on TCP after a refusal (ECONNREFUSED) or 5 s of silence (ETIMEDOUT), not after the connect's own timeouts", async () => {
    const otherKey = genkey();
    server.addPeer({ publicKey: pubkey(otherKey), allowedIps: ["10.0.0.7/32"] });
    const text = clientConfig({ privateKey: otherKey, address: "10.0.0.7/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, dns: DNS_NO_TCP, allowedIps: "10.0.0.0/16" });
    for (const [dns, code, atMost] of [[DNS_NO_TCP, "ECONNREFUSED", 3_000], [DNS_SILENT_TCP, "ETIMEDOUT", 7_000]] as const) {
      const other = await connectTunnel(text.replace(`DNS = ${DNS_NO_TCP}`, `DNS = ${dns}`), THREADS);
      try {
        const started = Date.now();
        await expect(other.resolve("big.test", { family: 4 })).rejects.toMatchObject({ code, address: dns });
        expect(Date.now() - started).toBeLessThan(atMost);
      } finally {
        await other.close();
      }
    }
  }, 20_000);

  it("writes queries as RFC 1035 4.1 lays them out", () => {
    expect([...encodeQuery(0x1234, "a.bc", 28)]).toEqual([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 2, 98, 99, 0, 0, 28, 0, 1]);
  });

  it("takes only the answer to the question asked (RFC 5452 9.1), its name in any case, and reads its TTL", () => {
    // The query turned into an answer: QR set, one A record for the name by pointer.
    const answer = (query: Uint8Array) => {
      const reply = new Uint8Array([...query, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 7]);
      reply[2] = 0x81;
      reply[3] = 0x80;
      reply[7] = 1;
      return reply;
    };
    expect(parseReply(answer(encodeQuery(7, "echo.test", 1)), 7, "echo.test", 1).addresses).toEqual(["10.0.0.7"]);
    expect(parseReply(answer(encodeQuery(7, "ECHO.Test", 1)), 7, "echo.test", 1).addresses).toEqual(["10.0.0.7"]);
    for (const [name, type] of [["other.test", 1], ["echo.tesu", 1], ["echo.test", 28]] as const) {
      expect(() => parseReply(answer(encodeQuery(7, name, type)), 7, "echo.test", 1)).toThrow(/not an answer to our question/);
    }
    // RFC 2181 8: a TTL with its top bit set counts as 0.
    const longLived = answer(encodeQuery(7, "echo.test", 1));
    longLived.set([0x80, 0, 0, 0], longLived.length - 10);
    expect(parseReply(longLived, 7, "echo.test", 1).ttl).toBe(0);
    const noQuestion = answer(encodeQuery(7, "echo.test", 1));
    noQuestion[5] = 0;
    expect(() => parseReply(noQuestion, 7, "echo.test", 1)).toThrow(/not an answer to our question/);
  });
});
