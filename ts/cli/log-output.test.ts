import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RUNTIME_COMMAND } from "../../test/support/gateway-process.js";
import { lineOutput, type Sink } from "./log-output.js";

/** A sink whose reader takes nothing until `release()`, then everything, `chunk` bytes a write. */
function heldSink(chunk = Number.POSITIVE_INFINITY) {
  const taken: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const decoder = new TextDecoder();
  const sink: Sink = {
    async write(bytes) {
      await released;
      const n = Math.min(bytes.length, chunk);
      taken.push(decoder.decode(bytes.subarray(0, n)));
      return n;
    },
  };
  return { sink, release, text: () => taken.join("") };
}

const ignore = () => {};

describe("lineOutput", () => {
  it("queues lines while the reader is not reading and writes them in order, whole, once it reads", async () => {
    const { sink, release, text } = heldSink(7);
    const output = lineOutput(sink, { onBroken: ignore, onDropped: ignore });
    for (let i = 0; i < 100; i++) output.write(`line ${i}`);
    let drained = false;
    void output.drained().then(() => (drained = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(drained).toBe(false);
    release();
    await output.drained();
    expect(text()).toBe(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
  });

  it("drops the lines past its limit, and says how many once the reader has caught up, after the lines it kept", async () => {
    const { sink, release, text } = heldSink();
    const dropped: number[] = [];
    const output = lineOutput(sink, { onBroken: ignore, onDropped: (lines) => (dropped.push(lines), output.write(`dropped ${lines}`)), limitBytes: 20 });
    for (let i = 0; i < 10; i++) output.write(`line ${i}`); // 7 bytes each: two fit in 20
    release();
    await output.drained();
    expect(dropped).toEqual([8]);
    expect(text()).toBe("line 0\nline 1\ndropped 8\n");
    output.write("after");
    await output.drained();
    expect(dropped).toEqual([8]);
    expect(text().endsWith("dropped 8\nafter\n")).toBe(true);
  });

  it("a reader gone away costs the lines, once: onBroken hears of it, later lines are dropped unsaid", async () => {
    const broken: string[] = [];
    let writes = 0;
    const output = lineOutput(
      {
        async write() {
          writes++;
          throw Object.assign(new Error("broken pipe"), { code: "EPIPE" });
        },
      },
      { onBroken: (error) => broken.push(error.code!), onDropped: () => broken.push("dropped") },
    );
    output.write("one");
    output.write("two");
    await output.drained();
    output.write("three");
    await output.drained();
    expect(broken).toEqual(["EPIPE"]);
    expect(writes).toBe(1);
  });

  it("keeps the process running while a real pipe's reader does not read (the pipe holds 64 KiB; this writes 200 kB)", async () => {
    // A child writes through lineOutput to a pipe we do not read, and says on stderr when its timers run.
    const dir = mkdtempSync(join(tmpdir(), "log-output-"));
    const script = join(dir, "writer.mjs");
    writeFileSync(
      script,
      `import { lineOutput, stdioSink } from ${JSON.stringify(new URL("../../dist/cli/log-output.js", import.meta.url).href)};
      const out = lineOutput(stdioSink(1), { onBroken: () => {}, onDropped: () => {} });
      for (let i = 0; i < 2000; i++) out.write("x".repeat(99));
      process.stderr.write("queued\\n");
      setTimeout(() => process.stderr.write("timers run\\n"), 100);`,
    );
    const child = spawn(RUNTIME_COMMAND[0]!, [...RUNTIME_COMMAND.slice(1), script], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (data) => (stderr += data));
    child.stdout!.pause();
    for (const start = Date.now(); !stderr.includes("timers run") && Date.now() - start < 20_000; ) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stderr).toBe("queued\ntimers run\n");
    let stdout = "";
    child.stdout!.on("data", (data) => (stdout += data)).resume();
    expect(await new Promise((resolve) => child.on("close", resolve))).toBe(0);
    expect(stdout).toBe(`${"x".repeat(99)}\n`.repeat(2000));
    rmSync(dir, { recursive: true });
  }, 30_000);
});
