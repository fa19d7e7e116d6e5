import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCallerVerifier } from "../../src/auth/caller-verifier.js";
import { createCallGuard, type CallAttempt, type CallGuard, type GuardedCall } from "../../src/call/guard.js";
import { loadConfig } from "../../src/config/config.js";
import { ServiceError } from "../../src/errors/service-error.js";
import { createRateLimiter } from "../../src/ratelimit/create-rate-limiter.js";
import type { RateLimiter } from "../../src/ratelimit/rate-limiter.js";
import { eventually, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

/**
 * The guard decides a call from memory when it can: a caller already verified (the token cache) whose
 * budget this replica holds a lease of is admitted with no promise, and a budget this replica knows is
 * spent refuses at once. Anything that needs a signature check or a round trip to Redis is a promise.
 * Either way the decision is the same one; these tests check which way each call took, and what it said.
 */
const env = (perMinute: number) => ({
  AUTH_JWT_SECRET: TEST_JWT_SECRET,
  REDIS_URL: SHARED_REDIS_URL,
  RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("at-once"),
  RATE_LIMIT_DEFAULT_PER_MINUTE: String(perMinute),
});

async function guardFor(perMinute: number): Promise<{ guard: CallGuard; limiter: RateLimiter }> {
  const config = loadConfig(env(perMinute));
  const limiter = createRateLimiter(config, pino({ level: "silent" }));
  await eventually("Redis is ready", () => limiter.health().redisHealthy === true);
  return { guard: createCallGuard(await createCallerVerifier(config.auth), limiter), limiter };
}

let token: string;
beforeAll(async () => {
  token = await callerToken({ org: "org-at-once", admin: true, sub: "reader" });
});

const attempt = (authorization: string): CallAttempt => ({
  method: "GetDashboard",
  authorization,
  clientAddress: "10.1.2.3",
});

describe("the guard, deciding from memory", () => {
  let limiter: RateLimiter | undefined;
  afterAll(async () => {
    await limiter?.close();
  });

  it("admits a verified caller spending a held lease at once, with the same outcome a promise would give", async () => {
    const built = await guardFor(600);
    limiter = built.limiter;
    const first = built.guard(attempt(`Bearer ${token}`));
    // A signature to check and a slice to reserve: both asynchronous.
    expect(first).toBeInstanceOf(Promise);
    let previous = await first;
    expect(previous.rateLimit).toMatchObject({ policy: "default", limit: 600 });

    // A new caller's slices start at 1 and double while it spends them fast: within a few calls one is left over.
    const ways: string[] = [];
    for (let i = 0; i < 8 && ways.at(-1) !== "at once"; i++) {
      const decided = built.guard(attempt(`Bearer ${token}`));
      ways.push(decided instanceof Promise ? "promise" : "at once");
      const now = await decided;
      expect(now.caller).toEqual(previous.caller);
      expect(now.rateLimit).toMatchObject({ policy: "default", limit: 600 });
      expect(now.rateLimit!.remaining).toBe(previous.rateLimit!.remaining - 1);
      previous = now;
    }
    expect(ways.at(-1)).toBe("at once");
    expect(ways.length).toBeGreaterThan(1);
  });

  it("refuses at once a budget this replica knows is spent, and by a promise while it must ask Redis", async () => {
    const { guard, limiter: small } = await guardFor(3);
    try {
      const ways: string[] = [];
      const reasons: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) {
        let decided: GuardedCall | Promise<GuardedCall>;
        try {
          decided = guard(attempt(`Bearer ${token}`));
        } catch (err) {
          ways.push("thrown at once");
          reasons.push((err as ServiceError).reason);
          continue;
        }
        ways.push(decided instanceof Promise ? "promise" : "at once");
        reasons.push(
          await Promise.resolve(decided).then(
            () => undefined,
            (err: unknown) => (err as ServiceError).reason,
          ),
        );
      }
      // A budget of 3 is leased one call at a time, so each allowed call asks Redis; once Redis has said
      // (with the third) that nothing is left in the window, the refusals need no round trip.
      expect(ways).toEqual(["promise", "promise", "promise", "thrown at once", "thrown at once"]);
      expect(reasons).toEqual([undefined, undefined, undefined, "RATE_LIMITED", "RATE_LIMITED"]);
    } finally {
      await small.close();
    }
  });

  it("refuses a missing or malformed credential by a promise, as before (it is counted against the address)", async () => {
    const built = await guardFor(600);
    try {
      for (const authorization of ["", "Basic abc", "Bearer not-a-jwt"]) {
        const decided = built.guard(attempt(authorization));
        expect(decided).toBeInstanceOf(Promise);
        const err = await Promise.resolve(decided).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ServiceError);
        expect((err as ServiceError).reason).toBe("UNAUTHORIZED");
      }
    } finally {
      await built.limiter.close();
    }
  });
});
