import { LRUCache } from "lru-cache";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { Clock } from "../clock.js";
import type { Policy } from "./policies.js";
import type { RateLimitOutcome } from "./rate-limiter.js";
import type { Budget, Spend } from "./budget.js";

/**
 * The one Redis operation of a leased budget: reserve up to `want` calls of a key's window
 * budget, atomically. The key counts what has been handed out in its window and expires with
 * the window, so nothing ever hands out more than `limit` per window, whatever the replicas do.
 * Returns { granted, unreserved after this grant, milliseconds left in the window }.
 */
export const RESERVE_SCRIPT = `
local limit = tonumber(ARGV[2])
local reserved = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.max(0, math.min(tonumber(ARGV[1]), limit - reserved))
if reserved == 0 then
  if grant > 0 then redis.call('SET', KEYS[1], grant, 'PX', ARGV[3]) end
elseif grant > 0 then
  redis.call('INCRBY', KEYS[1], grant)
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[3])
  if reserved > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return {grant, limit - reserved - grant, ttl}
`;

/** What the Redis side of a leased budget must do; RedisLink implements it for one node, Sentinel or Cluster. */
export interface LeaseStore {
  /** Runs RESERVE_SCRIPT on `key`; rejects when Redis cannot answer. */
  reserve(key: string, want: number, limit: number, windowMs: number): Promise<[number, number, number]>;
  /** Whether commands can be sent now (no offline queue: when not, a call falls back at once). */
  ready(): boolean;
  /** Told when a call had to be decided in process, so Redis health is tracked. */
  fellBack(): void;
}

export interface LeaseTuning {
  /** The largest slice one replica reserves at a time. */
  maxLease: number;
  /** A lease is at most this fraction of the budget left unreserved, so replicas share the tail fairly. */
  shareOfUnreserved: number;
  /** A lease spent faster than this asks for twice as much next time; slower, half as much. */
  targetMs: number;
  /** Keys (callers, addresses) this replica remembers leases for; the least recent are forgotten. */
  maxKeys: number;
}

export const DEFAULT_LEASE_TUNING: LeaseTuning = {
  maxLease: 64,
  shareOfUnreserved: 1 / 8,
  targetMs: 1000,
  maxKeys: 100_000,
};

interface Lease {
  /** Calls this replica may still allow in the window, with no round trip. */
  left: number;
  /** What Redis had not handed to anyone at the last round trip. */
  unreserved: number;
  /** When the window ends by this replica's clock: never later than Redis's own expiry. */
  endsAt: number;
  /** The size of the last reservation, and when it was made, to size the next. */
  size: number;
  reservedAt: number;
}

/**
 * A Redis-kept budget spent from leases: a replica reserves a slice of a key's window budget in
 * one atomic round trip, then spends it locally. The sum of the slices never exceeds the limit, so
 * across replicas the limit is an exact upper bound while Redis is consistent; the only
 * inexactness is early refusal while slices sit unspent on other replicas (they expire with the
 * window). The slice is 1 whenever the budget left is small (CreateIframeToken's 10 a minute is
 * exact call by call), and grows for a caller that spends it fast.
 *
 * The window end is computed from the time the request was sent plus Redis's remaining TTL, so a
 * lease is never spent after Redis has started a new window. When Redis is not ready, or a
 * reservation fails or times out, the in-process insurance limiter decides, as before.
 */
export function leasedBudget(
  policy: Policy,
  keyPrefix: string,
  store: LeaseStore,
  clock: Clock,
  tuning: LeaseTuning = DEFAULT_LEASE_TUNING,
): Budget {
  const windowMs = policy.windowSeconds * 1000;
  const leases = new LRUCache<string, Lease>({ max: tuning.maxKeys });
  const inFlight = new Map<string, Promise<Lease>>();
  /** Calls of this replica waiting for a key's next slice: the slice asks for at least that many. */
  const waiting = new Map<string, number>();
  const insurance = new RateLimiterMemory({
    points: policy.points,
    duration: policy.windowSeconds,
    keyPrefix: `${keyPrefix}:${policy.name}`,
  });
  // One hash slot per budget key on a Cluster; the caller part is URI-escaped, so it holds no braces.
  const redisKey = (key: string) => `{${keyPrefix}:${policy.name}:${key}}`;

  const outcome = (lease: Lease, now: number): RateLimitOutcome => ({
    policy: policy.name,
    limit: policy.points,
    remaining: Math.min(policy.points, lease.left + lease.unreserved),
    resetMs: Math.max(0, lease.endsAt - now),
    windowSeconds: policy.windowSeconds,
  });

  const nextSize = (previous: Lease | undefined, demand: number, now: number): number => {
    const current = previous !== undefined && previous.endsAt > now;
    const unreserved = current ? previous.unreserved : policy.points;
    const cap = Math.max(1, Math.min(tuning.maxLease, Math.floor(unreserved * tuning.shareOfUnreserved)));
    let bySpeed = 1;
    if (current) {
      const fast = now - previous.reservedAt < tuning.targetMs;
      bySpeed = fast ? previous.size * 2 : Math.max(1, Math.floor(previous.size / 2));
    }
    // Calls waiting now are spent at once, so they are not hoarding: only the guess from speed is capped.
    return Math.min(tuning.maxLease, Math.max(Math.min(cap, bySpeed), demand));
  };

  const reserve = async (key: string, now: number): Promise<Lease> => {
    // One microtask, so calls woken by the previous slice join this one before its size is chosen.
    await Promise.resolve();
    const previous = leases.get(key);
    const want = nextSize(previous, waiting.get(key) ?? 1, now);
    const [granted, unreserved, ttlMs] = await store.reserve(redisKey(key), want, policy.points, windowMs);
    const lease: Lease = {
      left: granted,
      unreserved,
      endsAt: now + ttlMs,
      size: Math.max(1, granted),
      reservedAt: now,
    };
    leases.set(key, lease);
    return lease;
  };

  /** One reservation per key at a time: calls arriving while it is out wait for it and share its slice. */
  const reserveOnce = (key: string, now: number): Promise<Lease> => {
    let pending = inFlight.get(key);
    if (!pending) {
      pending = reserve(key, now).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  };

  const fromInsurance = async (key: string): Promise<Spend> => {
    store.fellBack();
    const outcomeOf = (res: RateLimiterRes): RateLimitOutcome => ({
      policy: policy.name,
      limit: policy.points,
      remaining: Math.max(0, res.remainingPoints),
      resetMs: Math.max(0, res.msBeforeNext),
      windowSeconds: policy.windowSeconds,
    });
    try {
      return { allowed: true, outcome: outcomeOf(await insurance.consume(key)) };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { allowed: false, outcome: outcomeOf(err) };
      throw err;
    }
  };

  /** Spent from the lease this replica holds, or undefined when only Redis can say. */
  const spendHeld = (key: string, now: number): Spend | undefined => {
    const lease = leases.get(key);
    if (!lease || lease.endsAt <= now) return undefined;
    if (lease.left > 0) {
      lease.left--;
      return { allowed: true, outcome: outcome(lease, now) };
    }
    // Exhausted for the rest of the window: refused with no round trip.
    if (lease.unreserved <= 0) return { allowed: false, outcome: outcome(lease, now) };
    return undefined;
  };

  /** For a call the held lease could not decide at `now` (spend has just looked). */
  const spendReserving = async (key: string, now: number): Promise<Spend> => {
    // Bounded by the budget: every reservation this call waits for either grants at least one call
    // to someone or learns that the window's budget is gone, which ends the loop.
    for (let attempt = 0; attempt <= policy.points + 1; attempt++) {
      if (attempt > 0) {
        now = clock();
        const held = spendHeld(key, now);
        if (held) return held;
      }
      if (!store.ready()) return fromInsurance(key);
      waiting.set(key, (waiting.get(key) ?? 0) + 1);
      try {
        await reserveOnce(key, now);
      } catch {
        return fromInsurance(key);
      } finally {
        const left = (waiting.get(key) ?? 1) - 1;
        if (left > 0) waiting.set(key, left);
        else waiting.delete(key);
      }
    }
    // Unreachable while Redis keeps its word; refused rather than looping on a store that does not.
    const lease = leases.get(key);
    now = clock();
    return {
      allowed: false,
      outcome: lease
        ? outcome(lease, now)
        : outcome({ left: 0, unreserved: 0, endsAt: now, size: 1, reservedAt: now }, now),
    };
  };

  return {
    policy,
    spend: (key) => {
      const now = clock();
      return spendHeld(key, now) ?? spendReserving(key, now);
    },
  };
}
