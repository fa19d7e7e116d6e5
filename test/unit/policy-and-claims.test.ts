import { describe, expect, it } from "vitest";
import { callerFromClaims, bearerToken } from "../../src/auth/caller-verifier.js";
import { assertMayUseTenant, listScope, mayUseTenant } from "../../src/auth/policy.js";

describe("the policy", () => {
  const admin = callerFromClaims({ sub: "a", organization_id: "o", roles: ["admin"], tenant_ids: ["ignored"] });
  const narrow = callerFromClaims({ sub: "n", organization_id: "o", roles: ["viewer"], tenant_ids: ["t1", "t2"] });

  it("lets admins use every tenant and others only their grant", () => {
    expect(mayUseTenant(admin, "anything")).toBe(true);
    expect(mayUseTenant(narrow, "t1")).toBe(true);
    expect(mayUseTenant(narrow, "t3")).toBe(false);
    expect(mayUseTenant(narrow, "T1")).toBe(false);
    expect(() => assertMayUseTenant(narrow, "t3")).toThrow(expect.objectContaining({ reason: "FORBIDDEN" }));
  });

  it("scopes lists to the organization, and for non-admins to their tenants", () => {
    expect(listScope(admin)).toEqual({ organizationId: "o", tenantIds: undefined });
    expect(listScope(narrow)).toEqual({ organizationId: "o", tenantIds: ["t1", "t2"] });
  });

  it("grants nothing to a caller with no roles and no tenants", () => {
    const nobody = callerFromClaims({ sub: "x", organization_id: "o" });
    expect(mayUseTenant(nobody, "t1")).toBe(false);
    expect(listScope(nobody).tenantIds).toEqual([]);
  });
});

describe("claims", () => {
  const base = { organization_id: "o", roles: ["viewer"], tenant_ids: ["t1"] };
  const unauthenticated = expect.objectContaining({ reason: "UNAUTHORIZED" }) as unknown;

  it("refuses a subject or role that is not well-formed text, so no key or log line ever holds one", () => {
    for (const sub of ["a\uD800", "\uDC00b", "x\u0000y", "line\nbreak", "del\u007F", "c1\u0085", ""]) {
      expect(() => callerFromClaims({ ...base, sub }), JSON.stringify(sub)).toThrow(unauthenticated);
    }
    expect(() => callerFromClaims({ ...base, sub: "ok", roles: ["admin\uD800"] })).toThrow(unauthenticated);
    expect(() => callerFromClaims({ ...base, sub: "s".repeat(257) })).toThrow(unauthenticated);
    // Well-formed text of any script, emoji (a proper surrogate pair) included, is a subject.
    expect(callerFromClaims({ ...base, sub: "Zoë 😀 名前" }).subject).toBe("Zoë 😀 名前");
  });
});

describe("bearer header parsing", () => {
  it("takes the token from a Bearer header, case-insensitively, and nothing else", () => {
    expect(bearerToken("Bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(null)).toBeUndefined();
  });
});
