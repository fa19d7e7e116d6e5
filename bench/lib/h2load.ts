import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { quantile } from "./stats.js";

const run = promisify(execFile);

export interface LoadResult {
  rps: number;
  succeeded: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  /** Response body bytes per request: a sanity check that both sides sent the same answer. */
  bytesPerResponse: number;
}

export interface H2loadOptions {
  url: string;
  /** The request body (h2load POSTs it); without one, h2load sends GET. */
  body?: Buffer;
  headers: Record<string, string>;
  connections: number;
  streams: number;
  durationSeconds?: number;
  requests?: number;
  warmupSeconds?: number;
  /** Requests per second per connection (for latency at a fixed load). */
  rpsPerConnection?: number;
  /** Extra h2load flags, e.g. ["--h1"] for HTTP/1.1. */
  extra?: string[];
}

/** Installs h2load (Debian's nghttp2-client) with apt when it is missing. */
export function ensureH2load(): void {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write("h2load not found: installing Debian's nghttp2-client\n");
    execFileSync("sh", ["-c", "apt-get update -qq && apt-get install -y -qq nghttp2-client"], { stdio: "inherit" });
  }
}

/** Drives a server with h2load (nghttp2) and reads its summary and per-request log. */
export async function h2load(o: H2loadOptions): Promise<LoadResult> {
  const dir = await mkdtemp(join(tmpdir(), "h2load-"));
  try {
    const bodyFile = join(dir, "body");
    const logFile = join(dir, "log.tsv");
    if (o.body) await writeFile(bodyFile, o.body);
    const args = [
      "-c",
      String(o.connections),
      "-m",
      String(o.streams),
      ...(o.body ? ["-d", bodyFile] : []),
      `--log-file=${logFile}`,
      ...Object.entries(o.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
      ...(o.durationSeconds
        ? ["-D", String(o.durationSeconds), `--warm-up-time=${o.warmupSeconds ?? 1}`]
        : ["-n", String(o.requests ?? 1000)]),
      ...(o.rpsPerConnection ? [`--rps=${o.rpsPerConnection}`] : []),
      ...(o.extra ?? []),
      o.url,
    ];
    const { stdout } = await run("h2load", args, { maxBuffer: 16 * 1024 * 1024 });
    const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)?.[1]);
    const requests =
      /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
    const traffic = /traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data/.exec(stdout);
    if (!requests || Number.isNaN(rps)) throw new Error(`cannot read h2load output:\n${stdout}`);
    const succeeded = Number(requests[4]);
    const latenciesMs = (await readFile(logFile, "utf8"))
      .trim()
      .split("\n")
      .map((line) => line.split("\t"))
      .filter((cols) => cols[1] === "200")
      .map((cols) => Number(cols[2]) / 1000);
    return {
      rps,
      succeeded,
      failed: Number(requests[5]) + Number(requests[6]),
      p50Ms: quantile(latenciesMs, 0.5),
      p99Ms: quantile(latenciesMs, 0.99),
      bytesPerResponse: traffic && succeeded ? Number(traffic[3]) / Number(requests[3]) : Number.NaN,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A gRPC message frame: compressed flag 0, big-endian length, the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

export const grpcHeaders = (token?: string): Record<string, string> => ({
  "content-type": "application/grpc+proto",
  te: "trailers",
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});
