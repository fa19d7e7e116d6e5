import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS } from "../../src/edge/cors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

const ALLOWED = "https://app.example.com";
const ALSO_ALLOWED = "http://localhost:5173";
const REFUSED = "https://evil.example.net";

let server: TestServer;
let token: string;
beforeAll(async () => {
  server = await startTestServer({ CORS_ALLOWED_ORIGINS: `${ALLOWED}, ${ALSO_ALLOWED}` });
  token = await callerToken({ org: "org-cors", admin: true });
});
afterAll(() => server.stop());

const csv = (value: string | null) =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

function preflight(
  path: string,
  origin: string,
  method = "POST",
  headers = "authorization, content-type, connect-protocol-version",
) {
  return fetch(`${server.baseUrl}${path}`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
  });
}

describe("CORS preflight", () => {
  for (const [path, method] of [
    ["/dashboard.v1.DashboardService/ListDashboards", "POST"],
    ["/dashboard.v1.DashboardService/GetDashboard", "GET"],
    ["/api/v1/dashboards", "POST"],
    ["/api/v1/dashboards/tenant-1", "DELETE"],
  ] as const) {
    it(`is answered for an allowed origin without authentication (${method} ${path})`, async () => {
      const res = await preflight(path, ALLOWED, method);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      expect(csv(res.headers.get("access-control-allow-methods"))).toEqual(
        expect.arrayContaining(["post", "get", "delete"]),
      );
      const allowedHeaders = csv(res.headers.get("access-control-allow-headers"));
      // Connect's and gRPC-Web's request headers, plus our bearer token.
      expect(allowedHeaders).toEqual(
        expect.arrayContaining([
          "authorization",
          "content-type",
          "connect-protocol-version",
          "connect-timeout-ms",
          "x-grpc-web",
          "x-user-agent",
          "grpc-timeout",
        ]),
      );
      expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
      expect(csv(res.headers.get("vary"))).toContain("origin");
    });
  }

  it("allows each configured origin, echoing exactly that one", async () => {
    const res = await preflight("/api/v1/dashboards", ALSO_ALLOWED);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALSO_ALLOWED);
  });

  it("is refused with 403 and no CORS headers for an origin that is not allowed", async () => {
    for (const origin of [REFUSED, "https://app.example.com.evil.net", "http://app.example.com", "null"]) {
      const res = await preflight("/dashboard.v1.DashboardService/ListDashboards", origin);
      expect(res.status).toBe(403);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-methods")).toBeNull();
    }
  });

  it("leaves paths that are not for browsers alone", async () => {
    const res = await preflight("/no-such-thing", ALLOWED);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("CORS on actual responses", () => {
  it("lets an allowed origin read Connect answers and the Connect/gRPC-Web/rate-limit headers", async () => {
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
      method: "POST",
      headers: { origin: ALLOWED, authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    const exposed = csv(res.headers.get("access-control-expose-headers"));
    expect(exposed).toEqual(
      expect.arrayContaining([
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
      ]),
    );
    expect(exposed).toEqual(CORS_EXPOSED_HEADERS.map((h) => h.toLowerCase()));
    expect(csv(res.headers.get("vary"))).toContain("origin");
  });

  it("lets an allowed origin read errors too (so the page can show why)", async () => {
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
      method: "POST",
      headers: { origin: ALLOWED, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(((await res.json()) as { code: string }).code).toBe("unauthenticated");
  });

  it("covers gRPC-Web and the REST routes", async () => {
    const grpcWeb = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
      method: "POST",
      headers: {
        origin: ALLOWED,
        authorization: `Bearer ${token}`,
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
      },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    expect(grpcWeb.status).toBe(200);
    expect(grpcWeb.headers.get("access-control-allow-origin")).toBe(ALLOWED);

    const restList = await fetch(`${server.baseUrl}/api/v1/dashboards`, {
      headers: { origin: ALLOWED, authorization: `Bearer ${token}` },
    });
    expect(restList.status).toBe(200);
    expect(restList.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(((await restList.json()) as { success: boolean }).success).toBe(true);
  });

  it("gives an origin that is not allowed no CORS headers, so the browser withholds the answer", async () => {
    for (const path of ["/dashboard.v1.DashboardService/ListDashboards", "/api/v1/dashboards"]) {
      const res = await fetch(`${server.baseUrl}${path}`, {
        method: path.startsWith("/api") ? "GET" : "POST",
        headers: { origin: REFUSED, authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: path.startsWith("/api") ? undefined : "{}",
      });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-expose-headers")).toBeNull();
      expect(csv(res.headers.get("vary"))).toContain("origin");
    }
  });

  it("varies on Origin even when a request has none, so a cache never serves one origin's answer to another", async () => {
    const res = await fetch(`${server.baseUrl}/api/v1/dashboards`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(csv(res.headers.get("vary"))).toContain("origin");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("CORS header lists", () => {
  it("are the ones @connectrpc/connect exports, plus authorization and REST's If-Match and ETag", async () => {
    const { cors } = await import("@connectrpc/connect");
    expect(CORS_ALLOWED_HEADERS).toEqual([...cors.allowedHeaders, "authorization", "if-match"]);
    expect(CORS_EXPOSED_HEADERS).toEqual(expect.arrayContaining([...cors.exposedHeaders, "retry-after", "etag"]));
    expect(CORS_ALLOWED_METHODS).toEqual([...cors.allowedMethods, "PATCH", "DELETE"]);
  });
});
