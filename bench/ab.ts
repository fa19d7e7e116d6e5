/**
 * `npm run bench:ab`: the working tree (A) against another commit (B), both compiled and running at
 * once, driven in turn by the same load, round after round (A B, then B A). Single full runs of
 * `npm run bench` vary by about ±15% on this machine as its speed drifts; alternating two live
 * services every few seconds cancels the drift, so a change of a few percent shows.
 *
 *   npm run bench:ab -- --base HEAD~1 --scenarios json,grpc,mint --seconds 5 --rounds 4
 *
 * Scenarios: grpc, json, mint, list, rest. Prints the median rate of each side, A/B per round, and
 * each side's CPU time per call.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startBenchService, type BenchService } from "./lib/bench-service.js";
import { grpcHeaders, h2load, type LoadResult } from "./lib/h2load.js";
import { cpuSeconds } from "./lib/proc.js";
import { quantile } from "./lib/stats.js";

const { values: args } = parseArgs({
  options: {
    base: { type: "string", default: "HEAD" },
    scenarios: { type: "string", default: "grpc,json,mint" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "4" },
  },
});
const seconds = Number(args.seconds);
const median = (values: number[]) => quantile(values, 0.5);
const H1 = { connections: 64, streams: 1, durationSeconds: seconds, extra: ["--h1"] };
const H2 = { connections: 16, streams: 8, durationSeconds: seconds };
const rpc = (s: BenchService, name: string) => `${s.service.baseUrl}/dashboard.v1.DashboardService/${name}`;
const loads: Record<string, (s: BenchService) => Promise<LoadResult>> = {
  grpc: (s) => h2load({ ...H2, url: rpc(s, "GetDashboard"), body: s.bodies.get, headers: grpcHeaders(s.token) }),
  json: (s) =>
    h2load({
      ...H1,
      url: rpc(s, "GetDashboard"),
      body: s.bodies.json,
      headers: { "content-type": "application/json", authorization: `Bearer ${s.token}` },
    }),
  mint: (s) => h2load({ ...H2, url: rpc(s, "CreateIframeToken"), body: s.bodies.mint, headers: grpcHeaders(s.token) }),
  list: (s) => h2load({ ...H2, url: rpc(s, "ListDashboards"), body: s.bodies.list, headers: grpcHeaders(s.token) }),
  rest: (s) =>
    h2load({
      ...H1,
      url: `${s.service.baseUrl}/api/v1/dashboards/bench-tenant`,
      headers: { authorization: `Bearer ${s.token}` },
    }),
};
const scenarios = args.scenarios.split(",");
for (const name of scenarios)
  if (!loads[name]) throw new Error(`unknown scenario ${name}: one of ${Object.keys(loads).join(", ")}`);

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
  const seen: Record<string, { rps: number[]; cpuMicros: number[] }[]> = {};
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const name of scenarios) {
      const sides = (seen[name] ??= [
        { rps: [], cpuMicros: [] },
        { rps: [], cpuMicros: [] },
      ]);
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const side of order) {
        const s = side === 0 ? a : b;
        const before = await cpuSeconds(s.service.child.pid!);
        const result = await loads[name]!(s);
        const cpu = (await cpuSeconds(s.service.child.pid!)) - before;
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
