import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
let client: DashboardClient;
beforeAll(async () => {
  server = await startTestServer();
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }));
});
afterAll(() => server.stop());

const countDashboards = async (org: string) =>
  (
    await queryDatabase<{ n: number }>(
      server.db.url,
      "SELECT count(*)::int AS n FROM dashboards WHERE organization_id = $1",
      [org],
    )
  )[0]!.n;

describe("CreateDashboard with a request_id (AIP-155)", () => {
  it("returns the original result to a retry instead of ALREADY_EXISTS, and creates once", async () => {
    const admin = bearer(await callerToken({ org: "retry-1", admin: true }));
    const request = {
      tenantId: "t",
      workspaceId: "w",
      name: "Once",
      requestId: "6f1c5c1e-3d7e-4f0e-9a55-0d6c1f1b2a01",
    };
    const first = await client.createDashboard(request, admin);
    const retry = await client.createDashboard(request, admin);
    expect(retry.dashboard).toEqual(first.dashboard);
    expect(await countDashboards("retry-1")).toBe(1);
    const audit = await queryDatabase(
      server.db.url,
      "SELECT 1 FROM audit_events WHERE organization_id = 'retry-1' AND action = 'DASHBOARD_CREATED'",
    );
    expect(audit).toHaveLength(1);
  });

  it("refuses a different request that reuses the id, changing nothing", async () => {
    const admin = bearer(await callerToken({ org: "retry-2", admin: true }));
    await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "A", requestId: "req-1" }, admin);
    expect(
      await failureOf(
        client.createDashboard({ tenantId: "t2", workspaceId: "w", name: "B", requestId: "req-1" }, admin),
      ),
    ).toMatchObject({
      code: Code.InvalidArgument,
      reason: "VALIDATION_ERROR",
      fields: ["request_id"],
    });
    const otherCaller = bearer(await callerToken({ org: "retry-2", admin: true, sub: "someone-else" }));
    expect(
      (
        await failureOf(
          client.createDashboard({ tenantId: "t", workspaceId: "w", name: "A", requestId: "req-1" }, otherCaller),
        )
      ).fields,
    ).toEqual(["request_id"]);
    expect(await countDashboards("retry-2")).toBe(1);
  });

  it("creates exactly once when identical retries race", async () => {
    const admin = bearer(await callerToken({ org: "retry-3", admin: true }));
    const request = { tenantId: "t", workspaceId: "w", name: "Raced", requestId: "race-1" };
    const results = await Promise.all(Array.from({ length: 12 }, () => client.createDashboard(request, admin)));
    expect(new Set(results.map((r) => r.dashboard!.id)).size).toBe(1);
    expect(await countDashboards("retry-3")).toBe(1);
  });

  it("keeps ALREADY_EXISTS for calls without a request_id, and ids are per organization", async () => {
    const admin = bearer(await callerToken({ org: "retry-4", admin: true }));
    await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "A" }, admin);
    expect(
      await failureOf(client.createDashboard({ tenantId: "t", workspaceId: "w", name: "A" }, admin)),
    ).toMatchObject({
      code: Code.AlreadyExists,
    });
    const other = bearer(await callerToken({ org: "retry-5", admin: true }));
    await client
      .createDashboard({ tenantId: "t", workspaceId: "w", name: "A", requestId: "shared-id" }, admin)
      .catch(() => undefined);
    const theirs = await client.createDashboard(
      { tenantId: "x", workspaceId: "w", name: "X", requestId: "shared-id" },
      other,
    );
    expect(theirs.dashboard!.organizationId).toBe("retry-5");
  });

  it("validates the request_id", async () => {
    const admin = bearer(await callerToken({ org: "retry-6", admin: true }));
    expect(
      (
        await failureOf(
          client.createDashboard({ tenantId: "t", workspaceId: "w", name: "A", requestId: "has space" }, admin),
        )
      ).fields,
    ).toEqual(["request_id"]);
    expect(await countDashboards("retry-6")).toBe(0);
  });
});
