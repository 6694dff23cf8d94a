// `wg-netstack connect CONFIG` (the real process, under the runtime running the tests)
// against a wireguard-go server in a namespace with an HTTP and a DNS server behind it.
// Only real clients talk to the local doors: curl, dig, and the flow log checked.
//
//   root ns: curl/dig ─▶ 127.0.0.1 doors ─ wg-netstack connect ──UDP──▶ namespace: wireguard-go 10.0.0.1/24
//                                                                        HTTP :8000, DNS :53 (files.test)
//   and back (--reverse): curl / a UDP client in the namespace ─▶ 10.0.0.2:REVERSE_PORT ─▶ services on 127.0.0.1
//   The namespace's nftables answers SYNs to three ports with ICMP host, net and port unreachable.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createSocket, type Socket as DatagramSocket } from "node:dgram";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig, connectTunnel, genkey, pubkey, TunnelError } from "../../ts/index.js";
import { GATEWAY_MAIN, RUNTIME_COMMAND, startCommand, waitForLine } from "../support/gateway-process.js";
import { lcgFile, lcgFileHash, lcgFileSource } from "../support/lcg-file.js";
import { postgresBin, startPostgres } from "../support/postgres.js";
import { cleanupStaleNamespaces, interopSkipReason, LOCAL_ENV, startWgServer, type WgServer } from "./netns.js";
import { THREADS, THREADS_FLAGS } from "../support/threads.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping wg-netstack connect against wireguard-go: ${skipReason}`);

const T = 120_000;
const SERVER_ADDRESS = "10.0.0.1";
const HTTP_PORT = 8000;
const CLOSED_PORT = 8001;
const NAME = "files.test";
const FILE_SIZE = 1024 * 1024;
const SOCKS_LOGIN = "user:pa:ss";
const CLIENT_ADDRESS = "10.0.0.2";
const REVERSE_PORT = 8080;
const REVERSE_CLOSED_PORT = 8081;
const REVERSE_UDP_PORT = 5353;
const REVERSE_FILE_SIZE = 16 * 1024 * 1024;
const HOST_UNREACHABLE_PORT = 8002;
const NET_UNREACHABLE_PORT = 8003;
const PORT_UNREACHABLE_PORT = 8004;
const LIBRARY_ADDRESS = "10.0.0.3";
const EXEC_ADDRESS = "10.0.0.4";
const POSTGRES_PORT = 5432;

/** Rejects SYNs to three ports with ICMP errors, as a firewall in the network would (RFC 1122 4.2.3.9's case; port unreachable is nftables' and iptables' default REJECT). */
const REJECT_RULES = `table ip wgn_reject {
  chain input {
    type filter hook input priority 0;
    tcp dport ${HOST_UNREACHABLE_PORT} reject with icmp type host-unreachable
    tcp dport ${NET_UNREACHABLE_PORT} reject with icmp type net-unreachable
    tcp dport ${PORT_UNREACHABLE_PORT} reject with icmp type port-unreachable
  }
}`;
const root = fileURLToPath(new URL("../..", import.meta.url));

// Bytes from a fixed LCG, so the test knows their hash.
const HTTP_SCRIPT = `
${lcgFileSource(FILE_SIZE)}
require("http").createServer((req, res) => {
  // The bytes of the request's X-Probe header as they arrived (Node reads header values as latin1).
  res.setHeader("x-probe-hex", Buffer.from(req.headers["x-probe"] ?? "", "latin1").toString("hex"));
  res.end(file);
}).listen(${HTTP_PORT}, "${SERVER_ADDRESS}", () => console.log("listening"));`;

const expectedFileHash = () => lcgFileHash(FILE_SIZE);

/** The local service behind --reverse: GET sends `file`; POST answers the SHA-256 and size of the body. */
async function startLocalHttp(file: Buffer): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== "POST") return res.end(file);
    const hash = createHash("sha256");
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
    });
    req.on("end", () => res.end(`${hash.digest("hex")} ${size}`));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

/** A port on 127.0.0.1 where nothing listens (bound, then closed). */
async function closedLocalPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}


/** `wg-netstack connect CONFIG --json ARGS` as a child process, its JSON lines collected. */
function startConnect(configPath: string, args: string[]) {
  return startCommand(["connect", configPath, "--json", ...THREADS_FLAGS, ...args], 20_000);
}

/** The local address of the door leading to `to` (its port picked by the system). */
function door(up: Record<string, any>, protocol: string, to: string): { host: string; port: number } {
  const found = up.listening.find((entry: any) => entry.protocol === protocol && entry.to === to);
  const [, host, port] = /^(.*):(\d+)$/.exec(found.address)!;
  return { host: host!, port: Number(port) };
}

/** A tiny SOCKS5 UDP ASSOCIATE client (RFC 1928 section 7): one A query for `name` to `dnsServer`:53; the first answer's address. */
async function socksUdpDnsQuery(proxyPort: number, login: string, dnsServer: string, name: string): Promise<string> {
  const control = net.connect({ port: proxyPort, host: "127.0.0.1" });
  await once(control, "connect");
  let received = Buffer.alloc(0);
  const read = async (length: number) => {
    while (received.length < length) {
      const [chunk] = (await once(control, "data")) as [Buffer];
      received = Buffer.concat([received, chunk]);
    }
    const message = received.subarray(0, length);
    received = received.subarray(length);
    return message;
  };
  const [user, pass] = [login.slice(0, login.indexOf(":")), login.slice(login.indexOf(":") + 1)];
  control.write(Buffer.from([5, 1, 2]));
  expect([...(await read(2))]).toEqual([5, 2]);
  control.write(Buffer.concat([Buffer.from([1, user.length]), Buffer.from(user), Buffer.from([pass.length]), Buffer.from(pass)]));
  expect([...(await read(2))]).toEqual([1, 0]);
  control.write(Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]));
  const reply = await read(10); // VER REP RSV ATYP=1 BND.ADDR(4) BND.PORT(2)
  expect(reply[1]).toBe(0);
  const relayHost = [...reply.subarray(4, 8)].join(".");
  const relayPort = reply.readUInt16BE(8);
  const udp = createSocket("udp4");
  try {
    const labels = name.split(".").map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
    const query = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
    const header = Buffer.from([0, 0, 0, 1, ...dnsServer.split(".").map(Number), 0, 53]);
    udp.send(Buffer.concat([header, query]), relayPort, relayHost);
    const [answer] = (await Promise.race([once(udp, "message"), sleep(20_000).then(() => [undefined])])) as [Buffer | undefined];
    if (!answer) throw new Error("no answer through UDP ASSOCIATE");
    expect([...answer.subarray(0, 10)]).toEqual([...header]); // the sender's address comes back in the header
    return [...answer.subarray(answer.length - 4)].join(".");
  } finally {
    udp.close();
    control.destroy();
  }
}

function run(command: string, args: string[]) {
  return spawnSync(command, args, { encoding: "utf8", timeout: 60_000, env: LOCAL_ENV });
}

const haveDig = run("sh", ["-c", "command -v dig"]).status === 0;
if (!skipReason && !haveDig) {
  if (process.env.CI) throw new Error("the connect test needs dig (Debian package dnsutils)");
  console.log("[interop] skipping the dig checks: dig is not installed (Debian package dnsutils)");
}
const postgres = skipReason ? undefined : postgresBin();
const havePsql = run("sh", ["-c", "command -v psql"]).status === 0;
if (!skipReason && !(postgres && havePsql)) {
  if (process.env.CI) throw new Error("the connect test needs PostgreSQL and psql (Debian package postgresql)");
  console.log("[interop] skipping the psql check: PostgreSQL or psql is not installed (Debian package postgresql)");
}
const haveNft = run("sh", ["-c", "command -v nft"]).status === 0;
if (!skipReason && !haveNft) {
  if (process.env.CI) throw new Error("the connect test needs nft (Debian package nftables)");
  console.log("[interop] skipping the ICMP unreachable checks: nft is not installed (Debian package nftables)");
}

describe.skipIf(skipReason)("wg-netstack connect against wireguard-go", () => {
  const clientKey = skipReason ? "" : genkey();
  const serverKey = skipReason ? "" : genkey();
  const libraryKey = skipReason ? "" : genkey();
  const execKey = skipReason ? "" : genkey();
  let server: WgServer;
  let dir: string;
  let configPath: string;
  let connect: ReturnType<typeof startConnect>;
  let up: Record<string, any>;
  const reverseFile = lcgFile(REVERSE_FILE_SIZE);
  let localHttp: http.Server;
  let localUdp: DatagramSocket;
  let localClosedPort: number;

  beforeAll(async () => {
    await cleanupStaleNamespaces();
    server = await startWgServer({
      privateKey: serverKey,
      implementation: "current",
      tunnelAddresses: [`${SERVER_ADDRESS}/24`],
      peers: [
        { publicKey: pubkey(clientKey), allowedIps: [`${CLIENT_ADDRESS}/32`] },
        { publicKey: pubkey(libraryKey), allowedIps: [`${LIBRARY_ADDRESS}/32`] },
        { publicKey: pubkey(execKey), allowedIps: [`${EXEC_ADDRESS}/32`] },
      ],
    });
    if (haveNft) {
      const nft = await server.exec("nft", ["-f", "-"], { input: REJECT_RULES });
      if (nft.code !== 0) throw new Error(`nft: ${nft.stderr}`);
    }
    const web = server.spawn("node", ["-e", HTTP_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    const dns = server.spawn("node", [join(root, "test/support/dns-server.mjs"), SERVER_ADDRESS, "53", `${NAME}=${SERVER_ADDRESS}`], { stdio: ["ignore", "pipe", "inherit"] });
    await Promise.all([waitForLine(web, "listening"), waitForLine(dns, "listening")]);
    localHttp = await startLocalHttp(reverseFile);
    localClosedPort = await closedLocalPort();
    localUdp = createSocket("udp4");
    localUdp.on("message", (data, rinfo) => localUdp.send(Buffer.concat([Buffer.from("echo "), data]), rinfo.port, rinfo.address));
    localUdp.bind(0, "127.0.0.1");
    await once(localUdp, "listening");
    dir = mkdtempSync(join(tmpdir(), "wgn-connect-"));
    configPath = join(dir, "wg0.conf");
    writeFileSync(
      configPath,
      clientConfig({ privateKey: clientKey, address: `${CLIENT_ADDRESS}/32`, serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, dns: SERVER_ADDRESS, allowedIps: "10.0.0.0/24" }),
    );
    connect = startConnect(configPath, [
      "--forward", `tcp:0=${NAME}:${HTTP_PORT}`,
      "--forward", `tcp:127.0.0.1:0=${SERVER_ADDRESS}:${CLOSED_PORT}`,
      "--forward", `udp:0=${NAME}:53`, // the DNS server by name: the target resolved through the tunnel
      "--forward", `tcp:0=${SERVER_ADDRESS}:${HOST_UNREACHABLE_PORT}`,
      "--forward", `tcp:0=${NAME}:${POSTGRES_PORT}`,
      "--socks5", `${SOCKS_LOGIN}@0`,
      "--http", `${SOCKS_LOGIN}@0`,
      "--reverse", `tcp:${REVERSE_PORT}=127.0.0.1:${(localHttp.address() as net.AddressInfo).port}`,
      "--reverse", `tcp:${REVERSE_CLOSED_PORT}=localhost:${localClosedPort}`,
      "--reverse", `udp:${REVERSE_UDP_PORT}=127.0.0.1:${localUdp.address().port}`,
      "--pcap", join(dir, "tunnel.pcap"),
    ]);
    up = await connect.find((event) => event.type === "up");
  }, T);

  afterAll(async () => {
    await connect?.stop();
    await server?.close();
    localHttp?.close();
    localUdp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  it("prints one event when the tunnel is up, naming every door (on 127.0.0.1 by default)", () => {
    expect(up.addresses).toEqual(["10.0.0.2"]);
    expect(up.publicKey).toBe(pubkey(clientKey));
    expect(up.listening).toHaveLength(10);
    expect(up.listening).toContainEqual({ protocol: "reverse-tcp", address: `${CLIENT_ADDRESS}:${REVERSE_PORT}`, to: `127.0.0.1:${(localHttp.address() as net.AddressInfo).port}` });
    expect(door(up, "tcp", `${NAME}:${HTTP_PORT}`).host).toBe("127.0.0.1");
    expect(door(up, "udp", `${NAME}:53`).host).toBe("127.0.0.1");
  });

  it("downloads a file intact with curl through a TCP forward to a name, and logs the flow", async () => {
    const { port } = door(up, "tcp", `${NAME}:${HTTP_PORT}`);
    const curl = run("sh", ["-c", `curl -sS --max-time 30 http://127.0.0.1:${port}/file | sha256sum`]);
    expect(curl.stderr).toBe("");
    expect(curl.stdout.split(" ")[0]).toBe(expectedFileHash());
    const flow = await connect.find((event) => event.type === "flow" && event.protocol === "tcp" && event.name === NAME);
    expect(flow).toMatchObject({ peer: pubkey(serverKey), via: `forward 127.0.0.1:${port}`, src: { host: "127.0.0.1" }, dst: { host: SERVER_ADDRESS, port: HTTP_PORT }, end: "closed" });
    expect(flow.down).toBeGreaterThan(FILE_SIZE);
  }, T);

  it("resets a local connection whose target refuses, and logs it as refused", async () => {
    const { port } = door(up, "tcp", `${SERVER_ADDRESS}:${CLOSED_PORT}`);
    const curl = run("curl", ["-sS", "--max-time", "30", `http://127.0.0.1:${port}/`]);
    expect(curl.status).not.toBe(0);
    const flow = await connect.find((event) => event.type === "flow" && event.dst.port === CLOSED_PORT);
    expect(flow.end).toBe("refused");
  }, T);

  it.skipIf(!haveDig)("answers dig through a UDP forward to the network's DNS server, given by name", async () => {
    const { port } = door(up, "udp", `${NAME}:53`);
    const dig = run("dig", ["+short", "+tries=1", "+time=10", "-p", String(port), "@127.0.0.1", NAME, "A"]);
    expect(dig.stdout.trim()).toBe(SERVER_ADDRESS);
  }, T);

  it("downloads a file intact with curl --socks5-hostname, the name resolved through the tunnel", async () => {
    const { port } = door(up, "socks5", "*");
    const curl = run("sh", ["-c", `curl -sS --max-time 30 --socks5-hostname ${SOCKS_LOGIN}@127.0.0.1:${port} http://${NAME}:${HTTP_PORT}/file | sha256sum`]);
    expect(curl.stderr).toBe("");
    expect(curl.stdout.split(" ")[0]).toBe(expectedFileHash());
    const flow = await connect.find((event) => event.type === "flow" && event.via?.startsWith("socks5 ") && event.protocol === "tcp" && event.end === "closed");
    expect(flow).toMatchObject({ peer: pubkey(serverKey), via: `socks5 127.0.0.1:${port}`, name: NAME, dst: { host: SERVER_ADDRESS, port: HTTP_PORT } });
    const refused = run("curl", ["-sS", "--max-time", "30", "--socks5-hostname", `${SOCKS_LOGIN}@127.0.0.1:${port}`, `http://${SERVER_ADDRESS}:${CLOSED_PORT}/`]);
    expect(refused.stderr).toMatch(/refused|\(5\)/i); // curl 7 prints the REP code, curl 8 its meaning
    const wrongLogin = run("curl", ["-sS", "--max-time", "30", "--socks5-hostname", `user:wrong@127.0.0.1:${port}`, `http://${NAME}:${HTTP_PORT}/file`]);
    expect(wrongLogin.status).not.toBe(0);
  }, T);

  it("downloads a file intact with curl -x through the HTTP proxy, absolute-URI and CONNECT, by name", async () => {
    const { port } = door(up, "http", "*");
    for (const tunnelFlag of ["", "--proxytunnel"]) {
      const curl = run("sh", ["-c", `curl -sS --max-time 30 ${tunnelFlag} -x http://${SOCKS_LOGIN}@127.0.0.1:${port} http://${NAME}:${HTTP_PORT}/file | sha256sum`]);
      expect(curl.stderr).toBe("");
      expect(curl.stdout.split(" ")[0]).toBe(expectedFileHash());
    }
    const flows = async () => connect.events.filter((event) => event.type === "flow" && event.via === `http 127.0.0.1:${port}` && event.end === "closed" && event.name === NAME);
    for (let i = 0; i < 100 && (await flows()).length < 2; i++) await sleep(50);
    expect((await flows()).length).toBe(2);
    // Up counts the request (the rewritten head of an absolute-URI one), down the whole answer.
    for (const flow of await flows()) {
      expect(flow.up).toBeGreaterThan("GET /file HTTP/1.1\r\n\r\n".length);
      expect(flow.down).toBeGreaterThan(FILE_SIZE);
    }
    // The rewritten head carries a header's bytes as they came, UTF-8 "café" included.
    const probe = run("curl", ["-sS", "--max-time", "30", "-o", "/dev/null", "-D", "-", "-H", "X-Probe: café", "-x", `http://${SOCKS_LOGIN}@127.0.0.1:${port}`, `http://${NAME}:${HTTP_PORT}/file`]);
    expect(probe.stdout).toMatch(/^x-probe-hex: 636166c3a9\r$/m);
    const noLogin = run("curl", ["-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-x", `http://127.0.0.1:${port}`, `http://${NAME}:${HTTP_PORT}/file`]);
    expect(noLogin.stdout).toBe("407");
    const refused = run("curl", ["-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-x", `http://${SOCKS_LOGIN}@127.0.0.1:${port}`, `http://${SERVER_ADDRESS}:${CLOSED_PORT}/`]);
    expect(refused.stdout).toBe("502");
  }, T);

  it("asks the network's DNS server through SOCKS5 UDP ASSOCIATE", async () => {
    const { port } = door(up, "socks5", "*");
    expect(await socksUdpDnsQuery(port, SOCKS_LOGIN, SERVER_ADDRESS, NAME)).toBe(SERVER_ADDRESS);
  }, T);

  it("serves a local HTTP server to curl in the namespace with --reverse tcp: 16 MiB down and up intact, flows logged", async () => {
    const url = `http://${CLIENT_ADDRESS}:${REVERSE_PORT}/`;
    const down = await server.exec("sh", ["-c", `curl -sS --max-time 60 ${url} | sha256sum`], { timeoutMs: 90_000 });
    expect(down.stderr).toBe("");
    expect(down.stdout.split(" ")[0]).toBe(createHash("sha256").update(reverseFile).digest("hex"));
    const upload = join(server.tmpdir, "upload.bin");
    const up16 = await server.exec("sh", ["-c", `head -c ${REVERSE_FILE_SIZE} /dev/urandom > ${upload} && sha256sum < ${upload} && curl -sS --max-time 60 --data-binary @${upload} ${url}`], { timeoutMs: 90_000 });
    expect(up16.stderr).toBe("");
    const [sent, answer] = up16.stdout.trim().split("\n");
    expect(answer).toBe(`${sent!.split(" ")[0]} ${REVERSE_FILE_SIZE}`);
    const localPort = (localHttp.address() as net.AddressInfo).port;
    const flows = async () => connect.events.filter((event) => event.type === "flow" && event.via === `reverse ${CLIENT_ADDRESS}:${REVERSE_PORT}`);
    for (let i = 0; i < 100 && (await flows()).length < 2; i++) await sleep(50);
    const [downFlow, upFlow] = await flows();
    for (const flow of [downFlow, upFlow]) {
      expect(flow).toMatchObject({ peer: pubkey(serverKey), protocol: "tcp", src: { host: SERVER_ADDRESS }, dst: { host: "127.0.0.1", port: localPort }, end: "closed" });
    }
    expect(downFlow.down).toBeGreaterThan(REVERSE_FILE_SIZE);
    expect(upFlow.up).toBeGreaterThan(REVERSE_FILE_SIZE);
  }, T);

  it("resets a connection from the network when the local service refuses (--reverse to a closed port), and logs it", async () => {
    const curl = await server.exec("curl", ["-sS", "--max-time", "30", `http://${CLIENT_ADDRESS}:${REVERSE_CLOSED_PORT}/`]);
    // A RST: to its SYN when our reset comes before the accept went out (curl exit 7,
    // cannot connect), else right after the handshake (exit 56, reset).
    expect([7, 56]).toContain(curl.code);
    expect(curl.stdout).toBe("");
    const flow = await connect.find((event) => event.type === "flow" && event.via === `reverse ${CLIENT_ADDRESS}:${REVERSE_CLOSED_PORT}`);
    expect(flow).toMatchObject({ end: "refused", name: "localhost", src: { host: SERVER_ADDRESS } });
  }, T);

  it("passes a UDP client's datagrams in the namespace to a local UDP service and back with --reverse udp", async () => {
    const script = `const s = require("dgram").createSocket("udp4"); s.on("message", (m) => { console.log(m.toString()); s.close(); });
      s.send("hello 1", ${REVERSE_UDP_PORT}, "${CLIENT_ADDRESS}"); setTimeout(() => process.exit(3), 20000).unref();`;
    const result = await server.exec("node", ["-e", script], { timeoutMs: 30_000 });
    expect(result.stdout.trim()).toBe("echo hello 1");
  }, T);

  it.skipIf(!(postgres && havePsql))("runs psql through a --forward to a real PostgreSQL by name, a 1.3 MB result intact", async () => {
    const { dataDir } = await startPostgres(server, postgres!, SERVER_ADDRESS, "10.0.0.0/24");
    try {
      const { port } = door(up, "tcp", `${NAME}:${POSTGRES_PORT}`);
      const query = "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 40000) i";
      const psql = spawnSync("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-tA", "-c", query], { encoding: "utf8", timeout: 60_000, maxBuffer: 1 << 24 });
      expect(psql.stderr).toBe("");
      let expected = "";
      for (let i = 1; i <= 40000; i++) expected += createHash("md5").update(String(i)).digest("hex");
      expect(psql.stdout).toBe(`${expected}\n`);
      const flow = await connect.find((event) => event.type === "flow" && event.dst.port === POSTGRES_PORT);
      expect(flow).toMatchObject({ name: NAME, via: `forward 127.0.0.1:${port}`, end: "closed" });
      expect(flow.down).toBeGreaterThan(40000 * 32);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, T);

  it.skipIf(!haveNft)("fails a connect answered by ICMP host, net or port unreachable at once, with EHOSTUNREACH, ENETUNREACH or ECONNREFUSED (library)", async () => {
    const tunnel = await connectTunnel(
      clientConfig({ privateKey: libraryKey, address: `${LIBRARY_ADDRESS}/32`, serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, allowedIps: "10.0.0.0/24" }),
      THREADS,
    );
    try {
      for (const [port, code] of [[HOST_UNREACHABLE_PORT, "EHOSTUNREACH"], [NET_UNREACHABLE_PORT, "ENETUNREACH"], [PORT_UNREACHABLE_PORT, "ECONNREFUSED"]] as const) {
        // Were the ICMP error ignored, the SYN would be retried until the timeout: ETIMEDOUT after 30 s.
        const socket = tunnel.connect({ port, host: SERVER_ADDRESS, timeout: 30_000 });
        const [error] = (await once(socket, "error")) as [TunnelError];
        expect(error).toBeInstanceOf(TunnelError);
        expect(error).toMatchObject({ code, syscall: "connect", address: SERVER_ADDRESS, port });
        expect(error.message).toMatch(new RegExp(`^connect ${code} ${SERVER_ADDRESS}:${port}: `));
      }
    } finally {
      await tunnel.close();
    }
  }, T);

  it.skipIf(!haveNft)("resets a local connection whose target answers ICMP host unreachable, and logs it as unreachable", async () => {
    const { port } = door(up, "tcp", `${SERVER_ADDRESS}:${HOST_UNREACHABLE_PORT}`);
    const curl = run("curl", ["-sS", "--max-time", "30", `http://127.0.0.1:${port}/`]);
    expect(curl.status).not.toBe(0);
    const flow = await connect.find((event) => event.type === "flow" && event.dst.port === HOST_UNREACHABLE_PORT);
    expect(flow).toMatchObject({ end: "unreachable", peer: pubkey(serverKey) });
    expect(flow.error).toMatch(/EHOSTUNREACH/);
    const socks = door(up, "socks5", "*");
    const viaSocks = run("curl", ["-sS", "--max-time", "30", "--socks5", `${SOCKS_LOGIN}@127.0.0.1:${socks.port}`, `http://${SERVER_ADDRESS}:${NET_UNREACHABLE_PORT}/`]);
    expect(viaSocks.stderr).toMatch(/network unreachable|\(3\)/i); // REP 3; curl 7 prints the code, curl 8 its meaning
  }, T);

  it("runs curl under connect - --socks5 0 -- (the config from stdin, as a CI secret): curl finds the proxy in ALL_PROXY and downloads the file intact by name", () => {
    const config = clientConfig({ privateKey: execKey, address: `${EXEC_ADDRESS}/32`, serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, dns: SERVER_ADDRESS, allowedIps: "10.0.0.0/24" });
    const args = ["connect", "-", "--socks5", "0", ...THREADS_FLAGS, "--", "curl", "-sS", "--max-time", "30", `http://${NAME}:${HTTP_PORT}/file`];
    const result = spawnSync(RUNTIME_COMMAND[0]!, [...RUNTIME_COMMAND.slice(1), GATEWAY_MAIN, ...args], { input: config, timeout: 60_000, maxBuffer: 4 * FILE_SIZE });
    const stderr = result.stderr.toString();
    expect(result.status).toBe(0);
    // stdout is curl's alone: the file; our log is on stderr.
    expect(createHash("sha256").update(result.stdout).digest("hex")).toBe(expectedFileHash());
    expect(stderr).toMatch(new RegExp(`tcp 127\\.0\\.0\\.1:\\d+ -> ${SERVER_ADDRESS}:${HTTP_PORT} ${NAME} via socks5 127\\.0\\.0\\.1:\\d+ `));
  }, T);

  it("on SIGINT closes every flow, prints the summary and exits 0", async () => {
    expect(await connect.stop()).toBe(0);
    const summary = await connect.find((event) => event.type === "summary");
    expect(summary.tcp).toBeGreaterThanOrEqual(2);
    expect(summary.ends.closed).toBeGreaterThanOrEqual(1);
    expect(summary.udp).toBe(haveDig ? 3 : 2);
    if (haveDig) {
      const { port } = door(up, "udp", `${NAME}:53`);
      const forwarded = await connect.find((event) => event.type === "flow" && event.via === `forward 127.0.0.1:${port}`);
      expect(forwarded).toMatchObject({ protocol: "udp", name: NAME, peer: pubkey(serverKey), dst: { host: SERVER_ADDRESS, port: 53 }, end: "shutdown" });
      expect(forwarded.down).toBeGreaterThan(0);
    }
    const reverseUdp = await connect.find((event) => event.type === "flow" && event.via === `reverse ${CLIENT_ADDRESS}:${REVERSE_UDP_PORT}`);
    expect(reverseUdp).toMatchObject({ peer: pubkey(serverKey), protocol: "udp", src: { host: SERVER_ADDRESS }, dst: { host: "127.0.0.1", port: localUdp.address().port }, up: 7, down: 12, end: "shutdown" });
  }, T);
});

describe("wg-netstack connect's exit codes", () => {
  const command = (...args: string[]) => spawnSync(RUNTIME_COMMAND[0]!, [...RUNTIME_COMMAND.slice(1), GATEWAY_MAIN, "connect", ...args], { encoding: "utf8", timeout: 30_000 });

  it("exits 2 with one line on stderr for a bad flag, a missing file, or a bad config", () => {
    const dir = mkdtempSync(join(tmpdir(), "wgn-connect-bad-"));
    try {
      const bad = join(dir, "bad.conf");
      writeFileSync(bad, "[Interface]\nPrivateKey = nope\n");
      for (const args of [[bad, "--forward", "tcp:80"], [bad, "--frob"], [join(dir, "missing.conf")], [bad], []]) {
        const result = command(...args);
        expect(result.status).toBe(2);
        expect(result.stdout).toBe("");
        expect(result.stderr.trim().split("\n")).toHaveLength(1);
        expect(result.stderr).toMatch(/^wg-netstack: /);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, T);
});
