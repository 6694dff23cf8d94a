// The integrity suite for `wg-netstack connect --stdio`: every close order in roles.mjs between
// the child process's stdin and stdout (the local client, driven by the test) and the tunnel
// server's own TcpConnection (the upstream), through the child's relay; bytes checked end to
// end, and the flow record (--json, on stderr) and the exit code checked against what happened.
//
//   test ─stdin─▶ wg-netstack connect --stdio ─relay─▶ TunnelSocket ─tunnel─▶ onTcp's TcpConnection
//   test ◀stdout─┘

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TcpConnection } from "../../ts/index.js";
import { spawnStdio, startStdioNetwork, type StdioChild } from "../support/stdio-process.js";
import { connectionSide, type Report, type Scenario } from "./connection-side.js";
import { flowKeys, integrityProblems, play, SCENARIOS, Side } from "./roles.mjs";

const T = 90_000;
const TARGET = "10.0.0.1:8080";
/** Deno and Bun keep a copy of fd 1 (see ts/connect/stdio.ts): stdout ends when the child exits, after stdin's end. */
const EARLY_EOF = !("Deno" in globalThis) && !("Bun" in globalThis);

/**
 * The scenarios, for this runtime: where stdout can only end at exit, a client cannot wait
 * for that end before ending stdin, so the slow client sends first (its reading is still slow).
 */
const STDIO_SCENARIOS: Record<string, Scenario> = EARLY_EOF
  ? SCENARIOS
  : { ...SCENARIOS, "a slow reader at the client": { ...SCENARIOS["a slow reader at the client"], client: async (side: Side) => (await side.send(64 * 1024), side.end()) } };

/** A Side over the child's stdin (its writes) and stdout (its reads); a reset is our end of stdout going away. */
function stdioSide(run: StdioChild, options: ConstructorParameters<typeof Side>[1]): Side {
  const stdin = run.child.stdin!;
  const side = new Side(
    {
      write: (bytes: Uint8Array) => new Promise<void>((resolve, reject) => (stdin.writableEnded ? reject(new Error("stdin ended")) : stdin.write(bytes, (error) => (error ? reject(error) : resolve())))),
      end: () => stdin.end(),
      reset: () => run.stdout.destroy(),
      pause: (ms: number) => {
        run.stdout.pause();
        setTimeout(() => run.stdout.resume(), ms);
      },
    },
    options,
  );
  side.kernelSocket = true; // a pipe cannot carry a reset: the exit code tells it instead
  run.stdout.on("data", (chunk: Buffer) => side.onData(chunk));
  run.stdout.on("end", () => side.onEnd("eof"));
  run.stdout.on("error", (error: NodeJS.ErrnoException) => side.onEnd(error.code ?? error.message));
  run.stdout.on("close", () => side.onEnd("ECLOSED", false));
  return side;
}

describe("integrity: connect --stdio (stdin and stdout relayed to a tunnel socket)", () => {
  let network: Awaited<ReturnType<typeof startStdioNetwork>>;
  /** What the upstream does with the next connection. */
  let onUpstream: (conn: TcpConnection) => Promise<void>;
  const runs: StdioChild[] = [];

  beforeAll(async () => {
    network = await startStdioNetwork({
      onTcp: async (conn) => {
        await conn.accept();
        await onUpstream(conn);
      },
    });
  }, T);

  afterAll(async () => {
    for (const { child } of runs) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await network?.close();
  });

  for (const [name, scenario] of Object.entries(STDIO_SCENARIOS)) {
    it(name, async () => {
      const keys = flowKeys();
      let upstreamDone!: (report: Report) => void;
      const upstreamReport = new Promise<Report>((resolve) => (upstreamDone = resolve));
      onUpstream = (conn) => play(scenario.upstream, connectionSide(conn, { slow: scenario.slow === "upstream", sendKey: keys.upstream, receiveKey: keys.client })).then(upstreamDone);
      const run = spawnStdio(network.config, TARGET, { args: ["--json"] });
      runs.push(run);
      const side = stdioSide(run, { slow: scenario.slow === "client", sendKey: keys.client, receiveKey: keys.upstream });
      const [client, upstream] = await Promise.all([play(scenario.client, side), upstreamReport]);
      run.child.stdin!.end(); // a client that reset leaves it open
      const code = await run.exited;
      const lines = run.stderr().trim().split("\n");
      const flow = lines.map((line) => (line.startsWith("{") ? JSON.parse(line) : {})).find((event) => event.type === "flow") ?? { end: "no flow logged" };
      expect(integrityProblems(scenario, client, upstream, flow.end)).toEqual([]);
      if (scenario.end === "closed") {
        expect([flow.up, flow.down]).toEqual([client.sent.bytes, upstream.sent.bytes]);
        expect(code).toBe(0);
      } else {
        // A pipe cannot be reset: the exit code and a line on stderr say the connection was cut.
        expect(code).toBe(1);
        expect(lines.filter((line) => line.startsWith("wg-netstack: --stdio "))).toHaveLength(1);
      }
    }, T);
  }
});
