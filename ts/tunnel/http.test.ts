// HTTP through the tunnel against the runtime's own: tunnel.fetch / tunnel.dispatcher (npm's
// undici) and tunnel.httpAgent / httpsAgent, each beside what the runtime's fetch and
// http.Agent do against the same servers on 127.0.0.1 (the tunnel server splices 10.0.0.N to
// 127.0.0.N), so what is expected is what a user already gets without the tunnel.

import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
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
const ports = { tlsForAddress: 0, tlsForOtherName: 0, silent: 0 };
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
