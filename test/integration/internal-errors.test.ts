import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("an error the service did not expect", () => {
  it("is INTERNAL with a generic message: no SQL, no stack, no table names", async () => {
    const client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    const admin = bearer(await callerToken({ org: "broken", admin: true }));
    await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "n" }, admin);
    // Break the schema behind the service's back.
    await queryDatabase(server.db.url, "ALTER TABLE dashboards RENAME TO dashboards_gone");
    try {
      const failure = await failureOf(client.getDashboard({ tenantId: "t" }, admin));
      expect(failure).toMatchObject({ code: Code.Internal, reason: "SERVER_ERROR", message: "internal server error" });

      const raw = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
        method: "POST",
        headers: { "content-type": "application/json", ...admin.headers },
        body: "{}",
      });
      const text = await raw.text();
      expect(raw.status).toBe(500);
      expect(text).not.toMatch(/dashboards|relation|SELECT|at .*\.ts|stack/i);
    } finally {
      await queryDatabase(server.db.url, "ALTER TABLE dashboards_gone RENAME TO dashboards");
    }
    expect((await client.getDashboard({ tenantId: "t" }, admin)).dashboard?.tenantId).toBe("t");
  });
});
