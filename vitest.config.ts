import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Hang guards, not speed checks: generous, so a busy 2-core machine never trips them.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Many files spend most of their time waiting on sockets and child processes, so three share two cores well.
    maxWorkers: 3,
    // Files share no module state (each has its own servers, databases, metrics registries and Redis key
    // prefixes), so a worker keeps the modules it has loaded instead of importing them again for every file.
    isolate: false,
  },
});
