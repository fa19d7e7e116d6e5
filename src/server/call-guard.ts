import type { Caller } from "../auth/caller.js";
import { bearerToken, type CallerVerifier } from "../auth/caller-verifier.js";
import { unauthenticated } from "../errors/service-error.js";
import type { RateLimitOutcome, RateLimiter } from "../ratelimit/rate-limiter.js";

export interface CallAttempt {
  /** The RPC name (e.g. "GetDashboard"); REST routes name the RPC they stand for. */
  method: string;
  authorization: string | null | undefined;
  clientAddress: string;
}

export interface GuardedCall {
  caller: Caller;
  rateLimit: RateLimitOutcome | undefined;
}

export type CallGuard = (attempt: CallAttempt) => Promise<GuardedCall>;

/**
 * What every call passes before it reaches a domain operation, whatever its
 * protocol: authentication, then rate limits. Connect and REST both call this,
 * so neither can skip a step.
 */
export function createCallGuard(verify: CallerVerifier, limiter: RateLimiter): CallGuard {
  return async (attempt) => {
    let caller: Caller;
    try {
      const token = bearerToken(attempt.authorization);
      if (!token) throw unauthenticated("an Authorization: Bearer token is required");
      caller = await verify(token);
    } catch (err) {
      await limiter.consumeFailedAuth(attempt.clientAddress);
      throw err;
    }
    return { caller, rateLimit: await limiter.consumeCall(attempt.method, caller) };
  };
}
