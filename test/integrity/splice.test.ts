// The integrity suite for the library's relay paths, under Node, Deno and Bun: every
// close order in roles.mjs, over two real stacks on loopback UDP, each flow's bytes
// checked end to end (SHA-256, and every byte's place) and the splice's verdict checked
// against what arrived.
//
//   server role:  client stack's TcpConnection ─tunnel─▶ onTcp: splice(conn, socket) ─▶ net upstream
//   client role:  net client ─▶ net.Server: splice(client.connect(), socket) ─tunnel─▶ onTcp's TcpConnection

import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { splice, type SpliceResult } from "../../ts/splice.js";
import { startLoopbackPair } from "../support/loopback-stacks.js";
import { connectionSide, type Report, type Scenario } from "./connection-side.js";
import { flowKeys, integrityProblems, play, SCENARIOS, socketSide } from "./roles.mjs";


/** What one flow needs from a topology: start it and say how its splice ended. */
interface Flow {
  client: Report;
  upstream: Report;
  verdict: string;
}

/** A splice verdict in the client/upstream terms of roles.mjs; the mapping depends on which end is the connection. */
function verdictOf(result: SpliceResult, connectionIs: "client" | "upstream"): string {
  const socketIs = connectionIs === "client" ? "upstream" : "client";
  if (result.end === "connection-reset") return `${connectionIs}-reset`;
  if (result.end === "socket-reset") return `${socketIs}-reset`;
  return result.end; // "closed", or an end no scenario expects
}

/** Waits for the splice, or gives up (a hang is a failure too, reported as such). */
async function spliceEnd(result: Promise<SpliceResult>, connectionIs: "client" | "upstream"): Promise<string> {
  const timeout = sleep(30_000).then(() => "no verdict within 30 s after both ends finished");
  return Promise.race([result.then((r) => verdictOf(r, connectionIs)), timeout]);
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const T = 90_000;

describe("integrity: splice, server role (a tunnel connection relayed to a net upstream)", () => {
  let run: (scenario: Scenario) => Promise<Flow>;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    let current: { scenario: Scenario; keys: ReturnType<typeof flowKeys>; upstream: { resolve(report: Report): void }; splice: { resolve(result: SpliceResult): void } };
    const sockets = new Set<net.Socket>();
    const upstream = net.createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      const { scenario, keys } = current;
      const side = socketSide(socket, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client });
      void play(scenario.upstream, side).then(current.upstream.resolve);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    // A socket that took a RST as end of stream stays half-open (see roles.mjs): close it ourselves.
    closers.push(() => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      upstream.close(() => resolve());
    }));
    const target = { host: "127.0.0.1", port: (upstream.address() as net.AddressInfo).port };
    const pair = await startLoopbackPair({
      onTcp: async (conn) => {
        const socket = net.connect({ ...conn.local, allowHalfOpen: true });
        await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
        await conn.accept();
        current.splice.resolve(await splice(conn, socket));
      },
    });
    closers.push(pair.close);

    run = async (scenario) => {
      const keys = flowKeys();
      const upstreamReport = deferred<Report>();
      const result = deferred<SpliceResult>();
      current = { scenario, keys, upstream: upstreamReport, splice: result };
      const conn = await pair.client.connect(target);
      const side = connectionSide(conn, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
      const [client, upstreamSide] = await Promise.all([play(scenario.client, side), upstreamReport.promise]);
      return { client, upstream: upstreamSide, verdict: await spliceEnd(result.promise, "client") };
    };
  }, T);

  afterAll(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const flow = await run(scenario);
      expect(integrityProblems(scenario, flow.client, flow.upstream, flow.verdict)).toEqual([]);
    }, T);
  }
});

describe("integrity: splice, client role (a net client relayed into the tunnel with server.connect())", () => {
  let run: (scenario: Scenario) => Promise<Flow>;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    let current: { scenario: Scenario; keys: ReturnType<typeof flowKeys>; upstream: { resolve(report: Report): void }; splice: { resolve(result: SpliceResult): void } };
    // The upstream is the tunnel server's own handler: it plays the upstream role on the connection.
    const pair = await startLoopbackPair({
      onTcp: (conn) => {
        const { scenario, keys } = current;
        const side = connectionSide(conn, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client });
        return play(scenario.upstream, side).then(current.upstream.resolve);
      },
    });
    closers.push(pair.close);
    // A local proxy, as `connect`'s forwards do: each socket spliced to a connection into the tunnel.
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer({ allowHalfOpen: true }, async (socket) => {
      sockets.add(socket);
      socket.on("error", () => {}); // until the splice listens: it checks `destroyed` when it starts
      const conn = await pair.client.connect({ host: "10.0.0.1", port: 8080 });
      current.splice.resolve(await splice(conn, socket));
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      proxy.close(() => resolve());
    }));
    const proxyPort = (proxy.address() as net.AddressInfo).port;

    run = async (scenario) => {
      const keys = flowKeys();
      const upstreamReport = deferred<Report>();
      const result = deferred<SpliceResult>();
      current = { scenario, keys, upstream: upstreamReport, splice: result };
      const socket = net.connect({ host: "127.0.0.1", port: proxyPort, allowHalfOpen: true });
      sockets.add(socket);
      const side = socketSide(socket, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
      const [client, upstreamSide] = await Promise.all([play(scenario.client, side), upstreamReport.promise]);
      const verdict = await spliceEnd(result.promise, "upstream");
      return { client, upstream: upstreamSide, verdict };
    };
  }, T);

  afterAll(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    it(name, async () => {
      const flow = await run(scenario);
      expect(integrityProblems(scenario, flow.client, flow.upstream, flow.verdict)).toEqual([]);
    }, T);
  }
});
