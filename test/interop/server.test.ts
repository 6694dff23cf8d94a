// Real WireGuard clients (wireguard-go + wg, in network namespaces) against
// startServer on Node: Debian's wireguard-go and the current one (test/interop/wireguard-go.ts). Everything stays on this machine: the clients reach the server
// over veth pairs, and every tunnel destination below is answered by the server itself.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { genkey, genpsk, pubkey, startServer, type Server, type TcpConnection, type UdpUnreachable } from "../../ts/index.js";
import { TEST_THREADS } from "../support/threads.js";
import { interopSkipReason, startWgClient, type WgClient } from "./netns.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping real-client tests: ${skipReason}`);

const T = 120_000;
const ECHO_PORT = 7;
const INFO_PORT = 8080; // answers with what the server saw about the connection, then closes

describe.skipIf(skipReason)("real WireGuard clients (wireguard-go) against startServer", () => {
  let server: Server;
  let first: WgClient; // Debian's wireguard-go
  let second: WgClient; // the current wireguard-go
  const firstKey = genkey();
  const secondKey = genkey();
  const accepted: TcpConnection[] = [];
  const unreachable: UdpUnreachable[] = [];

  beforeAll(async () => {
    const serverKey = genkey();
    server = await startServer({
      threads: TEST_THREADS,
      privateKey: serverKey,
      host: "0.0.0.0",
      port: 0,
      peers: [
        { publicKey: pubkey(firstKey), allowedIps: ["10.0.0.2/32", "fd00::2/128"] },
        { publicKey: pubkey(secondKey), allowedIps: ["10.0.0.3/32", "fd00::3/128"] },
      ],
      onTcp: async (conn) => {
        accepted.push(conn);
        if (conn.local.port === INFO_PORT) {
          await conn.write(JSON.stringify({ remote: conn.remote, local: conn.local, peer: conn.peer }));
          await conn.close();
          return;
        }
        for await (const chunk of conn) await conn.write(chunk);
        await conn.end();
      },
      onUdp: (packet) => {
        packet.reply(JSON.stringify({ src: packet.src, dst: packet.dst, peer: packet.peer, data: new TextDecoder().decode(packet.data) }));
      },
      onUdpUnreachable: (info) => unreachable.push(info),
    });
    const serverPublicKey = pubkey(serverKey);
    [first, second] = await Promise.all([
      startWgClient({ privateKey: firstKey, serverPublicKey, serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32", "fd00::2/128"] }),
      startWgClient({ implementation: "current", privateKey: secondKey, serverPublicKey, serverPort: server.address.port, tunnelAddresses: ["10.0.0.3/32", "fd00::3/128"] }),
    ]);
  }, T);

  afterAll(async () => {
    await Promise.all([first?.close(), second?.close()]);
    await server?.close();
  });

  it("our keys are the keys `wg` derives", async () => {
    const derived = await first.exec("wg", ["pubkey"], { input: `${firstKey}\n` });
    expect(derived.stdout.trim()).toBe(pubkey(firstKey));
  });

  for (const implementation of ["debian", "current"]) {
    it(`echoes 10 MiB over TCP to ${implementation}'s wireguard-go, checked by SHA-256`, async () => {
      const client = implementation === "debian" ? first : second;
      expect(client.implementation).toBe(implementation);
      const result = await client.task("tcp-echo", ["198.51.100.10", ECHO_PORT, 10 * 1024 * 1024, "--timeout", 90_000], { timeoutMs: T });
      expect(result.json.error).toBeUndefined();
      expect(result.json.received).toBe(10 * 1024 * 1024);
      expect(result.json.receivedSha256).toBe(result.json.sentSha256);
      console.log(`[interop] 10 MiB TCP echo, ${implementation}'s wireguard-go: ${result.json.ms} ms`);
      const dump = await client.waitForHandshake();
      expect(dump.peers[0]!.latestHandshake).toBeGreaterThan(0);
    }, T);
  }

  it("does a thousand 1-byte round trips", async () => {
    const result = await first.task("tcp-pingpong", ["203.0.113.5", ECHO_PORT, 1000], { timeoutMs: T });
    expect(result.json.error).toBeUndefined();
    expect(result.json.count).toBe(1000);
    console.log(`[interop] 1000 round trips: ${result.json.ms} ms`);
  }, T);

  it("answers UDP with the destination the client asked for", async () => {
    const result = await first.task("udp-request", ["192.0.2.53", 53, "hello"]);
    expect(result.json.error).toBeUndefined();
    const reply = JSON.parse(result.json.reply);
    expect(reply.dst).toEqual({ host: "192.0.2.53", port: 53 });
    expect(reply.src.host).toBe("10.0.0.2");
    expect(reply.peer).toBe(pubkey(firstKey));
    expect(reply.data).toBe("hello");
  }, T);

  it("answers ping (ICMP and ICMPv6) to any address", async () => {
    const v4 = await first.exec("ping", ["-c", "3", "-i", "0.2", "-W", "2", "192.0.2.1"]);
    expect({ code: v4.code, output: v4.stdout + v4.stderr }).toMatchObject({ code: 0 });
    expect(v4.stdout).toMatch(/3 received/);
    const v6 = await first.exec("ping", ["-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8::1"]);
    expect({ code: v6.code, output: v6.stdout + v6.stderr }).toMatchObject({ code: 0 });
    expect(v6.stdout).toMatch(/3 received/);
  }, T);

  it("carries TCP and UDP over IPv6", async () => {
    const tcp = await first.task("tcp-echo", ["2001:db8::10", ECHO_PORT, 1024 * 1024], { timeoutMs: T });
    expect(tcp.json.error).toBeUndefined();
    expect(tcp.json.receivedSha256).toBe(tcp.json.sentSha256);
    const udp = await first.task("udp-request", ["2001:db8::53", 5353, "six"]);
    expect(udp.json.error).toBeUndefined();
    const reply = JSON.parse(udp.json.reply);
    expect(reply.dst).toEqual({ host: "2001:db8::53", port: 5353 });
    expect(reply.src.host).toBe("fd00::2");
  }, T);

  it("hears a client kernel's ICMP port unreachable for a datagram to a closed port (IPv4 and IPv6)", async () => {
    for (const [from, to] of [
      [{ host: "192.0.2.53", port: 53 }, { host: "10.0.0.2", port: 9 }],
      [{ host: "2001:db8::53", port: 53 }, { host: "fd00::2", port: 9 }],
    ] as const) {
      unreachable.length = 0;
      for (let i = 0; i < 5 && unreachable.length === 0; i++) {
        server.sendUdp("anyone there?", from, to); // UDP may drop: a few tries
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      expect(unreachable[0]).toEqual({ local: from, remote: to, peer: pubkey(firstKey), code: "ECONNREFUSED" });
    }
  }, T);

  it("reports the original destination exactly", async () => {
    const result = await first.task("tcp-read", ["198.51.100.77", INFO_PORT]);
    expect(result.json.error).toBeUndefined();
    const info = JSON.parse(result.json.data);
    expect(info.local).toEqual({ host: "198.51.100.77", port: INFO_PORT });
    expect(info.remote).toEqual({ host: "10.0.0.2", port: result.json.localPort });
    expect(info.peer).toBe(pubkey(firstKey));
  }, T);

  it("serves two clients in two namespaces at the same time", async () => {
    const size = 2 * 1024 * 1024;
    const [a, b, infoB] = await Promise.all([
      first.task("tcp-echo", ["198.51.100.20", ECHO_PORT, size, "--timeout", 90_000], { timeoutMs: T }),
      second.task("tcp-echo", ["198.51.100.21", ECHO_PORT, size, "--timeout", 90_000], { timeoutMs: T }),
      second.task("tcp-read", ["198.51.100.22", INFO_PORT]),
    ]);
    for (const r of [a, b]) {
      expect(r.json.error).toBeUndefined();
      expect(r.json.receivedSha256).toBe(r.json.sentSha256);
    }
    const info = JSON.parse(infoB.json.data);
    expect(info.peer).toBe(pubkey(secondKey));
    expect(info.remote.host).toBe("10.0.0.3");
    const stats = server.stats();
    expect(stats.peers.map((p) => p.endpoint?.host).sort()).toEqual([first.nsAddress, second.nsAddress].sort());
    for (const peer of stats.peers) {
      expect(peer.sinceHandshakeMs).toBeDefined();
      expect(peer.rxBytes).toBeGreaterThan(size);
    }
  }, T);

  it("lets nothing through from an address outside the client's allowedIps", async () => {
    const add = await first.exec("ip", ["addr", "add", "10.0.0.99/32", "dev", first.iface]);
    expect({ code: add.code, stderr: add.stderr }).toMatchObject({ code: 0 });
    const before = server.stats().dropped.sourceNotAllowed!;
    const acceptedBefore = accepted.length;

    const udp = await first.task("udp-request", ["192.0.2.53", 53, "spoofed", "--from", "10.0.0.99", "--timeout", 3000]);
    expect(udp.json.error).toBe("timeout");
    const tcp = await first.task("tcp-read", ["192.0.2.80", INFO_PORT, "--from", "10.0.0.99", "--timeout", 3000]);
    expect(tcp.json.error).toBeDefined();

    expect(accepted.length).toBe(acceptedBefore);
    expect(server.stats().dropped.sourceNotAllowed!).toBeGreaterThan(before + 1);
    // The allowed address still works.
    const ok = await first.task("udp-request", ["192.0.2.53", 53, "fine"]);
    expect(JSON.parse(ok.json.reply).data).toBe("fine");
  }, T);
});

describe.skipIf(skipReason)("real WireGuard client with a preshared key", () => {
  it("handshakes and carries traffic only when both sides have the same preshared key", async () => {
    const serverKey = genkey();
    const clientKey = genkey();
    const presharedKey = genpsk();
    const server = await startServer({
      threads: TEST_THREADS,
      privateKey: serverKey,
      host: "0.0.0.0",
      port: 0,
      peers: [{ publicKey: pubkey(clientKey), presharedKey }],
      onUdp: (packet) => packet.reply(packet.data),
    });
    const good = await startWgClient({ privateKey: clientKey, serverPublicKey: pubkey(serverKey), serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32"], presharedKey });
    try {
      const reply = await good.task("udp-request", ["192.0.2.53", 53, "psk"]);
      expect(reply.json.reply).toBe("psk");
    } finally {
      await good.close();
    }
    const received = server.stats().peers[0]!.rxBytes;
    const wrong = await startWgClient({ privateKey: clientKey, serverPublicKey: pubkey(serverKey), serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32"], presharedKey: genpsk() });
    try {
      const reply = await wrong.task("udp-request", ["192.0.2.53", 53, "psk", "--timeout", 3000]);
      expect(reply.json.error).toBe("timeout");
      // The client cannot complete the handshake (the key is mixed into the response), so no data arrives.
      expect(server.stats().peers[0]!.rxBytes).toBe(received);
    } finally {
      await wrong.close();
      await server.close();
    }
  }, T);
});
