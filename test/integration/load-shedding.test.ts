import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureFrom } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

let server: TestServer;
let client: DashboardClient;
let headers: Record<string, string>;
let dashboardId: string;

beforeAll(async () => {
  server = await startTestServer({
    DATABASE_POOL_MAX: "3",
    DATABASE_POOL_MAX_WAITING: "2",
    MINT_AUDIT_QUEUE_MAX: "5",
  });
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  headers = { authorization: `Bearer ${await callerToken({ org: "shed", admin: true })}` };
  dashboardId = (await client.createDashboard({ tenantId: "t", workspaceId: "w", name: "n" }, { headers })).dashboard!
    .id;
  // Warm: the dashboard is cached, so a mint's only database work is its audit row.
  await client.createIframeToken({ tenantId: "t", workspaceId: "w", dashboardId }, { headers });
});
afterAll(() => server.stop());

/** Holds a lock in a transaction of its own until released: the database is "slow" for whoever needs it. */
async function holdLock(statement: string): Promise<() => Promise<void>> {
  const c = new pg.Client({ connectionString: server.db.url });
  await c.connect();
  await c.query("BEGIN");
  await c.query(statement);
  return async () => {
    await c.query("ROLLBACK");
    await c.end();
  };
}

const outcome = (call: Promise<unknown>) =>
  call.then(
    () => ({ code: Code.Unknown as Code, reason: "ok" }),
    (err: unknown) => failureFrom(err),
  );

/**
 * The deadline the server works to, sent as the header without a client-side timer: on a busy machine a
 * request can take longer to arrive than the margin the server leaves, and the question here is whether
 * the server answers before *its* deadline, not how fast the test machine is.
 */
const serverDeadline = (ms: number) => ({ headers: { ...headers, "connect-timeout-ms": String(ms) } });

describe("load shedding on a slow database", () => {
  it("mints answer UNAVAILABLE before their deadline and the audit queue stays bounded", async () => {
    const mintsBefore = await queryDatabase<{ n: number }>(
      server.db.url,
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'IFRAME_TOKEN_MINTED'",
    );
    const release = await holdLock("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE");
    let outcomes;
    try {
      outcomes = await Promise.all(
        Array.from({ length: 30 }, () =>
          outcome(client.createIframeToken({ tenantId: "t", workspaceId: "w", dashboardId }, serverDeadline(3_000))),
        ),
      );
    } finally {
      await release();
    }
    // Every one is the server's own shedding answer (with its ErrorInfo), never a timeout.
    for (const o of outcomes) expect(o).toMatchObject({ code: Code.Unavailable, reason: "OVERLOADED" });
    // Of 30, one was being written when the lock was taken and at most 5 waited: the others were never queued,
    // and the waiting ones were dropped unwritten. Only the one in flight can reach the table.
    let written = 0;
    for (let i = 0; i < 500; i++) {
      written =
        (
          await queryDatabase<{ n: number }>(
            server.db.url,
            "SELECT count(*)::int AS n FROM audit_events WHERE action = 'IFRAME_TOKEN_MINTED'",
          )
        )[0]!.n - mintsBefore[0]!.n;
      if (written >= 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(written).toBe(1);
    // And the service mints again once the database is quick again.
    await expect(
      client.createIframeToken({ tenantId: "t", workspaceId: "w", dashboardId }, { headers }),
    ).resolves.toMatchObject({ dashboardId });
  });

  it("calls that cannot get a pooled connection are refused UNAVAILABLE, at once past the waiting bound", async () => {
    const release = await holdLock("LOCK TABLE dashboards IN ACCESS EXCLUSIVE MODE");
    let outcomes;
    try {
      outcomes = await Promise.all(
        Array.from({ length: 10 }, () => outcome(client.listDashboards({}, serverDeadline(2_000)))),
      );
    } finally {
      await release();
    }
    const reasons = outcomes.map((o) => o.reason).sort();
    // At most 3 got a connection and were cut by their deadline inside PostgreSQL (DEADLINE_EXCEEDED,
    // the statement had started); everyone else was shed without starting anything.
    for (const r of reasons) expect(["DEADLINE_EXCEEDED", "OVERLOADED"]).toContain(r);
    expect(reasons.filter((r) => r === "DEADLINE_EXCEEDED").length).toBeLessThanOrEqual(3);
    expect(reasons.filter((r) => r === "OVERLOADED").length).toBeGreaterThanOrEqual(7);
    await expect(client.listDashboards({}, { headers })).resolves.toMatchObject({ totalSize: 1 });
  });
});
