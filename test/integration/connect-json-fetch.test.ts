import http from "node:http";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

/** The proto3 JSON of a Dashboard, as far as these tests read it. */
interface DashboardJson {
  id: string;
  createdAt: string;
}

/** A Connect error detail in JSON: its type, and the message decoded under `debug`. */
interface ErrorDetailJson {
  type: string;
  debug: { reason?: string; fieldViolations?: { field: string; description: string }[] };
}

/** What an RPC answers in Connect JSON: the fields of its response message, or a Connect error. */
interface RpcBody {
  dashboard?: DashboardJson;
  dashboards?: DashboardJson[];
  totalSize?: number;
  expiresAt?: string;
  code?: string;
  message?: string;
  details?: ErrorDetailJson[];
}

/** Connect's JSON protocol is plain HTTP: a POST of JSON to /package.Service/Method. */
async function rpc(method: string, body: unknown, token?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as RpcBody };
}

describe("Connect JSON with fetch", () => {
  it("runs every RPC with proto3 JSON field names", async () => {
    const token = await callerToken({ org: "fetch-org", admin: true });
    const created = await rpc("CreateDashboard", { tenantId: "t1", workspaceId: "w1", name: "Fetch" }, token);
    expect(created.status).toBe(200);
    const id = created.body.dashboard!.id;
    expect(created.body.dashboard).toMatchObject({ tenantId: "t1", dashboardId: id, organizationId: "fetch-org" });
    expect(new Date(created.body.dashboard!.createdAt).toISOString()).toBe(created.body.dashboard!.createdAt);

    // Connect accepts the proto field names too.
    const got = await rpc("GetDashboard", { tenant_id: "t1" }, token);
    expect(got.body.dashboard!.id).toBe(id);

    const list = await rpc("ListDashboards", { pageSize: 5 }, token);
    expect(list.body).toMatchObject({ totalSize: 1 });
    expect(list.body.dashboards).toHaveLength(1);

    const minted = await rpc("CreateIframeToken", { tenantId: "t1", workspaceId: "w1", dashboardId: id }, token);
    expect(minted.status).toBe(200);
    // int64 is a string in proto3 JSON.
    expect(typeof minted.body.expiresAt).toBe("string");
    expect(Number(minted.body.expiresAt)).toBeGreaterThan(Date.now() / 1000);

    expect((await rpc("DeleteDashboard", { tenantId: "t1" }, token)).body).toEqual({});
  });

  it("maps errors to Connect codes and HTTP statuses with ErrorInfo", async () => {
    const token = await callerToken({ org: "fetch-org-2", admin: true });
    const unauth = await rpc("GetDashboard", { tenantId: "t1" });
    expect(unauth.status).toBe(401);
    expect(unauth.body.code).toBe("unauthenticated");
    expect(unauth.body.details![0]).toMatchObject({ type: "google.rpc.ErrorInfo", debug: { reason: "UNAUTHORIZED" } });

    const missing = await rpc("GetDashboard", { tenantId: "nope" }, token);
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("not_found");

    const invalid = await rpc("CreateDashboard", { tenantId: "t1", workspaceId: "w1", name: "x".repeat(201) }, token);
    expect(invalid.status).toBe(400);
    expect(invalid.body.code).toBe("invalid_argument");
    const badRequest = invalid.body.details!.find((d) => d.type === "google.rpc.BadRequest");
    expect(badRequest!.debug.fieldViolations).toEqual([
      { field: "name", description: "must be at most 200 characters" },
    ]);
  });

  it("refuses malformed JSON and unknown fields as INVALID_ARGUMENT without touching the database", async () => {
    const token = await callerToken({ org: "fetch-org-3", admin: true });
    const malformed = await rpc("CreateDashboard", "{not json", token);
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe("invalid_argument");

    const wrongType = await rpc("CreateDashboard", { tenantId: 5, workspaceId: "w", name: "n" }, token);
    expect(wrongType.body.code).toBe("invalid_argument");

    expect((await rpc("ListDashboards", {}, token)).body.totalSize ?? 0).toBe(0);
  });

  it("refuses a body over the size limit", async () => {
    const token = await callerToken({ org: "fetch-org-4", admin: true });
    const huge = await rpc(
      "CreateDashboard",
      { tenantId: "t", workspaceId: "w", name: "n", description: "d".repeat(1_100_000) },
      token,
    );
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
    expect((await rpc("ListDashboards", {}, token)).body.totalSize ?? 0).toBe(0);
  });

  it("compresses a large answer for a client that accepts gzip, and only then", async () => {
    const token = await callerToken({ org: "fetch-org-gzip", admin: true });
    for (let i = 0; i < 30; i++)
      await rpc("CreateDashboard", { tenantId: `t${i}`, workspaceId: "w", name: `Dashboard ${i}` }, token);
    const ask = (acceptEncoding: string) =>
      new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        const req = http.request(
          `${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`,
          {
            method: "POST",
            headers: {
              "content-type": "application/json",
              authorization: `Bearer ${token}`,
              "accept-encoding": acceptEncoding,
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) }));
          },
        );
        req.on("error", reject);
        req.end("{}");
      });
    const zipped = await ask("gzip, deflate, br");
    expect(zipped.encoding).toBe("gzip");
    const page = JSON.parse(gunzipSync(zipped.body).toString()) as { dashboards: unknown[]; totalSize: number };
    expect(page.dashboards).toHaveLength(30);
    const plain = await ask("identity");
    expect(plain.encoding).toBeUndefined();
    expect(JSON.parse(plain.body.toString())).toEqual(page);
  });

  it("answers an unknown route with 404", async () => {
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/DropEverything`, {
      method: "POST",
      body: "{}",
    });
    expect(res.status).toBe(404);
  });
});
