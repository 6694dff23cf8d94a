// The integrity suite for the client role's socket: every close order in roles.mjs between a
// TunnelSocket (the client, as net.Socket users drive it) and the tunnel server's own
// TcpConnection (the upstream), two real stacks on loopback UDP, bytes checked end to end.
//
//   TunnelSocket (connectTunnel) ─tunnel─▶ onTcp's TcpConnection
//
// There is no relay in between, so no verdict to check: the scenario's expected end stands in.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Tunnel } from "../../ts/index.js";
import { startLoopbackTunnel } from "../support/loopback-tunnel.js";
import { connectionSide, type Report, type Scenario } from "./connection-side.js";
import { flowKeys, integrityProblems, play, SCENARIOS, socketSide } from "./roles.mjs";

const T = 90_000;

describe("integrity: TunnelSocket, client role (connectTunnel's socket against a tunnel server's connection)", () => {
  let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
  let tunnel: Tunnel;
  let current: { scenario: Scenario; keys: ReturnType<typeof flowKeys>; upstream: (report: Report) => void };

  beforeAll(async () => {
    stacks = await startLoopbackTunnel({
      onTcp: (conn) => {
        const { scenario, keys, upstream } = current;
        const side = connectionSide(conn, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client });
        return play(scenario.upstream, side).then(upstream);
      },
    });
    tunnel = stacks.tunnel;
  }, T);

  afterAll(async () => {
    await stacks?.close();
  });

  for (const [name, scenario] of Object.entries(SCENARIOS) as [string, Scenario][]) {
    it(name, async () => {
      const keys = flowKeys();
      let upstreamDone!: (report: Report) => void;
      const upstreamReport = new Promise<Report>((resolve) => (upstreamDone = resolve));
      current = { scenario, keys, upstream: upstreamDone };
      const socket = tunnel.connect({ port: 8080, host: "10.0.0.1", allowHalfOpen: true });
      const side = socketSide(socket, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
      side.kernelSocket = false; // our own stack: a reset must show as an error, never as an end
      const [client, upstream] = await Promise.all([play(scenario.client, side), upstreamReport]);
      expect(integrityProblems(scenario, client, upstream, scenario.end)).toEqual([]);
    }, T);
  }
});
