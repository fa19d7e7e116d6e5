import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Caller } from "../../src/auth/caller.js";
import { loadConfig } from "../../src/config/config.js";
import { ServiceError } from "../../src/errors/service-error.js";
import { createRateLimiter } from "../../src/ratelimit/create-rate-limiter.js";
import type { RateLimiter } from "../../src/ratelimit/rate-limiter.js";
import { eventually, PrivateRedis, silentRedis, stallableProxy, uniquePrefix } from "../helpers/redis.js";

interface LogLine {
  level: number;
  msg: string;
}

/** A real pino logger whose lines the test can read. */
function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}

const WARN = 40;
const caller = (subject: string): Caller => ({
  organizationId: "org-unit",
  subject,
  isAdmin: true,
  tenantIds: new Set(),
});

function limiterFor(env: Record<string, string>, log: Logger): RateLimiter {
  return createRateLimiter(loadConfig({ RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "3", ...env }), log);
}

/** Spends `n` iframe-token calls and returns how many were permitted. */
async function permitted(limiter: RateLimiter, who: Caller, n: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      await limiter.consumeCall("CreateIframeToken", who);
      ok++;
    } catch (err) {
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).reason).toBe("RATE_LIMITED");
    }
  }
  return ok;
}

describe("without REDIS_URL", () => {
  it("keeps limits in this process and says so at start-up", async () => {
    const { log, lines } = capturingLogger();
    const limiter = limiterFor({ RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "2" }, log);
    try {
      expect(lines.some((l) => l.level === WARN && /per process/.test(l.msg))).toBe(true);
      expect(limiter.health()).toEqual({ backend: "in-process", redisHealthy: undefined });
      expect(await permitted(limiter, caller("u1"), 5)).toBe(3);
      const outcome = await limiter.consumeCall("GetDashboard", caller("u1"));
      expect(outcome).toMatchObject({ policy: "default", limit: 600, remaining: 599 });

      await limiter.consumeFailedAuth("10.0.0.1");
      await limiter.consumeFailedAuth("10.0.0.1"); // the 2nd of 2 is still answered as a failed login
      const refused = await limiter.consumeFailedAuth("10.0.0.1").catch((e: unknown) => e);
      expect((refused as ServiceError).details.metadata).toEqual({ policy: "failed-auth" });
      await limiter.consumeFailedAuth("10.0.0.2"); // another address is not affected
    } finally {
      await limiter.close();
    }
  });
});

describe("with a Redis that goes away and comes back", () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(() => redis.stop());

  it("falls back to in-process limits, logs each transition once and recovers without a restart", async () => {
    const { log, lines } = capturingLogger();
    const prefix = uniquePrefix("unit");
    const limiter = limiterFor({ REDIS_URL: redis.url, RATE_LIMIT_REDIS_KEY_PREFIX: prefix }, log);
    const direct = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => 100 });
    direct.on("error", () => {});
    try {
      await eventually("the limiter is connected", () => limiter.health().redisHealthy === true);
      expect(limiter.health()).toEqual({ backend: "redis", redisHealthy: true });
      expect(await permitted(limiter, caller("before"), 4)).toBe(3);
      await direct.connect();
      expect(await direct.get(`{${prefix}:iframe-token:org-unit:before}`)).toBe("3");
      direct.disconnect();

      await redis.stop();
      await eventually("the limiter sees Redis gone", () => limiter.health().redisHealthy === false);
      expect(limiter.health()).toEqual({ backend: "in-process", redisHealthy: false });
      // Calls go on, held to the same limits in this process.
      expect(await permitted(limiter, caller("during"), 5)).toBe(3);
      expect(await permitted(limiter, caller("during-2"), 5)).toBe(3);
      const downs = lines.filter((l) => l.level === WARN && /Redis is unavailable/.test(l.msg));
      expect(downs).toHaveLength(1);

      await redis.start();
      await eventually("the limiter reconnects", () => limiter.health().redisHealthy === true);
      expect(await permitted(limiter, caller("after"), 4)).toBe(3);
      await direct.connect();
      expect(await direct.get(`{${prefix}:iframe-token:org-unit:after}`)).toBe("3");
      expect(lines.filter((l) => /shared by all replicas again/.test(l.msg))).toHaveLength(1);
      expect(lines.filter((l) => l.level === WARN && /Redis is unavailable/.test(l.msg))).toHaveLength(1);
    } finally {
      direct.disconnect();
      await limiter.close();
    }
  });

  it("does not wait longer than the command timeout for a connected Redis that stops answering, and notices when it answers again", async () => {
    const proxy = await stallableProxy(redis.port);
    const { log, lines } = capturingLogger();
    const prefix = uniquePrefix("stall");
    const limiter = limiterFor(
      { REDIS_URL: proxy.url, RATE_LIMIT_REDIS_KEY_PREFIX: prefix, REDIS_COMMAND_TIMEOUT_MS: "150" },
      log,
    );
    try {
      await eventually("the limiter is connected", () => limiter.health().redisHealthy === true);
      expect(await permitted(limiter, caller("s"), 1)).toBe(1);
      proxy.stall();
      // Redis will never answer these: without the command timeout they would wait forever (the test's own
      // timeout would fail it). Each one is decided by the in-process limiter once the timeout passes.
      expect(await permitted(limiter, caller("stalled"), 5)).toBe(3);
      expect(limiter.health()).toEqual({ backend: "in-process", redisHealthy: false });
      expect(lines.filter((l) => l.level === WARN && /Redis is unavailable/.test(l.msg))).toHaveLength(1);

      // The connection never closed, so no reconnect will announce the recovery: the probe finds it.
      proxy.resume();
      await eventually("the limiter sees Redis answer again", () => limiter.health().redisHealthy === true);
      expect(lines.filter((l) => /shared by all replicas again/.test(l.msg))).toHaveLength(1);
      expect(await permitted(limiter, caller("resumed"), 4)).toBe(3);
      const direct = new Redis(redis.url);
      try {
        expect(await direct.get(`{${prefix}:iframe-token:org-unit:resumed}`)).toBe("3");
      } finally {
        direct.disconnect();
      }
    } finally {
      await limiter.close();
      await proxy.close();
    }
  });
});

describe("with a Redis that accepts connections and never answers", () => {
  it("decides every call in process, without waiting for it", async () => {
    const silent = await silentRedis();
    const { log } = capturingLogger();
    const limiter = limiterFor({ REDIS_URL: silent.url, RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("silent") }, log);
    try {
      await eventually("the limiter has connected", () => silent.connections() > 0);
      // Nothing will ever answer: that these calls return at all is the command timeout at work.
      expect(await permitted(limiter, caller("x"), 5)).toBe(3);
      expect(limiter.health()).toEqual({ backend: "in-process", redisHealthy: false });
    } finally {
      await limiter.close();
      await silent.close();
    }
  });
});
