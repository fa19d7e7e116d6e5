import { retryAfterMsOf } from "../errors/details.js";
import type { ServiceError } from "../errors/service-error.js";
import type { RateLimitOutcome } from "../ratelimit/rate-limiter.js";
import type { HeaderMap } from "./http-types.js";
import { rateLimitHeaders } from "./rate-limit-headers.js";

/** What the pipeline learned about a call that its answer reports, whatever the protocol. */
export interface AnswerState {
  /** The budget the call was counted against (or refused by). */
  rateLimit: RateLimitOutcome | undefined;
  refused: boolean;
}

/**
 * The headers every answer carries beside its protocol's own: the budget's
 * rate-limit state (errors included), and Retry-After when retrying can help.
 * gRPC sends these with an error's other metadata, as trailers; Connect and
 * REST as headers.
 */
export function answerHeaders(state: AnswerState, err: ServiceError | undefined): HeaderMap {
  const headers: HeaderMap = state.rateLimit ? rateLimitHeaders(state.rateLimit, state.refused) : {};
  if (err && headers["retry-after"] === undefined) {
    const retryAfterMs = retryAfterMsOf(err);
    if (retryAfterMs !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
  return headers;
}
