/**
 * `npm run bench:alloc`: what one call makes and allocates, counted rather than timed, so the figures
 * hold whatever the machine's speed. The compiled service runs with a probe preloaded
 * (bench/lib/call-probe.js) and takes the same load twice, after a warm-up: once counting the async
 * resources it creates (promises, timers, ticks), once under V8's sampling heap profiler, which here
 * keeps what the collector took too. Both are divided by the calls answered.
 *
 *   npm run bench:alloc -- --scenario json-get --requests 30000
 *
 * Scenarios: grpc-get, json-get, mint, list, rest-get (bench/lib/scenarios.ts).
 */
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startBenchService } from "./lib/bench-service.js";
import { ensureH2load } from "./lib/h2load.js";
import { isScenario, SCENARIOS, serviceLoads } from "./lib/scenarios.js";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children?: ProfileNode[];
}
interface Probe {
  counts?: Record<string, number>;
  profile?: { head: ProfileNode };
  gc?: { minor: number; major: number };
  error?: string;
}

const { values: args } = parseArgs({
  options: {
    scenario: { type: "string", default: "json-get" },
    requests: { type: "string", default: "30000" },
    top: { type: "string", default: "15" },
  },
});
if (!isScenario(args.scenario)) throw new Error(`unknown scenario ${args.scenario}: one of ${SCENARIOS.join(", ")}`);
const requests = Number(args.requests);
ensureH2load();
const bench = await startBenchService(["--import", resolve("bench/lib/call-probe.js")]);
const pid = bench.service.child.pid!;
const out = join(tmpdir(), `call-probe-${pid}.json`);
const load = serviceLoads(bench, { requests })[args.scenario];

/** Moves the probe one step, and for a step that writes, waits (bounded) until it has. */
async function step(writes: boolean): Promise<Probe | undefined> {
  await rm(out, { force: true });
  process.kill(pid, "SIGUSR2");
  if (!writes) return undefined;
  for (let i = 0; i < 300; i++) {
    const text = await readFile(out, "utf8").catch(() => "");
    if (text) return JSON.parse(text) as Probe;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the probe wrote nothing");
}

try {
  await load(); // warm-up: caches filled, code optimized
  await step(false);
  const counted = await load();
  const { counts = {} } = (await step(true))!;
  await step(false);
  const sampled = await load();
  const { profile, gc, error } = (await step(true))!;
  if (error || !profile) throw new Error(`the heap profile failed: ${error}`);

  const perCall = (n: number, calls: number) => (n / calls).toFixed(2);
  const lines = [`${args.scenario}: ${requests} requests a pass (${counted.failed + sampled.failed} failed)`];
  for (const [type, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) {
    if (n / counted.succeeded >= 0.05) lines.push(`  ${type.padEnd(20)} ${perCall(n, counted.succeeded)} a call`);
  }
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: ProfileNode) => {
    total += node.selfSize;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${functionName || "(anonymous)"} ${url.replace(/^.*\/(dist\/|node_modules\/)/, "")}:${lineNumber + 1}`;
    bySite.set(where, (bySite.get(where) ?? 0) + node.selfSize);
    for (const child of node.children ?? []) walk(child);
  };
  walk(profile.head);
  lines.push(
    `  allocated            ${Math.round(total / sampled.succeeded)} bytes a call (sampled), ${gc?.minor ?? 0} minor and ${gc?.major ?? 0} major collections`,
  );
  lines.push(`  where (bytes a call):`);
  for (const [where, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))) {
    lines.push(`    ${String(Math.round(bytes / sampled.succeeded)).padStart(6)}  ${where}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await bench.stop();
  await rm(out, { force: true });
}
