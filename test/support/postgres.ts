// A real PostgreSQL server (Debian's `postgresql` binaries) for the client-role interop
// tests, started inside a test's network namespace.

import { spawnSync } from "node:child_process";
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Netns } from "../interop/netns.js";

/** Debian's PostgreSQL server binaries (package `postgresql`), newest version first. */
export function postgresBin(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  return versions.map((version) => join(base, version, "bin")).find((dir) => existsSync(join(dir, "postgres")));
}

/**
 * A real PostgreSQL in the namespace, listening on `address` (a tunnel address there), trusting
 * every client in `trusted` (a CIDR); runs as the `postgres` user (it refuses root). Stopped
 * with the namespace; remove `dataDir` afterwards.
 */
export async function startPostgres(ns: Pick<Netns, "spawn">, bin: string, address: string, trusted: string): Promise<{ dataDir: string }> {
  const user = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const group = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  const [uid, gid] = [Number(user.stdout), Number(group.stdout)];
  const dataDir = mkdtempSync(join(tmpdir(), "wgn-postgres-"));
  chownSync(dataDir, uid, gid);
  const init = spawnSync(join(bin, "initdb"), ["-D", join(dataDir, "data"), "-A", "trust", "-U", "postgres", "--no-sync", "--no-locale", "-E", "UTF8"], { uid, gid, encoding: "utf8", timeout: 60_000 });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  appendFileSync(join(dataDir, "data/pg_hba.conf"), `host all all ${trusted} trust\n`);
  const postgres = ns.spawn(
    "setpriv",
    ["--reuid=postgres", "--regid=postgres", "--init-groups", join(bin, "postgres"), "-D", join(dataDir, "data"), "-c", `listen_addresses=${address}`, "-c", `unix_socket_directories=${dataDir}`, "-c", "fsync=off"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  await new Promise<void>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start: ${log}`)), 30_000);
    postgres.stderr?.on("data", (data) => {
      log += data;
      if (log.includes("ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { dataDir };
}
