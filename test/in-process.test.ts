// Two stacks in one process: a server and a client-role server built from the same
// engine, joined by an in-memory wire, on virtual time.

import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, genkey, pubkey, startServer, type Server, type ServerOptions, type TcpConnection } from "../ts/index.js";
import { INTERNALS } from "../ts/host/server.js";
import type { Engine } from "../ts/wasm/engine.js";
import { MemoryNetwork, VirtualClock, type WireOptions } from "./support/virtual-network.js";
import { echo, roundTrip } from "./support/echo.js";

const SERVER_PORT = 51820;
let open: Server[] = [];

afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});

interface Pair {
  clock: VirtualClock;
  wire: MemoryNetwork;
  server: Server;
  client: Server;
}

/** A server at 127.0.0.1:51820 and a client peer with tunnel addresses 10.0.0.2 and fd00::2. */
async function pair(serverOptions: Partial<ServerOptions> = {}, wireOptions: WireOptions = {}, clientOptions: Partial<ServerOptions> = {}): Promise<Pair> {
  const clock = new VirtualClock();
  const wire = new MemoryNetwork(clock, wireOptions);
  const serverKey = genkey();
  const clientKey = genkey();
  const server = await startServer({
    privateKey: serverKey,
    host: "127.0.0.1",
    port: SERVER_PORT,
    peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32", "fd00::2/128"] }],
    runtime: wire.runtime(),
    ...serverOptions,
  });
  const client = await startServer({
    privateKey: clientKey,
    host: "127.0.0.2",
    port: 0,
    address: ["10.0.0.2/32", "fd00::2/128"],
    peers: [{ publicKey: pubkey(serverKey), endpoint: `127.0.0.1:${SERVER_PORT}`, allowedIps: ["0.0.0.0/0", "::/0"] }],
    runtime: wire.runtime(),
    ...clientOptions,
  });
  open.push(server, client);
  return { clock, wire, server, client };
}

function pattern(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const isInitiation = (data: Uint8Array) => data.length === 148 && data[0] === 1;

describe("TCP through the tunnel", () => {
  it("echoes and reports the destination the client asked for (IPv4 and IPv6)", async () => {
    const seen: TcpConnection[] = [];
    const { clock, client } = await pair({ onTcp: (conn) => (seen.push(conn), echo(conn)) });

    for (const to of [{ host: "93.184.216.34", port: 80 }, { host: "2001:db8::7", port: 8443 }]) {
      const conn = await clock.until(client.connect(to));
      const data = pattern(200_000);
      const back = await clock.until(roundTrip(conn, data));
      expect(sha256(back)).toBe(sha256(data));
      const accepted = seen.at(-1)!;
      expect(accepted.local).toEqual(to);
      expect(accepted.remote).toEqual(conn.local);
      expect(accepted.peer).toBe(client.publicKey);
    }
  });

  it("survives 5% loss and reordering with the data intact", async () => {
    const { clock, client, wire } = await pair({ onTcp: echo }, { loss: 0.05, delayMs: 5, jitterMs: 8, seed: 7 });
    const conn = await clock.until(client.connect({ host: "198.51.100.1", port: 9 }));
    const data = pattern(1 << 20, 3);
    const back = await clock.until(roundTrip(conn, data));
    expect(sha256(back)).toBe(sha256(data));
    const lost = wire.log.filter((r) => r.lost).length;
    expect(lost).toBeGreaterThan(50); // the loss really happened
  });

  it("downloads through a bottleneck with a short queue: intact, resending about what the queue dropped, no timeout", async () => {
    const size = 4 << 20;
    const data = pattern(size, 5);
    const { clock, client, server, wire } = await pair(
      { onTcp: async (conn) => { await conn.write(data); await conn.end(); } },
      { bitsPerSecond: 20e6, queuePackets: 32, delayMs: 20, seed: 3 },
    );
    const conn = await clock.until(client.connect({ host: "198.51.100.1", port: 80 }));
    const parts: Uint8Array[] = [];
    const started = clock.now();
    await clock.until((async () => { for await (const chunk of conn) parts.push(chunk); })());
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    const dropped = wire.log.filter((r) => r.lost).length;
    const tcp = server.stats().tcp;
    console.log(`bottleneck 20 Mbit/s, 32 packets, 40 ms RTT: 4 MiB in ${((clock.now() - started) / 1000).toFixed(2)} s virtual, ${dropped} dropped, ${tcp.retransmittedSegments} resent, ${tcp.timeouts} timeouts`);
    expect(tcp.timeouts).toBe(0);
    expect(tcp.retransmittedSegments).toBeLessThanOrEqual(dropped + 10);
  });

  it("half-closes: the server keeps writing after the client's FIN", async () => {
    const { clock, client } = await pair({
      onTcp: async (conn) => {
        const request: Uint8Array[] = [];
        for await (const chunk of conn) request.push(chunk);
        await conn.write(`got ${Buffer.concat(request).length} bytes`);
        await conn.end();
      },
    });
    const conn = await clock.until(client.connect({ host: "10.9.9.9", port: 7 }));
    const reply = await clock.until(roundTrip(conn, pattern(5000)));
    expect(text(reply)).toBe("got 5000 bytes");
    await clock.until(conn.closed);
    expect(conn.errored).toBeNull(); // a clean close
  });

  it("errored tells a reset from a clean close without taking the data still queued", async () => {
    let accepted!: TcpConnection;
    const { clock, client } = await pair({ onTcp: (conn) => void (accepted = conn) });
    const conn = await clock.until(client.connect({ host: "10.1.1.1", port: 80 }));
    await clock.until(conn.write("last words"));
    await clock.until(conn.end());
    await clock.advance(10);
    await clock.until(accepted.end());
    await clock.until(accepted.closed);
    expect(accepted.errored).toBeNull();
    expect(text(await accepted.read())).toBe("last words"); // still there for the reader
    expect(await accepted.read()).toHaveLength(0);
  });

  it("errored holds the reset, and end() after it rejects: no FIN went out", async () => {
    let accepted!: TcpConnection;
    const { clock, client } = await pair({ onTcp: (conn) => void (accepted = conn) });
    const conn = await clock.until(client.connect({ host: "10.1.1.1", port: 80 }));
    await clock.advance(10);
    expect(accepted.errored).toBeNull(); // open
    conn.abort();
    await clock.until(accepted.closed);
    expect(accepted.errored).toMatchObject({ code: "ECONNRESET" });
    await expect(accepted.end()).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(conn.errored).toMatchObject({ code: "ECONNABORTED" });
  });

  it("abort() resets the other side", async () => {
    let accepted!: TcpConnection;
    const { clock, client } = await pair({ onTcp: (conn) => void (accepted = conn) });
    const conn = await clock.until(client.connect({ host: "10.1.1.1", port: 443 }));
    await clock.advance(10);
    const pendingRead = accepted.read();
    conn.abort();
    await expect(clock.until(pendingRead)).rejects.toMatchObject({ code: "ECONNRESET" });
    await expect(conn.read()).rejects.toMatchObject({ code: "ECONNABORTED" });
    await expect(conn.write("late")).rejects.toBeDefined();
  });

  it("refuses connections when there is no onTcp handler", async () => {
    const { clock, client } = await pair();
    await expect(clock.until(client.connect({ host: "10.1.1.1", port: 80 }))).rejects.toThrow(/refused|reset/);
  });

  it("fails a connect nothing answers with ETIMEDOUT after the SYN's five retries (63 s), not ECONNREFUSED", async () => {
    const { clock, client } = await pair({ onTcp: echo }, { loss: 1 });
    // Watched, not awaited: only the virtual clock can settle it (Bun's expect().rejects
    // would wait for it in a nested event loop in which this clock never moves).
    let outcome: unknown;
    client.connect({ host: "10.1.1.1", port: 80 }).then(
      () => (outcome = "connected"),
      (error: unknown) => (outcome = error),
    );
    await clock.advance(62_100);
    expect(outcome).toBeUndefined();
    await clock.advance(1_000);
    expect(outcome).toMatchObject({ code: "ETIMEDOUT" });
  });

  it("refuses connections and UDP flows past a peer's limits, counts them, and keeps serving", async () => {
    const { clock, client, server } = await pair({ onTcp: echo, onUdp: (p) => p.reply(p.data), tcpMaxConnectionsPerPeer: 2, udpMaxFlowsPerPeer: 2 });
    const open = [await clock.until(client.connect({ host: "10.1.1.1", port: 1 })), await clock.until(client.connect({ host: "10.1.1.1", port: 2 }))];
    await expect(clock.until(client.connect({ host: "10.1.1.1", port: 3 }))).rejects.toThrow(/refused/);
    expect(server.stats().tcp.refusedOverLimit).toBe(1);
    // The open ones still work, and closing one makes room.
    expect(text(await clock.until(roundTrip(open[0]!, new TextEncoder().encode("still here"))))).toBe("still here");
    await clock.until(open[0]!.closed);
    await clock.until(client.connect({ host: "10.1.1.1", port: 4 }));

    // Two UDP flows may start; a third destination is refused; the first flow goes on.
    for (const port of [53, 54, 55, 53]) client.sendUdp(`to ${port}`, { host: "10.0.0.2", port: 5000 }, { host: "192.0.2.1", port });
    await clock.advance(100);
    expect(server.stats().udp).toEqual({ flows: 2, refusedOverLimit: 1 });
    // A minute later the flows have ended and a new one may start.
    await clock.advance(61_000);
    client.sendUdp("later", { host: "10.0.0.2", port: 5000 }, { host: "192.0.2.1", port: 55 });
    await clock.advance(100);
    expect(server.stats().udp).toEqual({ flows: 1, refusedOverLimit: 1 });
  });

  it("applies backpressure: an unread connection stops the sender and memory stays bounded", async () => {
    let accepted!: TcpConnection;
    const { clock, client, server } = await pair({ onTcp: (conn) => void (accepted = conn) });
    const conn = await clock.until(client.connect({ host: "10.1.1.1", port: 5001 }));
    const data = pattern(16 << 20, 5);
    let written = false;
    const writing = conn.write(data).then(() => (written = true));
    await clock.advance(30_000);
    expect(written).toBe(false); // nobody reads, so the 16 MiB cannot all go in
    expect(server.stats().memoryBytes).toBeLessThan(8 << 20);

    const parts: Uint8Array[] = [];
    let total = 0;
    const reading = (async () => {
      while (total < data.length) {
        const chunk = await accepted.read();
        parts.push(chunk);
        total += chunk.length;
      }
    })();
    await clock.until(Promise.all([writing, reading]));
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
    expect(server.stats().memoryBytes).toBeLessThan(8 << 20);
  });

  it("works through readable/writable Web Streams", async () => {
    const { clock, client } = await pair({ onTcp: (conn) => conn.readable.pipeTo(conn.writable) });
    const conn = await clock.until(client.connect({ host: "10.2.2.2", port: 22 }));
    const back = await clock.until(roundTrip(conn, pattern(100_000)));
    expect(sha256(back)).toBe(sha256(pattern(100_000)));
  });
});

describe("peers while running", () => {
  it("reports an unknown key, takes it as a peer when added, and drops it when removed", async () => {
    const unknown: { publicKey: string; endpoint: unknown }[] = [];
    const tapped: string[] = [];
    const accepted: TcpConnection[] = [];
    const { clock, wire, server } = await pair({
      onTcp: (conn) => {
        accepted.push(conn);
        return echo(conn);
      },
      onUnknownPeer: (info) => void unknown.push(info),
      tap: (packet, info) => void tapped.push(`${info.direction} ${packet[0]! >> 4}`),
    });
    const newKey = genkey();
    const newcomer = await startServer({
      privateKey: newKey,
      host: "127.0.0.3",
      port: 0,
      address: ["10.0.0.3/32"],
      peers: [{ publicKey: server.publicKey, endpoint: `127.0.0.1:${SERVER_PORT}`, allowedIps: ["0.0.0.0/0"] }],
      runtime: wire.runtime(),
    });
    open.push(newcomer);
    const attempt = newcomer.connect({ host: "10.9.9.9", port: 7 });
    attempt.catch(() => {});
    await clock.advance(3_000);
    expect(unknown).toEqual([{ publicKey: pubkey(newKey), endpoint: newcomer.address }]);

    server.addPeer({ publicKey: pubkey(newKey), allowedIps: ["10.0.0.3/32"] });
    expect(() => server.addPeer({ publicKey: pubkey(newKey), allowedIps: ["10.0.0.4/32"] })).toThrow(ConfigError);
    const conn = await clock.until(attempt);
    expect(text(await clock.until(roundTrip(conn, new TextEncoder().encode("hello"))))).toBe("hello");
    expect(server.stats().peers.map((p) => p.publicKey)).toContain(pubkey(newKey));
    expect(tapped).toContain("in 4");
    expect(tapped).toContain("out 4");

    const second = await clock.until(newcomer.connect({ host: "10.9.9.9", port: 7 }));
    await clock.advance(10);
    expect(server.removePeer(pubkey(newKey))).toBe(true);
    expect(server.removePeer(pubkey(newKey))).toBe(false);
    await clock.advance(10);
    await expect(accepted.at(-1)!.read()).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(server.stats().peers.map((p) => p.publicKey)).not.toContain(pubkey(newKey));
    await expect(clock.until(second.write("anyone?").then(() => second.read()), 200_000)).rejects.toThrow();
  });
});

describe("UDP through the tunnel", () => {
  it("delivers datagrams to any destination and replies from it", async () => {
    const replies: string[] = [];
    const { clock, client, server } = await pair(
      {
        onUdp: (packet) => {
          expect(packet.peer).toBe(server.stats().peers[0]!.publicKey);
          packet.reply(`${text(packet.data)} from ${packet.src.host}:${packet.src.port} to ${packet.dst.host}:${packet.dst.port}`);
        },
      },
      {},
      { onUdp: (packet) => void replies.push(`${packet.src.host}:${packet.src.port} ${text(packet.data)}`) },
    );
    client.sendUdp("hello", { host: "10.0.0.2", port: 5353 }, { host: "203.0.113.9", port: 53 });
    client.sendUdp("six", { host: "fd00::2", port: 4000 }, { host: "2001:db8::53", port: 53 });
    await clock.advance(1_000);
    expect(replies.sort()).toEqual(
      [
        "203.0.113.9:53 hello from 10.0.0.2:5353 to 203.0.113.9:53",
        "2001:db8::53:53 six from fd00::2:4000 to 2001:db8::53:53",
      ].sort(),
    );
  });

  it("refuses to send where no peer's allowedIps reach", async () => {
    const { server } = await pair();
    expect(() => server.sendUdp("x", { host: "10.0.0.1", port: 1 }, { host: "10.0.0.3", port: 1 })).toThrow(/allowedIps/);
  });

  it("counts a datagram whose peer was removed after it was sent and before the pump carried it out", async () => {
    const { clock, client, server } = await pair();
    client.sendUdp("late", { host: "10.0.0.2", port: 1 }, { host: "192.0.2.1", port: 53 });
    client.removePeer(server.publicKey); // at once; the send waits for the next pump
    await clock.advance(100);
    expect(client.stats().dropped.noRoute).toBe(1);
    expect(() => client.sendUdp("x", { host: "10.0.0.2", port: 1 }, { host: "192.0.2.1", port: 53 })).toThrow(/allowedIps/);
  });
});

describe("timers on virtual time", () => {
  it("runs three minutes of keepalives and rekeys in milliseconds and keeps working", async () => {
    const { clock, client, wire, server } = await pair({ onTcp: echo });
    const started = performance.now();
    const conn = await clock.until(client.connect({ host: "10.5.5.5", port: 7 }));
    for (let second = 0; second < 180; second += 10) {
      const back = await clock.until(roundTrip1(conn, `t=${second}`));
      expect(back).toBe(`t=${second}`);
      await clock.advance(10_000);
    }
    const initiations = wire.log.filter((r) => isInitiation(r.data)).length;
    expect(initiations).toBeGreaterThanOrEqual(2); // the first handshake and at least one rekey
    expect(server.stats().peers[0]!.sinceHandshakeMs).toBeLessThan(125_000);
    console.log(`3 virtual minutes: ${initiations} handshake initiations, ${wire.log.length} datagrams, ${(performance.now() - started).toFixed(0)} ms real time`);
  });

  it("sends persistent keepalives when idle", async () => {
    const clock = new VirtualClock();
    const wire = new MemoryNetwork(clock);
    const serverKey = genkey();
    const clientKey = genkey();
    const server = await startServer({ privateKey: serverKey, host: "127.0.0.1", port: SERVER_PORT, peers: [{ publicKey: pubkey(clientKey) }], runtime: wire.runtime() });
    const client = await startServer({
      privateKey: clientKey,
      host: "127.0.0.2",
      port: 0,
      peers: [{ publicKey: pubkey(serverKey), endpoint: `127.0.0.1:${SERVER_PORT}`, persistentKeepalive: 25 }],
      runtime: wire.runtime(),
    });
    open.push(server, client);
    await clock.advance(180_000);
    const fromClient = wire.log.filter((r) => r.to.port === SERVER_PORT);
    const keepalives = fromClient.filter((r) => r.data[0] === 4 && r.data.length === 32).length;
    expect(keepalives).toBeGreaterThanOrEqual(6); // about one per 25 s
    expect(server.stats().peers[0]!.sinceHandshakeMs).toBeDefined();
  });
});

describe("a server that goes away for longer than WireGuard retries", () => {
  // Whitepaper 6.4: handshake initiations are retried every REKEY_TIMEOUT (5 s) for
  // REKEY_ATTEMPT_TIME (90 s), then given up, with the session; the next packet to send starts
  // them again (as wireguard-go does). On virtual time: the real outage would take minutes.
  it("gives up after 90 s, says so in stats(), and connects at once when the server is back", async () => {
    const clock = new VirtualClock();
    const wire = new MemoryNetwork(clock);
    const serverKey = genkey();
    const clientKey = genkey();
    const serverOptions: ServerOptions = { privateKey: serverKey, host: "127.0.0.1", port: SERVER_PORT, peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }], runtime: wire.runtime(), onTcp: echo };
    let server = await startServer(serverOptions);
    const client = await startServer({
      privateKey: clientKey,
      host: "127.0.0.2",
      port: 0,
      address: ["10.0.0.2/32"],
      peers: [{ publicKey: pubkey(serverKey), endpoint: `127.0.0.1:${SERVER_PORT}`, allowedIps: ["0.0.0.0/0"] }],
      runtime: wire.runtime(),
    });
    open.push(client);
    const first = await clock.until(client.connect({ host: "10.5.5.5", port: 7 }));
    expect(text(await clock.until(roundTrip(first, new TextEncoder().encode("before"))))).toBe("before");
    await server.close();
    const gone = clock.now();
    // A connect while it is away: its SYN goes unanswered, five retries (63 s) and it times out.
    const attempt = client.connect({ host: "10.5.5.5", port: 7 }).then(() => "connected", (error: Error) => error.message);
    expect(await clock.until(attempt)).toMatch(/timed out/);
    await clock.advance(gone + 150_000 - clock.now());
    const initiations = wire.log.filter((record) => isInitiation(record.data) && record.to.port === SERVER_PORT).length;
    // 15 s after the SYN went unanswered, then every 5 s until 90 s later: about 18; none since.
    expect(initiations).toBeGreaterThanOrEqual(15);
    expect(initiations).toBeLessThanOrEqual(20);
    expect(client.stats().peers[0]!.sinceHandshakeMs).toBeUndefined(); // no session left
    await clock.advance(50_000);
    expect(wire.log.filter((record) => isInitiation(record.data) && record.to.port === SERVER_PORT).length).toBe(initiations);
    // 200 s after it went away, the server is back (same key, same port): a connect gets through at once.
    server = await startServer(serverOptions);
    open.push(server);
    const back = clock.now();
    const second = await clock.until(client.connect({ host: "10.5.5.5", port: 7 }));
    expect(clock.now() - back).toBeLessThan(1_000);
    expect(text(await clock.until(roundTrip(second, new TextEncoder().encode("after"))))).toBe("after");
    expect(client.stats().peers[0]!.sinceHandshakeMs).toBeDefined();
  });
});

describe("server", () => {
  it("rejects a bad config naming the field", async () => {
    const err = await startServer({ privateKey: "nope", peers: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("privateKey");
  });

  it("names the field when a peer has the server's own key", async () => {
    const key = genkey();
    const err = await startServer({ privateKey: key, host: "127.0.0.1", port: 0, peers: [{ publicKey: pubkey(key) }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("peers[0].publicKey");
    expect((err as ConfigError).message).toMatch(/own public key/);
  });

  it("counts packets from outside the peer's allowedIps and drops them", async () => {
    const { clock, client, server } = await pair({ onUdp: () => { throw new Error("must not be delivered"); } });
    client.sendUdp("spoofed", { host: "10.0.0.99", port: 1 }, { host: "10.0.0.1", port: 53 });
    await clock.advance(1_000);
    expect(server.stats().dropped.sourceNotAllowed).toBe(1);
  });

  it("drops garbage datagrams, counts them, and keeps serving", async () => {
    const { clock, client, server, wire } = await pair({ onTcp: echo });
    const rogue = await wire.runtime().bindUdp("127.0.0.9", 0, () => {}, () => {});
    for (const size of [0, 1, 4, 32, 148, 92, 64, 2000]) rogue.send(pattern(size, size + 1), { host: "127.0.0.1", port: SERVER_PORT });
    await clock.advance(100);
    const dropped = server.stats().dropped;
    expect(Object.values(dropped).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(8);
    const conn = await clock.until(client.connect({ host: "10.3.3.3", port: 7 }));
    expect(text(await clock.until(roundTrip(conn, new TextEncoder().encode("still here"))))).toBe("still here");
  });

  it("closes cleanly with an error when the engine traps, and the process lives on", async () => {
    const errors: Error[] = [];
    const { clock, client, server } = await pair({ onTcp: echo, onError: (e) => void errors.push(e) });
    const conn = await clock.until(client.connect({ host: "10.4.4.4", port: 7 }));
    // Ask the engine for 4 GiB of scratch: the allocation aborts, the instance is poisoned.
    expect(() => (server[INTERNALS].engine as Engine).exports.wgn_scratch(0xffff_fff0)).toThrow(WebAssembly.RuntimeError);
    // The next datagram makes the server call into the broken engine.
    void conn.write("hello");
    await clock.advance(1_000);
    await server.closed;
    expect(server.error?.message).toMatch(/wg-netstack server failed/);
    expect(errors).toContain(server.error);
    expect(() => server.stats()).toThrow(/server failed/);
  });
});

async function roundTrip1(conn: TcpConnection, message: string): Promise<string> {
  await conn.write(message);
  return text(await conn.read());
}
