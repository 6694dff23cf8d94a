// Loaded with `node --import` before a program: when the program exits, churns through
// short-lived objects (a sliding window of them survives, as a server's queued data does)
// and prints the size V8's young generation reached, on stderr:
//   young generation: BYTES
// Left alone, V8 grows that generation under such churn (to 32 MiB in Node 20); a process
// that stopped its growth (ts/cli/young-generation.ts) stays at a few MiB.

import process from "node:process";
import v8 from "node:v8";

process.on("exit", () => {
  let window = [];
  for (let i = 0; i < 2_000_000; i++) {
    window.push({ i, bytes: [i, i] });
    if (window.length > 20_000) window = [];
  }
  const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
  process.stderr.write(`young generation: ${young?.space_size}\n`);
});
