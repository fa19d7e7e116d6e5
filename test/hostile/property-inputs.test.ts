import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcJsDashboardClient, grpcFailureOf } from "../helpers/grpc-js.js";
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
  outcomes[where]![code] = (outcomes[where]![code] ?? 0) + 1;
};

// Strings a hostile or careless client sends: any unicode, control characters, lone surrogates, SQL, huge.
const nasty = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", " ", "t1", "T1", "t1\u0000", "ｔ１", "e\u0301", "é", "'; DROP TABLE dashboards;--", '{"$ne":null}', "../../etc/passwd", "\ud800"),
  fc.string({ minLength: 120, maxLength: 3000 }),
);
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const requests = {
  createDashboard: fc.record({ tenantId: nasty, workspaceId: nasty, name: nasty, description: maybe(nasty) }),
  getDashboard: fc.record({ tenantId: nasty }),
  deleteDashboard: fc.record({ tenantId: nasty }),
  listDashboards: fc.record({ pageSize: int32, pageToken: nasty, skip: int32 }),
  createIframeToken: fc.record({ tenantId: nasty, workspaceId: nasty, dashboardId: nasty, validUntil: maybe(int64) }),
} as const;

const PRECISE_GRPC = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS]);

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
          const failure = await grpcFailureOf(Promise.reject(err));
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
        const body = show(request);
        const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/${method}`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body,
        });
        const json = (await res.json()) as { code?: string; details?: { type: string }[] };
        count(`connect ${rpc}`, json.code ?? "ok");
        expect(["ok", "invalid_argument", "not_found", "already_exists"], `${res.status} ${JSON.stringify(json)} for ${body}`).toContain(json.code ?? "ok");
        if (json.code) expect(json.details?.filter((d) => d.type === "google.rpc.ErrorInfo")).toHaveLength(1);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("after all of that", () => {
  it("the server still answers", async () => {
    const page = await grpcClient.call("listDashboards", { pageSize: 1 }, token);
    expect(page.totalSize).toBeGreaterThanOrEqual(0);
  });
});
