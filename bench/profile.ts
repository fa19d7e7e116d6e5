/**
 * `npm run bench:profile`: the compiled service under one benchmark load, with
 * V8's CPU profiler on (node --cpu-prof), and the profile summarized.
 *
 *   npm run bench:profile -- --scenario grpc-get --seconds 10
 *
 * Scenarios: grpc-get, json-get, mint, list. The profile is written under
 * bench/results/profiles/ (open it in Chrome DevTools or speedscope).
 */
import { execFileSync } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startBenchService } from "./lib/bench-service.js";
import { grpcHeaders, h2load } from "./lib/h2load.js";

const { values: args } = parseArgs({
  options: {
    scenario: { type: "string", default: "grpc-get" },
    seconds: { type: "string", default: "10" },
  },
});
const dir = resolve("bench/results/profiles");
await mkdir(dir, { recursive: true });
const before = new Set(await readdir(dir));
const { service, token, bodies, stop } = await startBenchService(["--cpu-prof", `--cpu-prof-dir=${dir}`]);
try {
  const rpc = (name: string) => `${service.baseUrl}/dashboard.v1.DashboardService/${name}`;
  const h2 = { connections: 16, streams: 8, durationSeconds: Number(args.seconds) };
  const loads = {
    "grpc-get": () => h2load({ ...h2, url: rpc("GetDashboard"), headers: grpcHeaders(token), body: bodies.get }),
    "json-get": () =>
      h2load({
        ...h2,
        connections: 64,
        streams: 1,
        url: rpc("GetDashboard"),
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: bodies.json,
        extra: ["--h1"],
      }),
    mint: () => h2load({ ...h2, url: rpc("CreateIframeToken"), headers: grpcHeaders(token), body: bodies.mint }),
    list: () => h2load({ ...h2, url: rpc("ListDashboards"), headers: grpcHeaders(token), body: bodies.list }),
  };
  const load = loads[args.scenario as keyof typeof loads];
  if (!load) throw new Error(`unknown scenario ${args.scenario}: one of ${Object.keys(loads).join(", ")}`);
  const result = await load();
  process.stdout.write(`${args.scenario}: ${Math.round(result.rps)} req/s, ${result.failed} failed\n`);
} finally {
  // The profile is written when the process exits.
  await stop();
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
