import { ServiceError } from "../errors/service-error.js";
import type { RateLimitOutcome } from "./rate-limiter.js";

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * The response headers of the IETF draft "RateLimit header fields for HTTP"
 * (the ratelimit-limit/-remaining/-reset form), plus retry-after on a refusal.
 * Every protocol edge (Connect, REST) sends the same ones.
 */
export function rateLimitHeaders(outcome: RateLimitOutcome, refused = false): Record<string, string> {
  const reset = seconds(outcome.resetMs);
  const headers: Record<string, string> = {
    "ratelimit-limit": String(outcome.limit),
    "ratelimit-remaining": String(outcome.remaining),
    "ratelimit-reset": String(reset),
    "ratelimit-policy": `${outcome.limit};w=${outcome.windowSeconds}`,
  };
  // A retry in 0 seconds would invite a busy loop; the budget refills at the earliest in a second.
  if (refused) headers["retry-after"] = String(Math.max(1, reset));
  return headers;
}

/** The refusal of a call over `outcome`'s budget, carrying what a client needs to back off. */
export function rateLimited(outcome: RateLimitOutcome): ServiceError {
  const retryAfterMs = Math.max(1000, outcome.resetMs);
  return new ServiceError(
    "RATE_LIMITED",
    `rate limit exceeded (${outcome.policy}: ${outcome.limit} per ${outcome.windowSeconds} s); retry in ${seconds(retryAfterMs)} s`,
    { retryAfterMs, metadata: { policy: outcome.policy }, headers: rateLimitHeaders(outcome, true) },
  );
}

/** Of two budgets a call was counted against, the one closer to refusing it (what the draft says to report). */
export function tighterOf(a: RateLimitOutcome, b: RateLimitOutcome): RateLimitOutcome {
  if (a.remaining !== b.remaining) return a.remaining < b.remaining ? a : b;
  return a.resetMs >= b.resetMs ? a : b;
}
