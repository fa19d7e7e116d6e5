import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import type { DashboardJson } from "../../src/rest/dashboard-json.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";
import { expectError, rest } from "./rest-fetch.js";

const ORIGIN = "https://app.example.com";

describe("REST routes share the RPCs' rate limits (one guard, one budget)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "2", CORS_ALLOWED_ORIGINS: ORIGIN });
  });
  afterAll(() => server.stop());

  it("counts REST and Connect mints against one budget and answers 429 RATE_LIMITED with Retry-After", async () => {
    const org = "org-rest-limits";
    const token = await callerToken({ org, admin: true, sub: "minter" });
    const created = await rest<DashboardJson>(server.baseUrl, "POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: "t-1", workspace_id: "ws-1", name: "Sales" },
    });
    const mint = { tenant_id: "t-1", workspace_id: "ws-1", dashboard_id: created.body.data.id };
    const client = createClient(
      DashboardService,
      createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
    );

    // One over Connect, one over REST: the budget of 2 is spent.
    await client.createIframeToken(
      { tenantId: "t-1", workspaceId: "ws-1", dashboardId: mint.dashboard_id },
      bearer(token),
    );
    const second = await rest(server.baseUrl, "POST", "/api/v1/dashboards/iframe-token", { token, body: mint });
    expect(second.status).toBe(200);
    expect(second.headers.get("ratelimit-limit")).toBe("2");
    expect(second.headers.get("ratelimit-remaining")).toBe("0");

    const refused = await rest(server.baseUrl, "POST", "/api/v1/dashboards/iframe-token", {
      token,
      body: mint,
      headers: { origin: ORIGIN },
    });
    expectError(refused, 429, "RATE_LIMITED");
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    // A browser page can read the header it needs to back off.
    expect(refused.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(refused.headers.get("access-control-expose-headers")).toContain("retry-after");

    // And the other way round: REST spent it, Connect is refused too.
    const rpcErr = await client
      .createIframeToken({ tenantId: "t-1", workspaceId: "ws-1", dashboardId: mint.dashboard_id }, bearer(token))
      .catch((e: unknown) => ConnectError.from(e));
    expect((rpcErr as ConnectError).code).toBe(Code.ResourceExhausted);

    // Another caller of the same organization has its own budget; reads are not held to the mint limit.
    const colleague = await callerToken({ org, admin: true, sub: "colleague" });
    expect(
      (await rest(server.baseUrl, "POST", "/api/v1/dashboards/iframe-token", { token: colleague, body: mint })).status,
    ).toBe(200);
    for (let i = 0; i < 5; i++) {
      expect((await rest(server.baseUrl, "GET", "/api/v1/dashboards/t-1", { token })).status).toBe(200);
    }
  });
});

describe("REST routes count failed authentications per address, like the RPCs", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "3" });
  });
  afterAll(() => server.stop());

  it("throttles a stream of bad tokens with 429 after the budget", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await rest(server.baseUrl, "GET", "/api/v1/dashboards", { token: `bad-token-${i}` });
      statuses.push(res.status);
      if (res.status === 429) {
        expectError(res, 429, "RATE_LIMITED");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      } else {
        expectError(res, 401, "UNAUTHORIZED");
      }
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.slice(3)).toEqual([429, 429]);
  });
});
