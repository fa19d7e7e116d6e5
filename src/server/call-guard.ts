import type { Caller } from "../auth/caller.js";
import { bearerToken, type CallerVerifier } from "../auth/caller-verifier.js";
import { ServiceError, unauthenticated } from "../errors/service-error.js";
import type { RateLimitOutcome, RateLimiter } from "../ratelimit/rate-limiter.js";

export interface CallAttempt {
  /** The RPC name (e.g. "GetDashboard"); REST routes name the RPC they stand for. */
  method: string;
  authorization: string | null | undefined;
  clientAddress: string;
  /** The HTTP request the call came on, where the edge has it (REST), for the call log. */
  request?: object;
}

export interface GuardedCall {
  caller: Caller;
  /** The budget the call was counted against, for rate-limit response headers (see rateLimitHeaders). */
  rateLimit: RateLimitOutcome | undefined;
}

export type CallGuard = (attempt: CallAttempt) => Promise<GuardedCall>;

/**
 * What every call passes before it reaches a domain operation, whatever its
 * protocol: an address already refused for failed authentications is turned
 * away before any token is verified, then authentication, then rate limits.
 * Connect and REST both call this, so neither can skip a step.
 */
export function createCallGuard(verify: CallerVerifier, limiter: RateLimiter): CallGuard {
  return async (attempt) => {
    await limiter.checkClientAddress(attempt.clientAddress);
    let caller: Caller;
    try {
      const token = bearerToken(attempt.authorization);
      if (!token) throw unauthenticated("an Authorization: Bearer token is required");
      caller = await verify(token);
    } catch (err) {
      // Only the client's own failures count against its address, not faults on our side.
      if (err instanceof ServiceError && err.reason === "UNAUTHORIZED") {
        await limiter.consumeFailedAuth(attempt.clientAddress);
      }
      throw err;
    }
    return { caller, rateLimit: await limiter.consumeCall(attempt.method, caller) };
  };
}
