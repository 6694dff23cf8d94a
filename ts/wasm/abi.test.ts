// The contract checked from both sides, in wasm: the engine writes one event of each kind
// with known values (crates/engine/src/events.rs, `write_selftest`) and the generated
// reader must hand every field back; the host writes one command of each kind with known
// values and the engine must read every field back. Together with the Rust test that
// ts/wasm/abi.ts is current, a change to a layout on one side only fails here.

import { describe, expect, it } from "vitest";
import { Engine, type EventHandler } from "./engine.js";
import { COMMAND, EVENT, EXPORT_PARAMS } from "./abi.js";
import { parseIp } from "../ip.js";

function recorder(): { calls: unknown[][]; handler: EventHandler } {
  const calls: unknown[][] = [];
  const record = (name: string) => (...args: unknown[]) => void calls.push([name, ...args.map((a) => (a instanceof Uint8Array ? [...a] : a))]);
  const handler: EventHandler = {
    datagram: record("datagram"),
    tcpIncoming: record("tcpIncoming"),
    tcpEstablished: record("tcpEstablished"),
    tcpData: record("tcpData"),
    tcpEof: record("tcpEof"),
    tcpWritable: record("tcpWritable"),
    tcpClosed: record("tcpClosed"),
    udp: record("udp"),
    unknownPeer: record("unknownPeer"),
    innerPacket: record("innerPacket"),
    echoReply: record("echoReply"),
    udpUnreachable: record("udpUnreachable"),
  };
  return { calls, handler };
}

function startedEngine(): Engine {
  const engine = new Engine();
  engine.start({
    nowMs: 1,
    privateKey: new Uint8Array(32).fill(7),
    mtu: 1420,
    tcpReceiveBuffer: 65536,
    tcpSendBuffer: 65536,
    acceptTcp: true,
    limits: {
      tcpMaxConnectionsPerPeer: 1,
      tcpMaxConnections: 1,
      tcpMaxHalfOpenPerPeer: 1,
      maxBufferedBytes: 1 << 20,
      udpMaxFlowsPerPeer: 1,
      tcpHalfOpenTimeout: 1000,
      tcpFinWait2Timeout: 1000,
      tcpKeepalive: 1000,
      tcpUserTimeout: 1000,
      udpFlowTimeout: 1000,
    },
  });
  return engine;
}

describe("the ABI", () => {
  it("reads every field of every event the engine writes, and the engine every field of every command", () => {
    const engine = startedEngine();
    engine.commands.send(0x01020304, new Uint8Array([1, 2, 3]));
    engine.commands.consumed(5, 0xfffffffe);
    engine.commands.accept(6);
    engine.commands.refuse(7, "unreachable");
    engine.commands.shutdown(8);
    engine.commands.abort(9);
    engine.commands.discard(0x80000001);
    engine.commands.udpSend({ host: "10.0.0.2", port: 5353 }, { host: "2001:db8::1", port: 0xfffe }, new Uint8Array([4, 5]));
    engine.commands.ping("fd00::7", "192.0.2.1", 0x1234, 0xfffe);
    engine.commands.keepalive(0xfffffffe);
    engine.commands.udpRefuse({ host: "10.0.0.2", port: 5353 }, { host: "10.0.0.1", port: 53 }, "host");
    const commands = engine.abiSelftest();
    expect(commands).toEqual([
      "Send { conn: 16909060, bytes: [1, 2, 3] }",
      "Consumed { conn: 5, bytes: 4294967294 }",
      "Accept { conn: 6 }",
      "Refuse { conn: 7, how: 1 }",
      "Shutdown { conn: 8 }",
      "Abort { conn: 9 }",
      "Discard { conn: 2147483649 }",
      "UdpSend { src: 10.0.0.2:5353, dst: [2001:db8::1]:65534, payload: [4, 5] }",
      "Ping { src: [fd00::7]:0, dst: 192.0.2.1:0, ident: 4660, seq: 65534 }",
      "Keepalive { peer: 4294967294 }",
      "UdpRefuse { from: 10.0.0.2:5353, to: 10.0.0.1:53, why: 1 }",
    ]);
    // One of each kind: a kind added to the contract without a case here fails.
    expect(commands).toHaveLength(Object.keys(COMMAND).length);
    const { calls, handler } = recorder();
    engine.takeEvents(handler);
    expect(calls).toEqual([
      ["datagram", { host: "192.0.2.1", port: 51820 }, [1, 2, 3]],
      ["tcpIncoming", 0x01020304, 2, { host: "10.0.0.2", port: 40000 }, { host: "2001:db8::1", port: 443 }],
      ["tcpData", 0x01020304, [9, 8, 7, 6]],
      ["tcpEof", 5],
      ["tcpWritable", 6, 70000],
      ["tcpClosed", 7, "timeout"],
      ["udp", 3, { host: "10.0.0.2", port: 5353 }, { host: "8.8.8.8", port: 53 }, [...new TextEncoder().encode("dns")]],
      ["tcpEstablished", 8, 4],
      ["unknownPeer", new Array(32).fill(0xab), { host: "fd00::1", port: 1 }],
      ["innerPacket", "out", 9, [0x45, 0]],
      ["echoReply", 10, "fd00::7", 0x1234, 0xfffe],
      ["udpUnreachable", 11, { host: "10.0.0.2", port: 5353 }, { host: "2001:db8::1", port: 53 }, "port"],
    ]);
    // One of each kind: a kind added to the engine without a case here fails above.
    expect(calls).toHaveLength(Object.keys(EVENT).length);
  });

  it("has exactly the exports of the contract, each with its parameters", () => {
    const engine = startedEngine();
    const functions = Object.entries(engine.exports).filter(([name]) => name.startsWith("wgn_"));
    const arity = Object.fromEntries(functions.map(([name, f]) => [name, (f as (...args: number[]) => number).length]));
    expect(arity).toEqual(Object.fromEntries(Object.entries(EXPORT_PARAMS).map(([name, params]) => [name, params.length])));
  });

  it("keeps writing commands after the engine's memory grows under them", () => {
    const engine = startedEngine();
    const before = engine.memoryBytes;
    engine.commands.accept(1);
    engine.exports.wgn_scratch(8 << 20); // grows wasm memory: every view of it is detached
    expect(engine.memoryBytes).toBeGreaterThan(before);
    engine.commands.consumed(1, 10);
    engine.commands.send(1, new Uint8Array(100_000)); // and the command area must grow too
    // Commands for a connection that does not exist are dropped; malformed ones fail the pump.
    expect(engine.pump(2, [])).toBeGreaterThan(0);
  });

  it("walks events a handler's call into the engine adds, in the same walk", () => {
    const engine = startedEngine();
    const key = new Uint8Array(32).fill(9);
    engine.addPeer(key, undefined, 0, { host: "127.0.0.1", port: 9 });
    engine.allow(0, parseIp("10.0.0.2")!, 32);
    const { id } = engine.tcpConnect(2, { host: "10.0.0.1", port: 0 }, { host: "10.0.0.2", port: 80 });
    engine.abiSelftest();
    const { calls, handler } = recorder();
    // The first event's handler removes the peer: its connection closes, an event added to the log.
    handler.tcpIncoming = () => void engine.removePeer(key);
    engine.takeEvents(handler);
    expect(calls.filter(([name]) => name === "tcpClosed").map(([, conn]) => conn)).toEqual([7, id]); // the self-test's, then ours
  });
});
