import type { RateLimitOutcome } from "../ratelimit/rate-limiter.js";

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * The answer's headers of the IETF draft "RateLimit header fields for HTTP"
 * (the ratelimit-limit/-remaining/-reset form) for the budget a call was
 * counted against, plus retry-after when it was refused. Every protocol sends
 * the same ones; gRPC sends them with the rest of an error's metadata, as trailers.
 */
export function rateLimitHeaders(outcome: RateLimitOutcome, refused: boolean): Record<string, string> {
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
