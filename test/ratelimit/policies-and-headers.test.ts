import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { rateLimitHeaders } from "../../src/edge/rate-limit-headers.js";
import { rateLimited, tighterOf } from "../../src/ratelimit/headers.js";
import { callerKeyOf, callerPolicyOf, organizationKeyOf, policiesFrom } from "../../src/ratelimit/policies.js";
import { reconnectDelayMs } from "../../src/ratelimit/redis-link.js";
import type { Caller } from "../../src/auth/caller.js";

const caller = (organizationId: string, subject: string): Caller => ({
  organizationId,
  subject,
  isAdmin: false,
  tenantIds: new Set(),
});

describe("policies", () => {
  it("takes the guide's defaults from an empty environment", () => {
    const p = policiesFrom(loadConfig({}).rateLimit);
    expect(p.iframeToken).toEqual({ name: "iframe-token", points: 10, windowSeconds: 60 });
    expect(p.iframeTokenStatus).toEqual({ name: "iframe-token-status", points: 30, windowSeconds: 60 });
    expect(p.default).toEqual({ name: "default", points: 600, windowSeconds: 60 });
    expect(p.failedAuth).toEqual({ name: "failed-auth", points: 30, windowSeconds: 60 });
    expect(p.organization).toBeUndefined();
    expect(loadConfig({}).rateLimit.redisKeyPrefix).toBe("dashboard-service:rl");
  });

  it("turns the organization ceiling on when it is set", () => {
    const p = policiesFrom(loadConfig({ RATE_LIMIT_ORGANIZATION_PER_MINUTE: "5000" }).rateLimit);
    expect(p.organization).toEqual({ name: "organization", points: 5000, windowSeconds: 60 });
  });

  it("rejects limits that are not positive integers", () => {
    expect(() => loadConfig({ RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "0" })).toThrow(/RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE/);
    expect(() => loadConfig({ RATE_LIMIT_DEFAULT_PER_MINUTE: "1.5" })).toThrow(/RATE_LIMIT_DEFAULT_PER_MINUTE/);
  });

  it("holds CreateIframeToken to its own policy and every other RPC to the default", () => {
    const p = policiesFrom(loadConfig({}).rateLimit);
    expect(callerPolicyOf(p, "CreateIframeToken").name).toBe("iframe-token");
    for (const m of ["CreateDashboard", "GetDashboard", "ListDashboards", "DeleteDashboard", "Anything"]) {
      expect(callerPolicyOf(p, m).name).toBe("default");
    }
  });

  it("holds every call made with an iframe token to that token's status policy", () => {
    const p = policiesFrom(loadConfig({}).rateLimit);
    const renderer: Caller = { ...caller("acme", "iframe-token:j1"), iframeTokenId: "j1" };
    for (const m of ["VerifyIframeToken", "CreateIframeToken", "ListDashboards"]) {
      expect(callerPolicyOf(p, m, renderer).name).toBe("iframe-token-status");
    }
    expect(callerPolicyOf(p, "VerifyIframeToken", caller("acme", "alice")).name).toBe("default");
  });

  it("keys callers by organization and subject, without collisions between crafted ids", () => {
    expect(callerKeyOf(caller("acme", "alice"))).toBe("acme:alice");
    expect(callerKeyOf(caller("a:b", "c"))).not.toBe(callerKeyOf(caller("a", "b:c")));
    expect(callerKeyOf(caller("acme", "alice"))).not.toBe(callerKeyOf(caller("other", "alice")));
    expect(organizationKeyOf(caller("a:b", "c"))).toBe("a%3Ab");
  });
});

describe("rate-limit headers", () => {
  const outcome = { policy: "iframe-token", limit: 10, remaining: 3, resetMs: 41_200, windowSeconds: 60 };

  it("gives the draft's fields on a permitted call, with the reset rounded up to whole seconds", () => {
    expect(rateLimitHeaders(outcome, false)).toEqual({
      "ratelimit-limit": "10",
      "ratelimit-remaining": "3",
      "ratelimit-reset": "42",
      "ratelimit-policy": "10;w=60",
    });
  });

  it("adds retry-after, never 0, on a refusal", () => {
    expect(rateLimitHeaders({ ...outcome, remaining: 0 }, true)["retry-after"]).toBe("42");
    expect(rateLimitHeaders({ ...outcome, remaining: 0, resetMs: 0 }, true)["retry-after"]).toBe("1");
  });

  it("builds the RATE_LIMITED error with the policy, the delay and the typed outcome (no headers: the edge derives them)", () => {
    const err = rateLimited({ ...outcome, remaining: 0 });
    expect(err.reason).toBe("RATE_LIMITED");
    expect(err.details.metadata).toEqual({ policy: "iframe-token" });
    expect(err.details.retryAfterMs).toBe(41_200);
    expect(err.outcome).toEqual({ ...outcome, remaining: 0 });
  });

  it("reports the budget closer to refusing", () => {
    const org = { policy: "organization", limit: 1000, remaining: 2, resetMs: 5_000, windowSeconds: 60 };
    expect(tighterOf(outcome, org)).toBe(org);
    expect(tighterOf(outcome, { ...org, remaining: 3 })).toBe(outcome);
  });
});

describe("reconnect delays", () => {
  it("back off up to 2 s and keep going forever", () => {
    expect(reconnectDelayMs(1)).toBe(100);
    expect(reconnectDelayMs(3)).toBe(400);
    expect(reconnectDelayMs(1000)).toBe(2000);
  });
});
