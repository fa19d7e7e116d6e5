import { describe, expect, it } from "vitest";
import type { Caller } from "../../src/auth/caller.js";
import { callerBytes, VerifiedTokenCache } from "../../src/auth/verified-token-cache.js";
import { ManualClock } from "../helpers/clock.js";

const caller = (subject: string, tenants = 0): Caller => ({
  subject,
  organizationId: "o",
  isAdmin: false,
  tenantIds: new Set(Array.from({ length: tenants }, (_, i) => `tenant-${i}`)),
});

function cacheWith(clock: ManualClock, maxBytes = 1_000_000, maxAgeMs = 60_000) {
  return new VerifiedTokenCache({ maxBytes, maxAgeMs, now: clock.now });
}

describe("the verified-token cache", () => {
  it("returns a caller until its token expires, and not after", () => {
    const clock = new ManualClock(1_000_000);
    const cache = cacheWith(clock);
    cache.set("t", caller("a"), 1_000_500);
    clock.advance(499);
    expect(cache.get("t")?.subject).toBe("a");
    clock.advance(1);
    expect(cache.get("t")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("keeps no entry longer than its maximum age, even for a long-lived token", () => {
    const clock = new ManualClock(1_000_000);
    const cache = cacheWith(clock, 1_000_000, 1_000);
    cache.set("t", caller("a"), 100_000_000);
    clock.advance(999);
    expect(cache.get("t")).toBeDefined();
    clock.advance(1);
    expect(cache.get("t")).toBeUndefined();
  });

  it("holds nothing when its budget is 0 (the cache turned off), rather than refusing to start", () => {
    const clock = new ManualClock(1_000_000);
    const cache = cacheWith(clock, 0);
    cache.set("t", caller("a"), 1_060_000);
    expect(cache.get("t")).toBeUndefined();
    expect([cache.size, cache.bytes]).toEqual([0, 0]);
  });

  it("does not store an already expired token", () => {
    const clock = new ManualClock(1_000_010);
    const cache = cacheWith(clock);
    cache.set("t", caller("a"), 1_000_005);
    expect(cache.get("t")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("is bounded by the size of what it holds, not the number of entries: large callers push the oldest out", () => {
    const clock = new ManualClock(1_000_000);
    const big = caller("big", 1000);
    const maxBytes = Math.floor(3.5 * callerBytes(big));
    const cache = cacheWith(clock, maxBytes);
    for (let i = 0; i < 10; i++) cache.set(`token-${i}`, caller(`big-${i}`, 1000), 1_100_000);
    expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
    expect(cache.size).toBe(3);
    expect(cache.get("token-0")).toBeUndefined();
    expect(cache.get("token-9")?.subject).toBe("big-9");
    // Small callers fit by the hundred in the same budget.
    for (let i = 0; i < 200; i++) cache.set(`small-${i}`, caller(`small-${i}`), 1_100_000);
    expect(cache.size).toBeGreaterThan(100);
    expect(cache.bytes).toBeLessThanOrEqual(maxBytes);
  });

  it("sweeps expired entries without waiting for them to be read", () => {
    const clock = new ManualClock(1_000_000);
    const cache = cacheWith(clock);
    for (let i = 0; i < 50; i++) cache.set(`short-${i}`, caller(`s${i}`), 1_001_000);
    expect(cache.size).toBe(50);
    clock.advance(10_000);
    cache.set("later", caller("l"), 1_100_000);
    expect(cache.size).toBe(1);
  });

  it("counts the token itself in an entry's size, and hits only on the exact token", () => {
    const clock = new ManualClock(1_000_000);
    const cache = cacheWith(clock);
    const long = "x".repeat(10_000);
    cache.set(long, caller("a"), 1_100_000);
    cache.set("y", caller("b"), 1_100_000);
    expect(cache.bytes).toBe(2 * callerBytes(caller("a")) + 2 * (long.length + 1));
    expect(cache.get(`${long}x`)).toBeUndefined();
    expect(cache.get(long.slice(1))).toBeUndefined();
    expect(cache.get("x".repeat(10_000))?.subject).toBe("a");
  });
});
