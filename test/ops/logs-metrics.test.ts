import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient } from "../helpers/clients.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { bearer, callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

let db: TestDatabase;
let server: ServerProcess;
let token: string;
const minted: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  server = await spawnServer({
    DATABASE_URL: db.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "info",
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "2",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "1000000",
  });
  token = await callerToken({ org: "org-logs", admin: true, sub: "alice" });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** A JSON log line. */
type Entry = Record<string, unknown>;
/** What a Connect JSON call answers, as far as these tests read it: a response message or a Connect error. */
interface ConnectBody {
  dashboard?: { id: string; name: string };
  token?: string;
  code?: string;
}
function callLines(): Entry[] {
  return server.lines
    .map((l) => {
      try {
        return JSON.parse(l) as Entry;
      } catch {
        return undefined;
      }
    })
    .filter((e): e is Entry => e?.msg === "call");
}

/** The call log lines are written as the answer goes out; give stdout a moment to arrive. */
async function lineFor(requestId: string): Promise<Entry> {
  for (let i = 0; i < 100; i++) {
    const found = callLines().find((e) => e.requestId === requestId);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no call line for ${requestId}:\n${server.lines.join("\n")}`);
}

async function connectCall(method: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
  return { res, body: (await res.json()) as ConnectBody };
}

describe("one structured log line per call", () => {
  it("logs method, protocol, code, duration, caller and the client's request id, which it echoes back", async () => {
    const { res, body } = await connectCall(
      "CreateDashboard",
      { tenantId: "t-1", workspaceId: "ws-1", name: "Logged" },
      { "x-request-id": "req-abc-123" },
    );
    expect(res.status).toBe(200);
    expect(body.dashboard!.name).toBe("Logged");
    expect(res.headers.get("x-request-id")).toBe("req-abc-123");
    const line = await lineFor("req-abc-123");
    expect(line).toMatchObject({
      level: 30,
      service: "dashboard-service",
      method: "dashboard.v1.DashboardService/CreateDashboard",
      protocol: "connect",
      code: "OK",
      caller: { subject: "alice", organizationId: "org-logs" },
    });
    expect(typeof line.durationMs).toBe("number");
    expect(line.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("generates a request id when none (or an unusable one) is sent, over gRPC too", async () => {
    let echoed: string | null = null;
    const client = dashboardClient(createGrpcTransport({ baseUrl: server.baseUrl }));
    await client.listDashboards({}, { ...bearer(token), onHeader: (h) => (echoed = h.get("x-request-id")) });
    expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    expect(await lineFor(echoed!)).toMatchObject({
      method: "dashboard.v1.DashboardService/ListDashboards",
      protocol: "grpc",
      code: "OK",
    });

    const forged = await connectCall("ListDashboards", {}, { "x-request-id": 'x" injected="yes' });
    const replaced = forged.res.headers.get("x-request-id");
    expect(replaced).toMatch(/^[0-9a-f-]{36}$/);
    expect(await lineFor(replaced!)).toMatchObject({ code: "OK" });
  });

  it("logs failures with their code and reason, and without a caller when authentication failed", async () => {
    const res = await fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: "Bearer not-a-valid-token",
        "x-request-id": "req-unauth",
      },
      body: "{}",
    });
    expect(res.status).toBe(401);
    const line = await lineFor("req-unauth");
    expect(line).toMatchObject({ code: "UNAUTHENTICATED", reason: "UNAUTHORIZED" });
    expect(line.caller).toBeUndefined();
  });
});

describe("metrics", () => {
  it("counts calls by method and code, mints, rate-limit refusals, and exposes pool and process metrics", async () => {
    const { body } = await connectCall("CreateDashboard", { tenantId: "t-m", workspaceId: "ws-1", name: "Metered" });
    const mint = () =>
      connectCall("CreateIframeToken", { tenantId: "t-m", workspaceId: "ws-1", dashboardId: body.dashboard!.id });
    // RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE=2: the third mint is refused.
    const results = [await mint(), await mint(), await mint()];
    expect(results.map((r) => r.res.status)).toEqual([200, 200, 429]);
    expect(results[2]!.body.code).toBe("resource_exhausted");
    for (const r of results.slice(0, 2)) minted.push(r.body.token!);

    const res = await fetch(`${server.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const m = (name: string, code: string, reason = "") =>
      `dashboard_rpc_calls_total{method="dashboard.v1.DashboardService/${name}",code="${code}",protocol="connect",reason="${reason}"}`;
    expect(value(m("CreateDashboard", "OK"))).toBeGreaterThanOrEqual(2);
    expect(value(m("CreateIframeToken", "OK"))).toBe(2);
    expect(value(m("CreateIframeToken", "RESOURCE_EXHAUSTED", "RATE_LIMITED"))).toBe(1);
    expect(value(m("ListDashboards", "UNAUTHENTICATED", "UNAUTHORIZED"))).toBe(1);
    expect(value("dashboard_iframe_tokens_minted_total")).toBe(2);
    expect(value('dashboard_rate_limit_refusals_total{method="CreateIframeToken"}')).toBe(1);
    expect(
      value('dashboard_rpc_duration_seconds_count{method="dashboard.v1.DashboardService/CreateIframeToken",code="OK"}'),
    ).toBe(2);
    expect(value('dashboard_db_pool_connections{state="total"}')).toBeGreaterThanOrEqual(1);
    expect(value("dashboard_db_pool_max_connections")).toBe(10);
    expect(value("process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(text).toContain("nodejs_heap_size_used_bytes");

    // Nothing secret, anywhere: not the caller's token, not the signing secret, not a minted token.
    for (const secret of [token, TEST_JWT_SECRET, ...minted]) expect(text).not.toContain(secret);
  });

  it("never writes a secret to the logs", () => {
    // After everything above: the bearer token, the JWT secret and the minted iframe tokens.
    expect(minted).toHaveLength(2);
    const all = server.lines.join("\n");
    expect(callLines().length).toBeGreaterThanOrEqual(8);
    for (const secret of [token, TEST_JWT_SECRET, ...minted, "not-a-valid-token"]) expect(all).not.toContain(secret);
    expect(all.toLowerCase()).not.toContain("bearer");
  });
});

describe("REST calls", () => {
  it("get the same log line (protocol rest, the RPC they stand for, caller, status) and metrics", async () => {
    const res = await fetch(`${server.baseUrl}/api/v1/dashboards/t-m`, {
      headers: { authorization: `Bearer ${token}`, "x-request-id": "req-rest-1" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-rest-1");
    expect(await lineFor("req-rest-1")).toMatchObject({
      method: "dashboard.v1.DashboardService/GetDashboard",
      protocol: "rest",
      code: "OK",
      status: 200,
      caller: { subject: "alice", organizationId: "org-logs" },
    });

    const missing = await fetch(`${server.baseUrl}/api/v1/dashboards/no-such-tenant`, {
      headers: { authorization: `Bearer ${token}`, "x-request-id": "req-rest-2" },
    });
    expect(missing.status).toBe(404);
    expect(await lineFor("req-rest-2")).toMatchObject({ code: "NOT_FOUND", status: 404 });

    const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(text).toContain(
      'dashboard_rpc_calls_total{method="dashboard.v1.DashboardService/GetDashboard",code="OK",protocol="rest",reason=""} 1',
    );
    expect(text).toContain(
      'dashboard_rpc_calls_total{method="dashboard.v1.DashboardService/GetDashboard",code="NOT_FOUND",protocol="rest",reason="NOT_FOUND"} 1',
    );
    expect(text).not.toContain(token);
  });
});

describe("refused calls", () => {
  it("are logged as RESOURCE_EXHAUSTED with reason RATE_LIMITED", () => {
    const refused = callLines().find((e) => e.code === "RESOURCE_EXHAUSTED");
    expect(refused).toMatchObject({
      method: "dashboard.v1.DashboardService/CreateIframeToken",
      reason: "RATE_LIMITED",
    });
  });
});
