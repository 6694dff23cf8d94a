import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One file at a time: the interop tests push real traffic through wireguard-go and
    // must not compete for the two cores with the CPU-bound in-process tests.
    fileParallelism: false,
    testTimeout: 30_000,
  },
});
