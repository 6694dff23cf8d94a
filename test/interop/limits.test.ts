// One peer must not be able to take the server down: limits, memory and faults, with real
// WireGuard clients (wireguard-go in network namespaces). The server runs with its default
// limits unless a test says otherwise; numbers measured here are printed for the README
// ("Security and reliability").

import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downloadSha256, PORTS, programFor } from "../../bench/programs.mjs";
import { genkey, pubkey, startServer, type Runtime, type Server, type ServerOptions, type TcpConnection } from "../../ts/index.js";
import { defaultRuntime } from "../../ts/runtime/index.js";
import type { Endpoint } from "../../ts/ip.js";
import { CLIENT_TASKS_PATH, interopSkipReason, startWgClient, type WgClient } from "./netns.js";
import { THREADS, withThreads } from "../support/threads.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping limits tests: ${skipReason}`);

const T = 180_000;
const SYN_FLOOD_PATH = fileURLToPath(new URL("./syn-flood.pl", import.meta.url));
const WG_FLOOD_PATH = fileURLToPath(new URL("../support/wg-flood.mjs", import.meta.url));
const MiB = 1024 * 1024;
const mib = (bytes: number) => (bytes / MiB).toFixed(1);

async function echo(conn: TcpConnection): Promise<void> {
  for await (const chunk of conn) await conn.write(chunk);
  await conn.end();
}


/** Polls `check` every 50 ms until it holds; fails with `what` after `ms`. */
async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

/**
 * `tcp-many` in the client's namespace (see client-tasks.mjs): resolves `served` once every
 * connection got its byte back; `close()` asks the client to end them all; `closed` resolves
 * with the client's count of its connections' errors by code once all of them closed.
 */
function holdConnections(client: WgClient, host: string, port: number, count: number, timeoutMs = 120_000) {
  const child = client.spawn(process.execPath, [CLIENT_TASKS_PATH, "tcp-many", host, String(port), String(count), "--timeout", String(timeoutMs)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    const json = line.done ? { error: "no output" } : JSON.parse(line.value);
    if (json.error) throw new Error(`tcp-many: ${JSON.stringify(json)}`);
    return json;
  };
  const served: Promise<{ served: number; ms: number }> = next();
  const closed: Promise<{ closed: number; errors: Record<string, number> }> = served.then(next);
  closed.catch(() => {});
  return {
    served,
    closed,
    close: () => child.stdin!.write("close\n"),
    exited: child.exitCode !== null ? Promise.resolve() : once(child, "exit").then(() => {}),
  };
}

describe.skipIf(skipReason)("many connections from one real client", () => {
  let server: Server;
  let client: WgClient;

  beforeAll(async () => {
    const serverKey = genkey();
    const clientKey = genkey();
    server = await startServer({
      ...THREADS,
      privateKey: serverKey,
      host: "0.0.0.0",
      port: 0,
      peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
      onTcp: echo,
    });
    client = await startWgClient({ privateKey: clientKey, serverPublicKey: pubkey(serverKey), serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32"] });
  }, T);

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it("serves 10,000 concurrent connections from one peer in bounded memory, and releases them all", async () => {
    const before = server.stats().memoryBytes;
    const many = holdConnections(client, "198.51.100.1", 1000, 10_000);
    const { ms } = await many.served;
    const open = server.stats();
    expect(open.connections).toBe(10_000);
    expect(open.tcp.refusedOverLimit).toBe(0);
    console.log(`[interop] 10,000 connections served in ${ms} ms; wasm memory ${mib(before)} MiB before, ${mib(open.memoryBytes)} MiB with all open`);
    expect(open.memoryBytes).toBeLessThan(64 * MiB);

    many.close();
    const { closed, errors } = await many.closed;
    expect({ closed, errors }).toEqual({ closed: 10_000, errors: {} });
    await until("every connection closed on the server", () => server.stats().connections === 0);
    expect(server.stats().tcp.bufferedBytes).toBe(0);
    await many.exited;
  }, T);
});

/** Downloads `bytes` from the benchmark's download program and checks them by SHA-256. */
async function downloadIntact(client: WgClient, bytes: number): Promise<{ ms: number; maxGapMs: number }> {
  const result = await client.task("tcp-download", ["198.51.100.250", PORTS.download, bytes, "--timeout", 120_000], { timeoutMs: T });
  expect(result.json.error).toBeUndefined();
  expect(result.json.bytes).toBe(bytes);
  expect(result.json.sha256).toBe(downloadSha256(bytes));
  return result.json;
}

/** An IPv4 TCP SYN (no ACK). */
const isSyn = (packet: Uint8Array) => packet[0] >> 4 === 4 && packet[9] === 6 && (packet[((packet[0] & 15) << 2) + 13]! & 0x12) === 0x02;

describe.skipIf(skipReason)("a SYN flood from one real client", () => {
  it("refuses 50,000 SYNs past the half-open limit, counts them, stays bounded, and another peer's 100 MiB arrives intact", async () => {
    const serverKey = genkey();
    const [floodKey, otherKey] = [genkey(), genkey()];
    let syns = 0; // SYNs that reached the server from the flooding peer (seen by the tap)
    let handed = 0; // of those, the ones given to onTcp
    const server = await startServer({
      ...THREADS,
      privateKey: serverKey,
      host: "0.0.0.0",
      port: 0,
      peers: [
        { publicKey: pubkey(floodKey), allowedIps: ["10.0.1.0/24"] },
        { publicKey: pubkey(otherKey), allowedIps: ["10.0.0.3/32"] },
      ],
      // Flood connections are taken when the handler returns: they wait for an ACK that never comes.
      onTcp: (conn) => (conn.peer === pubkey(floodKey) ? void handed++ : programFor(conn.local.port)?.(conn)),
      tap: (packet, { direction, peer }) => void (direction === "in" && peer === pubkey(floodKey) && isSyn(packet) && syns++),
    });
    const common = { serverPublicKey: pubkey(serverKey), serverPort: server.address.port };
    const [flooder, other] = await Promise.all([
      startWgClient({ ...common, privateKey: floodKey, tunnelAddresses: ["10.0.1.1/32"] }),
      startWgClient({ ...common, implementation: "current", privateKey: otherKey, tunnelAddresses: ["10.0.0.3/32"] }),
    ]);
    try {
      await downloadIntact(other, MiB); // both sessions up before the clock starts
      const before = server.stats().memoryBytes;
      const t0 = Date.now();
      const [flood, download] = await Promise.all([
        flooder.exec("perl", [SYN_FLOOD_PATH, "50000", "10.0.1", "198.51.100", "10000"], { timeoutMs: 60_000 }),
        downloadIntact(other, 100 * MiB),
      ]);
      expect(flood.stdout.trim()).toBe('{"sent":50000}');
      const stats = server.stats();
      console.log(
        `[interop] SYN flood: ${syns} of 50,000 SYNs arrived in ${Date.now() - t0} ms, ${handed} handed to onTcp, ${stats.tcp.refusedOverLimit} refused over the limit; ` +
          `wasm memory ${mib(before)} -> ${mib(stats.memoryBytes)} MiB; the other peer's 100 MiB in ${download.ms} ms, longest gap ${download.maxGapMs} ms`,
      );
      // Some are lost on the way (the client's queues); what arrived was several times the limit.
      expect(syns).toBeGreaterThan(20_000);
      // Every SYN was either handed over or refused and counted; at most the limit at once.
      expect(handed + stats.tcp.refusedOverLimit).toBe(syns);
      expect(handed).toBeLessThanOrEqual(4096);
      expect(stats.memoryBytes).toBeLessThan(64 * MiB);
      // No ACK comes: the half-open connections time out (20 s by default) and nothing is left.
      await until("the half-open connections expired", () => server.stats().connections === 0, 40_000);
      expect(server.error).toBeUndefined();
    } finally {
      await Promise.all([flooder.close(), other.close()]);
      await server.close();
    }
  }, T);
});

describe.skipIf(skipReason)("the first wave's flood at the server's port", () => {
  it("drops garbage, truncated messages, replays and mac1-valid initiations during a 100 MiB transfer: intact, cookie replies sent, memory flat", async () => {
    const serverKey = genkey();
    const clientKey = genkey();
    // Keep the first datagrams the client sends (its initiation, then data): the flood replays them.
    const replays: Uint8Array[] = [];
    const real = defaultRuntime();
    const runtime: Runtime = {
      clock: real.clock,
      bindUdp: (host, port, onMessage, onError) =>
        real.bindUdp(host, port, (data, from) => {
          if (replays.length < 200 && !from.host.startsWith("127.")) replays.push(data.slice());
          onMessage(data, from);
        }, onError),
    };
    const server = await startServer({
      privateKey: serverKey,
      host: "0.0.0.0",
      port: 0,
      peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }],
      onTcp: (conn) => programFor(conn.local.port)?.(conn),
      runtime,
    });
    const client = await startWgClient({ privateKey: clientKey, serverPublicKey: pubkey(serverKey), serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32"] });
    let flood: ReturnType<WgClient["spawn"]> | undefined;
    try {
      // The same transfer without the flood first: what it costs in memory and time alone.
      const quiet = await downloadIntact(client, 100 * MiB);
      const endpoint = server.stats().peers[0]!.endpoint;
      const before = server.stats();
      const toBase64 = (data: Uint8Array) => Buffer.from(data).toString("base64");
      flood = spawn(process.execPath, [WG_FLOOD_PATH, "127.0.0.1", String(server.address.port), pubkey(serverKey), "20000", ...replays.map(toBase64)], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      const lines = createInterface({ input: flood.stdout! })[Symbol.asyncIterator]();
      expect(JSON.parse((await lines.next()).value)).toEqual({ flooding: true });
      await sleep(200); // in full swing
      const download = await downloadIntact(client, 100 * MiB);
      flood.stdin!.write("stop\n");
      const { sent, cookieReplies, otherReplies } = JSON.parse((await lines.next()).value);
      const after = server.stats();
      // What is dropped before decryption (the client's own inner packets may add to the rest).
      const outer = ["malformed", "authFailed", "unknownPeer", "replay", "noSession", "underLoad"];
      const dropped = Object.fromEntries(outer.map((reason) => [reason, after.dropped[reason]! - before.dropped[reason]!]));
      const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
      console.log(
        `[interop] flood of ${JSON.stringify(sent)} during 100 MiB (${download.ms} ms, longest gap ${download.maxGapMs} ms; ${quiet.ms} ms without the flood): ` +
          `${cookieReplies} cookie replies, dropped ${JSON.stringify(dropped)}, wasm memory ${mib(before.memoryBytes)} -> ${mib(after.memoryBytes)} MiB`,
      );
      expect(Object.keys(sent).sort()).toEqual(["garbage", "initiation", "replay", "truncated"]);
      // Each datagram that arrived was dropped and counted (a loaded socket may lose a few on the way).
      expect(total(dropped)).toBeLessThanOrEqual(total(sent));
      expect(total(dropped)).toBeGreaterThan(0.9 * total(sent));
      for (const reason of ["malformed", "authFailed", "replay", "underLoad"]) expect(dropped[reason]).toBeGreaterThan(0);
      // Initiations past the handshake budget were answered with cookie replies, and nothing else was answered.
      expect(cookieReplies).toBeGreaterThan(0);
      expect(cookieReplies).toBeLessThanOrEqual(dropped.underLoad!);
      expect(otherReplies).toBe(0);
      // Replays from elsewhere did not move the peer.
      expect(after.peers[0]!.endpoint).toEqual(endpoint);
      // Memory stays flat: the same transfer had already grown it. A flood may grow it once
      // (measured: 0 to 1.4 MiB, and no more over four floods in a row); ~50,000 datagrams
      // leaving 100 bytes each behind would add more than this.
      expect(after.memoryBytes - before.memoryBytes).toBeLessThanOrEqual(4 * MiB);
      expect(server.error).toBeUndefined();
    } finally {
      flood?.kill();
      await client.close();
      await server.close();
    }
  }, T);
});

/** The default runtime with its timers counted: `live` holds the ones armed and not yet fired or cleared. */
function countingRuntime(): { runtime: Runtime; live: Set<unknown> } {
  const real = defaultRuntime();
  const live = new Set<unknown>();
  const clock = {
    now: () => real.clock.now(),
    setTimer: (delayMs: number, fn: () => void) => {
      const handle = real.clock.setTimer(delayMs, () => {
        live.delete(handle);
        fn();
      });
      live.add(handle);
      return handle;
    },
    clearTimer: (handle: unknown) => {
      live.delete(handle);
      real.clock.clearTimer(handle);
    },
    defer: (fn: () => void) => real.clock.defer(fn),
  };
  return { runtime: { clock, bindUdp: real.bindUdp }, live };
}

/**
 * The default runtime with a gate on the server's incoming datagrams: `hold()` keeps them
 * back, `release()` hands every one held to the server at once, so that they make one batch.
 */
function gatedRuntime(): { runtime: Runtime; hold(): void; held(): number; release(): void } {
  const real = defaultRuntime();
  let held: { data: Uint8Array; from: Endpoint }[] | undefined;
  let deliver: (data: Uint8Array, from: Endpoint) => void = () => {};
  return {
    runtime: {
      clock: real.clock,
      bindUdp: (host, port, onMessage, onError) => {
        deliver = onMessage;
        return real.bindUdp(host, port, (data, from) => (held ? held.push({ data: data.slice(), from }) : onMessage(data, from)), onError);
      },
    },
    hold: () => (held = []),
    held: () => held?.length ?? 0,
    release: () => {
      const batch = held ?? [];
      held = undefined;
      for (const { data, from } of batch) deliver(data, from);
    },
  };
}

/**
 * `tcp-many --tally yes`: `count` connections at once; resolves, once every one has closed or
 * after `timeoutMs`, with how many closed and how they ended by the client's error code.
 */
async function tallyConnections(client: WgClient, host: string, port: number, count: number, timeoutMs = 30_000): Promise<{ closed: number; errors: Record<string, number> }> {
  const args = [CLIENT_TASKS_PATH, "tcp-many", host, String(port), String(count), "--parallel", String(count), "--tally", "yes", "--timeout", String(timeoutMs)];
  const child = client.spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  const line = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  const json = line.done ? { error: "no output" } : JSON.parse(line.value);
  // Out of time is a result too (some connections still open); anything else is a failure.
  if (json.error && !(json.error === "timeout" && typeof json.closed === "number")) throw new Error(`tcp-many: ${JSON.stringify(json)}`);
  return { closed: json.closed, errors: json.errors };
}

/** A server for one client with `options`, and that client (Debian's wireguard-go) at 10.0.0.2. */
async function serverAndClient(options: Partial<ServerOptions>): Promise<{ server: Server; client: WgClient }> {
  const serverKey = genkey();
  const clientKey = genkey();
  const server = await startServer(withThreads({ privateKey: serverKey, host: "0.0.0.0", port: 0, peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }], ...options }));
  const client = await startWgClient({ privateKey: clientKey, serverPublicKey: pubkey(serverKey), serverPort: server.address.port, tunnelAddresses: ["10.0.0.2/32"] }).catch(async (error) => {
    await server.close();
    throw error;
  });
  return { server, client };
}

/** Resolves true if every promise settles within `ms`. */
async function allSettleWithin(promises: Promise<unknown>[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = Promise.allSettled(promises).then(() => true as const);
  const result = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return result;
}

describe.skipIf(skipReason)("faults with a real client", () => {
  it("server.close() from inside onTcp, amid a burst of SYNs: every connection's `closed` resolves and no timer is left", async () => {
    const { runtime, live } = countingRuntime();
    const connections: TcpConnection[] = [];
    let closing: Promise<void> | undefined;
    const { server, client } = await serverAndClient({
      runtime,
      onTcp: async (conn) => {
        connections.push(conn);
        // Mid-batch: more SYNs of the same burst come after this one.
        if (connections.length === 100) closing = server.close();
        await echo(conn);
      },
      onError: () => {},
    });
    try {
      const many = holdConnections(client, "198.51.100.2", 2000, 1000, 10_000);
      await until("a connection closes the server", () => closing !== undefined);
      await closing;
      console.log(`[interop] close() inside onTcp: ${connections.length} connections handed over`);
      expect(connections.length).toBeGreaterThanOrEqual(100);
      // Settled already, or soon: the bound only catches one left open for good.
      expect(await allSettleWithin(connections.map((c) => c.closed), 10_000)).toBe(true);
      // Nothing runs on after close: no timer armed now, nor a little later.
      expect(live.size).toBe(0);
      await sleep(300);
      expect(live.size).toBe(0);
      // The client's connections were reset or refused, not left waiting.
      await expect(many.served).rejects.toThrow(/closed before its echo/);
    } finally {
      await client.close();
      await server.close();
    }
  }, T);

  it("server.close() from inside onTcp: the rest of that batch of SYNs is refused, and the client sees those refused (ECONNREFUSED), the ones handed over reset", async () => {
    // The burst's SYNs are held at the server's socket and handed over together: one batch, as
    // a burst arriving between two pumps makes (else how many share the 100th's batch is chance).
    const gate = gatedRuntime();
    const handed: TcpConnection[] = [];
    let closing: Promise<void> | undefined;
    const { server, client } = await serverAndClient({
      runtime: gate.runtime,
      onTcp: async (conn) => {
        handed.push(conn);
        // Accepted before the close: the SYN-ACK goes before the RST, and the client sees a reset.
        conn.accept().catch(() => {});
        if (handed.length === 100) closing = server.close();
        await echo(conn);
      },
      onError: () => {},
    });
    try {
      const warm = holdConnections(client, "198.51.100.4", 4000, 1); // the handshake done, before the gate
      await warm.served;
      warm.close();
      await warm.closed;
      handed.length = 0;
      gate.hold();
      const tally = tallyConnections(client, "198.51.100.4", 5000, 150, 10_000);
      tally.catch(() => {}); // awaited below; a failure meanwhile is no unhandled rejection
      await until("the burst's 150 SYNs held", () => gate.held() >= 150);
      await sleep(100); // any straggler, well within the SYN's 1 s retransmission time
      gate.release();
      await until("a connection closes the server", () => closing !== undefined);
      await closing;
      // No connection after the 100th went to onTcp (the rule), and at the client the 50 after
      // it were refused (RST to the SYN), the 100 reset. The close sends those 250 datagrams
      // (SYN-ACKs, RSTs) in one burst; a client too loaded to drain its socket in time loses
      // some, and their connections stay open (the server is gone and answers nothing more).
      expect(handed.length).toBe(100);
      const { closed, errors } = await tally;
      const { ECONNREFUSED: refused = 0, ECONNRESET: reset = 0, ...other } = errors;
      expect([other, closed]).toEqual([{}, refused + reset]);
      if (closed === 150) expect([refused, reset]).toEqual([50, 100]);
      else {
        console.log(`[interop] the loaded client lost part of the close's burst: ${150 - closed} of 150 connections left open`);
        expect([refused <= 50, reset <= 100, refused > 0, reset > 0]).toEqual([true, true, true, true]);
      }
    } finally {
      await client.close();
      await server.close();
    }
  }, T);

  it("server.close() with thousands of open connections resets each one at the client (ECONNRESET)", async () => {
    const connections: TcpConnection[] = [];
    const { server, client } = await serverAndClient({ onTcp: (conn) => (connections.push(conn), echo(conn)), onError: () => {} });
    try {
      const many = holdConnections(client, "198.51.100.3", 3000, 3000);
      await many.served;
      expect(server.stats().connections).toBe(3000);
      const t0 = Date.now();
      await server.close();
      const ms = Date.now() - t0;
      // Every client connection ends at once (a lost RST would leave it open for good).
      const outcome = await Promise.race([many.closed, sleep(10_000)]);
      const established = await client.exec("ss", ["-Htn", "state", "established"]);
      console.log(`[interop] close() with 3,000 open connections took ${ms} ms; the client saw ${JSON.stringify(outcome)}, ${established.stdout.split("\n").filter(Boolean).length} left established`);
      expect(outcome).toEqual({ closed: 3000, errors: { ECONNRESET: 3000 } });
      // Settled already, or soon: the bound only catches one left open for good.
      expect(await allSettleWithin(connections.map((c) => c.closed), 10_000)).toBe(true);
    } finally {
      await client.close();
      await server.close();
    }
  }, T);

  it("a handler that returns without closing leaves the connection open, even past the client's FIN, until the program closes it", async () => {
    let kept: TcpConnection | undefined;
    const { server, client } = await serverAndClient({
      onTcp: async (conn) => {
        kept = conn;
        await conn.write(await conn.read()); // one byte back, then return
      },
    });
    try {
      const one = holdConnections(client, "198.51.100.4", 80, 1);
      await one.served;
      await sleep(2_000);
      expect(server.stats().connections).toBe(1);
      expect(await allSettleWithin([kept!.closed], 0)).toBe(false);
      // The client closes its end: ours stays open (half-closed) for the program to write or end.
      one.close();
      await sleep(1_000);
      expect(server.stats().connections).toBe(1);
      expect((await kept!.read()).length).toBe(0); // the FIN, as end of stream
      await kept!.write("still writable");
      await kept!.close();
      await until("the connection is gone", () => server.stats().connections === 0);
      expect(await one.closed).toEqual({ closed: 1, errors: {} });
    } finally {
      await client.close();
      await server.close();
    }
  }, T);

  it("a write to a client that vanished fails within tcpUserTimeout", async () => {
    const tcpUserTimeout = 3_000;
    let failed: (error: Error) => void;
    const failure = new Promise<Error>((resolve) => (failed = resolve));
    const chunk = new Uint8Array(64 * 1024);
    const { server, client } = await serverAndClient({
      tcpUserTimeout,
      onTcp: async (conn) => {
        await conn.write(await conn.read());
        try {
          for (;;) await conn.write(chunk); // the client discards what it reads
        } catch (error) {
          failed(error as Error);
        }
      },
    });
    try {
      const one = holdConnections(client, "198.51.100.5", 80, 1);
      await one.served;
      await sleep(500); // data flowing
      // The client's machine goes away: its namespace, link and wireguard-go are gone.
      const vanished = Date.now();
      await client.close();
      const error = await failure;
      const ms = Date.now() - vanished;
      console.log(`[interop] a write to a vanished client failed after ${ms} ms (tcpUserTimeout ${tcpUserTimeout} ms): ${error.message}`);
      expect((error as { code?: string }).code).toBe("ETIMEDOUT");
      // The timing itself is the engine's, on virtual time (rfc9293_3_8_3_user_timeout_...); here a bound that tells
      // the 3 s asked for from the 60 s default, however busy the machine.
      expect(ms).toBeLessThan(30_000);
      expect(server.stats().connections).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
  }, T);
});
