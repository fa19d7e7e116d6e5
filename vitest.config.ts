import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start servers and child processes on real sockets.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file has its own database; two cores run two files at once.
    maxWorkers: 2,
  },
});
