import type { Caller } from "../auth/caller.js";
import { bearerToken, type CallerVerifier } from "../auth/caller-verifier.js";
import { ServiceError, unauthenticated } from "../errors/service-error.js";
import type { RateLimitOutcome, RateLimiter } from "../ratelimit/rate-limiter.js";

export interface CallAttempt {
  /** The RPC name (e.g. "GetDashboard"); REST routes name the RPC they stand for. */
  method: string;
  authorization: string | null | undefined;
  /** Who the edge says is calling (the peer, or behind trusted proxies the forwarded address). */
  clientAddress: string;
}

export interface GuardedCall {
  caller: Caller;
  /** The budget the call was counted against, for rate-limit response headers (see rateLimitHeaders). */
  rateLimit: RateLimitOutcome | undefined;
}

export type CallGuard = (attempt: CallAttempt) => Promise<GuardedCall>;

/**
 * What every call passes before it reaches a domain operation, whatever its
 * protocol: authentication, then rate limits. A call whose credential fails
 * is counted against its client address, and once that address is over its
 * budget such calls are refused RATE_LIMITED instead of UNAUTHENTICATED. A
 * valid credential is always verified first (from the cache, or by one
 * signature check), so it is never refused because others on its address,
 * behind the same proxy or NAT, send bad ones.
 * The edge's one pipeline calls this for every protocol, so none can skip a step.
 */
export function createCallGuard(verify: CallerVerifier, limiter: RateLimiter): CallGuard {
  return async (attempt) => {
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
