import type { Caller } from "../auth/caller.js";

/** The state of the budget a call was counted against, for response headers. */
export interface RateLimitOutcome {
  policy: string;
  limit: number;
  remaining: number;
  /** Milliseconds until the budget is full again. */
  resetMs: number;
}

/**
 * Rate limits, protocol-neutral so Connect and REST share them. Refusals are
 * ServiceError("RATE_LIMITED") with retryAfterMs and metadata.policy.
 */
export interface RateLimiter {
  /** Counts an authenticated call of `method` (the RPC name, e.g. "CreateIframeToken") against its budgets. */
  consumeCall(method: string, caller: Caller): Promise<RateLimitOutcome | undefined>;
  /** Counts a failed authentication from this client address; refuses once the address is over budget. */
  consumeFailedAuth(clientAddress: string): Promise<void>;
  /** Where limits are kept now, for readiness and logs: shared in Redis, or per process (by choice or as a fallback). */
  health(): { backend: "redis" | "in-process"; redisHealthy: boolean | undefined };
  close(): Promise<void>;
}

export const noRateLimits: RateLimiter = {
  consumeCall: async () => undefined,
  consumeFailedAuth: async () => {},
  health: () => ({ backend: "in-process", redisHealthy: undefined }),
  close: async () => {},
};
