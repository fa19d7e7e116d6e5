import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/dashboard/v1/audit_event_pb.js";
import { GrpcJsDashboardClient, grpcFailureOf } from "../helpers/grpc-js.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";
import { as, client, failure } from "../tokens/support.js";

/**
 * PurgeTenant on the real PostgreSQL, through the generated Connect client and @grpc/grpc-js. The
 * app runs on the system clock on purpose: a token's mint time is read from its UUIDv7 jti, which
 * the uuid package stamps with the machine's time, so a ManualClock's cutoff would not compare with
 * it. "Before the purge" and "after it" are therefore the order of the calls, nothing waits.
 */
let server: TestServer;
let grpcJs: GrpcJsDashboardClient;
const ORG = "org-purge";
const OTHER_ORG = "org-purge-other";
const PSEUDONYM = /^purged:[0-9a-f]{32}$/;

beforeAll(async () => {
  server = await startTestServer();
  grpcJs = new GrpcJsDashboardClient(server.port);
});
afterAll(async () => {
  grpcJs?.close();
  await server?.stop();
});

const db = <Row>(text: string, params: unknown[] = []) => queryDatabase<Row>(server.db.url, text, params);

/** Every row the service keeps about (organization, tenant), as JSON text, to compare before and after. */
async function everythingOf(org: string, tenant: string): Promise<string> {
  const tables = await Promise.all([
    db("SELECT * FROM dashboards WHERE organization_id = $1 AND tenant_id = $2 ORDER BY id", [org, tenant]),
    db("SELECT * FROM audit_events WHERE organization_id = $1 AND tenant_id = $2 ORDER BY id", [org, tenant]),
    db("SELECT * FROM embed_token_cutoffs WHERE organization_id = $1 AND tenant_id = $2 ORDER BY dashboard_id", [
      org,
      tenant,
    ]),
    db("SELECT * FROM revoked_embed_tokens WHERE organization_id = $1 AND tenant_id = $2 ORDER BY jti", [org, tenant]),
    db("SELECT * FROM create_requests WHERE organization_id = $1 AND response->>'tenantId' = $2 ORDER BY request_id", [
      org,
      tenant,
    ]),
  ]);
  return JSON.stringify(tables);
}

/** A tenant with everything a purge must remove: a dashboard made with a request id, tokens, revocations, a past dashboard. */
async function populate(org: string, tenant: string, maker: string) {
  const api = client(server.baseUrl);
  const admin = await as({ org, admin: true, sub: "admin-1" });
  const user = await as({ org, tenants: [tenant], sub: maker });
  // A dashboard that was deleted: its cutoff row stays behind.
  await api.createDashboard({ tenantId: tenant, workspaceId: "ws", name: "Old" }, user);
  await api.deleteDashboard({ tenantId: tenant }, user);
  const { dashboard } = await api.createDashboard(
    { tenantId: tenant, workspaceId: "ws", name: "Current", requestId: `req-${org}-${tenant}` },
    user,
  );
  const mint = () =>
    api.createIframeToken(
      {
        tenantId: tenant,
        workspaceId: "ws",
        dashboardId: dashboard!.id,
        viewer: { id: "user-42", displayName: "Grace" },
      },
      user,
    );
  const revoked = await mint();
  await api.revokeIframeTokens({ tenantId: tenant, target: { case: "tokenId", value: revoked.tokenId } }, user);
  const live = [await mint(), await mint()];
  // Read once so this replica's cache holds it: the purge must make the cache forget it.
  await api.getDashboard({ tenantId: tenant }, admin);
  return { dashboard: dashboard!, live, admin, user };
}

describe("PurgeTenant", () => {
  it("erases the tenant in one go, pseudonymizes its trail, audits itself, and stops its tokens", async () => {
    const api = client(server.baseUrl);
    const { live, admin } = await populate(ORG, "victim", "maker@example.com");
    await populate(ORG, "bystander", "maker@example.com");
    await populate(OTHER_ORG, "victim", "maker@example.com");
    const bystanderBefore = await everythingOf(ORG, "bystander");
    const otherOrgBefore = await everythingOf(OTHER_ORG, "victim");
    for (const token of live) await expect(api.verifyIframeToken({ token: token.token }, admin)).resolves.toBeDefined();
    const purgeStarted = Date.now();
    const purged = await api.purgeTenant({ tenantId: "victim" }, admin);
    const purgeEnded = Date.now();
    expect(purged).toMatchObject({
      dashboardsDeleted: 1,
      // the deleted dashboard's cutoff and the single revoked token
      revocationsDeleted: 2,
      createRequestsDeleted: 1,
      // 2 creates, 1 delete, 3 mints, 1 revoke
      auditEventsPseudonymized: 7,
    });

    // Gone: the dashboard (also from the cache), its request ids, its revocation rows but one tenant-wide cutoff.
    expect((await failure(api.getDashboard({ tenantId: "victim" }, admin))).reason).toBe("NOT_FOUND");
    expect(await db("SELECT 1 FROM dashboards WHERE organization_id = $1 AND tenant_id = 'victim'", [ORG])).toEqual([]);
    expect(
      await db("SELECT 1 FROM create_requests WHERE organization_id = $1 AND response->>'tenantId' = 'victim'", [ORG]),
    ).toEqual([]);
    expect(
      await db("SELECT 1 FROM revoked_embed_tokens WHERE organization_id = $1 AND tenant_id = 'victim'", [ORG]),
    ).toEqual([]);
    const cutoffs = await db<{ dashboard_id: string; issued_not_after: Date }>(
      "SELECT dashboard_id, issued_not_after FROM embed_token_cutoffs WHERE organization_id = $1 AND tenant_id = 'victim'",
      [ORG],
    );
    expect(cutoffs.map((c) => c.dashboard_id)).toEqual([""]);
    const cutoffAt = new Date(cutoffs[0]!.issued_not_after).getTime();
    expect(cutoffAt).toBeGreaterThanOrEqual(purgeStarted);
    expect(cutoffAt).toBeLessThanOrEqual(purgeEnded);

    // Every token minted before the purge stops verifying, on both clients.
    for (const token of live) {
      expect((await failure(api.verifyIframeToken({ token: token.token }, admin))).reason).toBe("TOKEN_REVOKED");
      const viaGrpc = await grpcFailureOf(
        grpcJs.call("verifyIframeToken", { token: token.token }, await callerToken({ org: ORG, admin: true })),
      );
      expect(viaGrpc).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: "TOKEN_REVOKED" });
    }

    // The trail: nobody named but the purging admin, the same person under the same pseudonym.
    const events = await db<{ action: string; actor: string; details: Record<string, string> }>(
      "SELECT action, actor, details FROM audit_events WHERE organization_id = $1 AND tenant_id = 'victim' ORDER BY id",
      [ORG],
    );
    expect(JSON.stringify(events)).not.toMatch(/maker@example\.com|user-42/);
    const [purgeEvent, ...rest] = [events.at(-1)!, ...events.slice(0, -1)];
    expect(purgeEvent).toMatchObject({ action: "TENANT_PURGED", actor: "admin-1" });
    expect(new Set(rest.map((e) => e.actor)).size).toBe(1);
    for (const e of rest) expect(e.actor).toMatch(PSEUDONYM);
    const viewers = rest.filter((e) => e.action === "IFRAME_TOKEN_MINTED").map((e) => e.details.viewer_id);
    expect(viewers).toHaveLength(3);
    for (const v of viewers) expect(v).toMatch(PSEUDONYM);
    expect(new Set(viewers).size).toBe(1);
    expect(viewers[0]).not.toBe(rest[0]!.actor);

    // Findable: the purge event, with what it did, by the filter.
    const found = await api.listAuditEvents({ filter: 'tenant_id = "victim" AND action = TENANT_PURGED' }, admin);
    expect(found.events).toHaveLength(1);
    expect(found.events[0]).toMatchObject({
      action: AuditAction.TENANT_PURGED,
      actor: "admin-1",
      organizationId: ORG,
      details: {
        dashboards_deleted: "1",
        revocations_deleted: "2",
        create_requests_deleted: "1",
        audit_events_pseudonymized: "7",
      },
    });

    // Untouched: the other tenant of the organization and the same tenant name in another organization.
    expect(await everythingOf(ORG, "bystander")).toBe(bystanderBefore);
    expect(await everythingOf(OTHER_ORG, "victim")).toBe(otherOrgBefore);
    await expect(
      api.getDashboard({ tenantId: "victim" }, await as({ org: OTHER_ORG, admin: true })),
    ).resolves.toBeDefined();
  });

  it("is idempotent: a repeat answers zeros, changes nothing but its own audit row", async () => {
    const api = client(server.baseUrl);
    const { admin } = await populate(ORG, "again", "someone");
    await api.purgeTenant({ tenantId: "again" }, admin);
    const trailBefore = await db<{ id: string; actor: string; details: unknown }>(
      "SELECT id, actor, details FROM audit_events WHERE organization_id = $1 AND tenant_id = 'again' ORDER BY id",
      [ORG],
    );
    const repeat = await grpcJs.call(
      "purgeTenant",
      { tenantId: "again" },
      await callerToken({ org: ORG, admin: true, sub: "admin-2" }),
    );
    expect(repeat).toMatchObject({
      dashboardsDeleted: 0,
      revocationsDeleted: 0,
      createRequestsDeleted: 0,
      auditEventsPseudonymized: 0,
    });
    const trailAfter = await db<{ id: string; actor: string; details: unknown }>(
      "SELECT id, actor, details FROM audit_events WHERE organization_id = $1 AND tenant_id = 'again' ORDER BY id",
      [ORG],
    );
    // The first purge's event keeps its admin: a purge never pseudonymizes who purged.
    expect(trailAfter.slice(0, -1)).toEqual(trailBefore);
    expect(trailAfter.at(-1)).toMatchObject({ actor: "admin-2" });
    expect(trailBefore.at(-1)).toMatchObject({ actor: "admin-1" });
    // A tenant that never had anything purges to zeros as well.
    await expect(api.purgeTenant({ tenantId: "never-existed" }, admin)).resolves.toMatchObject({
      dashboardsDeleted: 0,
      auditEventsPseudonymized: 0,
    });
  });

  it("keeps earlier tokens refused even if the dashboard row came back; later ones of a new dashboard verify", async () => {
    const api = client(server.baseUrl);
    const { dashboard, live, admin } = await populate(ORG, "restored", "someone");
    const [row] = await db<Record<string, unknown>>(
      "SELECT * FROM dashboards WHERE organization_id = $1 AND tenant_id = 'restored'",
      [ORG],
    );
    await api.purgeTenant({ tenantId: "restored" }, admin);
    // An operator restores the row from a backup, behind the service's back: the cutoff still refuses.
    await db(
      `INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by)
       VALUES ($1, $2, 'restored', 'ws', 'Restored', $3)`,
      [ORG, dashboard.id, row!.created_by],
    );
    expect((await failure(api.verifyIframeToken({ token: live[0]!.token }, admin))).reason).toBe("TOKEN_REVOKED");
    await db("DELETE FROM dashboards WHERE organization_id = $1 AND tenant_id = 'restored'", [ORG]);

    // The tenant itself is not barred: a new dashboard's token, minted after the purge, verifies.
    const { dashboard: fresh } = await api.createDashboard(
      { tenantId: "restored", workspaceId: "ws", name: "New" },
      admin,
    );
    const token = await api.createIframeToken(
      { tenantId: "restored", workspaceId: "ws", dashboardId: fresh!.id },
      admin,
    );
    await expect(api.verifyIframeToken({ token: token.token }, admin)).resolves.toBeDefined();
    expect((await failure(api.verifyIframeToken({ token: live[1]!.token }, admin))).reason).toBe("TOKEN_REVOKED");
  });

  it("is refused to non-admins, granted the tenant or not, and leaves everything as it was", async () => {
    const api = client(server.baseUrl);
    await populate(ORG, "guarded", "someone");
    const before = await everythingOf(ORG, "guarded");
    const granted = await as({ org: ORG, tenants: ["guarded"], sub: "tenant-user" });
    const notGranted = await as({ org: ORG, tenants: ["elsewhere"], sub: "other-user" });
    for (const caller of [granted, notGranted]) {
      expect(await failure(api.purgeTenant({ tenantId: "guarded" }, caller))).toMatchObject({
        code: Code.PermissionDenied,
        reason: "FORBIDDEN",
      });
    }
    const viaGrpc = await grpcFailureOf(
      grpcJs.call("purgeTenant", { tenantId: "guarded" }, await callerToken({ org: ORG, tenants: ["guarded"] })),
    );
    expect(viaGrpc).toMatchObject({ code: grpc.status.PERMISSION_DENIED, reason: "FORBIDDEN" });
    // Another organization's admin reaches only its own organization's tenant of that name (it has none).
    const stranger = await as({ org: "org-purge-stranger", admin: true });
    await expect(api.purgeTenant({ tenantId: "guarded" }, stranger)).resolves.toMatchObject({ dashboardsDeleted: 0 });
    expect(await everythingOf(ORG, "guarded")).toBe(before);
    expect(
      await failure(api.purgeTenant({ tenantId: "no spaces" }, await as({ org: ORG, admin: true }))),
    ).toMatchObject({ code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["tenant_id"] });
  });
});
