import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { create, toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { GrpcJsDashboardClient, grpcFailureFrom } from "../helpers/grpc-js.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

/**
 * Property: whatever a caller puts in a request, the answer is a precise code
 * (never INTERNAL or UNKNOWN) and the server keeps answering.
 */
let server: TestServer;
let grpcClient: GrpcJsDashboardClient;
let token: string;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 60);
const outcomes: Record<string, Record<string, number>> = {};

beforeAll(async () => {
  server = await startTestServer();
  grpcClient = new GrpcJsDashboardClient(server.port);
  token = await callerToken({ org: "fuzz", admin: true });
});
afterAll(async () => {
  grpcClient.close();
  await server.stop();
  if (process.env.PROPERTY_REPORT) process.stdout.write(`${JSON.stringify(outcomes)}\n`);
});

const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));
const count = (where: string, code: string) => {
  outcomes[where] ??= {};
  outcomes[where][code] = (outcomes[where][code] ?? 0) + 1;
};

// Strings a hostile or careless client sends: any unicode, control characters, lone surrogates, SQL, huge.
const nasty = fc.oneof(
  // Often well-formed, so calls get past validation and reach the policy and the database too.
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,24}$/),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "",
    " ",
    "t1",
    "T1",
    "t1\u0000",
    "ｔ１",
    "e\u0301",
    "é",
    "'; DROP TABLE dashboards;--",
    '{"$ne":null}',
    "../../etc/passwd",
    "\ud800",
  ),
  fc.string({ minLength: 120, maxLength: 3000 }),
);
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const filters = fc.array(
  fc.record({ field: nasty, operator: fc.integer({ min: -1, max: 12 }), values: fc.array(nasty, { maxLength: 3 }) }),
  { maxLength: 3 },
);
const paging = fc.record({ pageSize: int32, pageToken: nasty, skip: int32 });

const requests = {
  createDashboard: fc.record({
    tenantId: nasty,
    workspaceId: nasty,
    name: nasty,
    description: maybe(nasty),
    allowedOrigins: fc.array(nasty, { maxLength: 3 }),
    requestId: nasty,
  }),
  getDashboard: fc.record({ tenantId: nasty }),
  deleteDashboard: fc.record({ tenantId: nasty }),
  listDashboards: paging,
  createIframeToken: fc.record({
    tenantId: nasty,
    workspaceId: nasty,
    dashboardId: nasty,
    validUntil: maybe(int64),
    filters,
    origin: maybe(nasty),
  }),
  verifyIframeToken: fc.record({ token: nasty }),
  revokeIframeTokens: fc.record({
    tenantId: nasty,
    target: fc.oneof(
      fc.constant({ case: undefined }),
      fc.record({ case: fc.constant("tokenId" as const), value: nasty }),
      fc.record({ case: fc.constant("dashboardId" as const), value: nasty }),
      fc.record({ case: fc.constant("allTenantTokens" as const), value: fc.boolean() }),
    ),
  }),
  listAuditEvents: paging,
} as const;

// FAILED_PRECONDITION: an expired or revoked iframe token given to VerifyIframeToken.
const PRECISE_GRPC = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.FAILED_PRECONDITION,
]);

describe.each(Object.keys(requests) as (keyof typeof requests)[])("%s with arbitrary input", (rpc) => {
  it("answers gRPC (grpc-js) with a precise code", async () => {
    await fc.assert(
      fc.asyncProperty(requests[rpc] as fc.Arbitrary<never>, async (request) => {
        let code: grpc.status = grpc.status.OK;
        try {
          // Lone surrogates cannot be encoded as protobuf strings at all; the client refuses them first.
          await grpcClient.call(rpc, request, token);
        } catch (err) {
          if (!(err as grpc.ServiceError).metadata) return; // refused client-side before sending
          const failure = grpcFailureFrom(err);
          code = failure.code;
          expect(failure.reason, "every error has an ErrorInfo").toBeTruthy();
        }
        count(`grpc ${rpc}`, grpc.status[code]);
        expect(PRECISE_GRPC.has(code), `code ${grpc.status[code]} for ${show(request)}`).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("answers Connect JSON (fetch) with a precise code", async () => {
    const method = rpc[0]!.toUpperCase() + rpc.slice(1);
    await fc.assert(
      fc.asyncProperty(requests[rpc] as fc.Arbitrary<Record<string, unknown>>, async (request) => {
        // The proto3 JSON a Connect client would send for this message (oneofs, int64 and enums included).
        const schema = DashboardService.method[rpc].input;
        let body: string;
        try {
          body = JSON.stringify(toJson(schema, create(schema, request as never)));
        } catch {
          return; // not representable as proto3 JSON (the client would refuse it too)
        }
        const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/${method}`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body,
        });
        const json = (await res.json()) as { code?: string; details?: { type: string }[] };
        count(`connect ${rpc}`, json.code ?? "ok");
        expect(
          ["ok", "invalid_argument", "not_found", "already_exists", "failed_precondition"],
          `${res.status} ${JSON.stringify(json)} for ${body}`,
        ).toContain(json.code ?? "ok");
        if (json.code) expect(json.details?.filter((d) => d.type === "google.rpc.ErrorInfo")).toHaveLength(1);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("the guide's REST routes with arbitrary input", () => {
  // Well-formed strings percent-encoded, and raw encodings a hostile client might send as they are.
  const encoded = nasty.filter((v) => v.isWellFormed()).map((v) => encodeURIComponent(v));
  const segment = fc.oneof(encoded, fc.constantFrom("%", "%zz", "%E0%A4%A", "%00", "..", "%2e%2e", "%2F"));
  const body = fc.oneof(
    fc.jsonValue(),
    fc.record({ tenant_id: nasty, workspace_id: nasty, name: nasty, description: maybe(nasty) }),
    fc.record({
      tenant_id: nasty,
      workspace_id: nasty,
      dashboard_id: nasty,
      valid_until: maybe(fc.oneof(fc.integer(), fc.double(), nasty)),
    }),
  );
  const call = fc.oneof(
    fc.record({ method: fc.constant("POST"), path: fc.constant("/api/v1/dashboards"), body }),
    fc.record({
      method: fc.constantFrom("GET", "DELETE"),
      path: segment.map((t) => `/api/v1/dashboards/${t}`),
      body: fc.constant(undefined),
    }),
    fc.record({
      method: fc.constant("GET"),
      path: fc.tuple(segment, segment).map(([skip, limit]) => `/api/v1/dashboards?skip=${skip}&limit=${limit}`),
      body: fc.constant(undefined),
    }),
    fc.record({ method: fc.constant("POST"), path: fc.constant("/api/v1/dashboards/iframe-token"), body }),
  );

  it("answers with the guide's envelope and a precise status, never 500", async () => {
    await fc.assert(
      fc.asyncProperty(call, async ({ method, path, body: payload }) => {
        const res = await fetch(server.baseUrl + path, {
          method,
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: payload === undefined ? undefined : JSON.stringify(payload),
        });
        const json = (await res.json()) as { success?: boolean; code?: string };
        count(`rest ${method} ${path.split("?")[0]!.split("/").slice(0, 4).join("/")}`, String(res.status));
        expect([200, 201, 404, 409, 422], `${res.status} ${JSON.stringify(json)} for ${method} ${path}`).toContain(
          res.status,
        );
        expect(typeof json.success).toBe("boolean");
        if (!json.success) expect(["NOT_FOUND", "ALREADY_EXISTS", "VALIDATION_ERROR"]).toContain(json.code);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe("after all of that", () => {
  it("the server still answers", async () => {
    const page = await grpcClient.call("listDashboards", { pageSize: 1 }, token);
    expect(page.totalSize).toBeGreaterThanOrEqual(0);
  });
});
