// `wg-netstack connect CONFIG --stdio HOST:PORT` as a child process, against a server on
// loopback whose handlers play the network: what goes into stdin must reach the far end, what
// the far end sends must come out of stdout (and nothing else), each end's close must reach
// the other, and a connection that fails must say why on stderr and exit 1.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TcpConnection, UdpPacket } from "../index.js";
import { UsageError } from "../cli/flags.js";
import { parseConnectCommand } from "./command.js";
import { onTerminal } from "../../test/support/gateway-process.js";
import { spawnStdio, startStdioNetwork, type StdioChild } from "../../test/support/stdio-process.js";
import { THREADS_FLAGS } from "../../test/support/threads.js";

const T = 90_000;
const HOST = "10.0.0.1";
const DNS = "10.0.0.53";
/** Ports of HOST, each a service. */
const ECHO = 7; // sends back what it reads, ends after the client's FIN
const REFUSED = 9; // nothing listens
const DOWNLOAD = 19; // sends DATA and ends at once, then reads to the end (see `afterFin`)
const UPLOAD = 20; // reads to the end, then answers the SHA-256 of what came and ends
const RESET = 21; // sends 1 MiB, then resets
const HOLD = 22; // reads and never ends (see `held`)
const SOURCE = 23; // writes up to 64 MiB as fast as it is taken (see `sourced`)
const SINK = 24; // never reads

const MIB = 1024 * 1024;
/** Deno and Bun keep a copy of fd 1 and never close it (see stdio.ts): there stdout ends at exit. */
const EARLY_EOF = !("Deno" in globalThis) && !("Bun" in globalThis);
const DATA = randomBytes(16 * MIB);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** An A record for echo.test (HOST), NXDOMAIN for any other name (RFC 1035 section 4.1). */
function dnsAnswer(query: Uint8Array): Uint8Array {
  let end = 12;
  while (query[end] !== 0) end += 1 + query[end]!;
  const known = new TextDecoder().decode(query.subarray(12, end + 1)) === "\x04echo\x04test\x00";
  const header = [query[0]!, query[1]!, 0x81, known ? 0x80 : 0x83, 0, 1, 0, known ? 1 : 0, 0, 0, 0, 0];
  const answer = known ? [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...HOST.split(".").map(Number)] : [];
  return Uint8Array.from([...header, ...query.subarray(12, end + 5), ...answer]);
}

/** Everything a connection brings until its end, hashed. */
async function drain(conn: TcpConnection): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of conn) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** Writes `data` to a stream in 64 KiB pieces, each once the last was taken (the child's backpressure holds us). */
async function feed(stream: Writable, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    await new Promise<void>((resolve, reject) => stream.write(data.subarray(at, at + 64 * 1024), (error) => (error ? reject(error) : resolve())));
  }
}

/** What a stream brings until its end: bytes and SHA-256. */
async function collect(stream: Readable): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

describe("--stdio on the command line", () => {
  it("takes HOST:PORT with HOST an IP, [V6] or a name", () => {
    expect(parseConnectCommand(["wg0.conf", "--stdio", "10.0.0.5:22"])).toMatchObject({ stdio: { host: "10.0.0.5", port: 22 } });
    expect(parseConnectCommand(["wg0.conf", "--stdio=[fd00::5]:22"])).toMatchObject({ stdio: { host: "fd00::5", port: 22 } });
    expect(parseConnectCommand(["wg0.conf", "--stdio", "db.corp:5432", "--json"])).toMatchObject({ stdio: { host: "db.corp", port: 5432 }, json: true });
    // ssh's %h is a bare IPv6 address, and [%h]:%p brackets any host: one ProxyCommand serves every host.
    expect(parseConnectCommand(["wg0.conf", "--stdio", "fd00::5:22"])).toMatchObject({ stdio: { host: "fd00::5", port: 22 } });
    expect(parseConnectCommand(["wg0.conf", "--stdio", "[10.0.0.5]:22"])).toMatchObject({ stdio: { host: "10.0.0.5", port: 22 } });
    expect(parseConnectCommand(["wg0.conf", "--stdio", "[db.corp]:5432"])).toMatchObject({ stdio: { host: "db.corp", port: 5432 } });
  });

  it("rejects a bad HOST:PORT, a second --stdio, other doors or a COMMAND beside it, a CONFIG from stdin, with a UsageError (one line, exit 2)", () => {
    for (const bad of ["10.0.0.5", "10.0.0.5:0", "10.0.0.5:70000", "fd00::5", "[fd00::5]", "[fd00::5]:", ":22", "[]:22", "bad_name:22", "[a]:b:22"]) {
      expect(() => parseConnectCommand(["wg0.conf", "--stdio", bad])).toThrow(UsageError);
      expect(() => parseConnectCommand(["wg0.conf", "--stdio", bad])).toThrow(/^--stdio: expected HOST:PORT/);
    }
    expect(() => parseConnectCommand(["wg0.conf", "--stdio", "10.0.0.5:22", "--stdio", "10.0.0.6:22"])).toThrow(/^--stdio: given twice/);
    for (const door of [["--forward", "tcp:1=a:1"], ["--reverse", "tcp:80=127.0.0.1:1"], ["--socks5", "1080"], ["--http", "3128"], ["--", "true"]]) {
      expect(() => parseConnectCommand(["wg0.conf", "--stdio", "10.0.0.5:22", ...door])).toThrow(/^--stdio cannot be combined with/);
    }
    expect(() => parseConnectCommand(["-", "--stdio", "10.0.0.5:22"])).toThrow(/^--stdio relays stdin: the CONFIG cannot come from it/);
  });
});

describe("connect --stdio", () => {
  let network: Awaited<ReturnType<typeof startStdioNetwork>>;
  /** What DOWNLOAD read after its own FIN, once the client ended. */
  let afterFin: Promise<{ bytes: number; sha256: string }>;
  /** How HOLD's connection ended: "eof", or the error code. */
  let held: Promise<string>;
  /** Bytes SOURCE has handed to its connection so far. */
  let sourced = 0;
  const children: StdioChild[] = [];
  const start = (target: string, args: string[] = [], fifo = false) => {
    const child = spawnStdio(network.config, target, { args, fifo });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    const onTcp = async (conn: TcpConnection) => {
      if (conn.local.host !== HOST) return conn.refuse();
      switch (conn.local.port) {
        case ECHO:
          for await (const chunk of conn) await conn.write(chunk);
          return conn.end();
        case DOWNLOAD: {
          await conn.write(DATA);
          await conn.end();
          const rest = drain(conn);
          afterFin = rest;
          return void (await rest);
        }
        case UPLOAD: {
          const { sha256 } = await drain(conn);
          await conn.write(sha256);
          return conn.end();
        }
        case RESET:
          await conn.write(DATA.subarray(0, MIB));
          return conn.abort();
        case HOLD: {
          const ending = drain(conn).then(() => "eof", (error: NodeJS.ErrnoException) => error.code ?? String(error));
          held = ending;
          return void (await ending);
        }
        case SOURCE:
          // In 64 KiB pieces: what stays queued in the buffers between us and the reader is a few of them, never a whole MiB unseen.
          for (sourced = 0; sourced < 64 * MIB; sourced += 64 * 1024) await conn.write(DATA.subarray(0, 64 * 1024));
          return conn.end();
        case SINK:
          await conn.accept();
          return new Promise<void>(() => {});
        default:
          return conn.refuse();
      }
    };
    const onUdp = (packet: UdpPacket) => {
      if (packet.dst.host === DNS && packet.dst.port === 53) packet.reply(dnsAnswer(packet.data));
    };
    network = await startStdioNetwork({ onTcp, onUdp }, { dns: DNS });
  }, T);

  afterAll(async () => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await network?.close();
  });

  it("relays 16 MiB both ways through an echo, stdout carrying only the connection's bytes; stdin's end ends it all and the exit is 0, with nothing on stderr", async () => {
    const run = start(`${HOST}:${ECHO}`);
    const received = collect(run.stdout);
    await feed(run.child.stdin!, DATA);
    run.child.stdin!.end();
    expect(await received).toEqual({ bytes: DATA.length, sha256: sha256(DATA) });
    expect(await run.exited).toBe(0);
    expect(run.stderr()).toBe("");
  }, T);

  it("upload: stdin ends first; the far end reads it all to our FIN, then answers, and stdout ends with its end", async () => {
    const run = start(`${HOST}:${UPLOAD}`);
    const received = collect(run.stdout);
    await feed(run.child.stdin!, DATA);
    run.child.stdin!.end();
    const answer = await received;
    expect(answer.bytes).toBe(64);
    expect(answer.sha256).toBe(sha256(new TextEncoder().encode(sha256(DATA))));
    expect(await run.exited).toBe(0);
  }, T);

  it("download: the far end ends first while stdin is still open; stdout ends then, and what stdin sends after still reaches the far end", async () => {
    // Through a FIFO, as ssh's pipe(2): only closing fd 1 shows the end there.
    const run = start(`${HOST}:${DOWNLOAD}`, [], EARLY_EOF);
    const received = collect(run.stdout);
    if (!EARLY_EOF) {
      await sleep(1000); // stdout ends at exit, so stdin ends first
    } else {
      expect(await received).toEqual({ bytes: DATA.length, sha256: sha256(DATA) });
      expect(run.child.exitCode).toBe(null); // still reading stdin
    }
    const late = DATA.subarray(0, 3 * MIB);
    await feed(run.child.stdin!, late);
    run.child.stdin!.end();
    expect(await received).toEqual({ bytes: DATA.length, sha256: sha256(DATA) });
    expect(await afterFin).toEqual({ bytes: late.length, sha256: sha256(late) });
    expect(await run.exited).toBe(0);
  }, T);

  it("backpressure: a stdout nobody reads holds the far end back (what it sends waits in bounded buffers)", async () => {
    const run = start(`${HOST}:${SOURCE}`);
    run.stdout.pause();
    sourced = 0;
    for (let i = 0; i < 1500 && sourced === 0; i++) await sleep(20); // connected (a loaded machine starts a runtime slowly)
    await sleep(2000);
    // The pipe, the relay's buffers, our TCP receive window: a few MiB, not the 64 on offer.
    expect(sourced).toBeGreaterThan(0);
    expect(sourced).toBeLessThan(16 * MIB);
    process.kill(run.child.pid!, "SIGTERM");
    expect(await run.exited).toBe("SIGTERM");
  }, T);

  it("backpressure: a far end that does not read stops stdin being read (what stdin takes stays bounded)", async () => {
    const run = start(`${HOST}:${SINK}`);
    let taken = 0;
    void (async () => {
      for (let at = 0; at < 64 * MIB; at += 64 * 1024) {
        await new Promise<void>((resolve) => run.child.stdin!.write(DATA.subarray(0, 64 * 1024), () => resolve()));
        taken += 64 * 1024;
      }
    })();
    for (let i = 0; i < 1500 && taken === 0; i++) await sleep(20);
    await sleep(2000);
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(16 * MIB);
    process.kill(run.child.pid!, "SIGTERM");
    expect(await run.exited).toBe("SIGTERM");
  }, T);

  it("a refused connect: exit 1 and one line on stderr naming ECONNREFUSED, nothing on stdout", async () => {
    const run = start(`${HOST}:${REFUSED}`);
    const received = collect(run.stdout);
    expect(await run.exited).toBe(1);
    expect((await received).bytes).toBe(0);
    expect(run.stderr()).toMatch(new RegExp(`^wg-netstack: --stdio ${HOST}:${REFUSED}: cannot connect: .*ECONNREFUSED.*\\n$`));
  }, T);

  it("a name resolves through the tunnel's DNS; one that does not: exit 1 and ENOTFOUND on stderr", async () => {
    const run = start(`echo.test:${ECHO}`);
    const received = collect(run.stdout);
    run.child.stdin!.end("hello through a name\n");
    expect(await received).toEqual({ bytes: 21, sha256: sha256(new TextEncoder().encode("hello through a name\n")) });
    expect(await run.exited).toBe(0);

    const unknown = start(`unknown.test:${ECHO}`);
    expect(await unknown.exited).toBe(1);
    expect(unknown.stderr()).toMatch(/^wg-netstack: --stdio unknown\.test:7: cannot connect: ENOTFOUND: unknown\.test does not exist \(NXDOMAIN from 10\.0\.0\.53\)\n$/);
  }, T);

  it("the far end resets mid-stream: exit 1 and ECONNRESET on stderr (what came before it may be cut short, as with nc)", async () => {
    const run = start(`${HOST}:${RESET}`);
    const received = collect(run.stdout);
    expect(await run.exited).toBe(1);
    expect((await received).bytes).toBeLessThanOrEqual(MIB);
    expect(run.stderr()).toMatch(new RegExp(`^wg-netstack: --stdio ${HOST}:${RESET}: the connection was reset \\(.*ECONNRESET.*\\)\\n$`));
  }, T);

  it("with a terminal as stdin (typed at a shell): a line typed goes out and comes back, ^D ends it, exit 0", async () => {
    const { child, shown, exited } = onTerminal(["connect", network.config, "--stdio", `${HOST}:${ECHO}`, ...THREADS_FLAGS]);
    children.push({ child, stdout: child.stdout!, stderr: () => "", exited: Promise.resolve(0) });
    child.stdin!.write("hello through the tunnel\n"); // the terminal holds it until the process reads
    for (let i = 0; i < 200 && shown().split("hello through the tunnel").length < 3; i++) await sleep(25); // the terminal's echo, then the far end's
    child.stdin!.write("\x04");
    expect(await exited).toBe(0);
    expect(shown().split("hello through the tunnel").length).toBe(3);
  }, T);

  it("--json writes the log on stderr (up, the flow, the summary) and nothing else on stdout", async () => {
    const run = start(`${HOST}:${ECHO}`, ["--json"]);
    const received = collect(run.stdout);
    run.child.stdin!.end("ping");
    expect(await received).toEqual({ bytes: 4, sha256: sha256(new TextEncoder().encode("ping")) });
    expect(await run.exited).toBe(0);
    const events = run.stderr().trim().split("\n").map((line) => JSON.parse(line));
    expect(events.map((event) => event.type)).toEqual(["up", "flow", "summary"]);
    expect(events[0]).toMatchObject({ listening: [{ protocol: "stdio", address: "stdio", to: `${HOST}:${ECHO}` }] });
    expect(events[1]).toMatchObject({ via: "stdio", protocol: "tcp", dst: { host: HOST, port: ECHO }, up: 4, down: 4, end: "closed" });
  }, T);

  it("says nothing of a config's host-side keys (PostUp…) on stderr, which ssh shows on every connection; --json logs them as warnings", async () => {
    const config = `${network.config}.postup`;
    writeFileSync(config, readFileSync(network.config, "utf8").replace("[Interface]\n", "[Interface]\nPostUp = echo never run\n"));
    try {
      for (const json of [false, true]) {
        const run = children[children.push(spawnStdio(config, `${HOST}:${ECHO}`, { args: json ? ["--json"] : [] })) - 1]!;
        const received = collect(run.stdout);
        run.child.stdin!.end("ping");
        expect((await received).bytes).toBe(4);
        expect(await run.exited).toBe(0);
        if (!json) expect(run.stderr()).toBe("");
        else expect(run.stderr().trim().split("\n").map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ type: "warning", message: expect.stringMatching(/PostUp/) }));
      }
    } finally {
      rmSync(config);
    }
  }, T);

  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    // SIGHUP is what ssh sends its ProxyCommand. A cut connection is no success: we die of the signal, as nc does.
    it(`${signal} resets the connection (the far end is not left waiting) and the process dies of it`, async () => {
      const run = start(`${HOST}:${HOLD}`, ["--json"]);
      run.child.stdin!.write("x");
      for (let i = 0; i < 400 && held === undefined; i++) await sleep(25);
      const ending = held;
      held = undefined as unknown as Promise<string>;
      process.kill(run.child.pid!, signal); // not child.kill(): Deno's then reports the signal as how the child ended
      expect(await run.exited).toBe(signal);
      expect(await ending).toBe("ECONNRESET");
      expect(run.stderr()).toContain('"end":"shutdown"');
    }, T);
  }
});
