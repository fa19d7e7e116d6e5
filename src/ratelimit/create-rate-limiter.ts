import { RateLimiterMemory } from "rate-limiter-flexible";
import type { Logger } from "pino";
import type { Caller } from "../auth/caller.js";
import type { Config } from "../config/config.js";
import type { Clock } from "../clock.js";
import { memoryBudget, type Budget, type Spend } from "./budget.js";
import { leasedBudget } from "./lease-budget.js";
import { rateLimited, tighterOf } from "./headers.js";
import { callerKeyOf, callerPolicyOf, organizationKeyOf, policiesFrom, type Policy } from "./policies.js";
import type { RateLimitOutcome, RateLimiter } from "./rate-limiter.js";
import { describeTopology, RedisLink } from "./redis-link.js";
import { inSpan, tracing, type Span } from "../tracing/spans.js";

type MaybeOutcome = RateLimitOutcome | undefined;

/**
 * The service's rate limiter: shared by all replicas through Redis when
 * REDIS_URL is set (falling back to per-process limits while Redis is down or
 * slow), per process otherwise.
 */
export function createRateLimiter(
  config: Pick<Config, "redis" | "rateLimit">,
  log: Logger,
  // Redis's TTLs run on real time, so the windows of leases do too (not the app's injectable clock).
  clock: Clock = Date.now,
): RateLimiter {
  const policies = policiesFrom(config.rateLimit);
  const prefix = config.rateLimit.redisKeyPrefix;
  let link: RedisLink | undefined;
  let budgetOf: (policy: Policy) => Budget;
  if (config.redis) {
    const redisLink = new RedisLink({ ...config.redis, probeKey: `${prefix}:health-probe` }, log);
    link = redisLink;
    budgetOf = (policy) => leasedBudget(policy, prefix, redisLink, clock);
    log.info(
      { redis: describeTopology(config.redis.topology), commandTimeoutMs: config.redis.commandTimeoutMs },
      "rate limits are shared through Redis; while it is unreachable they hold per process",
    );
  } else {
    budgetOf = (policy) => memoryBudget(policy, prefix);
    log.warn("REDIS_URL is not set: rate limits are kept per process, so each replica has its own budget");
  }

  const callerBudgets = new Map(
    [policies.iframeToken, policies.iframeTokenStatus, policies.default].map((p) => [p.name, budgetOf(p)]),
  );
  const failedAuth = budgetOf(policies.failedAuth);
  const organization = policies.organization && budgetOf(policies.organization);
  const keyRotation = budgetOf(policies.keyRotation);
  // Addresses that used up their failed-auth budget, kept here so a flood of failures costs no Redis round trips.
  const blockedAddresses = new RateLimiterMemory({ points: 1, duration: policies.failedAuth.windowSeconds });

  /** Limits must not take the service down: a limiter fault lets the call through, loudly. */
  const faulted = (err: unknown, budget: Budget): undefined => {
    log.error({ err, policy: budget.policy.name }, "rate limiter failed; letting the call through");
    return undefined;
  };
  const spend = (budget: Budget, key: string): Spend | undefined | Promise<Spend | undefined> => {
    let spent: Spend | Promise<Spend>;
    try {
      spent = budget.spend(key);
    } catch (err) {
      return faulted(err, budget);
    }
    return spent instanceof Promise ? spent.catch((err: unknown) => faulted(err, budget)) : spent;
  };

  return {
    consumeCall(method: string, caller: Caller) {
      // Untraced, a call spent from a lease is decided with no promise at all (see Budget).
      if (!tracing()) return consumeCall(method, caller);
      return inSpan("rate limit", { attributes: backend }, async (span) => {
        const outcome = await consumeCall(method, caller);
        describe(span, outcome);
        return outcome;
      });
    },

    consumeFailedAuth(clientAddress: string): Promise<void> {
      return inSpan("rate limit failed authentication", { attributes: backend }, () =>
        consumeFailedAuth(clientAddress),
      );
    },

    async consumeKeyRotation(organizationId: string): Promise<void> {
      const spent = await spend(keyRotation, encodeURIComponent(organizationId));
      if (spent && !spent.allowed) throw rateLimited(spent.outcome);
    },

    health() {
      if (!link) return { backend: "in-process", redisHealthy: undefined };
      const healthy = link.isHealthy();
      return { backend: healthy ? "redis" : "in-process", redisHealthy: healthy };
    },

    async close() {
      await link?.close();
    },
  };

  function backend() {
    return { "dashboard.rate_limit.backend": link?.isHealthy() ? "redis" : "in-process" };
  }

  /** Throws the refusal (RATE_LIMITED); returns, or resolves to, the tighter of the budgets spent. */
  function consumeCall(method: string, caller: Caller): MaybeOutcome | Promise<MaybeOutcome> {
    const budget = callerBudgets.get(callerPolicyOf(policies, method, caller).name)!;
    const own = spend(budget, callerKeyOf(caller));
    return own instanceof Promise ? own.then((o) => afterOwn(caller, o)) : afterOwn(caller, own);
  }

  function afterOwn(caller: Caller, own: Spend | undefined): MaybeOutcome | Promise<MaybeOutcome> {
    if (own && !own.allowed) throw rateLimited(own.outcome);
    // Only calls the caller's own budget allows count against the organization, so one noisy
    // caller that is already refused cannot use up the ceiling of everyone else in it.
    if (!organization) return own?.outcome;
    const org = spend(organization, organizationKeyOf(caller));
    return org instanceof Promise ? org.then((o) => bothSpent(own, o)) : bothSpent(own, org);
  }

  function bothSpent(own: Spend | undefined, org: Spend | undefined): MaybeOutcome {
    if (org && !org.allowed) throw rateLimited(org.outcome);
    if (own && org) return tighterOf(own.outcome, org.outcome);
    return own?.outcome ?? org?.outcome;
  }

  async function consumeFailedAuth(clientAddress: string): Promise<void> {
    const blocked = await blockedAddresses.get(clientAddress);
    if (blocked && blocked.consumedPoints > 1 && blocked.msBeforeNext > 0) {
      throw rateLimited({
        policy: policies.failedAuth.name,
        limit: policies.failedAuth.points,
        remaining: 0,
        resetMs: blocked.msBeforeNext,
        windowSeconds: policies.failedAuth.windowSeconds,
      });
    }
    const spent = await spend(failedAuth, clientAddress);
    if (!spent) return;
    if (spent.outcome.remaining === 0 && spent.outcome.resetMs > 0) {
      await blockedAddresses.block(clientAddress, Math.ceil(spent.outcome.resetMs / 1000));
    }
    if (!spent.allowed) throw rateLimited(spent.outcome);
  }
}

/** The decision, in counts only: which policy, its limit and what is left of it. */
function describe(span: Span | undefined, outcome: RateLimitOutcome | undefined): void {
  if (!span || !outcome) return;
  span.setAttributes({
    "dashboard.rate_limit.policy": outcome.policy,
    "dashboard.rate_limit.limit": outcome.limit,
    "dashboard.rate_limit.remaining": outcome.remaining,
  });
}
