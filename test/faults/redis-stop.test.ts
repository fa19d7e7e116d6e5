import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { eventually, PrivateRedis, uniquePrefix } from "../helpers/redis.js";
import { callerToken } from "../helpers/tokens.js";
import {
  codeName,
  connectClientFor,
  countCodes,
  faultServerEnv,
  maxLatency,
  recordFigures,
  type Attempt,
} from "./support.js";

// A Redis of this file's own: it is stopped and started under a mint load (the shared one never is).
let redis: PrivateRedis;
let db: TestDatabase;
let server: ServerProcess;
const prefix = uniquePrefix("fault-redis");
beforeAll(async () => {
  redis = await PrivateRedis.start();
  db = await createTestDatabase();
  server = await spawnServer(
    faultServerEnv(db.url, {
      REDIS_URL: redis.url,
      RATE_LIMIT_REDIS_KEY_PREFIX: prefix,
      REDIS_COMMAND_TIMEOUT_MS: "100",
    }),
  );
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await redis?.stop();
  await db?.drop();
});

interface RateLimitsReadiness {
  backend: string;
  redisHealthy: boolean | undefined;
}
const readiness = async (): Promise<RateLimitsReadiness> =>
  ((await (await fetch(`${server.baseUrl}/readyz`)).json()) as { rateLimits: RateLimitsReadiness }).rateLimits;

describe("Redis stopped in the middle of a mint load", () => {
  it("keeps minting within per-process limits, promptly, and shares limits in Redis again once it is back", async () => {
    const org = "fault-redis";
    const client = connectClientFor(server.baseUrl);
    const headers = { authorization: `Bearer ${await callerToken({ org, admin: true, sub: "loader" })}` };
    const { dashboard } = await client.createDashboard(
      { tenantId: "t-1", workspaceId: "ws-1", name: "Minted" },
      { headers },
    );
    const target = { tenantId: "t-1", workspaceId: "ws-1", dashboardId: dashboard!.id };
    await eventually("the limiter uses Redis", async () => (await readiness()).redisHealthy === true);

    const attempts: Attempt[] = [];
    let stopped = false;
    const load = Promise.all(
      Array.from({ length: 6 }, async () => {
        while (!stopped) {
          const started = Date.now();
          let code = "OK";
          try {
            await client.createIframeToken(target, { headers, timeoutMs: 5_000 });
          } catch (err) {
            code = codeName(err);
          }
          attempts.push({ endedAt: Date.now(), latencyMs: Date.now() - started, code });
        }
      }),
    );
    const okCount = () => attempts.filter((a) => a.code === "OK").length;
    const until = async (check: () => boolean) => {
      while (!check()) await new Promise((r) => setTimeout(r, 10));
    };

    // Each step waits for what the one before it caused, not for a length of time.
    await until(() => okCount() >= 50);
    const stoppedAt = Date.now();
    await redis.stop();
    const downFrom = Date.now();
    await eventually("readiness reports the fallback", async () => (await readiness()).redisHealthy === false);
    const readinessWhileDown = await readiness();
    const okWhenDown = okCount();
    await until(() => okCount() >= okWhenDown + 50);
    const startCalledAt = Date.now();
    await redis.start();
    const backAt = Date.now();
    stopped = true;
    await load;

    let sharedAgainAt = 0;
    await eventually("readiness reports Redis healthy again", async () => {
      const healthy = (await readiness()).redisHealthy === true;
      if (healthy && !sharedAgainAt) sharedAgainAt = Date.now();
      return healthy;
    });
    // A fresh caller's mint is counted in Redis again: the shared limiter is back in use.
    const probeSub = `probe-${Date.now()}`;
    const probe = { authorization: `Bearer ${await callerToken({ org, admin: true, sub: probeSub })}` };
    const direct = new Redis(redis.url);
    let counted: string[] = [];
    try {
      await eventually("a mint is counted in Redis", async () => {
        await client.createIframeToken(target, { headers: probe });
        counted = await direct.keys(`{${prefix}:iframe-token*${probeSub}*`);
        return counted.length > 0;
      });
    } finally {
      direct.disconnect();
    }

    const during = attempts.filter((x) => x.endedAt - x.latencyMs >= downFrom && x.endedAt <= startCalledAt);
    recordFigures("redis-stop", {
      workers: 6,
      mints: attempts.length,
      outageMs: backAt - stoppedAt,
      mintsDuringOutage: during.length,
      codesDuringOutage: countCodes(during),
      codesOverall: countCodes(attempts),
      maxLatencyDuringOutageMs: maxLatency(during),
      maxLatencyOverallMs: maxLatency(attempts),
      readinessWhileDown,
      sharedLimitsReportedAgainMsAfterRedisReady: sharedAgainAt - backAt,
    });

    // While Redis is away each call is decided in process; afterwards Redis again.
    expect(readinessWhileDown).toEqual({ backend: "in-process", redisHealthy: false });
    expect(await readiness()).toEqual({ backend: "redis", redisHealthy: true });
    expect(during.length).toBeGreaterThan(0);
    expect(countCodes(during)).toEqual({ OK: during.length });
    // Every mint succeeded, none ran into its 5 s deadline: Redis being away never held a call up.
    expect(countCodes(attempts)).toEqual({ OK: attempts.length });
    expect(counted).toHaveLength(1);
  }, 60_000);
});
