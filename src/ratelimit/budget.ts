import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { Policy } from "./policies.js";
import type { RateLimitOutcome } from "./rate-limiter.js";

export interface Spend {
  allowed: boolean;
  outcome: RateLimitOutcome;
}

/**
 * One policy's counters: consumes one point for a key and says whether the call may go on. A budget
 * that can decide from what it holds in memory answers at once, with no promise: most calls of a hot
 * caller are spent from a lease, and a read should not pay for a round trip it does not make.
 */
export interface Budget {
  readonly policy: Policy;
  spend(key: string): Spend | Promise<Spend>;
}

/** A budget kept in this process only. */
export function memoryBudget(policy: Policy, keyPrefix: string): Budget {
  return budgetOver(policy, new RateLimiterMemory(limiterOptions(policy, keyPrefix)));
}

function limiterOptions(policy: Policy, keyPrefix: string) {
  return { points: policy.points, duration: policy.windowSeconds, keyPrefix: `${keyPrefix}:${policy.name}` };
}

function budgetOver(policy: Policy, limiter: RateLimiterAbstract): Budget {
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
