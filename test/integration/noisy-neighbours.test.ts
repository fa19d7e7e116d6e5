import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

let server: TestServer;
let client: DashboardClient;
let heavy: { headers: Record<string, string> };

beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  heavy = { headers: { authorization: `Bearer ${await callerToken({ org: "heavy", admin: true })}` } };
  // 30 000 audit events of one organization, written behind the service's back (as years of mints would be).
  await queryDatabase(
    server.db.url,
    `INSERT INTO audit_events (organization_id, id, action, actor, tenant_id)
     SELECT 'heavy', gen_random_uuid(), 'IFRAME_TOKEN_MINTED', 'loader', 'tenant-' || (n % 50)
       FROM generate_series(1, 30000) AS n`,
  );
  await queryDatabase(server.db.url, "ANALYZE audit_events");
});
afterAll(() => server.stop());

describe("lists that cannot be made expensive", () => {
  it("total_size is exact up to 10 000 and PostgreSQL's estimate above", async () => {
    const small = { headers: { authorization: `Bearer ${await callerToken({ org: "small", admin: true })}` } };
    await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "n" }, small);
    expect((await client.listAuditEvents({}, small)).totalSize).toBe(1);

    const { totalSize, events } = await client.listAuditEvents({ pageSize: 10 }, heavy);
    expect(events).toHaveLength(10);
    // An estimate: above the exact limit, and of the right order (ANALYZE has seen the table).
    expect(totalSize).toBeGreaterThan(10_000);
    expect(totalSize).toBeGreaterThan(15_000);
    expect(totalSize).toBeLessThan(60_000);
  });

  it("refuses a skip above 10 000, naming the field", async () => {
    expect(await failureOf(client.listAuditEvents({ skip: 10_001 }, heavy))).toMatchObject({
      code: Code.InvalidArgument,
      reason: "VALIDATION_ERROR",
      fields: ["skip"],
    });
    expect(await failureOf(client.listDashboards({ skip: 10_001 }, heavy))).toMatchObject({
      code: Code.InvalidArgument,
      fields: ["skip"],
    });
    expect((await client.listAuditEvents({ skip: 10_000, pageSize: 1 }, heavy)).events).toHaveLength(1);
  });

  it("a revocation naming a dashboard the tenant does not have is NOT_FOUND and stores nothing", async () => {
    const org = { headers: { authorization: `Bearer ${await callerToken({ org: "revoker", admin: true })}` } };
    const { dashboard } = await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "n" }, org);
    const madeUp = "0193aaaa-0000-7000-8000-000000000000";
    expect(
      await failureOf(
        client.revokeIframeTokens({ tenantId: "t", target: { case: "dashboardId", value: madeUp } }, org),
      ),
    ).toMatchObject({ code: Code.NotFound, reason: "NOT_FOUND" });
    expect(
      await failureOf(
        client.revokeIframeTokens({ tenantId: "nobody", target: { case: "dashboardId", value: dashboard!.id } }, org),
      ),
    ).toMatchObject({ code: Code.NotFound });
    expect(
      await queryDatabase(server.db.url, "SELECT 1 FROM embed_token_cutoffs WHERE organization_id = 'revoker'"),
    ).toEqual([]);
    await client.revokeIframeTokens({ tenantId: "t", target: { case: "dashboardId", value: dashboard!.id } }, org);
    expect(
      await queryDatabase(
        server.db.url,
        "SELECT dashboard_id FROM embed_token_cutoffs WHERE organization_id = 'revoker'",
      ),
    ).toEqual([{ dashboard_id: dashboard!.id }]);
  });
});
