import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAction } from "../../gen/dashboard/v1/audit_event_pb.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { as, client, failure } from "./support.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("the audit trail", () => {
  it("records create, mint, revoke, rotate and delete with who, where, when and the token's id and lifetime", async () => {
    const api = client(server.baseUrl);
    const org = "org-audit";
    const admin = await as({ org, admin: true, sub: "alice" });
    const before = Date.now();
    const { dashboard } = await api.createDashboard(
      { tenantId: "tenant-a1", workspaceId: "ws-1", name: "Sales" },
      admin,
    );
    const minted = await api.createIframeToken(
      {
        tenantId: "tenant-a1",
        workspaceId: "ws-1",
        dashboardId: dashboard!.id,
        validUntil: BigInt(Math.floor(Date.now() / 1000) + 300),
      },
      admin,
    );
    await api.revokeIframeTokens({ tenantId: "tenant-a1", target: { case: "tokenId", value: minted.tokenId } }, admin);
    await api.revokeIframeTokens(
      { tenantId: "tenant-a1", target: { case: "dashboardId", value: dashboard!.id } },
      admin,
    );
    await api.revokeIframeTokens({ tenantId: "tenant-a1", target: { case: "allTenantTokens", value: true } }, admin);
    const rotation = await api.rotateSigningKey({}, admin);
    await api.deleteDashboard({ tenantId: "tenant-a1" }, admin);

    const { events, totalSize, nextPageToken } = await api.listAuditEvents({}, admin);
    expect(totalSize).toBe(7);
    expect(nextPageToken).toBe("");
    expect(events.map((e) => e.action)).toEqual([
      AuditAction.DASHBOARD_CREATED,
      AuditAction.IFRAME_TOKEN_MINTED,
      AuditAction.IFRAME_TOKENS_REVOKED,
      AuditAction.IFRAME_TOKENS_REVOKED,
      AuditAction.IFRAME_TOKENS_REVOKED,
      AuditAction.SIGNING_KEY_ROTATED,
      AuditAction.DASHBOARD_DELETED,
    ]);
    for (const e of events) {
      expect(e.actor).toBe("alice");
      expect(e.organizationId).toBe(org);
      const at = Number(e.occurredAt!.seconds) * 1000;
      expect(at).toBeGreaterThanOrEqual(before - 2_000);
      expect(at).toBeLessThanOrEqual(Date.now() + 2_000);
    }
    const [created, mint, byToken, byDashboard, byTenant, rotated, deleted] = events;
    expect(created).toMatchObject({ tenantId: "tenant-a1", dashboardId: dashboard!.id, tokenId: "" });
    expect(mint).toMatchObject({ tenantId: "tenant-a1", dashboardId: dashboard!.id, tokenId: minted.tokenId });
    expect(mint!.tokenExpiresAt!.seconds).toBe(minted.expiresAt);
    expect(mint!.tokenLifetimeSeconds).toBeGreaterThanOrEqual(299n);
    expect(mint!.tokenLifetimeSeconds).toBeLessThanOrEqual(300n);
    expect(byToken).toMatchObject({ tenantId: "tenant-a1", tokenId: minted.tokenId, details: { scope: "token" } });
    expect(byDashboard).toMatchObject({ dashboardId: dashboard!.id, details: { scope: "dashboard" } });
    expect(byTenant).toMatchObject({ tenantId: "tenant-a1", dashboardId: "", details: { scope: "tenant" } });
    expect(rotated).toMatchObject({
      tenantId: "",
      details: { kid: rotation.keyId, retired_kid: rotation.retiredKeyId },
    });
    expect(deleted).toMatchObject({ tenantId: "tenant-a1", dashboardId: dashboard!.id });
  });

  it("commits the audit row with the change: a failed create or delete leaves no row", async () => {
    const api = client(server.baseUrl);
    const org = "org-audit-atomic";
    const admin = await as({ org, admin: true });
    await api.createDashboard({ tenantId: "tenant-1", workspaceId: "ws-1", name: "One" }, admin);
    expect(
      (await failure(api.createDashboard({ tenantId: "tenant-1", workspaceId: "ws-1", name: "Two" }, admin))).reason,
    ).toBe("ALREADY_EXISTS");
    expect((await failure(api.deleteDashboard({ tenantId: "tenant-none" }, admin))).reason).toBe("NOT_FOUND");
    const rows = await queryDatabase<{ action: string }>(
      server.db.url,
      "SELECT action FROM audit_events WHERE organization_id = $1",
      [org],
    );
    expect(rows.map((r) => r.action)).toEqual(["DASHBOARD_CREATED"]);
  });

  it("pages like ListDashboards: defaults, coercion, negatives, keyset tokens bound to the caller", async () => {
    const api = client(server.baseUrl);
    const org = "org-audit-pages";
    const admin = await as({ org, admin: true, sub: "pager" });
    for (let i = 0; i < 5; i++)
      await api.createDashboard({ tenantId: `tenant-${i}`, workspaceId: "ws-1", name: `D${i}` }, admin);

    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await api.listAuditEvents({ pageSize: 2, pageToken }, admin);
      expect(page.totalSize).toBe(5);
      seen.push(...page.events.map((e) => e.tenantId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual(["tenant-0", "tenant-1", "tenant-2", "tenant-3", "tenant-4"]);

    expect((await api.listAuditEvents({ pageSize: 0 }, admin)).events).toHaveLength(5);
    expect((await api.listAuditEvents({ pageSize: 5000 }, admin)).events).toHaveLength(5);
    expect((await api.listAuditEvents({ skip: 3 }, admin)).events.map((e) => e.tenantId)).toEqual([
      "tenant-3",
      "tenant-4",
    ]);
    const negative = await failure(api.listAuditEvents({ pageSize: -1 }, admin));
    expect(negative).toMatchObject({ code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["page_size"] });

    const first = await api.listAuditEvents({ pageSize: 2 }, admin);
    const tampered = first.nextPageToken.slice(0, -2) + (first.nextPageToken.endsWith("A") ? "BB" : "AA");
    expect((await failure(api.listAuditEvents({ pageToken: tampered }, admin))).fields).toEqual(["page_token"]);
    // A ListDashboards token is not an audit token, even for the same caller.
    const dashboardsPage = await api.listDashboards({ pageSize: 2 }, admin);
    expect((await failure(api.listAuditEvents({ pageToken: dashboardsPage.nextPageToken }, admin))).fields).toEqual([
      "page_token",
    ]);
  });

  it("shows a non-admin only the events of its own tenants", async () => {
    const api = client(server.baseUrl);
    const org = "org-audit-scope";
    const admin = await as({ org, admin: true });
    await api.createDashboard({ tenantId: "tenant-mine", workspaceId: "ws-1", name: "Mine" }, admin);
    await api.createDashboard({ tenantId: "tenant-theirs", workspaceId: "ws-1", name: "Theirs" }, admin);
    await api.rotateSigningKey({}, admin);

    const user = await as({ org, tenants: ["tenant-mine"] });
    const page = await api.listAuditEvents({}, user);
    expect(page.events.map((e) => e.tenantId)).toEqual(["tenant-mine"]);
    expect(page.totalSize).toBe(1);
  });

  it("never shows one organization's events to another (attacker's side)", async () => {
    const api = client(server.baseUrl);
    const victim = await as({ org: "org-victim", admin: true, sub: "victim" });
    const { dashboard } = await api.createDashboard(
      { tenantId: "tenant-secret", workspaceId: "ws-1", name: "Secret" },
      victim,
    );
    await api.createIframeToken({ tenantId: "tenant-secret", workspaceId: "ws-1", dashboardId: dashboard!.id }, victim);
    await api.createDashboard({ tenantId: "tenant-secret-2", workspaceId: "ws-1", name: "Secret 2" }, victim);
    const victimPage = await api.listAuditEvents({ pageSize: 1 }, victim);
    expect(victimPage.totalSize).toBe(3);

    // Same subject, same tenant names, admin role: only the organization differs.
    const attacker = await as({ org: "org-attacker", admin: true, sub: "victim", tenants: ["tenant-secret"] });
    const seen = await api.listAuditEvents({ pageSize: 1000 }, attacker);
    expect(seen.events).toEqual([]);
    expect(seen.totalSize).toBe(0);
    // The victim's page token is refused rather than continuing the victim's listing.
    const replay = await failure(api.listAuditEvents({ pageToken: victimPage.nextPageToken }, attacker));
    expect(replay).toMatchObject({ code: Code.InvalidArgument, fields: ["page_token"] });
    // Nor can the attacker plant events in the victim's trail: its actions land in its own organization.
    await api.createDashboard({ tenantId: "tenant-secret", workspaceId: "ws-1", name: "Attacker's" }, attacker);
    expect((await api.listAuditEvents({}, victim)).totalSize).toBe(3);
    expect((await api.listAuditEvents({}, attacker)).events.map((e) => e.organizationId)).toEqual(["org-attacker"]);
  });
});
