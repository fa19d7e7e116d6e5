import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createConnectTransport as createWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

const ORIGIN = "https://app.example.com";

let server: TestServer;
let token: string;
let dashboardId: string;
beforeAll(async () => {
  server = await startTestServer({ CORS_ALLOWED_ORIGINS: ORIGIN });
  token = await callerToken({ org: "org-connect-get", admin: true });
  const client = createClient(
    DashboardService,
    createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
  );
  const { dashboard } = await client.createDashboard(
    { tenantId: "tenant-1", workspaceId: "ws-1", name: "Sales" },
    bearer(token),
  );
  dashboardId = dashboard!.id;
});
afterAll(() => server.stop());

const rpcUrl = (method: string, message: unknown, extra = "") =>
  `${server.baseUrl}/dashboard.v1.DashboardService/${method}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}${extra}`;

describe("Connect GET for the NO_SIDE_EFFECTS reads", () => {
  it("the generated connect-web client with useHttpGet sends GetDashboard and ListDashboards as GET", async () => {
    const sent: string[] = [];
    // The browser transport over Node's fetch, recording what actually goes on the wire.
    const recordingFetch: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      sent.push(`${init?.method ?? "GET"} ${url.pathname.split("/").at(-1)}${url.search ? " ?" : ""}`);
      return fetch(input, init);
    };
    const client = createClient(
      DashboardService,
      createWebTransport({ baseUrl: server.baseUrl, useHttpGet: true, fetch: recordingFetch }),
    );
    const got = await client.getDashboard({ tenantId: "tenant-1" }, bearer(token));
    expect(got.dashboard?.id).toBe(dashboardId);
    const listed = await client.listDashboards({ pageSize: 10 }, bearer(token));
    expect(listed.dashboards.map((d) => d.id)).toEqual([dashboardId]);
    // Side effects still go as POST.
    const minted = await client.createIframeToken(
      { tenantId: "tenant-1", workspaceId: "ws-1", dashboardId },
      bearer(token),
    );
    expect(minted.dashboardId).toBe(dashboardId);
    expect(sent).toEqual(["GET GetDashboard ?", "GET ListDashboards ?", "POST CreateIframeToken"]);
  });

  it("the connect-node client with useHttpGet works over HTTP/1.1 and HTTP/2", async () => {
    for (const httpVersion of ["1.1", "2"] as const) {
      const client = createClient(
        DashboardService,
        createConnectTransport({ baseUrl: server.baseUrl, httpVersion, useHttpGet: true }),
      );
      expect((await client.getDashboard({ tenantId: "tenant-1" }, bearer(token))).dashboard?.id).toBe(dashboardId);
      expect((await client.listDashboards({}, bearer(token))).totalSize).toBe(1);
    }
  });

  it("answers a plain GET URL, with the message as JSON or base64, and the browser headers", async () => {
    const res = await fetch(rpcUrl("GetDashboard", { tenantId: "tenant-1" }), {
      headers: { authorization: `Bearer ${token}`, origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("vary")?.toLowerCase()).toContain("origin");
    const body = (await res.json()) as { dashboard: { id: string; tenantId: string } };
    expect(body.dashboard).toMatchObject({ id: dashboardId, tenantId: "tenant-1" });

    const b64 = Buffer.from(JSON.stringify({ pageSize: 5 })).toString("base64url");
    const list = await fetch(
      `${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards?connect=v1&encoding=json&base64=1&message=${b64}`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(list.status).toBe(200);
    expect(((await list.json()) as { totalSize: number }).totalSize).toBe(1);
  });

  it("still authenticates and validates GET calls", async () => {
    const anonymous = await fetch(rpcUrl("ListDashboards", {}));
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe("unauthenticated");

    const invalid = await fetch(rpcUrl("GetDashboard", { tenantId: "bad id!" }), {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { code: string }).code).toBe("invalid_argument");

    const otherOrg = await callerToken({ org: "org-connect-get-attacker", admin: true });
    const isolated = await fetch(rpcUrl("GetDashboard", { tenantId: "tenant-1" }), {
      headers: { authorization: `Bearer ${otherOrg}` },
    });
    expect(isolated.status).toBe(404);
  });

  it("refuses GET for RPCs with side effects", async () => {
    for (const method of ["CreateDashboard", "DeleteDashboard", "CreateIframeToken"]) {
      const res = await fetch(rpcUrl(method, { tenantId: "tenant-1" }), {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status, method).toBe(405);
    }
    // Nothing was deleted.
    const still = await fetch(rpcUrl("GetDashboard", { tenantId: "tenant-1" }), {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(still.status).toBe(200);
  });
});
