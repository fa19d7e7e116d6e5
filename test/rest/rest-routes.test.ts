import { createClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";
import type { DashboardJson } from "../../src/rest/dashboard-json.js";
import { openApiDocument } from "../../src/rest/openapi.js";
import { match } from "../helpers/matchers.js";
import { expectMatchesOpenApi, observed } from "./openapi-validator.js";
import { expectError, rest } from "./rest-fetch.js";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

let server: TestServer;
beforeAll(async () => {
  // The smallest body limit the configuration allows, so 413 is cheap to reach.
  server = await startTestServer({ MAX_REQUEST_BYTES: "1024" });
});
afterAll(() => server.stop());

/** A REST call to the test server; `D` is the `data` the route is expected to answer. */
const call = <D = unknown>(method: string, path: string, options?: Parameters<typeof rest>[3]) =>
  rest<D>(server.baseUrl, method, path, options);
/** What POST /api/v1/dashboards/iframe-token answers as its data. */
type IframeTokenJson = { token: string; dashboard_id: string; expires_at: number; token_id: string };
const admin = (org: string, sub = "alice") => callerToken({ org, admin: true, sub });

async function createDashboard(token: string, tenant: string, extra: Record<string, unknown> = {}) {
  const created = await call("POST", "/api/v1/dashboards", {
    token,
    body: { tenant_id: tenant, workspace_id: "ws-1", name: `Dashboard of ${tenant}`, ...extra },
  });
  expect(created.status).toBe(201);
  return created.body.data as { id: string; tenant_id: string; workspace_id: string };
}

describe("the guide's routes, success envelopes", () => {
  const org = "org-rest-happy";

  it("POST /api/v1/dashboards creates and answers 201 with the dashboard in snake_case", async () => {
    const token = await admin(org);
    const res = await call<DashboardJson>("POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: "tenant-1", workspace_id: "ws-1", name: "Sales", description: "Revenue by region" },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe("/api/v1/dashboards/tenant-1");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toEqual({
      success: true,
      data: {
        id: match.stringMatching(/^[0-9a-f-]{36}$/),
        tenant_id: "tenant-1",
        workspace_id: "ws-1",
        dashboard_id: res.body.data.id,
        name: "Sales",
        description: "Revenue by region",
        organization_id: org,
        created_by: "alice",
        created_at: match.stringMatching(RFC3339),
        updated_at: match.stringMatching(RFC3339),
        // Added after the guide, with the defaults of a dashboard that asked for no embed settings.
        allowed_origins: [],
        embedding_enabled: true,
        embed_defaults: { permissions: [], locale: "", time_zone: "", theme: "" },
        permission_ceiling: ["download_image", "export_data", "drill_through", "view_underlying_data", "fullscreen"],
        etag: match.stringMatching(/^"[A-Za-z0-9_-]{22}"$/),
      },
    });
    expect(res.headers.get("etag")).toBe(res.body.data.etag);
    expect(Math.abs(Date.parse(res.body.data.created_at) - Date.now())).toBeLessThan(60_000);
  });

  it("POST without description stores an empty one; null counts as absent", async () => {
    const token = await admin(org);
    const a = await createDashboard(token, "tenant-nodesc");
    expect((a as unknown as { description: string }).description).toBe("");
    const b = await createDashboard(token, "tenant-nulldesc", { description: null });
    expect((b as unknown as { description: string }).description).toBe("");
  });

  it("GET /api/v1/dashboards/{tenant_id} answers the same dashboard", async () => {
    const token = await admin(org);
    const created = await createDashboard(token, "tenant-get");
    const res = await call("GET", "/api/v1/dashboards/tenant-get", { token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, data: created });
  });

  it("GET /api/v1/dashboards pages with skip and limit and reports the total", async () => {
    const listOrg = "org-rest-list";
    const token = await admin(listOrg);
    const ids: string[] = [];
    for (const t of ["t-a", "t-b", "t-c"]) ids.push((await createDashboard(token, t)).id);

    const all = await call<DashboardJson[]>("GET", "/api/v1/dashboards?skip=0&limit=100", { token });
    expect(all.status).toBe(200);
    expect(all.body.success).toBe(true);
    expect(all.body.total).toBe(3);
    expect(all.body.data.map((d) => d.id)).toEqual(ids);

    const firstTwo = await call<DashboardJson[]>("GET", "/api/v1/dashboards?limit=2", { token });
    expect(firstTwo.body.data.map((d) => d.id)).toEqual(ids.slice(0, 2));
    expect(firstTwo.body.total).toBe(3);

    const skipped = await call<DashboardJson[]>("GET", "/api/v1/dashboards?skip=2&limit=2", { token });
    expect(skipped.body.data.map((d) => d.id)).toEqual(ids.slice(2));
    expect(skipped.body.total).toBe(3);

    // Without parameters: the guide's defaults (skip 0, limit 100).
    const defaults = await call("GET", "/api/v1/dashboards", { token });
    expect(defaults.body.data).toHaveLength(3);
  });

  it("a tenant-scoped caller lists only its tenants, and total counts only those", async () => {
    const scopedOrg = "org-rest-scoped";
    const token = await admin(scopedOrg);
    await createDashboard(token, "mine");
    await createDashboard(token, "theirs");
    const scoped = await callerToken({ org: scopedOrg, tenants: ["mine"] });
    const res = await call<DashboardJson[]>("GET", "/api/v1/dashboards", { token: scoped });
    expect(res.body.total).toBe(1);
    expect(res.body.data.map((d) => d.tenant_id)).toEqual(["mine"]);
  });

  it("POST /api/v1/dashboards/iframe-token mints a token with expires_at as a JSON number", async () => {
    const token = await admin(org);
    const d = await createDashboard(token, "tenant-embed");
    const res = await call<IframeTokenJson>("POST", "/api/v1/dashboards/iframe-token", {
      token,
      body: { tenant_id: "tenant-embed", workspace_id: "ws-1", dashboard_id: d.id },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      data: {
        token: match.any(String),
        dashboard_id: d.id,
        expires_at: match.any(Number),
        token_id: match.any(String),
      },
    });
    const claims = decodeJwt(res.body.data.token);
    expect(claims.jti).toBe(res.body.data.token_id);
    expect(claims).toMatchObject({
      organization_id: org,
      tenant_id: "tenant-embed",
      workspace_id: "ws-1",
      dashboard_id: d.id,
    });
    expect(claims.exp).toBe(res.body.data.expires_at);
    expect(res.body.data.expires_at - claims.iat!).toBe(600);

    const validUntil = Math.floor(Date.now() / 1000) + 120;
    const chosen = await call<IframeTokenJson>("POST", "/api/v1/dashboards/iframe-token", {
      token,
      body: { tenant_id: "tenant-embed", workspace_id: "ws-1", dashboard_id: d.id, valid_until: validUntil },
    });
    expect(chosen.body.data.expires_at).toBe(validUntil);
    expect(decodeJwt(chosen.body.data.token).exp).toBe(validUntil);
  });

  it("DELETE /api/v1/dashboards/{tenant_id} answers the guide's message, then the dashboard is gone", async () => {
    const token = await admin(org);
    await createDashboard(token, "tenant-del");
    const res = await call("DELETE", "/api/v1/dashboards/tenant-del", { token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, message: "Dashboard deleted successfully" });
    expectError(await call("GET", "/api/v1/dashboards/tenant-del", { token }), 404, "NOT_FOUND");
    expectError(await call("DELETE", "/api/v1/dashboards/tenant-del", { token }), 404, "NOT_FOUND");
  });

  it("percent-encoded tenant ids are decoded before the domain sees them", async () => {
    const token = await admin(org);
    await createDashboard(token, "tenant:enc.1");
    const res = await call<DashboardJson>("GET", `/api/v1/dashboards/${encodeURIComponent("tenant:enc.1")}`, { token });
    expect(res.body.data.tenant_id).toBe("tenant:enc.1");
  });
});

describe("the guide's error envelope and statuses", () => {
  const org = "org-rest-errors";

  it("401 UNAUTHORIZED without a token, with a bad token and with an expired one, with WWW-Authenticate", async () => {
    const expired = await callerToken({ org, admin: true, expiresIn: -600 });
    const forged = await callerToken({ org, admin: true, secret: "another-secret-that-is-at-least-32-bytes!!" });
    for (const token of [undefined, "not-a-jwt", expired, forged]) {
      for (const [method, path, body] of [
        ["POST", "/api/v1/dashboards", { tenant_id: "t", workspace_id: "w", name: "n" }],
        ["GET", "/api/v1/dashboards", undefined],
        ["GET", "/api/v1/dashboards/t", undefined],
        ["DELETE", "/api/v1/dashboards/t", undefined],
        ["POST", "/api/v1/dashboards/iframe-token", { tenant_id: "t", workspace_id: "w", dashboard_id: "d" }],
      ] as const) {
        const res = await call(method, path, { token, body });
        expectError(res, 401, "UNAUTHORIZED");
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      }
    }
  });

  it("403 FORBIDDEN for a tenant outside the caller's grant, before existence is known", async () => {
    const token = await admin(org);
    const d = await createDashboard(token, "granted-not");
    const scoped = await callerToken({ org, tenants: ["other-tenant"] });
    expectError(
      await call("POST", "/api/v1/dashboards", {
        token: scoped,
        body: { tenant_id: "granted-not", workspace_id: "w", name: "n" },
      }),
      403,
      "FORBIDDEN",
    );
    expectError(await call("GET", "/api/v1/dashboards/granted-not", { token: scoped }), 403, "FORBIDDEN");
    // A tenant that has no dashboard at all answers the same: nothing about existence leaks.
    expectError(await call("GET", "/api/v1/dashboards/never-created", { token: scoped }), 403, "FORBIDDEN");
    expectError(await call("DELETE", "/api/v1/dashboards/granted-not", { token: scoped }), 403, "FORBIDDEN");
    expectError(
      await call("POST", "/api/v1/dashboards/iframe-token", {
        token: scoped,
        body: { tenant_id: "granted-not", workspace_id: "ws-1", dashboard_id: d.id },
      }),
      403,
      "FORBIDDEN",
    );
    // Still there for its rightful caller.
    expect((await call("GET", "/api/v1/dashboards/granted-not", { token })).status).toBe(200);
  });

  it("404 NOT_FOUND for a missing dashboard, and for an iframe token of the wrong workspace or id", async () => {
    const token = await admin(org);
    expectError(await call("GET", "/api/v1/dashboards/no-such-tenant", { token }), 404, "NOT_FOUND");
    const d = await createDashboard(token, "tenant-404");
    for (const body of [
      { tenant_id: "tenant-404", workspace_id: "ws-other", dashboard_id: d.id },
      { tenant_id: "tenant-404", workspace_id: "ws-1", dashboard_id: "00000000-0000-7000-8000-000000000000" },
      { tenant_id: "no-such-tenant", workspace_id: "ws-1", dashboard_id: d.id },
    ]) {
      expectError(await call("POST", "/api/v1/dashboards/iframe-token", { token, body }), 404, "NOT_FOUND");
    }
  });

  it("409 ALREADY_EXISTS for a tenant's second dashboard", async () => {
    const token = await admin(org);
    await createDashboard(token, "tenant-dup");
    const res = await call("POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: "tenant-dup", workspace_id: "ws-2", name: "Again" },
    });
    expectError(res, 409, "ALREADY_EXISTS");
  });

  it("422 VALIDATION_ERROR naming every bad field, in the same words as the RPC (one set of rules)", async () => {
    const token = await admin(org);
    const res = await call("POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: "bad id!", workspace_id: "", name: " " },
    });
    const message = expectError(res, 422, "VALIDATION_ERROR");
    expect(message).toBe(
      "tenant_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ : -; workspace_id: is required; name: must not be blank",
    );
    const client = createClient(
      DashboardService,
      createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
    );
    const rpcErr = await client
      .createDashboard(
        { tenantId: "bad id!", workspaceId: "", name: " " },
        { headers: { authorization: `Bearer ${token}` } },
      )
      .catch((e: unknown) => ConnectError.from(e));
    expect((rpcErr as ConnectError).rawMessage).toBe(message);

    // JSON can carry types protobuf cannot; the same rules refuse them.
    const typed = await call("POST", "/api/v1/dashboards", {
      token,
      body: { tenant_id: 42, workspace_id: "w", name: ["x"], description: 7 },
    });
    expect(expectError(typed, 422, "VALIDATION_ERROR")).toBe(
      "tenant_id: is required; name: must be a string; description: must be a string",
    );
  });

  it("422 for malformed JSON, a body that is not an object, and an empty body", async () => {
    const token = await admin(org);
    for (const path of ["/api/v1/dashboards", "/api/v1/dashboards/iframe-token"]) {
      for (const body of ['{"tenant_id": "t",', "[1,2]", '"text"', "null", ""]) {
        const res = await call("POST", path, { token, body, headers: { "content-type": "application/json" } });
        expectError(res, 422, "VALIDATION_ERROR");
      }
    }
    const malformed = await call("POST", "/api/v1/dashboards", { token, body: "{oops" });
    expect(malformed.body.error).toBe("the request body is not valid JSON");
  });

  it("422 for iframe-token lifetimes out of range and wrongly typed", async () => {
    const token = await admin(org);
    const d = await createDashboard(token, "tenant-ttl");
    const now = Math.floor(Date.now() / 1000);
    for (const [validUntil, words] of [
      [now - 10, "valid_until: must be in the future"],
      [now + 10 * 86400, "valid_until: must be at most 86400 seconds from now"],
      ["soon", "valid_until: must be an integer"],
      [now + 1.5, "valid_until: must be an integer"],
    ] as const) {
      const res = await call("POST", "/api/v1/dashboards/iframe-token", {
        token,
        body: { tenant_id: "tenant-ttl", workspace_id: "ws-1", dashboard_id: d.id, valid_until: validUntil },
      });
      expect(expectError(res, 422, "VALIDATION_ERROR")).toBe(words);
    }
  });

  it("422 for list parameters that are not non-negative integers, named as the REST parameter", async () => {
    const token = await admin(org);
    expect(expectError(await call("GET", "/api/v1/dashboards?limit=abc", { token }), 422, "VALIDATION_ERROR")).toBe(
      "limit: must be an integer",
    );
    expect(expectError(await call("GET", "/api/v1/dashboards?limit=-1", { token }), 422, "VALIDATION_ERROR")).toBe(
      "limit: must be at least 0",
    );
    expect(expectError(await call("GET", "/api/v1/dashboards?skip=1.5", { token }), 422, "VALIDATION_ERROR")).toBe(
      "skip: must be an integer",
    );
  });

  it("422 for a tenant id in the path that breaks the id rule, including malformed percent-encoding", async () => {
    const token = await admin(org);
    for (const segment of ["bad%20id", "%E0%A4%A", "x".repeat(129)]) {
      for (const method of ["GET", "DELETE"]) {
        const res = await call(method, `/api/v1/dashboards/${segment}`, { token });
        expect(expectError(res, 422, "VALIDATION_ERROR")).toMatch(/^tenant_id: /);
      }
    }
  });

  it("413 for a body over MAX_REQUEST_BYTES, declared or streamed, with code MESSAGE_TOO_LARGE", async () => {
    const token = await admin(org);
    const big = { tenant_id: "t-big", workspace_id: "w", name: "n", description: "x".repeat(2000) };
    const res = await call("POST", "/api/v1/dashboards", { token, body: big });
    expect(expectError(res, 413, "MESSAGE_TOO_LARGE")).toBe("the request is larger than the 1024-byte limit");
    // Nothing was created.
    expectError(await call("GET", "/api/v1/dashboards/t-big", { token }), 404, "NOT_FOUND");

    // Without Content-Length (chunked), the limit applies while reading.
    const chunks = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify(big)));
        controller.close();
      },
    });
    const streamed = await fetch(`${server.baseUrl}/api/v1/dashboards`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: chunks,
      duplex: "half",
    });
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ success: false, code: "MESSAGE_TOO_LARGE" });

    const bigMint = { tenant_id: "t", workspace_id: "w", dashboard_id: "d", padding: "x".repeat(2000) };
    expectError(
      await call("POST", "/api/v1/dashboards/iframe-token", { token, body: bigMint }),
      413,
      "MESSAGE_TOO_LARGE",
    );
  });

  it("404 NOT_FOUND in the envelope for unknown routes and methods under /api/", async () => {
    const token = await admin(org);
    for (const [method, path] of [
      ["GET", "/api/v1/nothing-here"],
      ["GET", "/api/v2/dashboards"],
      ["PUT", "/api/v1/dashboards/tenant-1"],
      ["PATCH", "/api/v1/dashboards"],
      ["GET", "/api/v1/dashboards/a/b"],
      ["GET", "/api/v1/dashboards/"],
    ] as const) {
      const res = await call(method, path, { token });
      expect(expectError(res, 404, "NOT_FOUND")).toBe(`no route for ${method} ${path}`);
    }
    // Unknown routes answer without authentication: there is nothing to protect.
    expectError(await call("GET", "/api/v1/nothing-here"), 404, "NOT_FOUND");
  });
});

describe("isolation between organizations, from the attacker's side", () => {
  it("another organization's admin can neither see, read, delete nor mint for a victim's dashboard", async () => {
    const victim = await admin("org-victim", "victim");
    const attacker = await admin("org-attacker", "mallory");
    const d = await createDashboard(victim, "shared-name");

    const listed = await call("GET", "/api/v1/dashboards", { token: attacker });
    expect(listed.body).toEqual({ success: true, data: [], total: 0 });
    expectError(await call("GET", "/api/v1/dashboards/shared-name", { token: attacker }), 404, "NOT_FOUND");
    expectError(await call("DELETE", "/api/v1/dashboards/shared-name", { token: attacker }), 404, "NOT_FOUND");
    expectError(
      await call("POST", "/api/v1/dashboards/iframe-token", {
        token: attacker,
        body: { tenant_id: "shared-name", workspace_id: "ws-1", dashboard_id: d.id },
      }),
      404,
      "NOT_FOUND",
    );
    // organization_id in the body is ignored: it always comes from the token.
    const own = await call<DashboardJson>("POST", "/api/v1/dashboards", {
      token: attacker,
      body: { tenant_id: "shared-name", workspace_id: "ws-1", name: "Mine", organization_id: "org-victim" },
    });
    expect(own.status).toBe(201);
    expect(own.body.data.organization_id).toBe("org-attacker");
    expect(own.body.data.id).not.toBe(d.id);

    // The victim's dashboard is untouched.
    const still = await call("GET", "/api/v1/dashboards/shared-name", { token: victim });
    expect(still.body.data).toEqual(d);
    expect((await call("GET", "/api/v1/dashboards", { token: victim })).body.total).toBe(1);
  });
});

describe("PATCH /api/v1/dashboards/{tenant_id}: a JSON merge patch, with If-Match", () => {
  const org = "org-rest-patch";
  const patch = (token: string, tenant: string, body: unknown, headers: Record<string, string> = {}) =>
    call<DashboardJson>("PATCH", `/api/v1/dashboards/${tenant}`, {
      token,
      body,
      headers: { "content-type": "application/merge-patch+json", ...headers },
    });

  it("changes exactly the members sent, moves updated_at and the ETag, and GET shows the new version", async () => {
    const token = await admin(org);
    const before = (await createDashboard(token, "p-happy", { description: "old" })) as unknown as DashboardJson;
    const res = await patch(token, "p-happy", { name: "Renamed", embed_defaults: { theme: "dark", locale: "EN-gb" } });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({
      ...before,
      name: "Renamed",
      // The locale is stored in the canonical form Intl gives it.
      embed_defaults: { ...before.embed_defaults, theme: "dark", locale: "en-GB" },
      updated_at: match.stringMatching(RFC3339),
      etag: match.any(String),
    });
    expect(Date.parse(res.body.data.updated_at)).toBeGreaterThanOrEqual(Date.parse(before.updated_at));
    expect(res.body.data.etag).not.toBe(before.etag);
    expect(res.headers.get("etag")).toBe(res.body.data.etag);
    const read = await call<DashboardJson>("GET", "/api/v1/dashboards/p-happy", { token });
    expect(read.body.data).toEqual(res.body.data);
    expect(read.headers.get("etag")).toBe(res.body.data.etag);
  });

  it("null resets a member to its default, and application/json is taken as a merge patch too", async () => {
    const token = await admin(org);
    await createDashboard(token, "p-null", {
      description: "d",
      allowed_origins: ["https://a.example"],
      embed_defaults: { theme: "light", permissions: ["fullscreen"] },
      permission_ceiling: ["fullscreen", "export_data"],
    });
    const res = await patch(
      token,
      "p-null",
      { description: null, allowed_origins: null, embed_defaults: null, permission_ceiling: null },
      { "content-type": "application/json" },
    );
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      description: "",
      allowed_origins: [],
      embed_defaults: { permissions: [], locale: "", time_zone: "", theme: "" },
      permission_ceiling: ["download_image", "export_data", "drill_through", "view_underlying_data", "fullscreen"],
    });
  });

  it("If-Match: the current ETag or * applies; a stale or weak one is 412 ETAG_MISMATCH and changes nothing", async () => {
    const token = await admin(org);
    await createDashboard(token, "p-match");
    const first = await call<DashboardJson>("GET", "/api/v1/dashboards/p-match", { token });
    const etag = first.headers.get("etag")!;
    const applied = await patch(token, "p-match", { name: "One" }, { "if-match": etag });
    expect(applied.status).toBe(200);
    for (const stale of [etag, `W/${applied.headers.get("etag")}`, '"something-else"']) {
      const refused = await patch(token, "p-match", { name: "Two" }, { "if-match": stale });
      expect(expectError(refused, 412, "ETAG_MISMATCH")).toMatch(/changed since/);
    }
    // A list matches when any of its tags does (RFC 9110 §13.1.1).
    const listed = await patch(
      token,
      "p-match",
      { name: "Three" },
      { "if-match": `"x", ${applied.headers.get("etag")}` },
    );
    expect(listed.body.data.name).toBe("Three");
    const any = await patch(token, "p-match", { name: "Four" }, { "if-match": "*" });
    expect(any.body.data.name).toBe("Four");
    expect((await call<DashboardJson>("GET", "/api/v1/dashboards/p-match", { token })).body.data.name).toBe("Four");
  });

  it("of two edits from the same ETag, exactly one applies; the other is 412", async () => {
    const token = await admin(org);
    await createDashboard(token, "p-race");
    const etag = (await call("GET", "/api/v1/dashboards/p-race", { token })).headers.get("etag")!;
    const answers = await Promise.all(["A", "B"].map((name) => patch(token, "p-race", { name }, { "if-match": etag })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 412]);
    const winner = answers.find((a) => a.status === 200)!;
    const read = await call<DashboardJson>("GET", "/api/v1/dashboards/p-race", { token });
    expect(read.body.data.name).toBe(winner.body.data.name);
  });

  it("422 naming an unknown or immutable member, an empty patch and a bad value; 415 for a JSON Patch", async () => {
    const token = await admin(org);
    await createDashboard(token, "p-bad");
    expect(expectError(await patch(token, "p-bad", { tenant_id: "x", colour: "red" }), 422, "VALIDATION_ERROR")).toBe(
      "tenant_id: cannot be changed; colour: is not a field of a dashboard that can be updated",
    );
    expect(expectError(await patch(token, "p-bad", {}), 422, "VALIDATION_ERROR")).toBe(
      "body: names no field to change",
    );
    expect(
      expectError(
        await patch(token, "p-bad", { embed_defaults: { time_zone: "Mars/Olympus" } }),
        422,
        "VALIDATION_ERROR",
      ),
    ).toMatch(/^embed_defaults\.time_zone: /);
    const jsonPatch = await patch(token, "p-bad", [{ op: "replace", path: "/name", value: "x" }], {
      "content-type": "application/json-patch+json",
    });
    expect(expectError(jsonPatch, 415, "UNSUPPORTED_MEDIA_TYPE")).toMatch(/merge-patch/);
    // A body past MAX_REQUEST_BYTES is refused before it is parsed.
    expectError(await patch(token, "p-bad", { description: "x".repeat(2000) }), 413, "MESSAGE_TOO_LARGE");
  });

  it("a tenant's caller may rename its dashboard and set embed defaults within the ceiling, nothing more", async () => {
    const token = await admin(org);
    await createDashboard(token, "p-tenant", { permission_ceiling: ["fullscreen"] });
    await createDashboard(token, "p-other");
    const tenant = await callerToken({ org, tenants: ["p-tenant"] });
    const renamed = await patch(tenant, "p-tenant", { name: "Ours", embed_defaults: { permissions: ["fullscreen"] } });
    expect(renamed.status).toBe(200);
    for (const body of [{ embedding_enabled: false }, { allowed_origins: ["https://evil.example"] }]) {
      expectError(await patch(tenant, "p-tenant", body), 403, "FORBIDDEN");
    }
    expectError(await patch(tenant, "p-tenant", { permission_ceiling: null }), 403, "FORBIDDEN");
    expect(
      expectError(
        await patch(tenant, "p-tenant", { embed_defaults: { permissions: ["export_data"] } }),
        422,
        "VALIDATION_ERROR",
      ),
    ).toBe("embed_defaults.permissions: EXPORT_DATA is not allowed by this dashboard's permission ceiling");
    expectError(await patch(tenant, "p-other", { name: "Theirs" }), 403, "FORBIDDEN");
    expectError(await patch(token, "p-missing", { name: "n" }), 404, "NOT_FOUND");
    expectError(await patch("", "p-tenant", { name: "n" }), 401, "UNAUTHORIZED");
    const read = await call<DashboardJson>("GET", "/api/v1/dashboards/p-tenant", { token });
    expect(read.body.data).toMatchObject({ name: "Ours", embedding_enabled: true, permission_ceiling: ["fullscreen"] });
  });

  it("the iframe-token route takes the embed settings, and a paused dashboard is 409 EMBEDDING_PAUSED", async () => {
    const token = await admin(org);
    const d = await createDashboard(token, "p-embed", {
      allowed_origins: ["https://app.example"],
      embed_defaults: { theme: "dark", permissions: ["fullscreen"] },
    });
    const mint = (extra: Record<string, unknown>) =>
      call<IframeTokenJson>("POST", "/api/v1/dashboards/iframe-token", {
        token,
        body: {
          tenant_id: "p-embed",
          workspace_id: "ws-1",
          dashboard_id: d.id,
          origin: "https://app.example",
          ...extra,
        },
      });
    const withDefaults = await mint({});
    expect(withDefaults.status).toBe(200);
    expect(decodeJwt(withDefaults.body.data.token)).toMatchObject({ permissions: ["fullscreen"], theme: "dark" });
    const chosen = await mint({
      permissions: ["export_data", "fullscreen"],
      locale: "de-de",
      time_zone: "europe/berlin",
      theme: "light",
      viewer: { id: "user-7", display_name: "Ada" },
    });
    expect(chosen.status).toBe(200);
    expect(decodeJwt(chosen.body.data.token)).toMatchObject({
      origin: "https://app.example",
      permissions: ["export_data", "fullscreen"],
      locale: "de-DE",
      time_zone: "Europe/Berlin",
      theme: "light",
      viewer: { id: "user-7", name: "Ada" },
    });
    expect(expectError(await mint({ theme: "neon" }), 422, "VALIDATION_ERROR")).toMatch(/^theme: /);
    expect((await patch(token, "p-embed", { embedding_enabled: false })).status).toBe(200);
    expect(expectError(await mint({}), 409, "EMBEDDING_PAUSED")).toMatch(/paused/);
    expectError(await mint({ viewer: { id: "v", display_name: "x".repeat(2000) } }), 413, "MESSAGE_TOO_LARGE");
  });
});

describe("the OpenAPI document", () => {
  it("is served without authentication at /api/v1/openapi.json as OpenAPI 3.1", async () => {
    const res = await fetch(`${server.baseUrl}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expectMatchesOpenApi("GET", "/api/v1/openapi.json", { status: res.status, headers: res.headers, body: doc });
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/api/v1/dashboards",
      "/api/v1/dashboards/iframe-token",
      "/api/v1/dashboards/{tenant_id}",
      "/api/v1/openapi.json",
    ]);
  });

  // Runs last in this file: every status the document promises was produced by a real answer above.
  it("lists no status the routes were not seen to answer (other than 429, 500, 503 and 504, tested elsewhere)", () => {
    const documented: string[] = [];
    for (const [template, operations] of Object.entries(openApiDocument.paths)) {
      for (const [method, operation] of Object.entries<{ responses: object }>(operations)) {
        for (const status of Object.keys(operation.responses)) {
          if (!["429", "500", "503", "504"].includes(status))
            documented.push(`${method.toUpperCase()} ${template} ${status}`);
        }
      }
    }
    expect(documented.length).toBeGreaterThan(20);
    expect(documented.filter((d) => !observed.has(d))).toEqual([]);
  });
});
