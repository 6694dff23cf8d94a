// The command line: parsing, and the real `wg-netstack` process (dist/gateway/main.js,
// built by `node build.mjs`) under the runtime running the tests.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startTunnelClient } from "../../test/support/loopback-stacks.js";
import { nodeRuntime } from "../runtime/node.js";
import type { Runtime } from "../runtime/types.js";
import { main as runCommand, parseCommand, resolvConfNameserver, UsageError } from "./cli.js";
import { ConfigStore } from "./config-store.js";

describe("parseCommand", () => {
  const env = { XDG_CONFIG_HOME: "/cfg" };

  it("serves by default, with defaults", () => {
    expect(parseCommand([], env)).toEqual({ command: "serve", conf: join("/cfg", "wg-netstack"), allowLoopback: false, allowLinkLocal: false, json: false });
    expect(parseCommand(["serve", "--json"], env)).toMatchObject({ command: "serve", json: true });
  });

  it("reads every serve option, as --name value or --name=value", () => {
    const command = parseCommand(
      ["--conf", "/c", "--peers=3", "--listen", "[::1]:51821", "--endpoint", "vpn.example.test", "--mtu", "1380",
        "--via", "socks5://u:p@127.0.0.1:1080", "--dns-upstream", "127.0.0.53", "--allow-loopback", "--allow-link-local", "--max-flows", "200", "--threads", "1", "--pcap", "/tmp/x.pcap"],
      env,
    );
    expect(command).toEqual({
      command: "serve",
      conf: "/c",
      peers: 3,
      listen: { host: "::1", port: 51821 },
      endpoint: { host: "vpn.example.test" },
      mtu: 1380,
      via: { protocol: "socks5", host: "127.0.0.1", port: 1080, username: "u", password: "p" },
      dnsUpstream: { host: "127.0.0.53", port: 53 },
      allowLoopback: true,
      allowLinkLocal: true,
      maxFlows: 200,
      threads: 1,
      pcap: "/tmp/x.pcap",
      json: false,
    });
  });

  it("takes the listen and endpoint forms people write", () => {
    const serve = (...argv: string[]) => parseCommand(argv, env) as Extract<ReturnType<typeof parseCommand>, { command: "serve" }>;
    expect(serve("--listen", "51821").listen).toEqual({ port: 51821 });
    expect(serve("--listen", "0.0.0.0:0").listen).toEqual({ host: "0.0.0.0", port: 0 });
    expect(serve("--endpoint", "203.0.113.5:443").endpoint).toEqual({ host: "203.0.113.5", port: 443 });
    expect(serve("--endpoint", "[2001:db8::1]:443").endpoint).toEqual({ host: "2001:db8::1", port: 443 });
    expect(serve("--endpoint", "2001:db8::1").endpoint).toEqual({ host: "2001:db8::1" });
    expect(serve("--dns-upstream", "[::1]:5353").dnsUpstream).toEqual({ host: "::1", port: 5353 });
    // The web page listens on loopback unless told otherwise.
    expect(serve("--web", "8080").web).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(serve("--web", "0.0.0.0:80").web).toEqual({ host: "0.0.0.0", port: 80 });
    expect(serve("--web", "[::1]:8080").web).toEqual({ host: "::1", port: 8080 });
    expect(serve().web).toBeUndefined();
  });

  it("reads peer add and peer remove", () => {
    expect(parseCommand(["peer", "add", "phone", "--conf", "/c"], env)).toEqual({ command: "peer-add", conf: "/c", name: "phone" });
    expect(parseCommand(["peer", "remove", "phone"], env)).toEqual({ command: "peer-remove", conf: join("/cfg", "wg-netstack"), name: "phone" });
    expect(parseCommand(["peer", "add", "-h"], env)).toEqual({ command: "help" });
  });

  it("says what is wrong, in one line", () => {
    const cases: [string[], RegExp][] = [
      [["--mtu", "9"], /^--mtu: expected an integer from 1280 to 65535, got "9"$/],
      [["--peers", "-1"], /^--peers: expected an integer from 0 to 250, got "-1"$/],
      [["--listen", "localhost:1"], /^--listen: expected IP:PORT/],
      [["--listen", "::1:51820"], /^--listen: expected IP:PORT/],
      [["--web", "localhost:8080"], /^--web: expected IP:PORT/],
      [["--web", "70000"], /^--web port: expected an integer from 0 to 65535/],
      [["--endpoint", "[nope]:1"], /^--endpoint: expected/],
      [["--via", "ftp://x:1"], /^--via: .*socks5:\/\/ or http:\/\//],
      [["--via", "socks5://ann@127.0.0.1:1080"], /^--via: "socks5:\/\/ann@127\.0\.0\.1:1080": the login has no password; a SOCKS5 login is user:password, each 1 to 255 bytes$/],
      [["--dns-upstream", "dns.example.test"], /^--dns-upstream: expected IP/],
      [["--mtu"], /^--mtu needs a value/],
      [["--max-flows", "0"], /^--max-flows: expected an integer from 1 to/],
      [["--threads", "2"], /^--threads: expected an integer from 0 to 1, got "2"$/],
      [["--allow-loopback=yes"], /^--allow-loopback takes no value$/],
      [["--json=yes"], /^--json takes no value$/],
      [["--frob"], /^unknown option --frob/],
      [["frob"], /^unknown command "frob"/],
      [["peer", "add"], /^peer add: expected one peer NAME$/],
      [["peer", "add", "x", "--peers", "2"], /^unknown option --peers/],
      [["serve", "extra"], /^serve: unexpected argument "extra"$/],
    ];
    for (const [argv, message] of cases) {
      const error = (() => {
        try {
          parseCommand(argv, env);
        } catch (error) {
          return error;
        }
      })();
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain("\n");
    }
  });
});

describe("resolvConfNameserver", () => {
  it("takes the first usable nameserver", () => {
    expect(resolvConfNameserver("# comment\nsearch example.test\nnameserver fe80::1%eth0\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")).toBe("192.0.2.53");
    expect(resolvConfNameserver("nameserver 2001:db8::53")).toBe("2001:db8::53");
    expect(resolvConfNameserver("options ndots:1\n")).toBeUndefined();
  });
});

// ---- the real process ----

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = join(root, "dist", "gateway", "main.js");
const runtime = "Deno" in globalThis ? [process.execPath, "run", "-A"] : [process.execPath];
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "wgn-cli-"));
  dirs.push(dir);
  return dir;
};
const run = (...argv: string[]) => spawnSync(runtime[0]!, [...runtime.slice(1), main, ...argv], { encoding: "utf8", timeout: 30_000 });

/** Starts `wg-netstack serve --json ...` and reads its JSON lines as they come. */
function serve(...argv: string[]) {
  const child = spawn(runtime[0]!, [...runtime.slice(1), main, "serve", "--json", "--listen", "127.0.0.1:0", "--dns-upstream", "127.0.0.1:9", ...argv], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const events: Record<string, unknown>[] = [];
  let buffered = "";
  child.stdout!.on("data", (data) => {
    buffered += data;
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) events.push(JSON.parse(line));
  });
  child.stderr!.resume(); // configs and QR codes go there with --json
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const next = async (type: string, timeoutMs = 15_000) => {
    for (const start = Date.now(); ; await new Promise((resolve) => setTimeout(resolve, 20))) {
      const event = events.find((e) => e.type === type);
      if (event) return (events.splice(events.indexOf(event), 1), event) as Record<string, any>;
      if (Date.now() - start > timeoutMs) throw new Error(`no ${type} event; got ${JSON.stringify(events)}`);
    }
  };
  // process.kill, not child.kill: Deno's ChildProcess reports any child it signalled as killed, even one that exits 0.
  const signal = (name: NodeJS.Signals) => process.kill(child.pid!, name);
  return { child, next, exited, signal };
}

describe("wg-netstack (process)", () => {
  it("exits 2 with one line on stderr for bad flags and bad key files", () => {
    for (const argv of [["--mtu", "9"], ["--via", "ftp://x:1"], ["frob"], ["peer", "remove", "nobody", "--conf", tempDir()]]) {
      const result = run(...argv);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/^wg-netstack: [^\n]+\n$/);
    }
    const conf = tempDir();
    writeFileSync(join(conf, "server.json"), "{ broken");
    const result = run("--conf", conf, "--dns-upstream", "127.0.0.1");
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`wg-netstack: ${join(conf, "server.json")}: not valid JSON\n`);
    // A folder that cannot be made: --conf names a file.
    const file = join(conf, "server.json");
    for (const argv of [["--conf", file, "--dns-upstream", "127.0.0.1"], ["peer", "add", "phone", "--conf", file]]) {
      const unusable = run(...argv);
      expect(unusable.status).toBe(2);
      expect(unusable.stderr).toBe(`wg-netstack: ${join(file, "peers")}: cannot make the config folder: ENOTDIR\n`);
    }
  });

  it("makes peer1 on the first start only: a peer1 removed later stays removed across restarts", async () => {
    const conf = tempDir();
    const first = serve("--conf", conf);
    await first.next("listening");
    first.signal("SIGINT");
    expect(await first.exited).toBe(0);
    expect(new ConfigStore(conf).peers().map((peer) => peer.name)).toEqual(["peer1"]);
    expect(run("peer", "add", "phone", "--conf", conf).status).toBe(0);
    expect(run("peer", "remove", "peer1", "--conf", conf).status).toBe(0);
    const again = serve("--conf", conf);
    await again.next("listening");
    expect(new ConfigStore(conf).peers().map((peer) => peer.name)).toEqual(["phone"]);
    again.signal("SIGINT");
    expect(await again.exited).toBe(0);
    // Asked for, --peers N makes sure peer1 … peerN exist, as it says.
    const asked = serve("--conf", conf, "--peers", "2");
    await asked.next("listening");
    expect(new ConfigStore(conf).peers().map((peer) => peer.name)).toEqual(["peer1", "peer2", "phone"]);
    asked.signal("SIGINT");
    expect(await asked.exited).toBe(0);
  });

  it("gives peers added at the same time by several `peer add` processes addresses of their own", async () => {
    const conf = tempDir();
    expect(run("peer", "add", "first", "--conf", conf).status).toBe(0); // the server's key and subnets
    const names = ["p1", "p2", "p3", "p4", "p5", "p6"];
    const codes = await Promise.all(
      names.map((name) => new Promise<number | null>((resolve) => spawn(runtime[0]!, [...runtime.slice(1), main, "peer", "add", name, "--conf", conf], { stdio: "ignore" }).on("exit", resolve))),
    );
    expect(codes).toEqual(names.map(() => 0));
    const addresses = new ConfigStore(conf).peers().map((peer) => peer.address[0]);
    expect(addresses).toHaveLength(7);
    expect(new Set(addresses).size).toBe(7);
  });

  it("serves, logs flows, picks up peer add / peer remove, stops on SIGINT with a summary, and keeps its keys", async () => {
    const conf = tempDir();
    const upstream = net.createServer((socket) => socket.on("error", () => {}).end("hello from upstream"));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const port = (upstream.address() as net.AddressInfo).port;
    try {
      const first = serve("--conf", conf, "--allow-loopback");
      const listening = await first.next("listening");
      const store = new ConfigStore(conf);
      const peerFile = readFileSync(join(conf, "peers", "peer1.json"), "utf8");
      expect(readFileSync(join(conf, "peer1.conf"), "utf8")).toContain(`Endpoint = ${listening.endpoint}`);

      // A peer added from another process joins the running gateway.
      const added = run("peer", "add", "tablet", "--conf", conf);
      expect(added.status).toBe(0);
      expect(added.stdout).toContain("[Interface]");
      expect(added.stdout).toContain(`Endpoint = ${listening.endpoint}`);
      expect((await first.next("peer-added")).peer).toBe("tablet");
      const tablet = store.peers().find((peer) => peer.name === "tablet")!;
      const client = await startTunnelClient({ privateKey: tablet.privateKey, serverPublicKey: listening.publicKey, endpoint: listening.address, address: tablet.address });
      try {
        const conn = await client.connect({ host: "127.0.0.1", port });
        let text = "";
        for await (const chunk of conn) text += new TextDecoder().decode(chunk);
        await conn.end();
        expect(text).toBe("hello from upstream");
        expect(await first.next("flow")).toMatchObject({ peer: "tablet", protocol: "tcp", dst: { host: "127.0.0.1", port }, down: 19, end: "closed" });
      } finally {
        await client.close();
      }
      expect(run("peer", "remove", "tablet", "--conf", conf).status).toBe(0);
      expect((await first.next("peer-removed")).peer).toBe("tablet");

      first.signal("SIGINT");
      expect(await first.exited).toBe(0);
      expect(await first.next("summary")).toMatchObject({ flows: 1, tcp: 1, ends: { closed: 1 } });

      // Restarted without --allow-loopback: same keys, and the upstream on loopback is denied.
      const second = serve("--conf", conf);
      const again = await second.next("listening");
      expect(again.publicKey).toBe(listening.publicKey);
      expect(readFileSync(join(conf, "peers", "peer1.json"), "utf8")).toBe(peerFile);
      const peer1 = store.peers().find((peer) => peer.name === "peer1")!;
      const client1 = await startTunnelClient({ privateKey: peer1.privateKey, serverPublicKey: again.publicKey, endpoint: again.address, address: peer1.address });
      try {
        void client1.connect({ host: "127.0.0.1", port }).catch(() => {});
        expect(await second.next("flow")).toMatchObject({ peer: "peer1", dst: { host: "127.0.0.1", port }, end: "denied" });
      } finally {
        await client1.close();
      }
      second.signal("SIGTERM");
      expect(await second.exited).toBe(0);
    } finally {
      upstream.close();
    }
  }, 60_000);

  it("writes a flow's packets, both ways, to --pcap", async () => {
    const conf = tempDir();
    const pcap = join(conf, "out.pcap");
    const upstream = net.createServer((socket) => socket.on("error", () => {}).end("hello"));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const port = (upstream.address() as net.AddressInfo).port;
    try {
      const gateway = serve("--conf", conf, "--allow-loopback", "--pcap", pcap);
      const listening = await gateway.next("listening");
      const peer = new ConfigStore(conf).peers()[0]!;
      const client = await startTunnelClient({ privateKey: peer.privateKey, serverPublicKey: listening.publicKey, endpoint: listening.address, address: peer.address });
      try {
        const conn = await client.connect({ host: "127.0.0.1", port });
        for await (const _ of conn);
        await conn.end();
        await gateway.next("flow");
      } finally {
        await client.close();
      }
      gateway.signal("SIGINT");
      expect(await gateway.exited).toBe(0);
    } finally {
      upstream.close();
    }
    // The TCP ports of each IPv4 packet (tshark reads the file in pcap.test.ts and the interop test).
    const ports = pcapRecords(readFileSync(pcap)).filter((p) => p[0] === 0x45 && p[9] === 6).map((p) => [(p[20]! << 8) | p[21]!, (p[22]! << 8) | p[23]!]);
    expect(ports.filter(([, to]) => to === port).length).toBeGreaterThanOrEqual(3); // SYN, ACK, FIN at least
    expect(ports.filter(([from]) => from === port).length).toBeGreaterThanOrEqual(3); // SYN-ACK, data, FIN
  }, 30_000);

});

describe("main", () => {
  it("exits 1 with one line when the server fails under it", async () => {
    let failSocket!: () => void;
    // The server fails as it would if its engine trapped: through its fatal-error path.
    const runtime: Runtime = {
      clock: nodeRuntime.clock,
      bindUdp: (host, port, onMessage, onError) => ((failSocket = () => onError(new Error("the socket went away"), true)), nodeRuntime.bindUdp(host, port, onMessage, onError)),
    };
    const out: string[] = [];
    const err: string[] = [];
    const exit = runCommand(["--conf", tempDir(), "--listen", "127.0.0.1:0", "--dns-upstream", "127.0.0.1:9"], {
      out: (line) => void out.push(line),
      err: (line) => void err.push(line),
      env: {},
      stopRequested: new Promise(() => {}),
      passSignals: () => {},
      dieOf: () => {},
      runtime,
    });
    for (const start = Date.now(); !out.some((line) => line.includes("wg-netstack gateway on udp")); await new Promise((resolve) => setTimeout(resolve, 20))) {
      if (Date.now() - start > 10_000) throw new Error(`not listening: ${out.join("\n")}`);
    }
    failSocket();
    expect(await exit).toBe(1);
    expect(err).toEqual(["wg-netstack server failed: the socket went away"]);
    expect(out.at(-1)).toMatch(/summary: 0 flows/);
  });
});

/** The packets of a classic little-endian pcap file. */
function pcapRecords(file: Buffer): Buffer[] {
  expect(file.readUInt32LE(0)).toBe(0xa1b2c3d4);
  const records: Buffer[] = [];
  for (let at = 24; at < file.length; ) {
    const length = file.readUInt32LE(at + 8);
    records.push(file.subarray(at + 16, at + 16 + length));
    at += 16 + length;
  }
  return records;
}
