// HTTP through the tunnel against the runtime's own: tunnel.fetch / tunnel.dispatcher (npm's
// undici) and tunnel.httpAgent / httpsAgent, each beside what the runtime's fetch and
// http.Agent do against the same servers on 127.0.0.1 (the tunnel server splices 10.0.0.N to
// 127.0.0.N), so what is expected is what a user already gets without the tunnel.

import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig, genkey, pubkey } from "../index.js";
import { splice } from "../splice.js";
import { startLoopbackTunnel } from "../../test/support/loopback-tunnel.js";
import { THREADS } from "../../test/support/threads.js";

const T = 60_000;
const THROUGH = "10.0.0.1"; // spliced to 127.0.0.1
const RUNTIME = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
const root = fileURLToPath(new URL("../..", import.meta.url));

let stacks: Awaited<ReturnType<typeof startLoopbackTunnel>>;
const servers: net.Server[] = [];
let dir: string;
const certs = { ca: "", ipKey: "", ipCert: "", otherKey: "", otherCert: "" };
const ports = { tlsForAddress: 0, tlsForOtherName: 0, silent: 0, web: 0 };
/** Connections the web servers hold open now. */
const webOpen = new Set<net.Socket>();
/** Requests the web servers have seen (their handler has started). */
let requestsSeen = 0;
/** Responses held back by /hang and /partial, to let go at the end of a check. */
const held: (() => void)[] = [];
const BIG_SIZE = 32 * 1024 * 1024;
/** Bytes /big has handed to its socket so far. */
let bigWritten = 0;
/** Connections the silent server holds open now. */
const silentOpen = new Set<net.Socket>();

async function listen<S extends net.Server>(server: S, host = "127.0.0.1", port = 0): Promise<number> {
  servers.push(server);
  server.listen(port, host);
  await once(server, "listening");
  return (server.address() as net.AddressInfo).port;
}

/** A test CA, and two certificates it signed: one for our servers' addresses (IP SANs), one for `localhost` only. */
function makeCertificates(): void {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    const made = spawnSync("openssl", args, { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`openssl ${args[0]} failed: ${made.stderr}`);
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...newKey, "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-subj", "/CN=wg-netstack http test CA");
  for (const [name, san] of [["ip", `IP:127.0.0.1,IP:${THROUGH}`], ["other", "DNS:localhost"]] as const) {
    openssl("req", ...newKey, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${name}`);
    writeFileSync(file(`${name}.cnf`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    openssl("x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file(`${name}.crt`), "-days", "2", "-extfile", file(`${name}.cnf`));
  }
  Object.assign(certs, { ca: file("ca.crt"), ipKey: file("ip.key"), ipCert: file("ip.crt"), otherKey: file("other.key"), otherCert: file("other.crt") });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "wgn-http-"));
  makeCertificates();
  const tlsServer = (key: string, cert: string) =>
    https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_request, response) => response.end("secret"));
  ports.tlsForAddress = await listen(tlsServer(certs.ipKey, certs.ipCert));
  ports.tlsForOtherName = await listen(tlsServer(certs.otherKey, certs.otherCert));
  for (const host of ["127.0.0.1", "127.0.0.3"]) ports.web = await listen(webServer(), host, ports.web);
  // Takes connections, reads, and never says a word (no ServerHello); closes once the client did.
  ports.silent = await listen(
    net.createServer((socket) => {
      silentOpen.add(socket.on("error", () => {}).resume());
      socket.on("close", () => silentOpen.delete(socket));
    }),
  );
  stacks = await startLoopbackTunnel({
    onTcp: async (connection) => {
      const upstream = net.connect({ host: `127.0.0.${connection.local.host.split(".")[3]}`, port: connection.local.port, allowHalfOpen: true });
      try {
        await once(upstream, "connect");
      } catch {
        return connection.refuse();
      }
      await connection.accept();
      await splice(connection, upstream);
    },
  });
}, T);

afterAll(async () => {
  await stacks?.close();
  for (const server of servers) server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The web server the checks talk to, on 127.0.0.1 and 127.0.0.3 (10.0.0.3 through the tunnel). */
function webServer(): http.Server {
  const server = http.createServer((request, response) => {
    requestsSeen++;
    const url = new URL(request.url!, "http://any");
    switch (url.pathname) {
      case "/port": // tells a reused connection from a new one
        return void response.end(String(request.socket.remotePort));
      case "/where":
        return void response.end(`${request.headers.host} ${request.method}`);
      case "/redirect":
        response.writeHead(302, { location: url.searchParams.get("to")! });
        return void response.end();
      case "/hang": // the head never comes until let go
        return void held.push(() => response.end());
      case "/partial": // a head and part of the body, then nothing until let go
        response.writeHead(200, { "content-length": "2000" });
        response.write(Buffer.alloc(1000, 97));
        return void held.push(() => response.end(Buffer.alloc(1000, 97)));
      case "/reset": // a head and part of the body, then a reset once it is out
        response.writeHead(200, { "content-length": "2000" });
        return void response.write(Buffer.alloc(1000, 97), () => setTimeout(() => request.socket.resetAndDestroy(), 20));
      case "/empty": // HEAD, 204 or 304 as asked
        response.writeHead(Number(url.searchParams.get("status") ?? 200), { "content-length": "5" });
        return void response.end(request.method === "HEAD" || url.searchParams.has("status") ? undefined : "12345");
      case "/close-when-idle": // answers keep-alive, then closes once idle, as a server past its keep-alive timeout
        response.end(String(request.socket.remotePort), () => setTimeout(() => request.socket.end(), 100));
        return;
      case "/upload": {
        const hash = createHash("sha256");
        let length = 0;
        request.on("data", (chunk: Buffer) => {
          hash.update(chunk);
          length += chunk.length;
        });
        return void request.on("end", () => response.end(`${length} ${hash.digest("hex")}`));
      }
      case "/big": {
        bigWritten = 0;
        const chunk = Buffer.alloc(64 * 1024, 98);
        response.writeHead(200, { "content-length": String(BIG_SIZE) });
        const pump = () => {
          while (bigWritten < BIG_SIZE) {
            bigWritten += chunk.length;
            if (!response.write(chunk)) return void response.once("drain", pump);
          }
          response.end();
        };
        return pump();
      }
    }
    response.statusCode = 404;
    response.end();
  });
  server.on("connection", (socket) => {
    webOpen.add(socket);
    socket.on("close", () => webOpen.delete(socket));
  });
  return server;
}

/** What `fetch` gives for `url`: "status body", or the code of the cause it failed with. */
const OUTCOME = `async (fetch, url) => {
  try {
    const response = await fetch(url);
    return response.status + " " + (await response.text());
  } catch (error) {
    return "failed " + (error.cause?.code ?? error.code ?? error.message);
  }
}`;

/**
 * Runs `body` in a new process of this runtime that trusts the test CA the runtime's way
 * (NODE_EXTRA_CA_CERTS, Deno's DENO_CERT) and has `tunnel` joined to our server, and returns
 * what it printed. The child imports the built package (dist/, `node build.mjs`).
 */
async function inChild(body: string): Promise<string> {
  const key = genkey();
  const address = "10.0.0.9";
  stacks.server.addPeer({ publicKey: pubkey(key), allowedIps: [`${address}/32`] });
  const config = clientConfig({ privateKey: key, address: `${address}/32`, serverPublicKey: stacks.server.publicKey, endpoint: `127.0.0.1:${stacks.server.address.port}`, allowedIps: "10.0.0.0/24" });
  const file = join(dir, "child.mjs");
  writeFileSync(
    file,
    `const { connectTunnel } = await import(${JSON.stringify(join(root, "dist/index.js"))});
const outcome = ${OUTCOME};
const tunnel = await connectTunnel(${JSON.stringify(config)}, ${JSON.stringify(THREADS)});
try {
${body}
} finally {
  await tunnel.close();
}
`,
  );
  const command = RUNTIME === "deno" ? [process.execPath, "run", "-A", file] : [process.execPath, file];
  const caVariable = RUNTIME === "deno" ? "DENO_CERT" : "NODE_EXTRA_CA_CERTS";
  try {
    // Not spawnSync: our server answers the child's tunnel from this process's event loop.
    return await new Promise((resolve, reject) =>
      execFile(command[0]!, command.slice(1), { encoding: "utf8", timeout: T, env: { ...process.env, [caVariable]: certs.ca } }, (error, stdout, stderr) =>
        error ? reject(new Error(`child failed: ${error.message}\n${stdout}${stderr}`)) : resolve(stdout),
      ),
    );
  } finally {
    stacks.server.removePeer(pubkey(key));
  }
}

describe("https: the certificate checked as the runtime's fetch checks it", () => {
  it(
    "to an IP address: a certificate for that address is taken, one for another name refused (ERR_TLS_CERT_ALTNAME_INVALID)",
    async () => {
      const urls = (host: string) => [`https://${host}:${ports.tlsForAddress}/`, `https://${host}:${ports.tlsForOtherName}/`];
      const expected = ["200 secret", "failed ERR_TLS_CERT_ALTNAME_INVALID"];
      // Node's own fetch is the reference (Deno's and Bun's say it in their own words).
      const runtimeLine = RUNTIME === "node" ? `for (const url of ${JSON.stringify(urls("127.0.0.1"))}) console.log("runtime", await outcome(fetch, url));` : "";
      const printed = await inChild(`${runtimeLine}
for (const url of ${JSON.stringify(urls(THROUGH))}) console.log("tunnel", await outcome((u) => tunnel.fetch(u), url));`);
      const lines = printed.trim().split("\n");
      if (RUNTIME === "node") expect(lines.filter((line) => line.startsWith("runtime "))).toEqual(expected.map((outcome) => `runtime ${outcome}`));
      expect(lines.filter((line) => line.startsWith("tunnel "))).toEqual(expected.map((outcome) => `tunnel ${outcome}`));
    },
    T,
  );
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("connecting", () => {
  it(
    "gives up on a TLS handshake the server never answers as the runtime's fetch does: UND_ERR_CONNECT_TIMEOUT (undici's 10 s), the socket closed",
    async () => {
      const sides = [{ name: "tunnel", fetch: (url: string, init: RequestInit) => stacks.tunnel.fetch(url, init), host: THROUGH }];
      // Node's own fetch is the reference; Deno's and Bun's are not undici.
      if (RUNTIME === "node") sides.push({ name: "runtime", fetch: (url: string, init: RequestInit) => fetch(url, init), host: "127.0.0.1" });
      for (const { name, fetch, host } of sides) {
        // The user's signal only bounds the test: the connect must end first.
        const failure = await fetch(`https://${host}:${ports.silent}/`, { signal: AbortSignal.timeout(30_000) }).catch((error: Error) => error);
        expect([name, failure]).toMatchObject([name, { name: "TypeError", message: "fetch failed", cause: { code: "UND_ERR_CONNECT_TIMEOUT" } }]);
        await until(() => silentOpen.size === 0);
        expect([name, silentOpen.size]).toEqual([name, 0]);
      }
    },
    T,
  );
});

/** The runtime's own fetch and http.Agent on 127.0.0.N, or the tunnel's on 10.0.0.N: the same servers. */
interface Side {
  name: "runtime" | "tunnel";
  /** The web server's origin, and the same server by another address (another host). */
  origin: string;
  otherOrigin: string;
  fetch(url: string, init?: RequestInit): Promise<Response>;
  agent: http.Agent;
}

function sides(): Side[] {
  return [
    { name: "runtime", origin: `http://127.0.0.1:${ports.web}`, otherOrigin: `http://127.0.0.3:${ports.web}`, fetch: (url, init) => fetch(url, init), agent: new http.Agent({ keepAlive: true }) },
    { name: "tunnel", origin: `http://${THROUGH}:${ports.web}`, otherOrigin: `http://10.0.0.3:${ports.web}`, fetch: (url, init) => stacks.tunnel.fetch(url, init), agent: stacks.tunnel.httpAgent },
  ];
}

/**
 * Runs `check` with the runtime's fetch and agent and with the tunnel's; a failure names the
 * side. `runtimeDiffers` names runtimes whose own fetch or agent does otherwise (Node's is the
 * one expected), and how: there only the tunnel is checked.
 */
function onBoth(name: string, check: (side: Side) => Promise<void>, runtimeDiffers: Partial<Record<"bun" | "deno", string>> = {}): void {
  it(
    name,
    async () => {
      for (const side of sides()) {
        const differs = side.name === "runtime" ? runtimeDiffers[RUNTIME as "bun" | "deno"] : undefined;
        if (differs) {
          console.log(`${name}: ${RUNTIME}'s own not checked: ${differs}`);
          continue;
        }
        try {
          await check(side);
        } catch (error) {
          throw new Error(`${side.name}: ${(error as Error).message}`, { cause: error });
        } finally {
          for (const release of held.splice(0)) release();
          if (side.name === "runtime") side.agent.destroy();
        }
      }
    },
    T,
  );
}

/** http.request through `agent`: "status body", or the error's code. */
function request(agent: http.Agent, url: string, { method = "GET" } = {}): Promise<string> {
  return new Promise((resolve) => {
    http
      .request(url, { agent, method }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve(`${response.statusCode} ${body}`));
        response.on("error", (error: NodeJS.ErrnoException) => resolve(`response failed ${error.code}`));
      })
      .on("error", (error: NodeJS.ErrnoException) => resolve(`failed ${error.code}`))
      .end();
  });
}

/** Waits until the tunnel holds no more connections than `count` (a bound that only catches a leak). */
async function tunnelConnectionsDropTo(count: number): Promise<number> {
  await until(() => stacks.tunnel.stats().connections <= count);
  return stacks.tunnel.stats().connections;
}

describe("tunnel.fetch and tunnel.httpAgent beside the runtime's fetch and http.Agent", () => {
  onBoth("aborting before the connect or while the head is awaited: AbortError, and the tunnel's socket is closed", async ({ name, origin, fetch, agent }) => {
    const before = stacks.tunnel.stats().connections;
    const early = new AbortController();
    const dialing = fetch(`${origin}/port`, { signal: early.signal });
    early.abort();
    await expect(dialing).rejects.toMatchObject({ name: "AbortError" });
    await expect(fetch(`${origin}/port`, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: "AbortError" });

    const waiting = new AbortController();
    const seen = requestsSeen;
    const head = fetch(`${origin}/hang`, { signal: waiting.signal });
    await until(() => requestsSeen > seen);
    waiting.abort();
    await expect(head).rejects.toMatchObject({ name: "AbortError" });

    const viaAgent = new AbortController();
    const agentSeen = requestsSeen;
    const failed = new Promise<Error>((resolve) => http.get(`${origin}/hang`, { agent, signal: viaAgent.signal }).on("error", resolve));
    await until(() => requestsSeen > agentSeen);
    viaAgent.abort();
    expect(await failed).toMatchObject({ name: "AbortError", code: "ABORT_ERR" });
    if (name === "tunnel") expect(await tunnelConnectionsDropTo(before)).toBeLessThanOrEqual(before);
  });

  // npm's undici on Deno never errors a body it has started (it asks node:stream's isReadable,
  // which on Deno answers null for a web stream): the read would hang.
  it.skipIf(RUNTIME === "deno")(
    "aborting in the middle of the body: the read fails with AbortError, and the tunnel's socket is closed",
    async () => {
      for (const { name, origin, fetch } of sides()) {
        const before = stacks.tunnel.stats().connections;
        const controller = new AbortController();
        const response = await fetch(`${origin}/partial`, { signal: controller.signal });
        const reader = response.body!.getReader();
        expect((await reader.read()).value?.length).toBeGreaterThan(0);
        controller.abort();
        await expect(reader.read()).rejects.toMatchObject({ name: "AbortError" });
        for (const release of held.splice(0)) release();
        if (name === "tunnel") expect(await tunnelConnectionsDropTo(before)).toBeLessThanOrEqual(before);
      }
    },
    T,
  );

  onBoth(
    "a reset in the middle of the body: fetch's read fails with TypeError \"terminated\", cause ECONNRESET; http.Agent's request with ECONNRESET",
    async ({ name, origin, fetch, agent }) => {
      // Deno: npm's undici leaves the body hanging there, as above; Bun's own fetch says it its way.
      if (!(RUNTIME === "deno" || (RUNTIME === "bun" && name === "runtime"))) {
        const response = await fetch(`${origin}/reset`);
        expect(await response.arrayBuffer().catch((error: Error) => error)).toMatchObject({ name: "TypeError", message: "terminated", cause: { code: "ECONNRESET" } });
      }
      expect(await request(agent, `${origin}/reset`)).toBe("failed ECONNRESET");
    },
  );

  onBoth("sends a streaming request body (ReadableStream, duplex: 'half') of 4 MiB intact", async ({ origin, fetch }) => {
    const data = Buffer.alloc(4 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= data.length) return controller.close();
        controller.enqueue(new Uint8Array(data.subarray(at, at + 100_000)));
        at += 100_000;
      },
    });
    const response = await fetch(`${origin}/upload`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(await response.text()).toBe(`${data.length} ${createHash("sha256").update(data).digest("hex")}`);
  });

  onBoth(
    "follows redirects, to another host through the tunnel too, and hands a 302 back with redirect: 'manual'",
    async ({ origin, otherOrigin, fetch }) => {
      const same = await fetch(`${origin}/redirect?to=/where`);
      expect([same.status, same.redirected, same.url, await same.text()]).toEqual([200, true, `${origin}/where`, `${new URL(origin).host} GET`]);
      const other = await fetch(`${origin}/redirect?to=${otherOrigin}/where`);
      expect([other.status, other.redirected, other.url, await other.text()]).toEqual([200, true, `${otherOrigin}/where`, `${new URL(otherOrigin).host} GET`]);
      const manual = await fetch(`${origin}/redirect?to=/where`, { redirect: "manual" });
      expect([manual.status, manual.redirected, manual.headers.get("location"), await manual.text()]).toEqual([302, false, "/where", ""]);
    },
  );

  onBoth("keeps a connection alive and reuses it, and a kept connection the server closed while idle costs the next request nothing", async ({ origin, fetch, agent }) => {
    // undici may open a second connection for a request right after the first (its first is
    // not free again yet), then reuses them.
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push(await (await fetch(`${origin}/port`)).text());
    for (let i = 0; i < 5; i++) seen.push(await request(agent, `${origin}/port`));
    expect(new Set(seen).size).toBeLessThan(10);
    // The server closes the connection once idle, as one past its keep-alive timeout does.
    const serverClosed = (port: string) => until(() => ![...webOpen].some((socket) => String(socket.remotePort) === port));
    const kept = await request(agent, `${origin}/close-when-idle`);
    await serverClosed(kept.slice(4));
    expect(await request(agent, `${origin}/port`)).toMatch(/^200 \d+$/);
    const fetched = await (await fetch(`${origin}/close-when-idle`)).text();
    await serverClosed(fetched);
    const next = await fetch(`${origin}/port`);
    expect([next.status, await next.text()]).toEqual([200, expect.stringMatching(/^\d+$/)]);
  });

  onBoth("HEAD, 204 and 304 come without a body, and the connection serves the next request", async ({ origin, fetch, agent }) => {
    for (const [path, method] of [["/empty", "HEAD"], ["/empty?status=204", "GET"], ["/empty?status=304", "GET"]] as const) {
      const response = await fetch(`${origin}${path}`, { method });
      expect([path, await response.text()]).toEqual([path, ""]);
      expect(await request(agent, `${origin}${path}`, { method })).toMatch(/^(200|204|304) $/);
    }
    expect(await (await fetch(`${origin}/where`)).text()).toMatch(/ GET$/);
    expect(await request(agent, `${origin}/where`)).toMatch(/^200 .* GET$/);
  });

  onBoth("holds the server back while the body is not read (no unbounded buffering), then delivers all of it", async ({ origin, fetch }) => {
    const response = await fetch(`${origin}/big`);
    const reader = response.body!.getReader();
    let received = (await reader.read()).value!.length;
    // The server's writes stop completing: wait until they stop moving.
    let last = -1;
    for (let i = 0; i < 100 && bigWritten !== last; i++) {
      last = bigWritten;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(bigWritten).toBeLessThan(BIG_SIZE);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
    }
    expect(received).toBe(BIG_SIZE);
  });

  onBoth("runs 50 fetches at once", async ({ origin, fetch }) => {
    const bodies = await Promise.all(Array.from({ length: 50 }, () => fetch(`${origin}/where`).then((response) => response.text())));
    expect(new Set(bodies)).toEqual(new Set([`${new URL(origin).host} GET`]));
  });
});
