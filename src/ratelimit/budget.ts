import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { Policy } from "./policies.js";
import type { RateLimitOutcome } from "./rate-limiter.js";
import type { RedisLink } from "./redis-link.js";
import { inSpan, SpanKind } from "../tracing/spans.js";

export interface Spend {
  allowed: boolean;
  outcome: RateLimitOutcome;
}

/** One policy's counters: consumes one point for a key and says whether the call may go on. */
export interface Budget {
  readonly policy: Policy;
  spend(key: string): Promise<Spend>;
}

/** A budget kept in this process only. */
export function memoryBudget(policy: Policy, keyPrefix: string): Budget {
  return budgetOver(policy, new RateLimiterMemory(limiterOptions(policy, keyPrefix)));
}

/**
 * A budget kept in Redis: one atomic INCR-with-expiry script per permitted
 * call. Once a key reaches its limit this process remembers it for the rest
 * of the window, so refused calls cost no Redis round trip. When Redis is not
 * ready or a command fails or times out, the in-process insurance limiter
 * decides instead (limits then hold per process).
 */
export function redisBudget(policy: Policy, keyPrefix: string, link: RedisLink): Budget {
  const insurance = new FallbackMemory(limiterOptions(policy, keyPrefix), () => link.fellBack());
  const limiter = new RateLimiterRedis({
    ...limiterOptions(policy, keyPrefix),
    storeClient: link.client,
    rejectIfRedisNotReady: true,
    inMemoryBlockOnConsumed: policy.points,
    insuranceLimiter: insurance,
  });
  const budget = budgetOver(policy, limiter);
  // The library sends its increment script as EVALSHA; the span is Redis's side of the decision. Only
  // the server's address goes in, never the URL (it may hold a password) nor the key (it names the caller).
  const attributes = () => ({
    "db.system": "redis",
    "db.system.name": "redis",
    "db.operation.name": "EVALSHA",
    "server.address": link.client.options.host ?? "",
    "server.port": link.client.options.port ?? 6379,
  });
  return {
    policy,
    spend: (key) =>
      inSpan("EVALSHA", { kind: SpanKind.CLIENT, attributes }, async (span) => {
        const spent = await budget.spend(key);
        // Unhealthy after the call: the in-process limiter decided instead (Redis was not ready or too slow).
        span?.setAttribute("dashboard.rate_limit.fell_back", !link.isHealthy());
        return spent;
      }),
  };
}

function limiterOptions(policy: Policy, keyPrefix: string) {
  return { points: policy.points, duration: policy.windowSeconds, keyPrefix: `${keyPrefix}:${policy.name}` };
}

/** The in-process limiter Redis falls back to; it reports each use so Redis health can be tracked. */
class FallbackMemory extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse: () => void,
  ) {
    super(options);
  }

  override consume(
    key: string | number,
    points?: number,
    options?: { [key: string]: unknown },
  ): Promise<RateLimiterRes> {
    this.onUse();
    return super.consume(key, points, options);
  }
}

function budgetOver(policy: Policy, limiter: RateLimiterAbstract | RateLimiterRedis): Budget {
  const outcomeOf = (res: RateLimiterRes): RateLimitOutcome => ({
    policy: policy.name,
    limit: policy.points,
    remaining: Math.max(0, res.remainingPoints ?? 0),
    resetMs: Math.max(0, res.msBeforeNext ?? 0),
    windowSeconds: policy.windowSeconds,
  });
  return {
    policy,
    async spend(key) {
      try {
        return { allowed: true, outcome: outcomeOf(await limiter.consume(key)) };
      } catch (err) {
        // The library refuses with a RateLimiterRes; anything else is a fault, thrown to the caller.
        if (err instanceof RateLimiterRes) return { allowed: false, outcome: outcomeOf(err) };
        throw err;
      }
    },
  };
}
