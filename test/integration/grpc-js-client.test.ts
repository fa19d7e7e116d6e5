import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcJsDashboardClient, grpcFailureOf } from "../helpers/grpc-js.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

let server: TestServer;
let client: GrpcJsDashboardClient;
beforeAll(async () => {
  server = await startTestServer();
  client = new GrpcJsDashboardClient(server.port);
});
afterAll(async () => {
  client.close();
  await server.stop();
});

describe("a plain @grpc/grpc-js client", () => {
  it("runs every RPC", async () => {
    const token = await callerToken({ org: "grpcjs", admin: true, sub: "bob" });
    const { dashboard } = await client.call(
      "createDashboard",
      { tenantId: "t1", workspaceId: "w1", name: "Ops" },
      token,
    );
    expect(dashboard).toMatchObject({ tenantId: "t1", organizationId: "grpcjs", createdBy: "bob", description: "" });

    expect((await client.call("getDashboard", { tenantId: "t1" }, token)).dashboard?.id).toBe(dashboard!.id);

    const page = await client.call("listDashboards", { pageSize: 10 }, token);
    expect(page.dashboards.map((d) => d.id)).toEqual([dashboard!.id]);
    expect(page.totalSize).toBe(1);

    const validUntil = BigInt(Math.floor(Date.now() / 1000) + 120);
    const minted = await client.call(
      "createIframeToken",
      { tenantId: "t1", workspaceId: "w1", dashboardId: dashboard!.id, validUntil },
      token,
    );
    expect(minted.expiresAt).toBe(validUntil);
    expect(minted.token.split(".")).toHaveLength(3);

    await client.call("deleteDashboard", { tenantId: "t1" }, token);
    const gone = await grpcFailureOf(client.call("deleteDashboard", { tenantId: "t1" }, token));
    expect(gone).toMatchObject({ code: grpc.status.NOT_FOUND, reason: "NOT_FOUND" });
  });

  it("sees every error code with its ErrorInfo reason in grpc-status-details-bin", async () => {
    const admin = await callerToken({ org: "grpcjs-errors", admin: true });
    const narrow = await callerToken({ org: "grpcjs-errors", tenants: ["mine"] });

    expect(await grpcFailureOf(client.call("getDashboard", { tenantId: "t1" }))).toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      reason: "UNAUTHORIZED",
    });
    expect(await grpcFailureOf(client.call("getDashboard", { tenantId: "theirs" }, narrow))).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      reason: "FORBIDDEN",
    });
    expect(
      await grpcFailureOf(client.call("createDashboard", { tenantId: "bad id", workspaceId: "", name: "" }, admin)),
    ).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      reason: "VALIDATION_ERROR",
      fields: ["tenant_id", "workspace_id", "name"],
    });
    await client.call("createDashboard", { tenantId: "dup", workspaceId: "w", name: "A" }, admin);
    expect(
      await grpcFailureOf(client.call("createDashboard", { tenantId: "dup", workspaceId: "w", name: "B" }, admin)),
    ).toMatchObject({
      code: grpc.status.ALREADY_EXISTS,
      reason: "ALREADY_EXISTS",
    });
  });
});
