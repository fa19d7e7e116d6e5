import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcJsDashboardClient } from "../helpers/grpc-js.js";
import { OtlpReceiver, type ReceivedSpan } from "../helpers/otlp-receiver.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { eventually, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

const SERVER = 2;
const CLIENT = 3;
const FILTER_VALUE = `filter-value-${randomBytes(6).toString("hex")}`;

let receiver: OtlpReceiver;
let db: TestDatabase;
let server: ServerProcess;
let signingJwk: string;
let adminToken: string;
let grpcToken: string;
let dashboardId: string;
/** Everything secret the calls carried or produced: none of it may appear in an exported span. */
const secrets: string[] = [];

const newTraceparent = () => {
  const traceId = randomBytes(16).toString("hex");
  const parentId = randomBytes(8).toString("hex");
  return { traceId, parentId, header: `00-${traceId}-${parentId}-01` };
};

function baseEnv(): Record<string, string> {
  return {
    NODE_ENV: "test",
    DATABASE_URL: db.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    EMBED_SIGNING_KEY: signingJwk,
    REDIS_URL: SHARED_REDIS_URL,
    REDIS_COMMAND_TIMEOUT_MS: "5000",
    RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("tracing"),
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    LOG_LEVEL: "info",
  };
}

beforeAll(async () => {
  receiver = await OtlpReceiver.start();
  db = await createTestDatabase();
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "tracing-test-key" };
  signingJwk = JSON.stringify(jwk);
  secrets.push(jwk.d!, TEST_JWT_SECRET, FILTER_VALUE);
  server = await spawnServer({
    ...baseEnv(),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_SERVICE_NAME: "dashboard-service-under-test",
    // Export as soon as spans end: the test waits for them to arrive, never for a timer.
    OTEL_BSP_SCHEDULE_DELAY: "1",
  });
  adminToken = await callerToken({ org: "traced", admin: true, sub: "admin" });
  grpcToken = await callerToken({ org: "traced", admin: true, sub: "grpc-minter" });
  secrets.push(adminToken, grpcToken);
  dashboardId = await createDashboard("tenant-t");
});

afterAll(async () => {
  await server?.stop();
  await receiver?.close();
  await db?.drop();
});

const inTrace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
const childrenOf = (parent: ReceivedSpan, spans: ReceivedSpan[]) =>
  spans.filter((s) => s.parentSpanId === parent.spanId);
const descendantsOf = (parent: ReceivedSpan, spans: ReceivedSpan[]): ReceivedSpan[] =>
  childrenOf(parent, spans).flatMap((c) => [c, ...descendantsOf(c, spans)]);

/** The batch span (a trace of its own) that links to a span of this trace. */
const batchFor = (traceId: string) =>
  receiver.spans.find((s) => s.name === "group commit audit_events" && s.links.some((l) => l.traceId === traceId));

/** Waits for the call's server span and the group commit that served it (both end before the answer). */
async function spansOfCall(
  traceId: string,
): Promise<{ server: ReceivedSpan; spans: ReceivedSpan[]; batch: ReceivedSpan }> {
  await receiver.waitFor(
    () =>
      inTrace(traceId).some((s) => s.kind === SERVER) &&
      batchFor(traceId) !== undefined &&
      receiver.spans.some((s) => s.parentSpanId === batchFor(traceId)!.spanId),
  );
  const spans = inTrace(traceId);
  return { server: spans.find((s) => s.kind === SERVER)!, spans, batch: batchFor(traceId)! };
}

/** What a call's trace must hold whatever its protocol: auth, rate limit with Redis, SQL, signing, the batch. */
function expectCallChildren(server: ReceivedSpan, spans: ReceivedSpan[], batch: ReceivedSpan, cache: "hit" | "miss") {
  const direct = childrenOf(server, spans);
  const auth = direct.find((s) => s.name === "authenticate caller");
  expect(auth?.attributes["dashboard.auth.cache"]).toBe(cache);

  const limit = direct.find((s) => s.name === "rate limit");
  expect(limit?.attributes).toMatchObject({
    "dashboard.rate_limit.backend": "redis",
    "dashboard.rate_limit.policy": "iframe-token",
    "dashboard.rate_limit.limit": 1000000,
  });
  const redis = childrenOf(limit!, spans);
  expect(redis.map((s) => [s.name, s.kind])).toEqual([["EVALSHA", CLIENT]]);
  expect(redis[0]!.attributes).toMatchObject({
    "db.system": "redis",
    "server.address": "127.0.0.1",
    "dashboard.rate_limit.fell_back": false,
  });

  const sql = descendantsOf(server, spans).filter(
    (s) => s.attributes["db.system"] === "postgresql" && s.kind === CLIENT,
  );
  expect(sql.map((s) => s.name)).toContain("SELECT dashboards");
  for (const statement of sql) {
    // The statement's name and where it ran: no text, no parameters.
    expect(Object.keys(statement.attributes).sort()).toEqual(
      expect.arrayContaining(["db.system", "db.query.summary", "db.operation.name", "db.namespace"]),
    );
    for (const key of Object.keys(statement.attributes)) {
      expect([
        "db.system",
        "db.system.name",
        "db.query.summary",
        "db.operation.name",
        "db.collection.name",
        "db.namespace",
        "server.address",
        "server.port",
        "db.response.returned_rows",
      ]).toContain(key);
    }
    expect(statement.attributes["db.namespace"]).toBe(db.name);
  }

  const signing = descendantsOf(server, spans).find((s) => s.name === "sign iframe token");
  expect(signing?.attributes).toMatchObject({
    "dashboard.signing.kid": "tracing-test-key",
    "dashboard.signing.algorithm": "EdDSA",
  });

  // The audit row is group-committed: a span of its own trace, linked to this call, with its INSERT inside.
  expect(batch.traceId).not.toBe(server.traceId);
  expect(batch.parentSpanId).toBeUndefined();
  expect(batch.links.filter((l) => l.traceId === server.traceId)).toHaveLength(1);
  expect(spans.map((s) => s.spanId)).toContain(batch.links.find((l) => l.traceId === server.traceId)!.spanId);
  expect(batch.attributes["dashboard.batch.size"]).toBeGreaterThanOrEqual(1);
  const insert = receiver.spans.filter((s) => s.parentSpanId === batch.spanId);
  expect(insert.map((s) => s.name)).toEqual(["INSERT audit_events"]);
}

/** The call's log line; the process writes it when the exchange closes, so it may follow the spans by a moment. */
async function callLine(traceId: string): Promise<Record<string, unknown>> {
  const matching = () =>
    server.lines
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === "call" && l.trace_id === traceId);
  await eventually("the call log line is written", () => matching().length > 0);
  expect(matching()).toHaveLength(1);
  return matching()[0]!;
}

async function createDashboard(tenantId: string): Promise<string> {
  const created = await fetch(`${server.baseUrl}/api/v1/dashboards`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ tenant_id: tenantId, workspace_id: "ws-t", name: "Traced" }),
  });
  expect(created.status).toBe(201);
  return ((await created.json()) as { data: { id: string } }).data.id;
}

describe("traces of CreateIframeToken", () => {
  it("over gRPC: one trace under the caller's span, with rpc.* attributes and every step as a child", async () => {
    const caller = newTraceparent();
    const grpc = new GrpcJsDashboardClient(server.port);
    try {
      const minted = await grpc.call(
        "createIframeToken",
        {
          tenantId: "tenant-t",
          workspaceId: "ws-t",
          dashboardId,
          filters: [{ field: "region", operator: 3, values: [FILTER_VALUE] }],
        },
        grpcToken,
        { traceparent: caller.header, tracestate: "vendor=opaque" },
      );
      secrets.push(minted.token);
    } finally {
      grpc.close();
    }
    const { server: span, spans, batch } = await spansOfCall(caller.traceId);
    expect(span.parentSpanId).toBe(caller.parentId);
    expect(span.name).toBe("dashboard.v1.DashboardService/CreateIframeToken");
    expect(span.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.service": "dashboard.v1.DashboardService",
      "rpc.method": "CreateIframeToken",
      "rpc.grpc.status_code": 0,
      "http.response.status_code": 200,
      "network.protocol.version": "2",
    });
    expect(span.resource["service.name"]).toBe("dashboard-service-under-test");
    // Every span of the trace descends from the server span, itself the caller's child.
    expect(spans.filter((s) => s !== span).every((s) => descendantsOf(span, spans).includes(s))).toBe(true);
    expectCallChildren(span, spans, batch, "miss");

    const line = await callLine(caller.traceId);
    expect(line).toMatchObject({ trace_id: caller.traceId, span_id: span.spanId, protocol: "grpc", code: "OK" });
  });

  it("over REST: the server span carries http.route, under the caller's span", async () => {
    // A dashboard nobody has read yet, so the mint's lookup goes to SQL rather than the replica's cache.
    const restDashboardId = await createDashboard("tenant-r");
    const caller = newTraceparent();
    const res = await fetch(`${server.baseUrl}/api/v1/dashboards/iframe-token`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${adminToken}`,
        "content-type": "application/json",
        traceparent: caller.header,
      },
      body: JSON.stringify({ tenant_id: "tenant-r", workspace_id: "ws-t", dashboard_id: restDashboardId }),
    });
    expect(res.status).toBe(200);
    secrets.push(((await res.json()) as { data: { token: string } }).data.token);
    const { server: span, spans, batch } = await spansOfCall(caller.traceId);
    expect(span.parentSpanId).toBe(caller.parentId);
    expect(span.name).toBe("POST /api/v1/dashboards/iframe-token");
    expect(span.attributes).toMatchObject({
      "http.route": "/api/v1/dashboards/iframe-token",
      "http.request.method": "POST",
      "http.response.status_code": 200,
      "network.protocol.version": "1.1",
    });
    // The admin token created the dashboard a moment ago, so this time the cache answers.
    expectCallChildren(span, spans, batch, "hit");
    expect(await callLine(caller.traceId)).toMatchObject({ span_id: span.spanId, protocol: "rest" });
  });

  it("a refused call is still one server span, marked with its reason", async () => {
    const caller = newTraceparent();
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/CreateIframeToken`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: caller.header },
      body: JSON.stringify({ tenantId: "tenant-t", workspaceId: "ws-t", dashboardId }),
    });
    expect(res.status).toBe(401);
    await receiver.waitFor(() => inTrace(caller.traceId).some((s) => s.kind === SERVER));
    const span = inTrace(caller.traceId).find((s) => s.kind === SERVER)!;
    expect(span.attributes).toMatchObject({
      "rpc.system": "connect_rpc",
      "rpc.connect_rpc.error_code": "unauthenticated",
      "error.type": "UNAUTHORIZED",
      "http.response.status_code": 401,
    });
  });

  it("no exported byte holds a bearer token, the signing key, an iframe token or a filter value", () => {
    // Runs after the calls above: every secret they used or produced has been exported by now.
    expect(receiver.bodies.length).toBeGreaterThan(0);
    expect(secrets.length).toBeGreaterThanOrEqual(7);
    const everything = receiver.bodies.join("\n");
    for (const secret of secrets) {
      expect(everything.includes(secret), `a span holds ${secret.slice(0, 12)}…`).toBe(false);
      // Nor any sizeable piece of one (a token's signature, its payload).
      for (const piece of secret.split(".").filter((p) => p.length >= 16)) expect(everything).not.toContain(piece);
    }
  });
});

describe("with tracing off", () => {
  it("nothing is sent, not even with an endpoint set, when OTEL_SDK_DISABLED=true; logs name the caller's trace", async () => {
    const off = await OtlpReceiver.start();
    const offDb = await createTestDatabase();
    try {
      const process = await spawnServer({
        ...baseEnv(),
        DATABASE_URL: offDb.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: off.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "1",
        OTEL_SDK_DISABLED: "true",
      });
      const caller = newTraceparent();
      const res = await fetch(`${process.baseUrl}/api/v1/dashboards`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${adminToken}`,
          "content-type": "application/json",
          traceparent: caller.header,
        },
        body: JSON.stringify({ tenant_id: "tenant-off", workspace_id: "ws", name: "Untraced" }),
      });
      expect(res.status).toBe(201);
      // With tracing on, stopping flushes every span before the process exits; so after the exit, silence is final.
      expect(await process.stop()).toBe(0);
      expect(off.bodies).toEqual([]);
      const lines = process.lines
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === "call");
      expect(lines).toHaveLength(1);
      expect(lines[0]!.trace_id).toBe(caller.traceId);
      expect(lines[0]).not.toHaveProperty("span_id");
      expect(process.lines.some((l) => l.includes("tracing: exporting"))).toBe(false);
    } finally {
      await off.close();
      await offDb.drop();
    }
  });
});
