import type { Caller } from "../auth/caller.js";

/** The state of the budget a call was counted against, for response headers. */
export interface RateLimitOutcome {
  policy: string;
  limit: number;
  remaining: number;
  /** Milliseconds until the budget is full again. */
  resetMs: number;
  /** The length of the policy's window, for the ratelimit-policy header. */
  windowSeconds: number;
}

/**
 * Rate limits, protocol-neutral so every edge shares them. Refusals are
 * RateLimitRefusal errors (reason RATE_LIMITED) that carry the budget's
 * outcome; the edge renders it as headers.
 */
export interface RateLimiter {
  /**
   * Counts an authenticated call of `method` (the RPC name, e.g. "CreateIframeToken") against its budgets.
   * Decided from memory (a lease this replica holds), it returns at once, and a refusal is thrown at
   * once; otherwise it returns a promise.
   */
  consumeCall(method: string, caller: Caller): RateLimitOutcome | undefined | Promise<RateLimitOutcome | undefined>;
  /**
   * Counts a failed authentication from this client address; refuses (RATE_LIMITED) once the address
   * is over budget. Only failures are counted: a valid credential is never refused for its address.
   */
  consumeFailedAuth(clientAddress: string): Promise<void>;
  /** Counts one signing-key rotation of the organization; refuses (RATE_LIMITED) once it is over its budget. */
  consumeKeyRotation(organizationId: string): Promise<void>;
  /** Where limits are kept now, for readiness and logs: shared in Redis, or per process (by choice or as a fallback). */
  health(): { backend: "redis" | "in-process"; redisHealthy: boolean | undefined };
  close(): Promise<void>;
}

export const noRateLimits: RateLimiter = {
  consumeCall: () => Promise.resolve(undefined),
  consumeFailedAuth: () => Promise.resolve(),
  consumeKeyRotation: () => Promise.resolve(),
  health: () => ({ backend: "in-process", redisHealthy: undefined }),
  close: () => Promise.resolve(),
};
