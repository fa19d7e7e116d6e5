import { Code } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FilterOperator } from "../../gen/dashboard/v1/iframe_token_pb.js";
import { dashboardClient } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { as, client, failure } from "./support.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ EMBED_FILTER_FIELDS: "region,plan,orders.amount" });
});
afterAll(() => server.stop());

const ORG = "org-filters";

async function setUp(tenantId: string, allowedOrigins: string[] = []) {
  const api = client(server.baseUrl);
  const admin = await as({ org: ORG, admin: true });
  const { dashboard } = await api.createDashboard(
    { tenantId, workspaceId: "ws-1", name: "Sales", allowedOrigins },
    admin,
  );
  const base = { tenantId, workspaceId: "ws-1", dashboardId: dashboard!.id };
  return { api, admin, dashboard: dashboard!, base };
}

describe("locked filters", () => {
  it("land in the token as typed claims, after the tenant filter the server forces", async () => {
    const { api, admin, base } = await setUp("tenant-f1");
    const minted = await api.createIframeToken(
      {
        ...base,
        filters: [
          { field: "region", operator: FilterOperator.IN, values: ["EU", "US"] },
          { field: "orders.amount", operator: FilterOperator.GREATER_THAN_OR_EQUAL, values: ["100"] },
        ],
      },
      admin,
    );
    expect(decodeJwt(minted.token).filters).toEqual([
      { field: "tenant_id", op: "eq", values: ["tenant-f1"] },
      { field: "region", op: "in", values: ["EU", "US"] },
      { field: "orders.amount", op: "gte", values: ["100"] },
    ]);
    const { claims } = await api.verifyIframeToken({ token: minted.token }, admin);
    expect(claims!.filters.map((f) => [f.field, f.operator, f.values])).toEqual([
      ["tenant_id", FilterOperator.EQUALS, ["tenant-f1"]],
      ["region", FilterOperator.IN, ["EU", "US"]],
      ["orders.amount", FilterOperator.GREATER_THAN_OR_EQUAL, ["100"]],
    ]);
  });

  it("refuses each bad filter with INVALID_ARGUMENT naming it, never dropping it", async () => {
    const { api, admin, base } = await setUp("tenant-f2");
    const cases: [string, { field: string; operator: FilterOperator; values: string[] }, string][] = [
      [
        "tenant override",
        { field: "tenant_id", operator: FilterOperator.EQUALS, values: ["tenant-other"] },
        "filters[0].field",
      ],
      ["unknown field", { field: "salary", operator: FilterOperator.EQUALS, values: ["1"] }, "filters[0].field"],
      [
        "SQL as a field",
        { field: "region = 'EU' OR 1=1 --", operator: FilterOperator.EQUALS, values: ["x"] },
        "filters[0].field",
      ],
      [
        "unspecified operator",
        { field: "region", operator: FilterOperator.UNSPECIFIED, values: ["EU"] },
        "filters[0].operator",
      ],
      [
        "operator outside the enum",
        { field: "region", operator: 99 as FilterOperator, values: ["EU"] },
        "filters[0].operator",
      ],
      [
        "two values for EQUALS",
        { field: "region", operator: FilterOperator.EQUALS, values: ["EU", "US"] },
        "filters[0].values",
      ],
      ["no values for IN", { field: "region", operator: FilterOperator.IN, values: [] }, "filters[0].values"],
      [
        "control character in a value",
        { field: "plan", operator: FilterOperator.EQUALS, values: ["pro\u0000"] },
        "filters[0].values[0]",
      ],
    ];
    for (const [what, filter, field] of cases) {
      const f = await failure(api.createIframeToken({ ...base, filters: [filter] }, admin));
      expect({ what, code: f.code, reason: f.reason, fields: f.fields }).toEqual({
        what,
        code: Code.InvalidArgument,
        reason: "VALIDATION_ERROR",
        fields: [field],
      });
    }
    const tooMany = Array.from({ length: 21 }, () => ({
      field: "plan",
      operator: FilterOperator.EQUALS,
      values: ["pro"],
    }));
    expect((await failure(api.createIframeToken({ ...base, filters: tooMany }, admin))).fields).toContain("filters");
    // Several problems are all named at once, each at its index.
    const two = await failure(
      api.createIframeToken(
        {
          ...base,
          filters: [
            { field: "plan", operator: FilterOperator.EQUALS, values: ["pro"] },
            { field: "nope", operator: FilterOperator.UNSPECIFIED, values: ["x"] },
          ],
        },
        admin,
      ),
    );
    expect(two.fields).toEqual(["filters[1].field", "filters[1].operator"]);
  });

  it("refuses an operator name outside the enum in Connect JSON too", async () => {
    const { base } = await setUp("tenant-f3");
    const token = (await as({ org: ORG, admin: true })).headers.authorization;
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/CreateIframeToken`, {
      method: "POST",
      headers: { authorization: token, "content-type": "application/json" },
      body: JSON.stringify({
        ...base,
        filters: [{ field: "region", operator: "FILTER_OPERATOR_LIKE", values: ["%"] }],
      }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
  });
});

describe("origin binding", () => {
  it("stores allowed origins and validates them at creation", async () => {
    const { api, admin, dashboard } = await setUp("tenant-o1", ["https://app.example.com", "http://localhost:3000"]);
    expect(dashboard.allowedOrigins).toEqual(["https://app.example.com", "http://localhost:3000"]);
    expect((await api.getDashboard({ tenantId: "tenant-o1" }, admin)).dashboard!.allowedOrigins).toEqual(
      dashboard.allowedOrigins,
    );
    for (const bad of [
      ["https://app.example.com/"],
      ["https://app.example.com/path"],
      ["javascript:alert(1)"],
      ["a", "a"],
      ["https://x.test", "https://x.test"],
    ]) {
      const f = await failure(
        api.createDashboard({ tenantId: "tenant-o-bad", workspaceId: "ws-1", name: "x", allowedOrigins: bad }, admin),
      );
      expect({ bad, reason: f.reason, fields: f.fields }).toEqual({
        bad,
        reason: "VALIDATION_ERROR",
        fields: ["allowed_origins"],
      });
    }
  });

  it("names the origin in the token and refuses a mint for an origin not on the list", async () => {
    const { api, admin, base } = await setUp("tenant-o2", ["https://app.example.com"]);
    const minted = await api.createIframeToken({ ...base, origin: "https://app.example.com" }, admin);
    expect(decodeJwt(minted.token).origin).toBe("https://app.example.com");
    expect((await api.verifyIframeToken({ token: minted.token }, admin)).claims!.origin).toBe(
      "https://app.example.com",
    );

    const elsewhere = await failure(api.createIframeToken({ ...base, origin: "https://evil.example.net" }, admin));
    expect(elsewhere).toMatchObject({ code: Code.InvalidArgument, reason: "VALIDATION_ERROR", fields: ["origin"] });
    const missing = await failure(api.createIframeToken(base, admin));
    expect(missing.fields).toEqual(["origin"]);
    const malformed = await failure(api.createIframeToken({ ...base, origin: "app.example.com" }, admin));
    expect(malformed.fields).toEqual(["origin"]);
  });

  it("binds a token to an origin on request even when the dashboard lists none, and omits it otherwise", async () => {
    const { api, admin, base } = await setUp("tenant-o3");
    const bound = await api.createIframeToken({ ...base, origin: "https://any.example.org" }, admin);
    expect(decodeJwt(bound.token).origin).toBe("https://any.example.org");
    const unbound = await api.createIframeToken(base, admin);
    expect(decodeJwt(unbound.token)).not.toHaveProperty("origin");
  });

  it("works over gRPC as well (binary enums and repeated fields)", async () => {
    const { admin, base } = await setUp("tenant-o4", ["https://app.example.com"]);
    const grpc = dashboardClient(createGrpcTransport({ baseUrl: server.baseUrl }));
    const minted = await grpc.createIframeToken(
      {
        ...base,
        origin: "https://app.example.com",
        filters: [{ field: "plan", operator: FilterOperator.NOT_IN, values: ["free"] }],
      },
      admin,
    );
    expect(decodeJwt(minted.token).filters).toEqual([
      { field: "tenant_id", op: "eq", values: ["tenant-o4"] },
      { field: "plan", op: "not_in", values: ["free"] },
    ]);
  });
});
