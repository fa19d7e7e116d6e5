import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";
import { expectError, rest } from "./rest-fetch.js";

// A PostgreSQL of this test's own, so stopping it disturbs no one else.
let pg: PrivatePostgres;
let server: TestServer;
let token: string;
beforeAll(async () => {
  pg = await startPrivatePostgres();
  server = await startTestServer({}, { url: pg.url, name: "postgres", drop: async () => {} });
  token = await callerToken({ org: "org-rest-db-down", admin: true });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await pg?.destroy();
});

describe("REST answers while the database is down", () => {
  it("is 503 UNAVAILABLE with Retry-After (never a 500 or SQL), and recovers when the database returns", async () => {
    const created = await rest(server.baseUrl, "POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: "t-1", workspace_id: "ws-1", name: "Sales" },
    });
    expect(created.status).toBe(201);

    await pg.stop();
    try {
      for (const [method, path, body] of [
        ["GET", "/api/v1/dashboards/t-1", undefined],
        ["GET", "/api/v1/dashboards", undefined],
        ["POST", "/api/v1/dashboards", { tenant_id: "t-2", workspace_id: "ws-1", name: "Later" }],
      ] as const) {
        const res = await rest(server.baseUrl, method, path, { token, body });
        expect(expectError(res, 503, "UNAVAILABLE")).toBe("the service is temporarily unavailable, retry later");
        expect(res.headers.get("retry-after")).toBe("1");
      }
    } finally {
      await pg.start();
    }

    await expect
      .poll(async () => (await rest(server.baseUrl, "GET", "/api/v1/dashboards/t-1", { token })).status, {
        timeout: 15_000,
      })
      .toBe(200);
  });
});

describe("REST answers when the database fails in a way nobody planned for", () => {
  it("is a generic 500 SERVER_ERROR: no SQL, table names or stack in the answer", async () => {
    await queryDatabase(pg.url, "ALTER TABLE dashboards RENAME TO dashboards_hidden_for_test");
    try {
      // t-1 may be answered from the replica's dashboard cache (nothing announced a change); a tenant
      // with no dashboard is never cached, so its read reaches the broken table.
      for (const [method, path] of [
        ["GET", "/api/v1/dashboards/t-never-cached"],
        ["GET", "/api/v1/dashboards"],
        ["DELETE", "/api/v1/dashboards/t-1"],
      ] as const) {
        const res = await rest(server.baseUrl, method, path, { token });
        expect(expectError(res, 500, "SERVER_ERROR")).toBe("internal server error");
        expect(JSON.stringify(res.body)).not.toMatch(/dashboards|relation|SELECT|\bat\b/);
      }
    } finally {
      await queryDatabase(pg.url, "ALTER TABLE dashboards_hidden_for_test RENAME TO dashboards");
    }
    expect((await rest(server.baseUrl, "GET", "/api/v1/dashboards/t-1", { token })).status).toBe(200);
  });
});
