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
