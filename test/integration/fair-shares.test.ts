import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ShareStats } from "../../src/store/organization-shares.js";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { outcomeOf } from "../helpers/errors.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

// Noisy neighbours at the pool: organization "noisy" keeps 20 heavy lists running at once against a pool
// of 6, of which it may hold 4 (the default share: all but two). Every call of organization "quiet" must
// still succeed within a generous deadline. A correctness test, not a latency figure.
const POOL = 6;
const NOISY_WORKERS = 20;
const QUIET_ROUNDS = 8;

let server: TestServer;
let client: DashboardClient;
let shares: { stats(): ShareStats };
let pool: pg.Pool;

beforeAll(async () => {
  server = await startTestServer({ DATABASE_POOL_MAX: String(POOL) });
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  ({ shares, pool } = server.app.sql as unknown as { shares: { stats(): ShareStats }; pool: pg.Pool });
  // Years of one organization's history, written behind the service's back: 200 000 audit events and
  // 20 000 dashboards, none of them of the tenant its limited caller may see, so each of that caller's
  // lists reads the organization's whole index to find nothing.
  await queryDatabase(
    server.db.url,
    `INSERT INTO audit_events (organization_id, id, action, actor, tenant_id)
     SELECT 'noisy', gen_random_uuid(), 'IFRAME_TOKEN_MINTED', 'loader', 'tenant-' || (n % 50)
       FROM generate_series(1, 200000) AS n`,
  );
  await queryDatabase(
    server.db.url,
    `INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by)
     SELECT 'noisy', gen_random_uuid(), 'tenant-' || n, 'ws', 'board ' || n, 'loader'
       FROM generate_series(1, 20000) AS n`,
  );
  await queryDatabase(server.db.url, "ANALYZE audit_events");
  await queryDatabase(server.db.url, "ANALYZE dashboards");
}, 180_000);
afterAll(() => server?.stop());

describe("each organization's fair share of the database connections", () => {
  it("keeps another organization's calls succeeding while one saturates its share", async () => {
    expect(shares.stats().share).toBe(4);
    const noisyAdmin = bearer(await callerToken({ org: "noisy", sub: "admin", admin: true }));
    const noisyLimited = bearer(await callerToken({ org: "noisy", sub: "narrow", tenants: ["rare"] }));
    const quiet = { ...bearer(await callerToken({ org: "quiet", admin: true })), timeoutMs: 5_000 };

    const heavyCalls = [
      () => client.listAuditEvents({ pageSize: 1000 }, noisyLimited),
      () => client.listAuditEvents({ pageSize: 1000, skip: 9_000 }, noisyAdmin),
      () => client.listDashboards({ pageSize: 1000 }, noisyLimited),
      () => client.listDashboards({ pageSize: 1000, skip: 9_000 }, noisyAdmin),
    ];
    const noisyOutcomes: Record<string, number> = {};
    let quietDone = false;
    // Each noisy worker loops until the quiet organization is done (at most 500 calls, a hang guard).
    const noisy = Array.from({ length: NOISY_WORKERS }, async (_, w) => {
      for (let i = 0; !quietDone && i < 500; i++) {
        const outcome = await outcomeOf(heavyCalls[(w + i) % heavyCalls.length]!());
        noisyOutcomes[outcome] = (noisyOutcomes[outcome] ?? 0) + 1;
      }
    });

    // The quiet organization, one call after the other, noting before each whether noisy was at its share.
    const quietOutcomes: string[] = [];
    let callsWhileNoisyAtShare = 0;
    let mostWaitingForPool = 0;
    const quietCall = async (what: string, call: () => Promise<unknown>) => {
      if (shares.stats().organizationsAtShare > 0) callsWhileNoisyAtShare++;
      mostWaitingForPool = Math.max(mostWaitingForPool, pool.waitingCount);
      const outcome = await outcomeOf(call());
      quietOutcomes.push(outcome === "ok" ? "ok" : `${what}: ${outcome}`);
    };
    try {
      for (let round = 0; round < QUIET_ROUNDS; round++) {
        const tenantId = `quiet-${round}`;
        let dashboardId = "";
        await quietCall("create", async () => {
          dashboardId = (await client.createDashboard({ tenantId, workspaceId: "w", name: "n" }, quiet)).dashboard!.id;
        });
        await quietCall("get", () => client.getDashboard({ tenantId }, quiet));
        await quietCall("list", () => client.listDashboards({}, quiet));
        await quietCall("mint", () => client.createIframeToken({ tenantId, workspaceId: "w", dashboardId }, quiet));
        await quietCall("audit", () => client.listAuditEvents({}, quiet));
      }
    } finally {
      quietDone = true;
      await Promise.all(noisy);
    }

    expect(quietOutcomes.filter((o) => o !== "ok")).toEqual([]);
    expect(quietOutcomes).toHaveLength(QUIET_ROUNDS * 5);
    // The pressure was real: noisy held its whole share through most of the quiet calls, and calls of its
    // own waited for its share (or were refused OVERLOADED), never anything else.
    expect(callsWhileNoisyAtShare).toBeGreaterThan(QUIET_ROUNDS * 5 * 0.5);
    // Noisy never had more than its share in the pool (held or queued), so no quiet call queued behind
    // more than that many of noisy's.
    expect(mostWaitingForPool).toBeLessThanOrEqual(4);
    expect(Object.keys(noisyOutcomes).filter((o) => o !== "ok" && o !== "OVERLOADED")).toEqual([]);
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const waits = Number(/^dashboard_db_organization_share_waits_total (\d+)/m.exec(metrics)?.[1]);
    expect(waits).toBeGreaterThan(0);
    expect(metrics).toMatch(/^dashboard_db_organization_share_max_connections 4$/m);
    // Aggregates only: no organization id in any share metric.
    expect(metrics.split("\n").filter((l) => l.includes("organization_share") && /noisy|quiet/.test(l))).toEqual([]);
    console.log(
      `[figures] fair-shares ${JSON.stringify({ noisyOutcomes, waits, callsWhileNoisyAtShare, mostWaitingForPool })}`,
    );
  }, 180_000);

  it("charges every list of the organization to its share: audit lists and their counts wait behind their own", async () => {
    // A server of its own whose share waits outlast the test, so nothing here races a timer.
    const own = await startTestServer({ DATABASE_POOL_MAX: String(POOL), DATABASE_POOL_WAIT_MS: "60000" });
    const ownShares = (own.app.sql as unknown as { shares: { stats(): ShareStats } }).shares;
    const ownClient = dashboardClient(createConnectTransport({ baseUrl: own.baseUrl, httpVersion: "1.1" }));
    const admin = { ...bearer(await callerToken({ org: "noisy", sub: "admin", admin: true })), timeoutMs: 120_000 };
    // The table locked behind the service's back: the statements that hold a slot stay in PostgreSQL
    // until it is released, so what the share does with the rest is seen without racing them.
    const locker = new pg.Client({ connectionString: own.db.url });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE");
      const calls = Array.from({ length: 6 }, () => outcomeOf(ownClient.listAuditEvents({ pageSize: 10 }, admin)));
      // Six lists, each a page and a count: four statements hold the share, the other eight wait for it.
      await expect.poll(() => ownShares.stats(), { timeout: 30_000 }).toMatchObject({ held: 4, waiting: 8 });
      expect(ownShares.stats()).toMatchObject({ organizationsAtShare: 1, waited: 8 });
      await locker.query("COMMIT");
      expect(await Promise.all(calls)).toEqual(Array(6).fill("ok"));
      expect(ownShares.stats()).toMatchObject({ held: 0, waiting: 0, refusedWaitTimeout: 0, refusedQueueFull: 0 });
    } finally {
      await locker.end();
      await own.stop();
    }
  }, 180_000);
});
