/**
 * `npm run bench`: the service against bare baselines, same load, A B A B.
 *
 *   npm run bench                 full run (about 3 minutes), prints the table and writes bench/results/latest.json
 *   npm run bench -- --smoke      a tiny run that only proves the harness works (CI runs this)
 *   npm run bench -- --seconds 20 --rounds 3 --soak 120
 *
 * Needs PostgreSQL and Redis on 127.0.0.1 (as the tests do) and h2load
 * (Debian's nghttp2-client; installed here with apt when missing and run as root).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { startBenchService } from "./lib/bench-service.js";
import { ensureH2load, grpcHeaders, h2load, type H2loadOptions, type LoadResult } from "./lib/h2load.js";
import { cpuSeconds } from "./lib/proc.js";
import { mean } from "./lib/stats.js";
import { openLoop } from "./lib/open-loop.js";

const { values: args } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "2" },
    soak: { type: "string", default: "60" },
  },
});
const smoke = args.smoke;
const seconds = Number(args.seconds);
const rounds = smoke ? 1 : Number(args.rounds);
const soakSeconds = smoke ? 2 : Number(args.soak);
const H2 = { connections: 16, streams: 8 };
const H1 = { connections: 64, streams: 1 };

ensureH2load();
const bench = await startBenchService(["--trace-gc"]);
const { service, token } = bench;
const redisStats = new Redis(bench.redisUrl);
const children: ChildProcess[] = [];
try {
  const grpcJs = await startBaseline("bench/baselines/grpc-js-constant.ts");
  const bareHttp = await startBaseline("bench/baselines/http-constant.ts");

  const getPath = "/dashboard.v1.DashboardService/GetDashboard";
  const { get: getBody, mint: mintBody, list: listBody, json: jsonBody } = bench.bodies;
  const jsonHeaders = (withToken: boolean): Record<string, string> => ({
    "content-type": "application/json",
    ...(withToken ? { authorization: `Bearer ${token}` } : {}),
  });
  const load = (o: Omit<H2loadOptions, "durationSeconds" | "requests" | "connections" | "streams">, shape = H2) =>
    h2load({ ...shape, ...o, ...(smoke ? { requests: 200 } : { durationSeconds: seconds }) });
  /** What a service scenario cost per answered call: Redis commands, and the service's CPU time. */
  const costs: Record<string, { redisCommandsPerCall: number[]; cpuMicrosPerCall: number[] }> = {};
  const measured = async (name: string, run: () => Promise<LoadResult>): Promise<LoadResult> => {
    const [commands, cpu] = [await redisCommands(redisStats), await cpuSeconds(service.child.pid!)];
    const result = await run();
    const calls = Math.max(1, result.succeeded);
    const cost = (costs[name] ??= { redisCommandsPerCall: [], cpuMicrosPerCall: [] });
    cost.redisCommandsPerCall.push(((await redisCommands(redisStats)) - commands) / calls);
    cost.cpuMicrosPerCall.push((((await cpuSeconds(service.child.pid!)) - cpu) * 1e6) / calls);
    return result;
  };

  const scenarios: Record<string, LoadResult[]> = {
    "gRPC GetDashboard: service": [],
    "gRPC GetDashboard: bare grpc-js": [],
    "Connect JSON GetDashboard (HTTP/1.1): service": [],
    "JSON (HTTP/1.1): bare node:http": [],
    "gRPC CreateIframeToken: service": [],
    "gRPC ListDashboards (page of 50): service": [],
    "REST GET /api/v1/dashboards/{tenant_id} (HTTP/1.1): service": [],
  };
  for (let round = 0; round < rounds; round++) {
    scenarios["gRPC GetDashboard: service"]!.push(
      await measured("gRPC GetDashboard: service", () =>
        load({ url: service.baseUrl + getPath, body: getBody, headers: grpcHeaders(token) }),
      ),
    );
    scenarios["gRPC GetDashboard: bare grpc-js"]!.push(
      await load({ url: `http://127.0.0.1:${grpcJs.port}${getPath}`, body: getBody, headers: grpcHeaders(token) }),
    );
    scenarios["Connect JSON GetDashboard (HTTP/1.1): service"]!.push(
      await measured("Connect JSON GetDashboard (HTTP/1.1): service", () =>
        load({ url: service.baseUrl + getPath, body: jsonBody, headers: jsonHeaders(true), extra: ["--h1"] }, H1),
      ),
    );
    scenarios["JSON (HTTP/1.1): bare node:http"]!.push(
      await load(
        {
          url: `http://127.0.0.1:${bareHttp.port}${getPath}`,
          body: jsonBody,
          headers: jsonHeaders(true),
          extra: ["--h1"],
        },
        H1,
      ),
    );
    scenarios["gRPC CreateIframeToken: service"]!.push(
      await measured("gRPC CreateIframeToken: service", () =>
        load({
          url: `${service.baseUrl}/dashboard.v1.DashboardService/CreateIframeToken`,
          body: mintBody,
          headers: grpcHeaders(token),
        }),
      ),
    );
    scenarios["gRPC ListDashboards (page of 50): service"]!.push(
      await measured("gRPC ListDashboards (page of 50): service", () =>
        load({
          url: `${service.baseUrl}/dashboard.v1.DashboardService/ListDashboards`,
          body: listBody,
          headers: grpcHeaders(token),
        }),
      ),
    );
    scenarios["REST GET /api/v1/dashboards/{tenant_id} (HTTP/1.1): service"]!.push(
      await measured("REST GET /api/v1/dashboards/{tenant_id} (HTTP/1.1): service", () =>
        load(
          {
            url: `${service.baseUrl}/api/v1/dashboards/bench-tenant`,
            headers: { authorization: `Bearer ${token}` },
            extra: ["--h1"],
          },
          H1,
        ),
      ),
    );
  }

  // Latency at half the measured peak: an open loop at a steady rate (h2load --rps sends in bursts).
  const halfPeak = (name: string) => Math.max(1, Math.floor(mean(scenarios[name]!.map((r) => r.rps)) / 2));
  const latencySeconds = smoke ? 1 : seconds;
  const before = await readDurations(service.baseUrl);
  const atHalf = {
    grpc: await openLoop({
      baseUrl: service.baseUrl,
      path: getPath,
      body: getBody,
      headers: grpcHeaders(token),
      rate: halfPeak("gRPC GetDashboard: service"),
      seconds: latencySeconds,
      warmupSeconds: smoke ? 0 : 2,
      connections: 4,
      protocol: "h2",
    }),
    json: await openLoop({
      baseUrl: service.baseUrl,
      path: getPath,
      body: jsonBody,
      headers: jsonHeaders(true),
      rate: halfPeak("Connect JSON GetDashboard (HTTP/1.1): service"),
      seconds: latencySeconds,
      warmupSeconds: smoke ? 0 : 2,
      connections: 64,
      protocol: "h1",
    }),
  };
  // The same runs as the service itself timed them (its histogram): without the load generator's own pauses.
  const serverSide = shareUnder(before, await readDurations(service.baseUrl), "0.005");

  // Soak: reads at full speed while the service's resident memory is sampled every second.
  const rss: number[] = [];
  // The service runs with --trace-gc: what each full collection left is the live heap, which RSS (V8 keeps
  // the space it grew to) cannot show. A leak is a live heap that grows.
  const gcLinesBefore = service.lines.length;
  // A sample that cannot be read (the process is exiting) is simply not taken.
  const sampler = setInterval(() => {
    residentMb(service.child.pid!).then(
      (mb) => rss.push(mb),
      () => {},
    );
  }, 1000);
  const soak = await h2load({
    ...H2,
    url: service.baseUrl + getPath,
    body: getBody,
    headers: grpcHeaders(token),
    durationSeconds: soakSeconds,
  });
  clearInterval(sampler);
  const liveHeap = service.lines
    .slice(gcLinesBefore)
    .map((line) => /Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \(/.exec(line)?.[1])
    .filter((mb) => mb !== undefined)
    .map(Number);

  const avg = (name: string) => mean(scenarios[name]!.map((r) => r.rps));
  const ratios = {
    grpcVsGrpcJs: avg("gRPC GetDashboard: service") / avg("gRPC GetDashboard: bare grpc-js"),
    jsonVsNodeHttp: avg("Connect JSON GetDashboard (HTTP/1.1): service") / avg("JSON (HTTP/1.1): bare node:http"),
    mintVsGrpcRead: avg("gRPC CreateIframeToken: service") / avg("gRPC GetDashboard: service"),
  };
  const failures = [...Object.values(scenarios).flat(), atHalf.grpc, atHalf.json, soak].reduce(
    (n, r) => n + r.failed,
    0,
  );
  const result = {
    when: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    load: { h2: H2, h1: H1, seconds: smoke ? "200 requests" : seconds, rounds },
    scenarios: Object.fromEntries(
      Object.entries(scenarios).map(([name, runs]) => [
        name,
        {
          rps: runs.map((r) => Math.round(r.rps)),
          p50Ms: runs.map((r) => r.p50Ms),
          p99Ms: runs.map((r) => r.p99Ms),
          bytesPerResponse: runs[0]?.bytesPerResponse,
        },
      ]),
    ),
    ratios,
    costs: Object.fromEntries(
      Object.entries(costs).map(([name, c]) => [
        name,
        {
          redisCommandsPerCall: Number(mean(c.redisCommandsPerCall).toFixed(4)),
          cpuMicrosPerCall: Math.round(mean(c.cpuMicrosPerCall)),
        },
      ]),
    ),
    serverSideReadsUnder5ms: serverSide,
    halfPeak: {
      grpc: { rps: Math.round(atHalf.grpc.rps), p50Ms: atHalf.grpc.p50Ms, p99Ms: atHalf.grpc.p99Ms },
      json: { rps: Math.round(atHalf.json.rps), p50Ms: atHalf.json.p50Ms, p99Ms: atHalf.json.p99Ms },
    },
    soak: {
      seconds: soakSeconds,
      rps: Math.round(soak.rps),
      rssMb: { first: rss[0], last: rss.at(-1), max: Math.max(...rss) },
      liveHeapMbAfterFullGc: {
        collections: liveHeap.length,
        first: liveHeap[0],
        last: liveHeap.at(-1),
        max: Math.max(...liveHeap),
      },
    },
    failures,
  };
  printTable(result);
  await mkdir("bench/results", { recursive: true });
  await writeFile(`bench/results/${smoke ? "smoke" : "latest"}.json`, `${JSON.stringify(result, null, 2)}\n`);
  if (failures > 0) throw new Error(`${failures} requests failed during the benchmark`);
} finally {
  for (const child of children) child.kill();
  redisStats.disconnect();
  await bench.stop();
}

/** Commands the Redis has run, all kinds, leaving out the INFO calls that read this. */
async function redisCommands(client: Redis): Promise<number> {
  const info = await client.info("commandstats");
  let total = 0;
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) if (m[1] !== "info") total += Number(m[2]);
  return total;
}

async function startBaseline(script: string): Promise<{ port: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise<{ port: number }>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
    createInterface({ input: child.stdout }).once("line", (line) => {
      const announced = JSON.parse(line) as { port: number };
      resolve(announced);
    });
  });
}

async function residentMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
}

function printTable(r: {
  scenarios: Record<string, { rps: number[]; p50Ms: number[]; p99Ms: number[] }>;
  ratios: Record<string, number>;
  costs: Record<string, { redisCommandsPerCall: number; cpuMicrosPerCall: number }>;
  halfPeak: Record<string, { rps: number; p50Ms: number; p99Ms: number }>;
  soak: {
    seconds: number;
    rps: number;
    rssMb: Record<string, number | undefined>;
    liveHeapMbAfterFullGc: Record<string, number | undefined>;
  };
  serverSideReadsUnder5ms: number;
}): void {
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "-");
  const lines = ["| scenario | req/s (each round) | p50 ms | p99 ms |", "| --- | ---: | ---: | ---: |"];
  for (const [name, s] of Object.entries(r.scenarios)) {
    lines.push(`| ${name} | ${s.rps.join(" / ")} | ${f(mean(s.p50Ms))} | ${f(mean(s.p99Ms))} |`);
  }
  for (const [name, s] of Object.entries(r.halfPeak)) {
    lines.push(`| ${name} GetDashboard at half peak | ${s.rps} | ${f(s.p50Ms)} | ${f(s.p99Ms)} |`);
  }
  lines.push("", "| service scenario | Redis commands per call | service CPU µs per call |", "| --- | ---: | ---: |");
  for (const [name, c] of Object.entries(r.costs))
    lines.push(`| ${name} | ${c.redisCommandsPerCall} | ${c.cpuMicrosPerCall} |`);
  lines.push("", "| ratio | value |", "| --- | ---: |");
  for (const [name, v] of Object.entries(r.ratios)) lines.push(`| ${name} | ${f(v)} |`);
  lines.push(
    "",
    `server-side, the half-peak reads answered within 5 ms: ${(100 * r.serverSideReadsUnder5ms).toFixed(2)}%`,
  );
  lines.push(
    "",
    `soak ${r.soak.seconds}s at ${r.soak.rps} req/s: RSS ${JSON.stringify(r.soak.rssMb)} MB, ` +
      `live V8 heap after each full GC ${JSON.stringify(r.soak.liveHeapMbAfterFullGc)} MB`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** GetDashboard's latency histogram from the service's /metrics: bucket bound → cumulative count. */
async function readDurations(baseUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const buckets = new Map<string, number>();
  const line = /^dashboard_rpc_duration_seconds_bucket\{([^}]*)\} (\d+)/;
  for (const l of text.split("\n")) {
    const m = line.exec(l);
    if (!m || !m[1]!.includes("GetDashboard") || !m[1]!.includes('code="OK"')) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** Of the calls between two histogram readings, the share answered within bound seconds. */
function shareUnder(before: Map<string, number>, after: Map<string, number>, bound: string): number {
  const delta = (le: string) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = delta("+Inf");
  return total > 0 ? delta(bound) / total : Number.NaN;
}
