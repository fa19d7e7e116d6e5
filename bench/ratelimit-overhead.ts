/**
 * Per-call cost of the rate limiter, with Redis and without (in-process).
 *
 *   npx tsx bench/ratelimit-overhead.ts            # needs Redis on 127.0.0.1:6379 (or BENCH_REDIS_URL)
 *
 * 1. The limiter alone, as the call guard uses it for a permitted call
 *    (checkClientAddress + consumeCall), sequentially (latency) and 64 at a
 *    time (throughput), against the no-op limiter as a baseline.
 * 2. End to end: GetDashboard over Connect JSON (HTTP/1.1, keep-alive) on a real
 *    server, with limits in process and with limits in Redis.
 * Keys go under a fresh prefix that expires within a minute; nothing is flushed.
 */
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import type { Caller } from "../src/auth/caller.js";
import { loadConfig } from "../src/config/config.js";
import { createRateLimiter } from "../src/ratelimit/create-rate-limiter.js";
import { noRateLimits, type RateLimiter } from "../src/ratelimit/rate-limiter.js";
import { startTestServer } from "../test/helpers/server.js";
import { callerToken } from "../test/helpers/tokens.js";

const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const silent = pino({ level: "silent" });
const prefix = `bench-rl:${randomBytes(4).toString("hex")}`;
const HIGH = "100000000";

function stats(samplesNs: bigint[]): string {
  const us = samplesNs.map((n) => Number(n) / 1000).sort((x, y) => x - y);
  const at = (q: number) => us[Math.min(us.length - 1, Math.floor(q * us.length))]!;
  const mean = us.reduce((s, v) => s + v, 0) / us.length;
  return `mean ${mean.toFixed(1)} µs, p50 ${at(0.5).toFixed(1)} µs, p99 ${at(0.99).toFixed(1)} µs`;
}

/** What the call guard asks of the limiter for a call that is let through (its failures alone are counted per address). */
async function guarded(limiter: RateLimiter, who: Caller): Promise<void> {
  await limiter.consumeCall("GetDashboard", who);
}

async function sequential(limiter: RateLimiter, n: number): Promise<string> {
  const who: Caller = { organizationId: "bench", subject: "seq", isAdmin: true, tenantIds: new Set() };
  for (let i = 0; i < 500; i++) await guarded(limiter, who); // warm-up
  const samples: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await guarded(limiter, who);
    samples.push(process.hrtime.bigint() - t);
  }
  return stats(samples);
}

async function concurrent(limiter: RateLimiter, n: number, width: number): Promise<string> {
  const callers: Caller[] = Array.from({ length: width }, (_, i) => ({
    organizationId: "bench",
    subject: `c${i}`,
    isAdmin: true,
    tenantIds: new Set<string>(),
  }));
  const t = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    callers.map(async (who) => {
      while (next++ < n) await guarded(limiter, who);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return `${Math.round(n / seconds)} calls/s`;
}

function limiterWith(redis: boolean): RateLimiter {
  return createRateLimiter(
    loadConfig({
      ...(redis ? { REDIS_URL } : {}),
      RATE_LIMIT_REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_DEFAULT_PER_MINUTE: HIGH,
    }),
    silent,
  );
}

async function limiterAlone(): Promise<void> {
  console.log("== the limiter alone: checkClientAddress() + consumeCall() of a permitted call ==");
  const N = 20_000;
  for (const [name, make] of [
    ["no-op (baseline)", () => noRateLimits],
    ["in-process", () => limiterWith(false)],
    ["Redis", () => limiterWith(true)],
  ] as const) {
    const limiter = make();
    if (name === "Redis") {
      const deadline = Date.now() + 5000;
      while (limiter.health().redisHealthy !== true && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      if (limiter.health().redisHealthy !== true) throw new Error(`Redis at ${REDIS_URL} is not reachable`);
    }
    console.log(
      `${name.padEnd(18)} sequential: ${await sequential(limiter, N)}; 64 concurrent: ${await concurrent(limiter, N, 64)}`,
    );
    await limiter.close();
  }
}

async function endToEnd(): Promise<void> {
  console.log("== end to end: GetDashboard over Connect JSON, one keep-alive connection, sequential ==");
  const N = 3_000;
  for (const [name, env] of [
    ["in-process", {}],
    ["Redis", { REDIS_URL }],
  ] as const) {
    const server = await startTestServer({
      ...env,
      RATE_LIMIT_REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_DEFAULT_PER_MINUTE: HIGH,
    });
    try {
      const token = await callerToken({ org: "bench", admin: true, sub: "e2e" });
      const call = () =>
        fetch(`${server.baseUrl}/dashboard.v1.DashboardService/GetDashboard`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: '{"tenantId":"none"}',
        }).then((r) => r.arrayBuffer()); // NOT_FOUND: a real query, no dashboard needed
      for (let i = 0; i < 300; i++) await call();
      const samples: bigint[] = [];
      for (let i = 0; i < N; i++) {
        const t = process.hrtime.bigint();
        await call();
        samples.push(process.hrtime.bigint() - t);
      }
      console.log(`${name.padEnd(18)} ${stats(samples)}`);
    } finally {
      await server.stop();
    }
  }
}

await limiterAlone();
await endToEnd();
console.log(`(node ${process.version}, ${(await import("node:os")).cpus().length} CPUs, Redis ${REDIS_URL})`);
