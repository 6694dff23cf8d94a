// The wg-netstack command keeps V8's young generation small (Node), and a plain process
// under the same churn does not: test/support/young-generation-probe.mjs measures both.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const MiB = 1024 * 1024;

/**
 * The young generation's size after the probe's churn, in a node process running `args`. Its
 * ceiling is set (V8 scales the default with the heap limit, which follows the machine's memory:
 * 16 MiB in all under a 1 GiB heap), so a process that lets it grow shows 32 MiB on any machine.
 */
function youngGenerationAfterChurn(args: string[]): number {
  const child = spawnSync(process.execPath, ["--max-semi-space-size=16", "--import", root("test/support/young-generation-probe.mjs"), ...args], { encoding: "utf8" });
  const match = /young generation: (\d+)/.exec(child.stderr);
  if (!match) throw new Error(`no measure from the probe: ${child.stderr}`);
  return Number(match[1]);
}

describe.skipIf("Deno" in globalThis || "Bun" in globalThis)("the young generation (Node)", () => {
  it("grows under churn in a process that leaves it alone", () => {
    expect(youngGenerationAfterChurn(["-e", "0"])).toBeGreaterThan(16 * MiB);
  });

  it("stays small in the wg-netstack command", () => {
    expect(youngGenerationAfterChurn([root("dist/gateway/main.js"), "--help"])).toBeLessThanOrEqual(4 * MiB);
  });
});
