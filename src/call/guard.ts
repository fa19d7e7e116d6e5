import type { Caller } from "../auth/caller.js";
import { bearerToken, type CallerVerifier } from "../auth/caller-verifier.js";
import { assertMayCallWith } from "../auth/policy.js";
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

/**
 * Decided from memory (a cached caller, a lease this replica holds), the guard answers at once, and
 * a refusal is thrown at once; otherwise it returns a promise. The pipeline awaits only a promise, so
 * the common read takes no microtask turns to be admitted.
 */
export type CallGuard = (attempt: CallAttempt) => GuardedCall | Promise<GuardedCall>;

/**
 * What every call passes before it reaches a domain operation, whatever its
 * protocol: authentication, then rate limits. A call whose credential fails
 * is counted against its client address, and once that address is over its
 * budget such calls are refused RATE_LIMITED instead of UNAUTHENTICATED. A
 * valid credential is always verified first (from the cache, or by one
 * signature check), so it is never refused because others on its address,
 * behind the same proxy or NAT, send bad ones.
 * The edge's one pipeline calls this for every protocol, so none can skip a step.
 * `iframeToken` recognises a bearer that is one of our iframe tokens (undefined
 * for any other) and makes it a caller scoped to verifying itself.
 */
export function createCallGuard(
  verify: CallerVerifier,
  limiter: RateLimiter,
  iframeToken: (bearer: string) => Promise<Caller> | undefined = () => undefined,
): CallGuard {
  const failed = async (attempt: CallAttempt, err: unknown): Promise<never> => {
    // Only the client's own failures count against its address, not faults on our side.
    if (err instanceof ServiceError && (err.reason === "UNAUTHORIZED" || err.reason === "TOKEN_EXPIRED")) {
      await limiter.consumeFailedAuth(attempt.clientAddress);
    }
    throw err;
  };

  const admitted = (attempt: CallAttempt, caller: Caller, rateLimit: RateLimitOutcome | undefined): GuardedCall => {
    assertMayCallWith(caller, attempt.method);
    return { caller, rateLimit };
  };

  const charge = (attempt: CallAttempt, caller: Caller): GuardedCall | Promise<GuardedCall> => {
    // Charged before the scope check, so calls an iframe token may not make still spend its budget.
    const rateLimit = limiter.consumeCall(attempt.method, caller);
    return rateLimit instanceof Promise
      ? rateLimit.then((outcome) => admitted(attempt, caller, outcome))
      : admitted(attempt, caller, rateLimit);
  };

  return (attempt) => {
    let caller: Caller | Promise<Caller>;
    try {
      const token = bearerToken(attempt.authorization);
      if (!token) throw unauthenticated("an Authorization: Bearer token is required");
      caller = iframeToken(token) ?? verify(token);
    } catch (err) {
      return failed(attempt, err);
    }
    if (caller instanceof Promise) {
      return caller.then(
        (verified) => charge(attempt, verified),
        (err: unknown) => failed(attempt, err),
      );
    }
    return charge(attempt, caller);
  };
}
