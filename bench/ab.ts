/**
 * `npm run bench:ab`: the working tree (A) against another commit (B), both compiled and running at
 * once, driven in turn by the same load, round after round (A B, then B A). Single full runs of
 * `npm run bench` vary by about ±15% on this machine as its speed drifts; alternating two live
 * services every few seconds cancels the drift, so a change of a few percent shows.
 *
 *   npm run bench:ab -- --base HEAD~1 --scenarios json-get,grpc-get,mint --seconds 5 --rounds 4
 *
 * Scenarios: grpc-get, json-get, mint, list, rest-get (bench/lib/scenarios.ts). Prints the median rate of each side, A/B per round, and
 * each side's CPU time per call.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startBenchService, type BenchService } from "./lib/bench-service.js";
import { ensureH2load } from "./lib/h2load.js";
import { cpuSeconds } from "./lib/proc.js";
import { isScenario, SCENARIOS, serviceLoads } from "./lib/scenarios.js";
import { quantile } from "./lib/stats.js";

const { values: args } = parseArgs({
  options: {
    base: { type: "string", default: "HEAD" },
    scenarios: { type: "string", default: "grpc-get,json-get,mint" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "4" },
  },
});
const seconds = Number(args.seconds);
const median = (values: number[]) => quantile(values, 0.5);
const asked = args.scenarios.split(",");
const scenarios = asked.filter(isScenario);
if (scenarios.length !== asked.length)
  throw new Error(`unknown scenario in ${args.scenarios}: one of ${SCENARIOS.join(", ")}`);
ensureH2load();

// B is the base commit, built in a worktree of its own (sharing node_modules) and run from there.
const root = resolve(".");
const baseDir = await mkdtemp(join(tmpdir(), "bench-ab-"));
execFileSync("git", ["worktree", "add", "--detach", baseDir, args.base], { stdio: "inherit" });
const services: BenchService[] = [];
try {
  await symlink(join(root, "node_modules"), join(baseDir, "node_modules"));
  execFileSync("npm", ["run", "-s", "build"], { cwd: baseDir, stdio: "inherit" });
  const a = await startBenchService();
  services.push(a);
  // node runs the first script it is given: the base's build, ahead of the working tree's.
  const b = await startBenchService([join(baseDir, "dist/src/main.js")]);
  services.push(b);
  const loadsOf = [serviceLoads(a, seconds), serviceLoads(b, seconds)];
  const seen: Record<string, { rps: number[]; cpuMicros: number[] }[]> = {};
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const name of scenarios) {
      const sides = (seen[name] ??= [
        { rps: [], cpuMicros: [] },
        { rps: [], cpuMicros: [] },
      ]);
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const side of order) {
        const pid = (side === 0 ? a : b).service.child.pid!;
        const before = await cpuSeconds(pid);
        const result = await loadsOf[side]![name]();
        const cpu = (await cpuSeconds(pid)) - before;
        if (result.failed > 0) process.stderr.write(`${name} ${side === 0 ? "A" : "B"}: ${result.failed} failed\n`);
        sides[side]!.rps.push(result.rps);
        sides[side]!.cpuMicros.push((cpu * 1e6) / Math.max(1, result.succeeded));
      }
    }
  }
  process.stdout.write(`A = working tree, B = ${args.base}\n`);
  for (const [name, [sa, sb]] of Object.entries(seen) as [string, { rps: number[]; cpuMicros: number[] }[]][]) {
    const perRound = sa!.rps.map((r, i) => (r / sb!.rps[i]!).toFixed(3)).join(" ");
    process.stdout.write(
      `${name}: A ${Math.round(median(sa!.rps))} req/s, B ${Math.round(median(sb!.rps))} req/s; A/B by round ${perRound}; ` +
        `CPU per call A ${Math.round(median(sa!.cpuMicros))} µs, B ${Math.round(median(sb!.cpuMicros))} µs\n`,
    );
  }
} finally {
  for (const s of services) await s.stop();
  execFileSync("git", ["worktree", "remove", "--force", baseDir], { stdio: "inherit" });
  await rm(baseDir, { recursive: true, force: true });
}
