/**
 * `npm run bench:profile`: the compiled service under one benchmark load, with
 * V8's CPU profiler on (node --cpu-prof), and the profile summarized.
 *
 *   npm run bench:profile -- --scenario grpc-get --seconds 10
 *
 * Scenarios: grpc-get, json-get, mint, list, rest-get. The profile is written under
 * bench/results/profiles/ (open it in Chrome DevTools or speedscope).
 */
import { execFileSync } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startBenchService } from "./lib/bench-service.js";
import { ensureH2load } from "./lib/h2load.js";
import { isScenario, SCENARIOS, serviceLoads } from "./lib/scenarios.js";

const { values: args } = parseArgs({
  options: {
    scenario: { type: "string", default: "grpc-get" },
    seconds: { type: "string", default: "10" },
  },
});
const dir = resolve("bench/results/profiles");
await mkdir(dir, { recursive: true });
const before = new Set(await readdir(dir));
ensureH2load();
const bench = await startBenchService(["--cpu-prof", `--cpu-prof-dir=${dir}`]);
try {
  if (!isScenario(args.scenario)) throw new Error(`unknown scenario ${args.scenario}: one of ${SCENARIOS.join(", ")}`);
  const result = await serviceLoads(bench, Number(args.seconds))[args.scenario]();
  process.stdout.write(`${args.scenario}: ${Math.round(result.rps)} req/s, ${result.failed} failed\n`);
} finally {
  // The profile is written when the process exits.
  await bench.stop();
}
const written = (await readdir(dir)).filter((f) => !before.has(f));
for (const file of written) {
  process.stdout.write(`\n${join(dir, file)}\n`);
  if (file.endsWith(".cpuprofile")) {
    execFileSync(process.execPath, ["--import", "tsx", "bench/profile-summary.ts", join(dir, file), "30"], {
      stdio: "inherit",
    });
  }
}
