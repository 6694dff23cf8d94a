// connect's --forward udp: and tcp: against a tunnel on loopback: the flow records of datagrams
// that get no answer and of connections that never open (the server's handlers play the
// network: a DNS server, hosts that stay quiet or refuse).

import { createSocket } from "node:dgram";
import { once } from "node:events";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLoopbackTunnel } from "../../test/support/loopback-tunnel.js";
import type { Server, TcpConnection, Tunnel, UdpPacket } from "../index.js";
import { FlowLog, type FlowRecord } from "../gateway/flow-log.js";
import { type Door, peerLookup, startTcpForward, startUdpForward } from "./forward.js";

const DNS = "10.0.0.53";
const QUIET = "10.0.0.9"; // takes datagrams, never answers
const QUIET_NAME = "quiet.test"; // its name, in DNS's A record
const SILENT = "10.0.0.11"; // never answers a SYN
const SILENT_NAME = "silent.test"; // its name, in DNS's A record
const NOWHERE = "192.168.7.7"; // no peer's AllowedIPs hold it
const UNKNOWN_NAME = "unknown.test"; // NXDOMAIN
const CLOSED = "10.0.0.10"; // answers every datagram with ICMP port unreachable

const A_RECORDS: Record<string, string> = { [QUIET_NAME]: QUIET, [SILENT_NAME]: SILENT };

/** A DNS answer to `query` (RFC 1035 4.1): an A record of A_RECORDS, else NXDOMAIN. */
function dnsAnswer(query: Uint8Array): Uint8Array {
  let at = 12;
  const labels: string[] = [];
  while (query[at] !== 0) {
    labels.push(new TextDecoder().decode(query.subarray(at + 1, at + 1 + query[at]!)));
    at += 1 + query[at]!;
  }
  const type = (query[at + 1]! << 8) | query[at + 2]!;
  const address = A_RECORDS[labels.join(".")];
  const known = address !== undefined;
  const records = known && type === 1 ? [address] : [];
  const head = [query[0]!, query[1]!, 0x81, known ? 0x80 : 0x83, 0, 1, 0, records.length, 0, 0, 0, 0];
  const answers = records.flatMap((address) => [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...address.split(".").map(Number)]);
  return new Uint8Array([...head, ...query.subarray(12, at + 5), ...answers]);
}

describe("--forward udp: flow records", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let server: Server;
  let tunnel: Tunnel;
  const shutdown = new AbortController();
  const records: FlowRecord[] = [];
  /** Where the network behind the tunnel saw datagrams arrive (DNS aside), as HOST:PORT. */
  const arrived: string[] = [];
  const doors: Door[] = [];
  let closed: Promise<unknown> | undefined;
  const closeDoors = () => {
    shutdown.abort();
    closed ??= Promise.all(doors.map((door) => door.close()));
    return closed;
  };

  beforeAll(async () => {
    const onUdp = (packet: UdpPacket) => {
      if (packet.dst.host === DNS && packet.dst.port === 53) return packet.reply(dnsAnswer(packet.data));
      if (packet.dst.host === CLOSED) return packet.refuse();
      arrived.push(`${packet.dst.host}:${packet.dst.port}`);
    };
    stacks = await startLoopbackTunnel({ onUdp }, { dns: DNS });
    ({ server, tunnel } = stacks);
    const log = new FlowLog((line) => {
      const event = JSON.parse(line);
      if (event.type === "flow") records.push(event);
    }, { json: true });
    const peerOf = peerLookup([{ publicKey: server.publicKey, allowedIps: ["10.0.0.0/24"] }]);
    for (const target of [{ host: QUIET_NAME, port: 9 }, { host: QUIET, port: 10 }, { host: NOWHERE, port: 9 }, { host: UNKNOWN_NAME, port: 9 }, { host: CLOSED, port: 9 }]) {
      doors.push(await startUdpForward({ tunnel, log, peerOf, signal: shutdown.signal, listen: { host: "127.0.0.1", port: 0 }, target }));
    }
  });

  afterAll(async () => {
    await closeDoors();
    await stacks?.close();
  });

  it("name the peer the datagrams went through, and where to, though no answer came (none where no peer's AllowedIPs hold the target, or it has no address)", async () => {
    const client = createSocket("udp4");
    client.bind(0, "127.0.0.1");
    await once(client, "listening");
    try {
      for (const door of doors) client.send("hello", Number(door.address.split(":").pop()), "127.0.0.1");
      for (let i = 0; i < 200 && arrived.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(arrived.sort()).toEqual([`${QUIET}:10`, `${QUIET}:9`]);
      // The unroutable and unknown ones end at their first datagram; the others at shutdown, unanswered.
      await closeDoors();
    } finally {
      client.close();
    }
    const byVia = (door: Door) => records.find((record) => record.via === `forward ${door.address}`);
    expect(byVia(doors[0]!)).toMatchObject({ protocol: "udp", peer: server.publicKey, name: QUIET_NAME, dst: { host: QUIET, port: 9 }, up: 5, down: 0, end: "shutdown" });
    expect(byVia(doors[1]!)).toMatchObject({ protocol: "udp", peer: server.publicKey, dst: { host: QUIET, port: 10 }, up: 5, down: 0, end: "shutdown" });
    expect(byVia(doors[2]!)).toMatchObject({ protocol: "udp", peer: "-", dst: { host: NOWHERE, port: 9 }, end: "unreachable", error: expect.stringContaining("ENETUNREACH") });
    expect(byVia(doors[3]!)).toMatchObject({ protocol: "udp", peer: "-", name: UNKNOWN_NAME, dst: { host: UNKNOWN_NAME, port: 9 }, end: "unreachable", error: `${UNKNOWN_NAME} does not exist (NXDOMAIN from ${DNS})` });
    // The tunnel socket is connected: the far side's ICMP port unreachable ends the flow as refused.
    expect(byVia(doors[4]!)).toMatchObject({ protocol: "udp", peer: server.publicKey, dst: { host: CLOSED, port: 9 }, up: 5, end: "refused", error: expect.stringContaining("ECONNREFUSED") });
  });
});

describe("--forward tcp: flow records of connections that never open", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let server: Server;
  const shutdown = new AbortController();
  const records: FlowRecord[] = [];
  const doors: Door[] = [];
  let synToSilent: () => void;
  const silentSyn = new Promise<void>((resolve) => (synToSilent = resolve));

  beforeAll(async () => {
    const onUdp = (packet: UdpPacket) => {
      if (packet.dst.host === DNS && packet.dst.port === 53) packet.reply(dnsAnswer(packet.data));
    };
    // SILENT leaves the SYN unanswered (a handler that never settles); the others refuse.
    const onTcp = (connection: TcpConnection) => {
      if (connection.local.host !== SILENT) return connection.refuse();
      synToSilent();
      return new Promise<void>(() => {});
    };
    stacks = await startLoopbackTunnel({ onUdp, onTcp }, { dns: DNS });
    server = stacks.server;
    const log = new FlowLog((line) => {
      const event = JSON.parse(line);
      if (event.type === "flow") records.push(event);
    }, { json: true });
    const peerOf = peerLookup([{ publicKey: server.publicKey, allowedIps: ["10.0.0.0/24"] }]);
    for (const host of [QUIET_NAME, SILENT_NAME, UNKNOWN_NAME]) {
      doors.push(await startTcpForward({ tunnel: stacks.tunnel, log, peerOf, signal: shutdown.signal, listen: { host: "127.0.0.1", port: 0 }, target: { host, port: 80 } }));
    }
  });

  afterAll(async () => {
    shutdown.abort();
    await Promise.all(doors.map((door) => door.close()));
    await stacks?.close();
  });

  it("name the address a name resolved to and the peer that routes it, though the connect failed; say when the name did not resolve", async () => {
    const clients = doors.map((door) => {
      const client = net.connect(Number(door.address.split(":").pop()), "127.0.0.1");
      client.on("error", () => {}); // reset when the dial fails
      return client;
    });
    try {
      await silentSyn;
      // The refused and unknown ones end by themselves; the silent one at shutdown.
      for (let i = 0; i < 200 && records.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      shutdown.abort();
      await Promise.all(doors.map((door) => door.close()));
    } finally {
      for (const client of clients) client.destroy();
    }
    const byVia = (door: Door) => records.find((record) => record.via === `forward ${door.address}`);
    expect(byVia(doors[0]!)).toMatchObject({ protocol: "tcp", peer: server.publicKey, name: QUIET_NAME, dst: { host: QUIET, port: 80 }, up: 0, down: 0, end: "refused" });
    expect(byVia(doors[1]!)).toMatchObject({ protocol: "tcp", peer: server.publicKey, name: SILENT_NAME, dst: { host: SILENT, port: 80 }, up: 0, down: 0, end: "shutdown" });
    for (const door of doors) expect(byVia(door)).not.toHaveProperty("code"); // only a flow record's own fields
    expect(byVia(doors[2]!)).toMatchObject({
      protocol: "tcp",
      peer: "-",
      name: UNKNOWN_NAME,
      dst: { host: UNKNOWN_NAME, port: 80 },
      end: "unreachable",
      error: `did not resolve: ${UNKNOWN_NAME} does not exist (NXDOMAIN from ${DNS})`,
    });
  });
});
