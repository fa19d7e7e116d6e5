import { Code } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { ManualClock } from "../helpers/clock.js";
import { failureOf } from "../helpers/errors.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

/**
 * A renderer in the browser has no credential of its own, only the iframe
 * token the page handed it: VerifyIframeToken accepts that token as the
 * bearer for checking that same token, and nothing else.
 */
const RENDERER_ORIGIN = "http://renderer.example";
const STATUS_BUDGET = 8;

let server: TestServer;
let clock: ManualClock;
let admin: ReturnType<typeof bearer>;
let dashboardId: string;
const clients: Record<string, DashboardClient> = {};

beforeAll(async () => {
  clock = new ManualClock();
  server = await startTestServer(
    {
      CORS_ALLOWED_ORIGINS: "http://app.example",
      CORS_RENDERER_ORIGINS: RENDERER_ORIGIN,
      RATE_LIMIT_TOKEN_STATUS_PER_MINUTE: String(STATUS_BUDGET),
    },
    undefined,
    { clock: clock.now },
  );
  clients["Connect JSON"] = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  clients["gRPC"] = dashboardClient(createGrpcTransport({ baseUrl: server.baseUrl }));
  admin = bearer(await callerToken({ org: "renderers", admin: true, sub: "backend", issuedAt: clock.seconds() }));
  dashboardId = (await clients["Connect JSON"].createDashboard({ tenantId: "t1", workspaceId: "w1", name: "D" }, admin))
    .dashboard!.id;
});
afterAll(() => server.stop());

const mint = async (tenantId = "t1", id = dashboardId) =>
  (await clients["Connect JSON"]!.createIframeToken({ tenantId, workspaceId: "w1", dashboardId: id }, admin)).token;

describe.each(["Connect JSON", "gRPC"])("an iframe token as its own credential, over %s", (protocol) => {
  const client = () => clients[protocol]!;

  it("verifies itself and answers its claims", async () => {
    const token = await mint();
    const { claims } = await client().verifyIframeToken({ token }, bearer(token));
    expect(claims).toMatchObject({ organizationId: "renderers", tenantId: "t1", dashboardId });
  });

  it("may not verify any other token, even one of the same tenant", async () => {
    const [mine, other] = [await mint(), await mint()];
    expect(await failureOf(client().verifyIframeToken({ token: other }, bearer(mine)))).toMatchObject({
      code: Code.PermissionDenied,
      reason: "IFRAME_TOKEN_OUT_OF_SCOPE",
    });
  });

  it("is refused as the credential of every other RPC, before it reaches the call", async () => {
    const token = await mint();
    const outOfScope = { code: Code.PermissionDenied, reason: "IFRAME_TOKEN_OUT_OF_SCOPE" };
    const c = client();
    // Each call's refusal is taken as it is made: one that fails while an earlier one is still awaited
    // must not be an unhandled rejection.
    const failures = await Promise.all(
      [
        c.getDashboard({ tenantId: "t1" }, bearer(token)),
        c.listDashboards({}, bearer(token)),
        c.createIframeToken({ tenantId: "t1", workspaceId: "w1", dashboardId }, bearer(token)),
        c.revokeIframeTokens({ tenantId: "t1", target: { case: "allTenantTokens", value: true } }, bearer(token)),
        c.deleteDashboard({ tenantId: "t1" }, bearer(token)),
      ].map(failureOf),
    );
    for (const failure of failures) expect(failure).toMatchObject(outOfScope);
    // Nothing happened: the dashboard is there and the token still verifies.
    expect((await c.getDashboard({ tenantId: "t1" }, admin)).dashboard!.id).toBe(dashboardId);
    await c.verifyIframeToken({ token }, bearer(token));
  });

  it("is not a credential once tampered with", async () => {
    const token = await mint();
    const [header, payload, signature] = token.split(".");
    const flipped = `${header}.${payload}.${signature!.startsWith("A") ? "B" : "A"}${signature!.slice(1)}`;
    expect(await failureOf(client().verifyIframeToken({ token: flipped }, bearer(flipped)))).toMatchObject({
      code: Code.Unauthenticated,
      reason: "UNAUTHORIZED",
    });
  });
});

describe("what a holder learns about its own token", () => {
  const client = () => clients["Connect JSON"]!;

  it("is TOKEN_REVOKED once the tenant's tokens are revoked", async () => {
    const dashboard = (await client().createDashboard({ tenantId: "t-rev", workspaceId: "w1", name: "R" }, admin))
      .dashboard!.id;
    const token = await mint("t-rev", dashboard);
    await client().verifyIframeToken({ token }, bearer(token));
    // The cutoff is the service clock's now; the token's mint instant (its UUIDv7 jti) is real time.
    clock.advance(60_000);
    await client().revokeIframeTokens({ tenantId: "t-rev", target: { case: "allTenantTokens", value: true } }, admin);
    expect(await failureOf(client().verifyIframeToken({ token }, bearer(token)))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "TOKEN_REVOKED",
    });
  });

  it("is EMBEDDING_PAUSED while the dashboard is paused, and good again when it resumes", async () => {
    const dashboard = (await client().createDashboard({ tenantId: "t-pause", workspaceId: "w1", name: "P" }, admin))
      .dashboard!.id;
    const token = await mint("t-pause", dashboard);
    const set = (embeddingEnabled: boolean) =>
      client().updateDashboard(
        { dashboard: { tenantId: "t-pause", embeddingEnabled }, updateMask: { paths: ["embedding_enabled"] } },
        admin,
      );
    await set(false);
    expect(await failureOf(client().verifyIframeToken({ token }, bearer(token)))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "EMBEDDING_PAUSED",
    });
    await set(true);
    await client().verifyIframeToken({ token }, bearer(token));
  });

  it("is TOKEN_EXPIRED once it has expired, so the renderer asks for a fresh one", async () => {
    const dashboard = (await client().createDashboard({ tenantId: "t-exp", workspaceId: "w1", name: "E" }, admin))
      .dashboard!.id;
    const token = await mint("t-exp", dashboard);
    // Past exp and the leeway; the admin's caller token (an hour) is still good.
    clock.advance((600 + 5 + 1) * 1000);
    expect(await failureOf(client().verifyIframeToken({ token }, bearer(token)))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "TOKEN_EXPIRED",
    });
  });
});

describe("rate limits and CORS for renderers", () => {
  const client = () => clients["Connect JSON"]!;

  it("holds each token to its own status budget, apart from the budget of the backend that minted it", async () => {
    const dashboard = (await client().createDashboard({ tenantId: "t-rl", workspaceId: "w1", name: "L" }, admin))
      .dashboard!.id;
    const [a, b] = [await mint("t-rl", dashboard), await mint("t-rl", dashboard)];
    for (let i = 0; i < STATUS_BUDGET; i++) await client().verifyIframeToken({ token: a }, bearer(a));
    const refused = await failureOf(client().verifyIframeToken({ token: a }, bearer(a)));
    expect(refused).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    // Calls it may not make spend the same budget, so they cannot be a free way to hammer the service.
    expect(await failureOf(client().listDashboards({}, bearer(a)))).toMatchObject({ reason: "RATE_LIMITED" });
    await client().verifyIframeToken({ token: b }, bearer(b));
    await client().verifyIframeToken({ token: a }, admin);
  });

  it("names the iframe-token-status policy and lets the renderer read retry-after", async () => {
    const dashboard = (await client().createDashboard({ tenantId: "t-rl2", workspaceId: "w1", name: "L" }, admin))
      .dashboard!.id;
    const token = await mint("t-rl2", dashboard);
    const call = () =>
      fetch(`${server.baseUrl}/dashboard.v1.DashboardService/VerifyIframeToken`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", origin: RENDERER_ORIGIN },
        body: JSON.stringify({ token }),
      });
    for (let i = 0; i < STATUS_BUDGET; i++) {
      const ok = await call();
      expect(ok.status).toBe(200);
      expect(ok.headers.get("access-control-allow-origin")).toBe(RENDERER_ORIGIN);
      expect(ok.headers.get("ratelimit-policy")).toBe(`${STATUS_BUDGET};w=60`);
    }
    const limited = await call();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(limited.headers.get("access-control-expose-headers")).toMatch(/retry-after/);
    const body = (await limited.json()) as { details: { debug?: { metadata?: Record<string, string> } }[] };
    expect(JSON.stringify(body)).toContain("iframe-token-status");
  });

  it("admits a renderer origin to VerifyIframeToken only, and the app's origins everywhere", async () => {
    const preflight = (origin: string, method: string) =>
      fetch(`${server.baseUrl}/dashboard.v1.DashboardService/${method}`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
    const verify = await preflight(RENDERER_ORIGIN, "VerifyIframeToken");
    expect(verify.status).toBe(204);
    expect(verify.headers.get("access-control-allow-origin")).toBe(RENDERER_ORIGIN);
    expect(verify.headers.get("access-control-allow-headers")).toMatch(/authorization/);
    for (const method of ["ListDashboards", "CreateIframeToken", "GetDashboard"]) {
      const refused = await preflight(RENDERER_ORIGIN, method);
      expect(refused.status, method).toBe(403);
      expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    }
    expect((await preflight("http://app.example", "VerifyIframeToken")).status).toBe(204);
    expect((await preflight("http://app.example", "ListDashboards")).status).toBe(204);
    expect((await preflight("http://elsewhere.example", "VerifyIframeToken")).status).toBe(403);
  });
});
