// The integrity suite for `wg-netstack connect --forward tcp:`: every close order in
// roles.mjs between a kernel socket on loopback (the local client) and the tunnel server's
// own TcpConnection (the upstream), through the forward's relay; bytes checked end to end
// and the flow log's verdict checked against what happened.
//
//   net.Socket ─▶ forward door (127.0.0.1) ─relay─▶ TunnelSocket ─tunnel─▶ onTcp's TcpConnection

import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig, connectTunnel, genkey, pubkey, startServer, type Server, type Tunnel } from "../../ts/index.js";
import { startTcpForward, type Door } from "../../ts/connect/forward.js";
import { FlowLog } from "../../ts/gateway/flow-log.js";
import { connectionSide, type Report, type Scenario } from "./connection-side.js";
import { flowKeys, integrityProblems, play, SCENARIOS, socketSide } from "./roles.mjs";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const T = 90_000;

describe("integrity: connect's TCP forward (a local socket relayed to a tunnel socket)", () => {
  let server: Server;
  let tunnel: Tunnel;
  let door: Door;
  const shutdown = new AbortController();
  const flows: Record<string, any>[] = [];
  let current: { scenario: Scenario; keys: ReturnType<typeof flowKeys>; upstream: (report: Report) => void };

  beforeAll(async () => {
    const clientKey = genkey();
    server = await startServer({
      privateKey: genkey(),
      host: "127.0.0.1",
      port: 0,
      peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
      onTcp: async (conn) => {
        await conn.accept();
        const { scenario, keys, upstream } = current;
        const side = connectionSide(conn, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client });
        return play(scenario.upstream, side).then(upstream);
      },
    });
    tunnel = await connectTunnel(clientConfig({ privateKey: clientKey, address: "10.0.0.2/32", serverPublicKey: server.publicKey, endpoint: `127.0.0.1:${server.address.port}`, allowedIps: "10.0.0.0/24" }));
    const log = new FlowLog((line) => flows.push(JSON.parse(line)), { json: true });
    door = await startTcpForward({ tunnel, listen: { host: "127.0.0.1", port: 0 }, target: { host: "10.0.0.1", port: 8080 }, log, peerOf: () => server.publicKey, signal: shutdown.signal });
  }, T);

  afterAll(async () => {
    shutdown.abort();
    await door?.close();
    await tunnel?.close();
    await server?.close();
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
      const port = Number(door.address.split(":").pop());
      const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      const side = socketSide(socket, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
      const [client, upstream] = await Promise.all([play(scenario.client, side), upstreamReport]);
      const flow = await nextFlow(logged);
      expect(integrityProblems(scenario, client, upstream, flow.end)).toEqual([]);
      if (scenario.end === "closed") expect([flow.up, flow.down]).toEqual([client.sent.bytes, upstream.sent.bytes]);
    }, T);
  }
});
