/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`): where the samples
 * fall, by function and by package.
 *   npx tsx bench/profile-summary.ts PROFILE.cpuprofile [top]
 */
import { readFile } from "node:fs/promises";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.ts PROFILE.cpuprofile [top]");
const profile = JSON.parse(await readFile(file, "utf8")) as { nodes: Node[]; samples: number[] };
const top = Number(topArg ?? 25);
const hits = new Map<number, number>();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const total = profile.samples.length;

function where(url: string): string {
  if (!url) return "(native/V8)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return url.replace(/^node:(internal\/)?/, "node:").split("/")[0]!;
  const own = /\/(src|gen|bench)\/(.*)$/.exec(url);
  return own ? `${own[1]}/${own[2]!.split("/")[0]}` : url;
}

const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const node of profile.nodes) {
  const n = hits.get(node.id) ?? 0;
  if (!n) continue;
  const name = `${node.callFrame.functionName || "(anonymous)"} ${where(node.callFrame.url)}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + n);
  const pkg = node.callFrame.functionName.startsWith("(") ? node.callFrame.functionName : where(node.callFrame.url);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + n);
}
const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
process.stdout.write(`${total} samples\n`);
show("self time by package", byPackage);
show("self time by function", byFunction);
