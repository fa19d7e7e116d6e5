import { ServiceError } from "../errors/service-error.js";
import type { RateLimitOutcome } from "./rate-limiter.js";

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * A call refused by a budget. It carries the budget's state as a typed
 * outcome, from which the edge derives the answer's rate-limit headers, the
 * same on every protocol.
 */
export class RateLimitRefusal extends ServiceError {
  constructor(readonly outcome: RateLimitOutcome) {
    const retryAfterMs = Math.max(1000, outcome.resetMs);
    super(
      "RATE_LIMITED",
      `rate limit exceeded (${outcome.policy}: ${outcome.limit} per ${outcome.windowSeconds} s); retry in ${seconds(retryAfterMs)} s`,
      { retryAfterMs, metadata: { policy: outcome.policy } },
    );
  }
}

export const rateLimited = (outcome: RateLimitOutcome) => new RateLimitRefusal(outcome);

/** Of two budgets a call was counted against, the one closer to refusing it (what the draft says to report). */
export function tighterOf(a: RateLimitOutcome, b: RateLimitOutcome): RateLimitOutcome {
  if (a.remaining !== b.remaining) return a.remaining < b.remaining ? a : b;
  return a.resetMs >= b.resetMs ? a : b;
}
