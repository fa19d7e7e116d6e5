import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { TEST_JWT_SECRET } from "../helpers/tokens.js";
import { as, client, dashboardWithToken, failure } from "./support.js";

// Two real server processes on one database: a revocation made through one is seen by the other at once.
let db: TestDatabase;
let replicaA: ServerProcess;
let replicaB: ServerProcess;
beforeAll(async () => {
  db = await createTestDatabase();
  const env = {
    DATABASE_URL: db.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "warn",
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "1000000",
  };
  replicaA = await spawnServer(env);
  replicaB = await spawnServer(env);
});
afterAll(async () => {
  await Promise.all([replicaA?.stop(), replicaB?.stop()]);
  await db?.drop();
});

const ORG = "org-revoke";

async function verdict(baseUrl: string, token: string): Promise<string> {
  const renderer = await as({ org: ORG, sub: "renderer" });
  return client(baseUrl)
    .verifyIframeToken({ token }, renderer)
    .then(
      () => "ok",
      async () => (await failure(client(baseUrl).verifyIframeToken({ token }, renderer))).reason,
    );
}

describe("RevokeIframeTokens across two server processes", () => {
  it("revokes one token by its id, and only that one", async () => {
    const a = client(replicaA.baseUrl);
    const admin = await as({ org: ORG, admin: true, sub: "alice" });
    const { dashboard, minted: first } = await dashboardWithToken(a, admin, "tenant-jti");
    const second = await a.createIframeToken(
      { tenantId: "tenant-jti", workspaceId: "ws-1", dashboardId: dashboard.id },
      admin,
    );

    expect(await verdict(replicaB.baseUrl, first.token)).toBe("ok");
    const res = await a.revokeIframeTokens(
      { tenantId: "tenant-jti", target: { case: "tokenId", value: first.tokenId } },
      admin,
    );
    expect(res.revokedBefore).toBeUndefined();

    const revoked = await failure(
      client(replicaB.baseUrl).verifyIframeToken({ token: first.token }, await as({ org: ORG })),
    );
    expect(revoked).toMatchObject({ code: Code.FailedPrecondition, reason: "TOKEN_REVOKED" });
    expect(await verdict(replicaA.baseUrl, first.token)).toBe("TOKEN_REVOKED");
    expect(await verdict(replicaB.baseUrl, second.token)).toBe("ok");

    // The jti set forgets a token once it could not verify anyway.
    const [row] = await queryDatabase<{ expires_at: Date }>(
      db.url,
      "SELECT expires_at FROM revoked_embed_tokens WHERE jti = $1",
      [first.tokenId],
    );
    expect(row!.expires_at.getTime()).toBeGreaterThanOrEqual(Number(first.expiresAt) * 1000);
    expect(row!.expires_at.getTime()).toBeLessThanOrEqual((Number(first.expiresAt) + 10) * 1000);
  });

  it("revokes every token of a dashboard issued before now; tokens minted afterwards work", async () => {
    const a = client(replicaA.baseUrl);
    const b = client(replicaB.baseUrl);
    const admin = await as({ org: ORG, admin: true });
    const { dashboard, minted: before } = await dashboardWithToken(a, admin, "tenant-dash");
    const other = await dashboardWithToken(a, admin, "tenant-dash-other");

    const res = await b.revokeIframeTokens(
      { tenantId: "tenant-dash", target: { case: "dashboardId", value: dashboard.id } },
      admin,
    );
    expect(res.revokedBefore).toBeDefined();
    expect(await verdict(replicaA.baseUrl, before.token)).toBe("TOKEN_REVOKED");
    expect(await verdict(replicaB.baseUrl, before.token)).toBe("TOKEN_REVOKED");
    expect(await verdict(replicaA.baseUrl, other.minted.token)).toBe("ok");

    const after = await a.createIframeToken(
      { tenantId: "tenant-dash", workspaceId: "ws-1", dashboardId: dashboard.id },
      admin,
    );
    expect(await verdict(replicaB.baseUrl, after.token)).toBe("ok");
  });

  it("revokes every token of a tenant issued before now, not another tenant's", async () => {
    const a = client(replicaA.baseUrl);
    const admin = await as({ org: ORG, admin: true });
    const { dashboard, minted: before } = await dashboardWithToken(a, admin, "tenant-all");
    const other = await dashboardWithToken(a, admin, "tenant-all-other");

    await client(replicaB.baseUrl).revokeIframeTokens(
      { tenantId: "tenant-all", target: { case: "allTenantTokens", value: true } },
      admin,
    );
    expect(await verdict(replicaA.baseUrl, before.token)).toBe("TOKEN_REVOKED");
    expect(await verdict(replicaB.baseUrl, other.minted.token)).toBe("ok");
    const after = await a.createIframeToken(
      { tenantId: "tenant-all", workspaceId: "ws-1", dashboardId: dashboard.id },
      admin,
    );
    expect(await verdict(replicaB.baseUrl, after.token)).toBe("ok");
  });

  it("deleting a dashboard revokes its tokens, also after the tenant creates a new one", async () => {
    const a = client(replicaA.baseUrl);
    const admin = await as({ org: ORG, admin: true });
    const { minted } = await dashboardWithToken(a, admin, "tenant-delete");
    expect(await verdict(replicaB.baseUrl, minted.token)).toBe("ok");

    await client(replicaB.baseUrl).deleteDashboard({ tenantId: "tenant-delete" }, admin);
    expect(await verdict(replicaA.baseUrl, minted.token)).toBe("TOKEN_REVOKED");
    const fresh = await dashboardWithToken(a, admin, "tenant-delete");
    expect(await verdict(replicaA.baseUrl, minted.token)).toBe("TOKEN_REVOKED");
    expect(await verdict(replicaB.baseUrl, fresh.minted.token)).toBe("ok");
    const cutoffs = await queryDatabase(
      db.url,
      "SELECT 1 FROM embed_token_cutoffs WHERE organization_id = $1 AND tenant_id = $2",
      [ORG, "tenant-delete"],
    );
    expect(cutoffs).toHaveLength(1);
  });

  it("validates the target and enforces the tenant grant and the organization (attacker's side)", async () => {
    const a = client(replicaA.baseUrl);
    const admin = await as({ org: ORG, admin: true });
    const { minted } = await dashboardWithToken(a, admin, "tenant-guarded");

    const noTarget = await failure(a.revokeIframeTokens({ tenantId: "tenant-guarded" }, admin));
    expect(noTarget).toMatchObject({ code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["target"] });
    const falseTarget = await failure(
      a.revokeIframeTokens({ tenantId: "tenant-guarded", target: { case: "allTenantTokens", value: false } }, admin),
    );
    expect(falseTarget.fields).toEqual(["target"]);
    const badTenant = await failure(
      a.revokeIframeTokens({ tenantId: "bad tenant!", target: { case: "allTenantTokens", value: true } }, admin),
    );
    expect(badTenant.fields).toEqual(["tenant_id"]);

    // A user granted another tenant of the same organization.
    const neighbour = await as({ org: ORG, tenants: ["tenant-neighbour"] });
    const denied = await failure(
      a.revokeIframeTokens(
        { tenantId: "tenant-guarded", target: { case: "tokenId", value: minted.tokenId } },
        neighbour,
      ),
    );
    expect(denied).toMatchObject({ code: Code.PermissionDenied, reason: "FORBIDDEN" });

    // An admin of another organization cannot reach this organization's tokens at all.
    const attacker = await as({ org: "org-attacker", admin: true });
    const notFound = await failure(
      a.revokeIframeTokens(
        { tenantId: "tenant-guarded", target: { case: "tokenId", value: minted.tokenId } },
        attacker,
      ),
    );
    expect(notFound).toMatchObject({ code: Code.NotFound, reason: "NOT_FOUND" });
    await a.revokeIframeTokens(
      { tenantId: "tenant-guarded", target: { case: "allTenantTokens", value: true } },
      attacker,
    );
    expect(await verdict(replicaB.baseUrl, minted.token)).toBe("ok");
  });
});
