// The client role against a real WireGuard server: wireguard-go (Debian's and the current
// one) in a namespace, with the kernel's TCP and an HTTP and a DNS server behind it. From
// the root namespace, only the public API: connectTunnel(), fetch, http.Agent, errors.
//
//   root ns: connectTunnel() ──UDP──▶ 10.201.S.2:51820  namespace S: wireguard-go, 10.0.0.1/24, fd00::1/64
//                               │                        HTTP :8000, DNS :53 (files.test, v6.test, dual.test)
//                               └─UDP──▶ 10.201.B.2:51820  namespace B: wireguard-go, 10.1.0.1/24 (a second [Peer])

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { fileURLToPath } from "node:url";
// The package's file: under Bun the bare name is a built-in whose fetch ignores `dispatcher`.
import { fetch as undiciFetch } from "undici/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig, connectTunnel, genkey, pubkey, type Tunnel, type TunnelError } from "../../ts/index.js";
import { waitForLine } from "../support/gateway-process.js";
import { lcgFileHash, lcgFileSource } from "../support/lcg-file.js";
import { postgresBin, startPostgres } from "../support/postgres.js";
import { CLIENT_TASKS_PATH, cleanupStaleNamespaces, interopSkipReason, startWgServer, type WgServer } from "./netns.js";
import type { WireguardGoImplementation } from "./wireguard-go.js";
import { THREADS } from "../support/threads.js";

const skipReason = interopSkipReason();
if (skipReason) console.log(`[interop] skipping connectTunnel against wireguard-go: ${skipReason}`);

const T = 120_000;
const SERVER_ADDRESS = "10.0.0.1";
const HTTP_PORT = 8000;
const CLOSED_PORT = 8001;
const ECHO_PORT = 7000; // TCP and UDP echo (client-tasks.mjs echo-server), kernel sockets
const BLACKHOLE = "10.0.0.99"; // inside AllowedIPs; wireguard-go has no peer for it and drops it
const NAME = "files.test";
const V6_ADDRESS = "fd00::1";
const V6_NAME = "v6.test"; // AAAA only
const DUAL_NAME = "dual.test"; // A and AAAA
const SECOND_ADDRESS = "10.1.0.1"; // behind the second peer
const UNCOVERED = "10.2.0.1"; // in no peer's AllowedIPs
const FILE_SIZE = 2 * 1024 * 1024;
// The file served: bytes from a fixed LCG, so the test knows its hash. /port answers with
// the client's port as the server sees it, to tell a reused connection from a new one.
const HTTP_SCRIPT = `
${lcgFileSource(FILE_SIZE)}
require("http").createServer((req, res) => res.end(req.url === "/port" ? String(req.socket.remotePort) : file))
  .listen(${HTTP_PORT}, "${SERVER_ADDRESS}", () => console.log("listening"));`;

const HTTPS_PORT = 8443;
const HTTPS_SCRIPT = `
const fs = require("fs"); const [key, cert] = process.argv.slice(1).map((f) => fs.readFileSync(f));
${lcgFileSource(FILE_SIZE)}
require("https").createServer({ key, cert }, (req, res) => res.end(file))
  .listen(${HTTPS_PORT}, "${SERVER_ADDRESS}", () => console.log("listening"));`;

/** A test CA and a certificate it signed for NAME, made with openssl; `ca` is what clients trust. */
function makeCertificate(dir: string): { key: string; cert: string; ca: string } {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    const made = spawnSync("openssl", args, { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`openssl ${args[0]} failed: ${made.stderr}`);
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...newKey, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-subj", "/CN=wg-netstack test CA");
  openssl("req", ...newKey, "-keyout", file("tls.key"), "-out", file("tls.csr"), "-subj", `/CN=${NAME}`);
  writeFileSync(file("ext.cnf"), `subjectAltName=DNS:${NAME}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl("x509", "-req", "-in", file("tls.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("tls.crt"), "-days", "2", "-extfile", file("ext.cnf"));
  return { key: file("tls.key"), cert: file("tls.crt"), ca: file("ca.crt") };
}

/** The runtime running the tests, to run child processes under the same one. */
const runtime = "Deno" in globalThis ? [process.execPath, "run", "-A"] : [process.execPath];

/** Runs `body` (module code with `connectTunnel` and `config` in scope) in a new process of this runtime; returns what it printed. */
function runChild(body: string, config: string, env: NodeJS.ProcessEnv = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "wgn-tunnel-child-"));
  const file = join(dir, "child.mjs");
  writeFileSync(file, `const { connectTunnel } = await import(${JSON.stringify(join(root, "dist/index.js"))});\nconst config = process.argv[2];\n${body}\n`);
  try {
    const child = spawnSync(runtime[0]!, [...runtime.slice(1), file, config], { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env } });
    return `${child.stdout}${child.stderr}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const expectedFileHash = () => lcgFileHash(FILE_SIZE);

const root = fileURLToPath(new URL("../..", import.meta.url));


function get(url: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve(body));
        response.on("error", reject);
      })
      .on("error", reject);
  });
}

async function connectFailure(tunnel: Tunnel, options: { port: number; host: string; timeout?: number }): Promise<TunnelError> {
  return new Promise((resolve, reject) => {
    const socket = tunnel.connect(options);
    socket.once("connect", () => reject(new Error("connected")));
    socket.once("error", (error) => resolve(error as TunnelError));
  });
}

const implementations: WireguardGoImplementation[] = ["debian", "current"];

const postgres = skipReason ? undefined : postgresBin();
if (!skipReason && !postgres) {
  if (process.env.CI) throw new Error("the pg test needs PostgreSQL (Debian package postgresql; node build.mjs --install-deps)");
  console.log("[interop] skipping the pg test: PostgreSQL is not installed (Debian package postgresql)");
}

for (const implementation of implementations) describe.skipIf(skipReason)(`connectTunnel against wireguard-go (${implementation})`, () => {
  const clientKey = skipReason ? "" : genkey();
  const serverKey = skipReason ? "" : genkey();
  const childKey = skipReason ? "" : genkey(); // for new processes, so they leave `tunnel`'s session alone
  const secondKey = skipReason ? "" : genkey();
  let server: WgServer;
  let second: WgServer;
  let tunnel: Tunnel;
  let childConfig: string;
  let certificate: { key: string; cert: string; ca: string };

  beforeAll(async () => {
    await cleanupStaleNamespaces();
    server = await startWgServer({
      privateKey: serverKey,
      implementation,
      tunnelAddresses: [`${SERVER_ADDRESS}/24`, `${V6_ADDRESS}/64`],
      peers: [
        { publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32", "fd00::2/128"] },
        { publicKey: pubkey(childKey), allowedIps: ["10.0.0.3/32"] },
      ],
    });
    second = await startWgServer({ privateKey: secondKey, implementation, tunnelAddresses: [`${SECOND_ADDRESS}/24`], peers: [{ publicKey: pubkey(clientKey), allowedIps: ["10.0.0.2/32"] }] });
    const route = await second.exec("ip", ["route", "add", "10.0.0.2/32", "dev", second.iface]); // answers go back through the tunnel
    if (route.code !== 0) throw new Error(`ip route: ${route.stderr}`);
    const secondEcho = second.spawn("node", [CLIENT_TASKS_PATH, "echo-server", String(ECHO_PORT), "--host", SECOND_ADDRESS], { stdio: ["ignore", "pipe", "inherit"] });
    certificate = makeCertificate(server.tmpdir);
    const web = server.spawn("node", ["-e", HTTP_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
    const secureWeb = server.spawn("node", ["-e", HTTPS_SCRIPT, certificate.key, certificate.cert], { stdio: ["ignore", "pipe", "inherit"] });
    const dns = server.spawn("node", [join(root, "test/support/dns-server.mjs"), SERVER_ADDRESS, "53", `${NAME}=${SERVER_ADDRESS}`, `${V6_NAME}=${V6_ADDRESS}`, `${DUAL_NAME}=${SERVER_ADDRESS}`, `${DUAL_NAME}=${V6_ADDRESS}`], { stdio: ["ignore", "pipe", "inherit"] });
    const echo = server.spawn("node", [CLIENT_TASKS_PATH, "echo-server", String(ECHO_PORT), "--host", "::"], { stdio: ["ignore", "pipe", "inherit"] }); // both families
    await Promise.all([waitForLine(web, "listening"), waitForLine(secureWeb, "listening"), waitForLine(dns, "listening"), waitForLine(echo, "listening"), waitForLine(secondEcho, "listening")]);
    const config = (privateKey: string, address: string) =>
      clientConfig({ privateKey, address, serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, dns: SERVER_ADDRESS, allowedIps: "10.0.0.0/24" });
    childConfig = config(childKey, "10.0.0.3/32");
    const secondPeer = `\n[Peer]\nPublicKey = ${pubkey(secondKey)}\nAllowedIPs = 10.1.0.0/24\nEndpoint = ${second.nsAddress}:${second.listenPort}\n`;
    const ours = clientConfig({ privateKey: clientKey, address: ["10.0.0.2/32", "fd00::2/128"], serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, dns: SERVER_ADDRESS, allowedIps: ["10.0.0.0/24", "fd00::/64"] });
    tunnel = await connectTunnel(ours + secondPeer, THREADS);
  }, T);

  afterAll(async () => {
    await tunnel?.close();
    await server?.close();
    await second?.close();
  }, T);

  it("completes the handshake before it resolves", async () => {
    expect(tunnel.stats().peers[0]!.sinceHandshakeMs).toBeDefined();
    // wireguard-go, the responder, records the handshake when our first data message (the
    // keepalive sent right after) arrives: that may take a moment more.
    let latest = 0;
    for (let i = 0; i < 100 && latest === 0; i++) {
      latest = (await server.wgDump()).peers[0]!.latestHandshake;
      if (latest === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(latest).toBeGreaterThan(0);
  }, T);

  it("fetches a file by name intact, with tunnel.fetch and with undici's fetch and the dispatcher", async () => {
    const url = `http://${NAME}:${HTTP_PORT}/file`;
    const viaTunnel = Buffer.from(await (await tunnel.fetch(url)).arrayBuffer());
    expect(createHash("sha256").update(viaTunnel).digest("hex")).toBe(expectedFileHash());
    const viaDispatcher = Buffer.from(await (await undiciFetch(url, { dispatcher: tunnel.dispatcher })).arrayBuffer());
    expect(createHash("sha256").update(viaDispatcher).digest("hex")).toBe(expectedFileHash());
  }, T);

  it("serves http.get through httpAgent, reusing one socket for two requests", async () => {
    const url = `http://${SERVER_ADDRESS}:${HTTP_PORT}/port`;
    const first = await get(url, tunnel.httpAgent);
    const second = await get(url, tunnel.httpAgent);
    expect(Number(first)).toBeGreaterThan(0);
    expect(second).toBe(first);
  }, T);

  it("serves an http.Server through tunnel.listen that curl inside the namespace reaches", async () => {
    const web = http.createServer((request, response) => response.end(`served ${request.url} to ${request.socket.remoteAddress}`));
    const listener = tunnel.listen(8080, (socket) => web.emit("connection", socket));
    try {
      const curl = await server.exec("curl", ["--silent", "--show-error", "--max-time", "20", "http://10.0.0.2:8080/page"]);
      expect(curl.stderr).toBe("");
      expect(curl.stdout).toBe(`served /page to ${SERVER_ADDRESS}`);
      const closed = await server.exec("curl", ["--silent", "--max-time", "20", "http://10.0.0.2:8081/"]);
      expect(closed.code).toBe(7); // curl: failed to connect (refused)
    } finally {
      listener.close();
      web.close();
    }
  }, T);

  it("exchanges UDP datagrams with a kernel socket behind the server, by name", async () => {
    const udp = tunnel.udp();
    const replies: string[] = [];
    udp.on("message", (message: Buffer, rinfo: { address: string; port: number }) => replies.push(`${message} from ${rinfo.address}:${rinfo.port}`));
    for (let i = 0; i < 5 && replies.length === 0; i++) {
      udp.send("hello over udp", ECHO_PORT, NAME); // UDP may drop: a few tries
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    udp.close();
    expect(replies[0]).toBe(`hello over udp from ${SERVER_ADDRESS}:${ECHO_PORT}`);
  }, T);

  it("goes over IPv6: TCP to a literal, an AAAA name and a name of both with `family`; UDP and ICMPv6 ping", async () => {
    const echoed = async (options: { port: number; host: string; family?: 0 | 4 | 6 }) => {
      const socket = tunnel.connect(options);
      await once(socket, "connect");
      const where = `${socket.remoteAddress} ${socket.remoteFamily} from ${socket.localAddress}`;
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.end("over v6");
      await once(socket, "close");
      return `${Buffer.concat(chunks)} ${where}`;
    };
    expect(await echoed({ port: ECHO_PORT, host: V6_ADDRESS })).toBe(`over v6 ${V6_ADDRESS} IPv6 from fd00::2`);
    expect(await echoed({ port: ECHO_PORT, host: V6_NAME })).toBe(`over v6 ${V6_ADDRESS} IPv6 from fd00::2`);
    expect(await echoed({ port: ECHO_PORT, host: DUAL_NAME, family: 6 })).toBe(`over v6 ${V6_ADDRESS} IPv6 from fd00::2`);
    expect(await echoed({ port: ECHO_PORT, host: DUAL_NAME })).toBe(`over v6 ${SERVER_ADDRESS} IPv4 from 10.0.0.2`); // IPv4 first, as dns.lookup
    const udp = tunnel.udp();
    const replies: string[] = [];
    udp.on("message", (message: Buffer, rinfo: { address: string; family: string; port: number }) => replies.push(`${message} from ${rinfo.address} ${rinfo.family}`));
    for (let i = 0; i < 5 && replies.length === 0; i++) {
      udp.send("udp over v6", ECHO_PORT, V6_NAME); // UDP may drop: a few tries
      await Promise.race([once(udp, "message"), new Promise((resolve) => setTimeout(resolve, 500))]);
    }
    udp.close();
    expect(replies[0]).toBe(`udp over v6 from ${V6_ADDRESS} IPv6`);
    expect(await tunnel.ping(V6_ADDRESS)).toBeGreaterThanOrEqual(0);
  }, T);

  it("routes to the right one of two peers, and fails an address no peer covers at once with ENETUNREACH", async () => {
    const socket = tunnel.connect(ECHO_PORT, SECOND_ADDRESS);
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("connect", () => socket.end("second peer"));
    await once(socket, "close");
    expect(Buffer.concat(chunks).toString()).toBe("second peer");
    expect((await second.wgDump()).peers[0]!.rxBytes).toBeGreaterThan(0); // it came through the second wireguard-go
    const started = Date.now();
    expect(await connectFailure(tunnel, { port: ECHO_PORT, host: UNCOVERED, timeout: 10_000 })).toMatchObject({ code: "ENETUNREACH", address: UNCOVERED });
    await expect(tunnel.ping(UNCOVERED)).rejects.toMatchObject({ code: "ENETUNREACH" });
    const udp = tunnel.udp();
    const udpError = await new Promise<Error | null>((resolve) => udp.send("x", ECHO_PORT, UNCOVERED, resolve));
    udp.close();
    expect(udpError).toMatchObject({ code: "ENETUNREACH" });
    expect(Date.now() - started).toBeLessThan(3_000); // at once: far from the connect's 10 s
  }, T);

  it("pings the server's kernel by name, and times out on a blackholed address", async () => {
    expect(await tunnel.ping(NAME)).toBeGreaterThanOrEqual(0);
    await expect(tunnel.ping(BLACKHOLE, { timeout: 1000 })).rejects.toMatchObject({ code: "ETIMEDOUT" });
  }, T);

  it("fails a closed port with ECONNREFUSED and a blackholed address with ETIMEDOUT", async () => {
    expect(await connectFailure(tunnel, { port: CLOSED_PORT, host: SERVER_ADDRESS })).toMatchObject({ code: "ECONNREFUSED", port: CLOSED_PORT });
    const started = Date.now();
    expect(await connectFailure(tunnel, { port: 80, host: BLACKHOLE, timeout: 1000 })).toMatchObject({ code: "ETIMEDOUT", address: BLACKHOLE });
    expect(Date.now() - started).toBeLessThan(10_000); // only catches a hang; the timeout is 1 s
  }, T);

  it("hears the kernel's ICMP port unreachable: ECONNREFUSED on a connected UDP socket, and from a DNS server with nothing on port 53 at once", async () => {
    const udp = tunnel.udp();
    udp.connect(CLOSED_PORT, SERVER_ADDRESS);
    await once(udp, "connect");
    const errors: Error[] = [];
    udp.on("error", (error: Error) => errors.push(error));
    for (let i = 0; i < 5 && errors.length === 0; i++) {
      udp.send("anyone there?"); // UDP may drop: a few tries
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    udp.close();
    expect(errors[0]).toMatchObject({ code: "ECONNREFUSED", syscall: "recvmsg", address: SERVER_ADDRESS, port: CLOSED_PORT });

    // A tunnel whose DNS server is an address of the server's where nothing listens on port 53:
    // refused at once (without the ICMP error: two tries 2 s apart, then ETIMEDOUT).
    const deadDns = "10.0.0.54";
    const added = await server.exec("ip", ["address", "add", `${deadDns}/32`, "dev", server.iface]);
    expect(added.stderr).toBe("");
    const endpoint = `${server.nsAddress}:${server.listenPort}`;
    const dead = await connectTunnel(clientConfig({ privateKey: childKey, address: "10.0.0.3/32", serverPublicKey: pubkey(serverKey), endpoint, dns: deadDns, allowedIps: "10.0.0.0/24" }), THREADS);
    try {
      const failure = await dead.resolve(NAME).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "ECONNREFUSED", address: deadDns });
    } finally {
      await dead.close();
    }
  }, T);

  // Once is enough (the socket is the same either way): with Debian's wireguard-go.
  it.skipIf(!postgres || implementation !== "debian")("runs a query with pg over tunnel.socket() (pg's stream option), by name, a 1.3 MB result intact", async () => {
    const { dataDir } = await startPostgres(server, postgres!, SERVER_ADDRESS, "10.0.0.0/24");
    try {
      const client = new pg.Client({ stream: () => tunnel.socket() as never, host: NAME, port: 5432, user: "postgres", database: "postgres" });
      await client.connect();
      const result = await client.query("SELECT s, md5(s) AS digest FROM (SELECT string_agg(md5(i::text), '') AS s FROM generate_series(1, 40000) i) t");
      const { s, digest } = result.rows[0] as { s: string; digest: string };
      expect(s.length).toBe(40000 * 32);
      expect(createHash("md5").update(s).digest("hex")).toBe(digest);
      await client.end();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, T);

  it("fetches over https: TLS through the tunnel, checked against the runtime's CAs and NODE_EXTRA_CA_CERTS", async () => {
    const url = `https://${NAME}:${HTTPS_PORT}/file`;
    const fetchHash = `const tunnel = await connectTunnel(config, ${JSON.stringify(THREADS)});
      try { const body = await (await tunnel.fetch(${JSON.stringify(url)})).arrayBuffer();
        console.log("sha256", (await import("node:crypto")).createHash("sha256").update(Buffer.from(body)).digest("hex"));
      } catch (error) { console.log("failed", error.cause?.code ?? error.code ?? error.message); }
      await tunnel.close();`;
    // Each runtime's own way to add a CA: Node's and Bun's NODE_EXTRA_CA_CERTS, Deno's DENO_CERT.
    const caVariable = "Deno" in globalThis ? "DENO_CERT" : "NODE_EXTRA_CA_CERTS";
    expect(runChild(fetchHash, childConfig, { [caVariable]: certificate.ca })).toContain(`sha256 ${expectedFileHash()}`);
    // Without the CA the certificate is refused, as the runtime's own fetch refuses it.
    expect(runChild(fetchHash, childConfig, { [caVariable]: "" })).toMatch(/failed (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/);

    // https.get with the https agent, the CA given per request.
    const body = await new Promise<Buffer>((resolve, reject) => {
      https
        .get(url, { agent: tunnel.httpsAgent, ca: readFileSync(certificate.ca) }, (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => resolve(Buffer.concat(chunks)));
        })
        .on("error", reject);
    });
    expect(createHash("sha256").update(body).digest("hex")).toBe(expectedFileHash());
  }, T);

  it("connects again and again with the same key from new processes (handshake timestamps follow the wall clock)", async () => {
    // Each child is a new process with a new engine: wireguard-go drops a handshake whose
    // TAI64N timestamp is not newer than the last one it took from this key (whitepaper 5.4.2).
    const body = `const tunnel = await connectTunnel(config, { ...${JSON.stringify(THREADS)}, handshakeTimeout: 10000 });
      const response = await tunnel.fetch("http://${SERVER_ADDRESS}:${HTTP_PORT}/port");
      console.log("up", response.status);
      await tunnel.close();`;
    for (let i = 0; i < 3; i++) expect(runChild(body, childConfig)).toContain("up 200");
  }, T);
});
