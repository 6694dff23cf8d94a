// `wg-netstack connect CONFIG --stdio %h:%p` as what it is for: a real ssh client's
// ProxyCommand, to a real OpenSSH server behind a wireguard-go server in a namespace. The test
// makes the server's host key and the client's key; MiBs go both ways through ssh intact.
//
//   root ns: ssh ─ProxyCommand stdin/stdout─ wg-netstack connect --stdio ──UDP──▶ namespace: wireguard-go 10.0.0.1/24
//                                                                                 sshd :22, DNS :53 (ssh.test)

import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientConfig, genkey, pubkey } from "../../ts/index.js";
import { GATEWAY_MAIN, RUNTIME_COMMAND, waitForLine } from "../support/gateway-process.js";
import { THREADS_FLAGS } from "../support/threads.js";
import { cleanupStaleNamespaces, interopSkipReason, startWgServer, type WgServer } from "./netns.js";

const SSHD = "/usr/sbin/sshd";
const noSsh = ["ssh", "ssh-keygen"].every((bin) => spawnSync("which", [bin]).status === 0) && existsSync(SSHD) ? undefined : "needs ssh, ssh-keygen and sshd (apt-get install openssh-server)";
// CI installs it (build.mjs's TEST_PKGS): there a skip would hide that the test did not run.
if (noSsh && process.env.CI && !interopSkipReason()) throw new Error(`the ssh interop test must run in CI but cannot: ${noSsh}`);
const skipReason = interopSkipReason() ?? noSsh;
if (skipReason) console.log(`[interop] skipping ssh through connect --stdio: ${skipReason}`);

const T = 120_000;
const SERVER_ADDRESS = "10.0.0.1";
const CLIENT_ADDRESS = "10.0.0.2";
const NAME = "ssh.test";
const SSH_PORT = 22;
const MIB = 1024 * 1024;
const root = fileURLToPath(new URL("../..", import.meta.url));
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Runs `command` with `input` on stdin; resolves with its exit code and output. */
function run(command: string, args: string[], input: Uint8Array | string = ""): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    child.stdin!.on("error", () => {}); // a command that does not read all of it
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin!.end(input);
  });
}

describe.skipIf(skipReason)("ssh with ProxyCommand connect --stdio, to OpenSSH behind wireguard-go", () => {
  const serverKey = genkey();
  const clientKey = genkey();
  let server: WgServer;
  let dir: string;
  /** ssh's own options: our key, the host key we made, no user config, no prompts. */
  let sshOptions: string[];
  /** Where each ProxyCommand writes its process id, to check it is gone once ssh is. */
  let pidFile: string;

  beforeAll(async () => {
    await cleanupStaleNamespaces();
    server = await startWgServer({ privateKey: serverKey, implementation: "current", tunnelAddresses: [`${SERVER_ADDRESS}/24`], peers: [{ publicKey: pubkey(clientKey), allowedIps: [`${CLIENT_ADDRESS}/32`] }] });
    dir = mkdtempSync(join(tmpdir(), "wgn-stdio-ssh-"));
    const keygen = (file: string) => {
      const made = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "wg-netstack test", "-f", file], { encoding: "utf8" });
      if (made.status !== 0) throw new Error(`ssh-keygen: ${made.stderr}`);
      return readFileSync(`${file}.pub`, "utf8").trim();
    };
    const hostKey = keygen(join(dir, "host_key"));
    writeFileSync(join(dir, "authorized_keys"), `${keygen(join(dir, "id_ed25519"))}\n`);
    writeFileSync(join(dir, "known_hosts"), `${NAME},${SERVER_ADDRESS} ${hostKey}\n`);
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `ListenAddress ${SERVER_ADDRESS}:${SSH_PORT}`,
        `HostKey ${join(dir, "host_key")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        `PidFile ${join(dir, "sshd.pid")}`,
      ].join("\n"),
    );
    mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation directory
    const sshd = server.spawn(SSHD, ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "pipe", "pipe"] });
    const dns = server.spawn("node", [join(root, "test/support/dns-server.mjs"), SERVER_ADDRESS, "53", `${NAME}=${SERVER_ADDRESS}`], { stdio: ["ignore", "pipe", "inherit"] });
    const sshdListening = new Promise<void>((resolve, reject) => {
      let log = "";
      sshd.stderr!.on("data", (chunk) => {
        log += chunk;
        if (log.includes("Server listening")) resolve();
      });
      sshd.on("exit", (code) => reject(new Error(`sshd exited with ${code}: ${log}`)));
    });
    await Promise.all([sshdListening, waitForLine(dns, "listening")]);

    const config = join(dir, "wg0.conf");
    writeFileSync(config, clientConfig({ privateKey: clientKey, address: `${CLIENT_ADDRESS}/32`, serverPublicKey: pubkey(serverKey), endpoint: `${server.nsAddress}:${server.listenPort}`, dns: SERVER_ADDRESS, allowedIps: "10.0.0.0/24" }));
    pidFile = join(dir, "proxy.pid");
    // ssh runs it as `/bin/sh -c "exec COMMAND"`; the inner shell notes its pid, then becomes us (paths without spaces or quotes).
    const connect = [...RUNTIME_COMMAND, GATEWAY_MAIN, "connect", config, ...THREADS_FLAGS].join(" ");
    const proxyCommand = `sh -c 'echo $$ > ${pidFile}; exec ${connect} --stdio %h:%p'`;
    sshOptions = [
      "-F", "/dev/null",
      "-i", join(dir, "id_ed25519"),
      "-o", "IdentitiesOnly=yes",
      "-o", "BatchMode=yes",
      "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`,
      "-o", "StrictHostKeyChecking=yes",
      "-o", `ProxyCommand=${proxyCommand}`,
      "-p", String(SSH_PORT),
    ];
  }, T);

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  /** ssh root@HOST COMMAND with `input` on stdin. */
  const ssh = (host: string, command: string, input: Uint8Array | string = "") => run("ssh", [...sshOptions, `root@${host}`, command], input);

  /**
   * True once the last ProxyCommand's process is gone (ssh ends it with SIGHUP, or it ended by
   * itself) and so is sshd's process for that connection (its TCP connection closed or reset,
   * not left waiting for a FIN that will never come).
   */
  async function proxyAndSessionGone(): Promise<boolean> {
    const pid = Number(readFileSync(pidFile, "utf8"));
    const sshdPid = readFileSync(join(dir, "sshd.pid"), "utf8").trim();
    for (let i = 0; i < 100; i++) {
      let alive = spawnSync("pgrep", ["-P", sshdPid]).status === 0;
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        // gone
      }
      if (!alive) return true;
      await sleep(50);
    }
    return false;
  }

  it("runs a remote command through the tunnel, its exit status and output back, and nothing of ours on ssh's stderr", async () => {
    const result = await ssh(SERVER_ADDRESS, "echo hello from $(hostname -I | tr -d ' '); exit 3");
    expect(result.stderr).toBe("");
    expect(result.stdout.toString()).toContain("hello from 10.201.");
    expect(result.code).toBe(3);
    expect(await proxyAndSessionGone()).toBe(true);
  }, T);

  it("uploads 8 MiB through ssh (cat > file, then sha256sum there), to a host given by name (resolved through the tunnel's DNS)", async () => {
    const data = randomBytes(8 * MIB);
    const remote = join(dir, "uploaded");
    const result = await ssh(NAME, `cat > ${remote} && sha256sum ${remote}`, data);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout.toString().split(" ")[0]).toBe(sha256(data));
    expect(sha256(readFileSync(remote))).toBe(sha256(data));
    expect(await proxyAndSessionGone()).toBe(true);
  }, T);

  it("downloads 8 MiB through ssh intact", async () => {
    const data = randomBytes(8 * MIB);
    const remote = join(dir, "to-download");
    writeFileSync(remote, data);
    const result = await ssh(SERVER_ADDRESS, `cat ${remote}`);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBe(data.length);
    expect(sha256(result.stdout)).toBe(sha256(data));
    expect(await proxyAndSessionGone()).toBe(true);
  }, T);
});
