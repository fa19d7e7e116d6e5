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
 * ListAuditEvents' AIP-160 filter, through the generated Connect client and @grpc/grpc-js, on the
 * real PostgreSQL. The events are made through the API; only their occurred_at is then set behind
 * the service's back, to known instants one day apart, so time ranges are exact without waiting.
 */
let server: TestServer;
let grpcJs: GrpcJsDashboardClient;
const ORG = "org-filter";
const OTHER_ORG = "org-filter-other";
const DAY = 24 * 3600 * 1000;
const START = Date.parse("2026-01-01T00:00:00Z");
const at = (day: number) => new Date(START + day * DAY).toISOString();

beforeAll(async () => {
  server = await startTestServer();
  grpcJs = new GrpcJsDashboardClient(server.port);
  const api = client(server.baseUrl);
  const admin = await as({ org: ORG, admin: true, sub: "alice" });
  // Day 0..6 in this order: t1 created, t2 created, t1 mint, t1 mint, t3 created, t3 deleted, t2 mint.
  const { dashboard: d1 } = await api.createDashboard({ tenantId: "t1", workspaceId: "ws", name: "One" }, admin);
  const { dashboard: d2 } = await api.createDashboard({ tenantId: "t2", workspaceId: "ws", name: "Two" }, admin);
  await api.createIframeToken({ tenantId: "t1", workspaceId: "ws", dashboardId: d1!.id }, admin);
  await api.createIframeToken({ tenantId: "t1", workspaceId: "ws", dashboardId: d1!.id }, admin);
  await api.createDashboard({ tenantId: "t3", workspaceId: "ws", name: "Three" }, admin);
  await api.deleteDashboard({ tenantId: "t3" }, admin);
  await api.createIframeToken({ tenantId: "t2", workspaceId: "ws", dashboardId: d2!.id }, admin);
  await queryDatabase(
    server.db.url,
    `UPDATE audit_events e SET occurred_at = $2::timestamptz + (n.i - 1) * interval '1 day'
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS i FROM audit_events WHERE organization_id = $1) n
      WHERE e.organization_id = $1 AND e.id = n.id`,
    [ORG, at(0)],
  );
  // Another organization with the same tenant names and actions, on the same days.
  const other = await as({ org: OTHER_ORG, admin: true, sub: "alice" });
  const { dashboard: o1 } = await api.createDashboard({ tenantId: "t1", workspaceId: "ws", name: "Theirs" }, other);
  await api.createIframeToken({ tenantId: "t1", workspaceId: "ws", dashboardId: o1!.id }, other);
  await queryDatabase(server.db.url, "UPDATE audit_events SET occurred_at = $2 WHERE organization_id = $1", [
    OTHER_ORG,
    at(2),
  ]);
});
afterAll(async () => {
  grpcJs?.close();
  await server?.stop();
});

const CASES: { name: string; filter: string; tenants: string[]; actions: AuditAction[] }[] = [
  {
    name: "tenant",
    filter: 'tenant_id = "t1"',
    tenants: ["t1", "t1", "t1"],
    actions: [AuditAction.DASHBOARD_CREATED, AuditAction.IFRAME_TOKEN_MINTED, AuditAction.IFRAME_TOKEN_MINTED],
  },
  {
    name: "action (long name)",
    filter: "action = AUDIT_ACTION_IFRAME_TOKEN_MINTED",
    tenants: ["t1", "t1", "t2"],
    actions: [AuditAction.IFRAME_TOKEN_MINTED, AuditAction.IFRAME_TOKEN_MINTED, AuditAction.IFRAME_TOKEN_MINTED],
  },
  {
    name: "action (short name)",
    filter: "action = DASHBOARD_DELETED",
    tenants: ["t3"],
    actions: [AuditAction.DASHBOARD_DELETED],
  },
  {
    name: "time range (>= and <)",
    filter: `occurred_at >= "${at(2)}" AND occurred_at < "${at(5)}"`,
    tenants: ["t1", "t1", "t3"],
    actions: [AuditAction.IFRAME_TOKEN_MINTED, AuditAction.IFRAME_TOKEN_MINTED, AuditAction.DASHBOARD_CREATED],
  },
  {
    name: "time range (> and <=, another offset)",
    filter: `occurred_at > "2026-01-05T01:00:00+01:00" AND occurred_at <= "${at(6)}"`,
    tenants: ["t3", "t2"],
    actions: [AuditAction.DASHBOARD_DELETED, AuditAction.IFRAME_TOKEN_MINTED],
  },
  {
    name: "combined",
    filter: `tenant_id = "t1" AND action = IFRAME_TOKEN_MINTED AND occurred_at > "${at(2)}"`,
    tenants: ["t1"],
    actions: [AuditAction.IFRAME_TOKEN_MINTED],
  },
  { name: "nothing matches", filter: 'tenant_id = "t9"', tenants: [], actions: [] },
];

describe("ListAuditEvents' filter", () => {
  it.each(CASES)("narrows by $name, alike on Connect and on @grpc/grpc-js", async ({ filter, tenants, actions }) => {
    const admin = await as({ org: ORG, admin: true });
    const connect = await client(server.baseUrl).listAuditEvents({ filter }, admin);
    expect(connect.events.map((e) => e.tenantId)).toEqual(tenants);
    expect(connect.events.map((e) => e.action)).toEqual(actions);
    expect(connect.totalSize).toBe(tenants.length);
    expect(connect.events.every((e) => e.organizationId === ORG)).toBe(true);

    const viaGrpc = await grpcJs.call("listAuditEvents", { filter }, await callerToken({ org: ORG, admin: true }));
    expect(viaGrpc.events.map((e) => e.id)).toEqual(connect.events.map((e) => e.id));
    expect(viaGrpc.totalSize).toBe(connect.totalSize);
  });

  it("never returns another organization's rows, whatever the filter names", async () => {
    const other = await as({ org: OTHER_ORG, admin: true, sub: "alice" });
    const api = client(server.baseUrl);
    const page = await api.listAuditEvents({ filter: 'tenant_id = "t1"', pageSize: 1000 }, other);
    expect(page.events.map((e) => e.organizationId)).toEqual([OTHER_ORG, OTHER_ORG]);
    expect(page.totalSize).toBe(2);
    // The organization is not a field: naming one is refused, not obeyed.
    expect(await failure(api.listAuditEvents({ filter: `organization_id = "${ORG}"` }, other))).toMatchObject({
      code: Code.InvalidArgument,
      reason: "INVALID_FILTER",
      fields: ["filter"],
    });
  });

  it("stays within a non-admin's grant: a tenant outside it filters to nothing", async () => {
    const user = await as({ org: ORG, tenants: ["t1"] });
    const api = client(server.baseUrl);
    expect((await api.listAuditEvents({ filter: 'tenant_id = "t2"' }, user)).totalSize).toBe(0);
    const mints = await api.listAuditEvents({ filter: "action = IFRAME_TOKEN_MINTED" }, user);
    expect(mints.events.map((e) => e.tenantId)).toEqual(["t1", "t1"]);
  });

  it("binds page tokens to the filter: the same filter continues, any other is refused", async () => {
    const admin = await as({ org: ORG, admin: true, sub: "pager" });
    const api = client(server.baseUrl);
    const filter = 'tenant_id = "t1"';
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await api.listAuditEvents({ filter, pageSize: 1, pageToken }, admin);
      expect(page.totalSize).toBe(3);
      seen.push(...page.events.map((e) => e.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    const all = await api.listAuditEvents({ filter }, admin);
    expect(seen).toEqual(all.events.map((e) => e.id));

    const first = await api.listAuditEvents({ filter, pageSize: 1 }, admin);
    // Written differently, the same filter: the token continues.
    const respaced = await api.listAuditEvents({ filter: "tenant_id=t1", pageToken: first.nextPageToken }, admin);
    expect(respaced.events.map((e) => e.id)).toEqual(all.events.slice(1).map((e) => e.id));
    for (const different of ['tenant_id = "t2"', "", `tenant_id = "t1" AND occurred_at >= "${at(0)}"`]) {
      const refused = await failure(api.listAuditEvents({ filter: different, pageToken: first.nextPageToken }, admin));
      expect(refused, different).toMatchObject({ code: Code.InvalidArgument, fields: ["page_token"] });
    }
    // And a token of the unfiltered listing does not continue a filtered one.
    const unfiltered = await api.listAuditEvents({ pageSize: 1 }, admin);
    expect((await failure(api.listAuditEvents({ filter, pageToken: unfiltered.nextPageToken }, admin))).fields).toEqual(
      ["page_token"],
    );
  });

  it("refuses a bad filter with INVALID_FILTER naming `filter`, on both clients, before touching storage", async () => {
    const admin = await as({ org: ORG, admin: true });
    const api = client(server.baseUrl);
    for (const filter of [
      'tenant_id = "t1" OR tenant_id = "t2"',
      'tenant_id = "t1\'; DROP TABLE audit_events; --"',
      `tenant_id = "${"x".repeat(2000)}"`,
      "(".repeat(5000),
      'occurred_at >= "2026-13-01T00:00:00Z"',
    ]) {
      expect(await failure(api.listAuditEvents({ filter }, admin)), filter.slice(0, 40)).toMatchObject({
        code: Code.InvalidArgument,
        reason: "INVALID_FILTER",
        fields: ["filter"],
      });
      const viaGrpc = await grpcFailureOf(
        grpcJs.call("listAuditEvents", { filter }, await callerToken({ org: ORG, admin: true })),
      );
      expect(viaGrpc).toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        reason: "INVALID_FILTER",
        fields: ["filter"],
      });
    }
    const [count] = await queryDatabase<{ n: number }>(
      server.db.url,
      "SELECT count(*)::int AS n FROM audit_events WHERE organization_id = $1",
      [ORG],
    );
    expect(count?.n).toBe(7);
  });

  it("has the indexes migration 0008 adds for tenant and action listings", async () => {
    const rows = await queryDatabase<{ indexname: string; indexdef: string }>(
      server.db.url,
      "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN ('audit_events_tenant', 'audit_events_action') ORDER BY indexname",
    );
    expect(rows.map((r) => r.indexname)).toEqual(["audit_events_action", "audit_events_tenant"]);
    expect(rows[1]!.indexdef).toContain("(organization_id, tenant_id, id)");
    expect(rows[0]!.indexdef).toContain("(organization_id, action, id)");
  });
});
