import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";
import { expectError, rest } from "./rest-fetch.js";

let server: TestServer;
let token: string;
beforeAll(async () => {
  server = await startTestServer();
  token = await callerToken({ org: "rest-retries", admin: true });
});
afterAll(() => server.stop());

describe("POST /api/v1/dashboards with a request_id", () => {
  it("answers a retry with the original dashboard instead of 409, and creates once", async () => {
    const body = {
      tenant_id: "t-1",
      workspace_id: "ws-1",
      name: "Sales",
      request_id: "7d0f3c52-9b1e-4a55-8f0e-2b1c6a9d4e01",
    };
    const first = await rest(server.baseUrl, "POST", "/api/v1/dashboards", { token, body });
    const retry = await rest(server.baseUrl, "POST", "/api/v1/dashboards", { token, body });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.body.data).toEqual(first.body.data);
    const rows = await queryDatabase(server.db.url, "SELECT id FROM dashboards WHERE organization_id = 'rest-retries'");
    expect(rows).toHaveLength(1);
  });

  it("refuses a different request that reuses the id, with 422 naming request_id", async () => {
    const reused = await rest(server.baseUrl, "POST", "/api/v1/dashboards", {
      token,
      body: {
        tenant_id: "t-2",
        workspace_id: "ws-1",
        name: "Other",
        request_id: "7d0f3c52-9b1e-4a55-8f0e-2b1c6a9d4e01",
      },
    });
    expect(expectError(reused, 422, "VALIDATION_ERROR")).toContain("request_id");
    const bad = await rest(server.baseUrl, "POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: "t-3", workspace_id: "ws-1", name: "Bad", request_id: 42 },
    });
    expect(expectError(bad, 422, "VALIDATION_ERROR")).toContain("request_id");
    expect(
      await queryDatabase(server.db.url, "SELECT id FROM dashboards WHERE organization_id = 'rest-retries'"),
    ).toHaveLength(1);
  });
});
