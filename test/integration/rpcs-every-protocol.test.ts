import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureOf } from "../helpers/errors.js";
import { dashboardClient, transports } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe.each(Object.keys(transports("http://x")))("every RPC over %s", (name) => {
  // A separate organization per protocol keeps the cases independent.
  const org = `org-${name.replace(/[^A-Za-z0-9]/g, "")}`;

  it("creates, reads, lists, mints a token for and deletes a dashboard", async () => {
    const client = dashboardClient(transports(server.baseUrl)[name]!);
    const admin = bearer(await callerToken({ org, admin: true, sub: "alice" }));

    const { dashboard } = await client.createDashboard(
      { tenantId: "tenant-1", workspaceId: "ws-1", name: "Sales", description: "Revenue by region" },
      admin,
    );
    expect(dashboard).toMatchObject({
      tenantId: "tenant-1",
      workspaceId: "ws-1",
      name: "Sales",
      description: "Revenue by region",
      organizationId: org,
      createdBy: "alice",
    });
    expect(dashboard!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(dashboard!.dashboardId).toBe(dashboard!.id);
    expect(Math.abs(Number(dashboard!.createdAt!.seconds) - Date.now() / 1000)).toBeLessThan(60);

    const got = await client.getDashboard({ tenantId: "tenant-1" }, admin);
    expect(got.dashboard).toEqual(dashboard);

    const listed = await client.listDashboards({}, admin);
    expect(listed.dashboards.map((d) => d.id)).toEqual([dashboard!.id]);
    expect(listed.totalSize).toBe(1);
    expect(listed.nextPageToken).toBe("");

    const minted = await client.createIframeToken(
      { tenantId: "tenant-1", workspaceId: "ws-1", dashboardId: dashboard!.id },
      admin,
    );
    expect(minted.dashboardId).toBe(dashboard!.id);
    const claims = decodeJwt(minted.token);
    expect(claims).toMatchObject({
      organization_id: org,
      tenant_id: "tenant-1",
      workspace_id: "ws-1",
      dashboard_id: dashboard!.id,
    });
    expect(BigInt(claims.exp!)).toBe(minted.expiresAt);
    expect(Number(minted.expiresAt) - claims.iat!).toBe(600);

    await client.deleteDashboard({ tenantId: "tenant-1" }, admin);
    expect(await failureOf(client.getDashboard({ tenantId: "tenant-1" }, admin))).toMatchObject({
      code: Code.NotFound,
      reason: "NOT_FOUND",
    });
  });

  it("answers UNAUTHENTICATED with an ErrorInfo when no token is sent", async () => {
    const client = dashboardClient(transports(server.baseUrl)[name]!);
    expect(await failureOf(client.listDashboards({}))).toMatchObject({
      code: Code.Unauthenticated,
      reason: "UNAUTHORIZED",
    });
  });
});
