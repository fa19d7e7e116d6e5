import { ServiceError } from "../errors/service-error.js";

/**
 * A call that waits for something the database side is short of (a pooled
 * connection, a group-commit slot, its organization's share) gives up a little
 * before its deadline: it answers UNAVAILABLE with a retry hint, which a client
 * may retry elsewhere, instead of DEADLINE_EXCEEDED, which says the work may
 * have run. The margin leaves time for the answer to reach the client before
 * the client's own timer (started earlier) fires.
 */
export function shedAfterMs(remainingMs: number | undefined, ceilingMs = Number.POSITIVE_INFINITY): number {
  if (remainingMs === undefined) return ceilingMs;
  const margin = Math.min(250, remainingMs * 0.2);
  return Math.max(0, Math.min(ceilingMs, remainingMs - margin));
}

export function overloaded(what: string, retryAfterMs = 1_000): ServiceError {
  return new ServiceError("OVERLOADED", `the service is overloaded (${what}); retry later`, {
    retryAfterMs,
    metadata: { resource: what },
  });
}

/**
 * A warning logged at most once per interval, however often it happens; the
 * next line says how many were left out. For errors that come in storms (a
 * database restart fails every pooled connection at once).
 */
export function rateLimitedWarning(
  warn: (fields: Record<string, unknown>, message: string) => void,
  message: string,
  intervalMs = 10_000,
  now: () => number = Date.now,
): (err: unknown) => void {
  let lastAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (err) => {
    const at = now();
    if (at - lastAt < intervalMs) {
      suppressed++;
      return;
    }
    lastAt = at;
    warn({ err, suppressedSinceLast: suppressed }, message);
    suppressed = 0;
  };
}
