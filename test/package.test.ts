// The package as users import it: by name, from the repo root and from a project
// whose node_modules/wg-netstack links to the repo (needs `node build.mjs` first).

import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const program = `
import { startServer, genkey, pubkey } from "wg-netstack";
const key = genkey();
const server = await startServer({ privateKey: key, host: "127.0.0.1", port: 0, peers: [{ publicKey: pubkey(genkey()) }] });
console.log(JSON.stringify({ port: server.address.port, pub: pubkey(key) === server.publicKey }));
await server.close();
`;

function run(dir: string): { port: number; pub: boolean } {
  writeFileSync(join(dir, "use-it.mjs"), program);
  return JSON.parse(execFileSync(process.execPath, [join(dir, "use-it.mjs")], { cwd: dir, encoding: "utf8", timeout: 20_000 }));
}

describe("importing wg-netstack", () => {
  it("works from the repo root by package name", () => {
    const dir = mkdtempSync(join(root, "test", ".import-"));
    try {
      const result = run(dir);
      expect(result.port).toBeGreaterThan(0);
      expect(result.pub).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("works from a project whose node_modules/wg-netstack links to the repo", () => {
    const dir = mkdtempSync(join(tmpdir(), "wg-netstack-user-"));
    try {
      mkdirSync(join(dir, "node_modules"));
      symlinkSync(root, join(dir, "node_modules", "wg-netstack"), "dir");
      writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
      const result = run(dir);
      expect(result.port).toBeGreaterThan(0);
      expect(result.pub).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
