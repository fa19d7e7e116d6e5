import { describe, expect, it } from "vitest";
import { VerifiedTokenCache } from "../../src/auth/verified-token-cache.js";
import type { Caller } from "../../src/auth/caller.js";

const caller = (subject: string): Caller => ({ subject, organizationId: "o", isAdmin: false, tenantIds: new Set() });

describe("the verified-token cache", () => {
  it("returns a caller until its token expires, and not after", () => {
    const cache = new VerifiedTokenCache(10, 60_000);
    cache.set("t", caller("a"), 1_000_500, 1_000_000);
    expect(cache.get("t", 1_000_499)?.subject).toBe("a");
    expect(cache.get("t", 1_000_500)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("keeps no entry longer than its maximum age, even for a long-lived token", () => {
    const cache = new VerifiedTokenCache(10, 1_000);
    cache.set("t", caller("a"), 10_000_000, 0);
    expect(cache.get("t", 999)).toBeDefined();
    expect(cache.get("t", 1_000)).toBeUndefined();
  });

  it("does not store an already expired token", () => {
    const cache = new VerifiedTokenCache();
    cache.set("t", caller("a"), 5, 10);
    expect(cache.get("t", 10)).toBeUndefined();
  });

  it("stays bounded, dropping the oldest entries", () => {
    const cache = new VerifiedTokenCache(3, 60_000);
    for (const t of ["a", "b", "c", "d"]) cache.set(t, caller(t), 100_000, 0);
    expect(cache.size).toBe(3);
    expect(cache.get("a", 1)).toBeUndefined();
    expect(cache.get("d", 1)?.subject).toBe("d");
  });
});
