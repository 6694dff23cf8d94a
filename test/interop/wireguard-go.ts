/**
 * The two real WireGuard implementations the interop tests and the real-client benchmark
 * run, as clients and as reference servers:
 *
 * - "debian":  Debian's wireguard-go 0.0.20220316 (apt, see build.mjs). It keeps the
 *              kernel's default 208 KiB UDP receive buffer: the hostile case for a sender
 *              that bursts.
 * - "current": wireguard-go from the Go module proxy at a pinned version, built once with
 *              `go install` into a cache keyed by version. It forces 7 MiB socket buffers
 *              and batches I/O: the fast reference.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export type WireguardGoImplementation = "debian" | "current";
export const WIREGUARD_GO_IMPLEMENTATIONS: WireguardGoImplementation[] = ["debian", "current"];

/** The module has no tags: this pseudo-version is the commit of wireguard-go 0.0.20250522. */
export const CURRENT_WIREGUARD_GO_VERSION = "v0.0.0-20260522210424-ecfc5a8d5446";
const MODULE = "golang.zx2c4.com/wireguard";

/** Where the build of the pinned version lives; reused by every later run. */
export function currentWireguardGoPath(): string {
  return path.join(os.homedir(), ".cache", "wg-netstack", "wireguard-go", CURRENT_WIREGUARD_GO_VERSION, "wireguard-go");
}

/** The `go` command: on PATH, or where the official tarball installs it. */
export function goCommand(): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").filter(Boolean).concat("/usr/local/go/bin");
  for (const dir of dirs) {
    const candidate = path.join(dir, "go");
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Why the current wireguard-go cannot be had here (no build cached and no Go), or undefined. */
export function currentWireguardGoSkipReason(): string | undefined {
  if (fs.existsSync(currentWireguardGoPath()) || goCommand()) return undefined;
  return `needs \`go\` (on PATH or in /usr/local/go/bin) to build ${MODULE}@${CURRENT_WIREGUARD_GO_VERSION}`;
}

let building: Promise<string> | undefined;

/** Path of the current wireguard-go, building it first when the cache does not have it. */
export function ensureCurrentWireguardGo(): Promise<string> {
  building ??= buildCurrentWireguardGo().catch((err) => {
    building = undefined; // let a later call try again
    throw err;
  });
  return building;
}

async function buildCurrentWireguardGo(): Promise<string> {
  const binary = currentWireguardGoPath();
  if (fs.existsSync(binary)) return binary;
  const go = goCommand();
  if (!go) throw new Error(currentWireguardGoSkipReason());
  const dir = path.dirname(binary);
  fs.mkdirSync(dir, { recursive: true });
  // Build into a private directory and rename: a concurrent run never sees half a binary.
  const gobin = fs.mkdtempSync(path.join(dir, "build-"));
  try {
    const env = { ...process.env, GOBIN: gobin, CGO_ENABLED: "0", GOTOOLCHAIN: "local", GOFLAGS: "-buildvcs=false" };
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(go, ["install", `${MODULE}@${CURRENT_WIREGUARD_GO_VERSION}`], { env, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 10 * 60_000);
      child.on("error", (err) => (output += err.message));
      child.on("close", (exitCode) => {
        clearTimeout(timer);
        resolve({ code: exitCode, output });
      });
    });
    if (code !== 0) throw new Error(`go install ${MODULE}@${CURRENT_WIREGUARD_GO_VERSION} failed (${code}):\n${output}`);
    // The module's main package is named after the module: the binary is called "wireguard".
    fs.renameSync(path.join(gobin, "wireguard"), binary);
    return binary;
  } finally {
    fs.rmSync(gobin, { recursive: true, force: true });
  }
}

/** The command that runs this implementation. */
export async function wireguardGoCommand(implementation: WireguardGoImplementation): Promise<string> {
  return implementation === "current" ? ensureCurrentWireguardGo() : "wireguard-go";
}
