// The integrity suite for `wg-netstack connect --reverse tcp:`: every close order in
// roles.mjs between a connection a peer opens to our tunnel address (the tunnel server's own
// TcpConnection: the client) and a kernel socket on loopback (the local service: the
// upstream), through the reverse door's relay; bytes checked end to end and the flow log's
// verdict checked against what happened.
//
//   server.connect()'s TcpConnection ─tunnel─▶ tunnel.listen's TunnelSocket ─relay─▶ net.Socket of a local server

import { once } from "node:events";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server, Tunnel } from "../../ts/index.js";
import type { Door } from "../../ts/connect/forward.js";
import { startTcpReverse } from "../../ts/connect/reverse.js";
import { FlowLog } from "../../ts/gateway/flow-log.js";
import { startLoopbackTunnel } from "../support/loopback-tunnel.js";
import { connectionSide, type Report, type Scenario } from "./connection-side.js";
import { flowKeys, integrityProblems, play, SCENARIOS, socketSide } from "./roles.mjs";


const T = 90_000;
const OUR_ADDRESS = "10.0.0.2";
const REVERSE_PORT = 8080;

describe("integrity: connect's TCP reverse forward (a tunnel connection relayed to a local socket)", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let server: Server;
  let tunnel: Tunnel;
  let local: net.Server;
  let door: Door;
  const shutdown = new AbortController();
  const flows: Record<string, any>[] = [];
  let current: { scenario: Scenario; keys: ReturnType<typeof flowKeys>; upstream: (report: Report) => void };

  beforeAll(async () => {
    stacks = await startLoopbackTunnel({ address: ["10.0.0.1/24"] }, { address: OUR_ADDRESS });
    ({ server, tunnel } = stacks);
    // The local service plays the upstream of the scenario running now.
    local = net.createServer({ allowHalfOpen: true }, (socket) => {
      const { scenario, keys, upstream } = current;
      const side = socketSide(socket, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client });
      play(scenario.upstream, side).then(upstream);
    });
    local.listen(0, "127.0.0.1");
    await once(local, "listening");
    const log = new FlowLog((line) => flows.push(JSON.parse(line)), { json: true });
    const target = { host: "127.0.0.1", port: (local.address() as net.AddressInfo).port };
    door = startTcpReverse({ tunnel, port: REVERSE_PORT, tunnelAddress: OUR_ADDRESS, target, log, peerOf: () => server.publicKey, signal: shutdown.signal });
  }, T);

  afterAll(async () => {
    shutdown.abort();
    await door?.close();
    local?.close();
    await stacks?.close();
  });

  /** The flow record of the next flow, waiting for it. */
  async function nextFlow(count: number): Promise<Record<string, any>> {
    for (let i = 0; i < 600 && flows.length < count; i++) await sleep(50);
    return flows[count - 1] ?? { end: "no flow logged" };
  }

  for (const [name, scenario] of Object.entries(SCENARIOS) as [string, Scenario][]) {
    it(name, async () => {
      const keys = flowKeys();
      let upstreamDone!: (report: Report) => void;
      const upstreamReport = new Promise<Report>((resolve) => (upstreamDone = resolve));
      current = { scenario, keys, upstream: upstreamDone };
      const logged = flows.length + 1;
      const conn = await server.connect({ host: OUR_ADDRESS, port: REVERSE_PORT });
      const side = connectionSide(conn, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
      const [client, upstream] = await Promise.all([play(scenario.client, side), upstreamReport]);
      const flow = await nextFlow(logged);
      expect(integrityProblems(scenario, client, upstream, flow.end)).toEqual([]);
      expect(flow).toMatchObject({ via: `reverse ${OUR_ADDRESS}:${REVERSE_PORT}`, src: { host: "10.0.0.1" }, peer: server.publicKey });
      if (scenario.end === "closed") expect([flow.up, flow.down]).toEqual([client.sent.bytes, upstream.sent.bytes]);
    }, T);
  }
});
