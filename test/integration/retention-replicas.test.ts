import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobRunner } from "../../src/jobs/job-runner.js";
import { migrate } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { retentionJobs, type RetentionSettings, type RetentionTable } from "../../src/store/retention.js";
import type { Sql } from "../../src/store/sql.js";
import { ManualClock } from "../helpers/clock.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer } from "../helpers/server.js";

const log = pino({ level: "silent" });
const BATCH = 4;
const HOUR = 3_600_000;

let db: TestDatabase;
const pools: ReturnType<typeof postgresSql>[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
  // Two pools stand for two replicas on one database.
  pools.push(postgresSql(db.url, 3), postgresSql(db.url, 3));
  await migrate(pools[0]!);
});
afterAll(async () => {
  for (const p of pools) await p.close();
  await db?.drop();
});

/** expired create requests and revocation cutoffs, and live ones of each, dated by the clock. */
async function seed(clock: ManualClock, expired: number, live: number, tag: string): Promise<void> {
  const at = (hoursAgo: number) => new Date(clock.now() - hoursAgo * HOUR);
  await queryDatabase(
    db.url,
    `INSERT INTO create_requests (organization_id, request_id, fingerprint, created_at)
     SELECT 'o', $1::text || n, 'f', CASE WHEN n <= $2::int THEN $3::timestamptz ELSE $4::timestamptz END
       FROM generate_series(1, $2::int + $5::int) AS n`,
    [`${tag}-r`, expired, at(25), at(1), live],
  );
  await queryDatabase(
    db.url,
    `INSERT INTO embed_token_cutoffs (organization_id, tenant_id, issued_not_after, keep_until)
     SELECT 'o', $1::text || n, $3::timestamptz, CASE WHEN n <= $2::int THEN $3::timestamptz ELSE $4::timestamptz END
       FROM generate_series(1, $2::int + $5::int) AS n`,
    [`${tag}-t`, expired, at(1), at(-100), live],
  );
}

const count = async (table: string) =>
  (await queryDatabase<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM ${table}`))[0]!.n;

interface Batch {
  replica: string;
  table: RetentionTable;
  removed: number;
}

/**
 * One replica: its own pool, its own runner, the retention jobs on them. Its purges' DELETEs are counted
 * while in flight across both replicas (per table), and one DELETE table can be held open at a gate.
 */
function replica(
  name: string,
  sql: Sql,
  clock: ManualClock,
  shared: { batches: Batch[]; inFlight: Map<string, number>; mostInFlight: Map<string, number> },
  gateOn?: { table: string; reached: () => void; passed: Promise<void> },
) {
  let gated = false;
  const observed: Sql = {
    ...sql,
    async query(text, params, deadline, organization) {
      const table = /^DELETE FROM (\w+)/.exec(text)?.[1];
      if (!table) return sql.query(text, params, deadline, organization);
      shared.inFlight.set(table, (shared.inFlight.get(table) ?? 0) + 1);
      shared.mostInFlight.set(table, Math.max(shared.mostInFlight.get(table) ?? 0, shared.inFlight.get(table)!));
      try {
        if (gateOn && table === gateOn.table && !gated) {
          gated = true;
          gateOn.reached();
          await gateOn.passed;
        }
        return await sql.query(text, params, deadline, organization);
      } finally {
        shared.inFlight.set(table, shared.inFlight.get(table)! - 1);
      }
    },
  };
  const settings: RetentionSettings = {
    batchSize: BATCH,
    maxBatches: 100,
    createRequestRetentionHours: 24,
    auditRetentionDays: undefined,
    report: (table, removed) => shared.batches.push({ replica: name, table, removed }),
  };
  // The advisory lock on the replica's own pool; the purges through the observed one.
  const runner = new JobRunner({ sql, clock: clock.now, log, pollMs: 60_000 });
  for (const job of retentionJobs(observed, settings)) {
    runner.register({ name: job.name, everyMs: job.everyMs, run: async (now) => void (await job.run(now)) });
  }
  return runner;
}

describe("retention on two replicas", () => {
  it("purges each table on one replica at a time, in batches no larger than the setting", async () => {
    const clock = new ManualClock();
    await seed(clock, 30, 5, "first");
    const shared = { batches: [] as Batch[], inFlight: new Map<string, number>(), mostInFlight: new Map() };
    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    let open!: () => void;
    const passed = new Promise<void>((r) => (open = r));
    const a = replica("a", pools[0]!, clock, shared, { table: "create_requests", reached, passed });
    const b = replica("b", pools[1]!, clock, shared);

    // a holds the create_requests purge open (and with it the job's advisory lock) while b runs its round.
    const roundA = a.runDue();
    await atGate;
    const roundB = await b.runDue();
    expect(roundB.find((r) => r.name === "purge-old-create-requests")).toEqual({
      name: "purge-old-create-requests",
      ran: false,
    });
    open();
    const runsA = await roundA;
    expect(runsA.every((r) => r.ran && r.error === undefined)).toBe(true);

    // Then both at once, over and over, with new expired rows each time: never two DELETEs of one table at once.
    for (let round = 0; round < 5; round++) {
      await seed(clock, 9, 0, `round${round}`);
      clock.advance(HOUR);
      const [ra, rb] = await Promise.all([a.runDue(), b.runDue()]);
      for (const r of [...ra, ...rb]) expect(r.error).toBeUndefined();
    }

    expect(Math.max(...shared.mostInFlight.values())).toBe(1);
    expect(shared.batches.length).toBeGreaterThan(0);
    for (const batch of shared.batches) expect(batch.removed).toBeLessThanOrEqual(BATCH);
    // Each expired row removed exactly once, over both replicas; the live ones kept.
    const removed = (table: RetentionTable) =>
      shared.batches.filter((x) => x.table === table).reduce((n, x) => n + x.removed, 0);
    expect(removed("create_requests")).toBe(30 + 5 * 9);
    expect(removed("embed_token_cutoffs")).toBe(30 + 5 * 9);
    expect(await count("create_requests")).toBe(5);
    expect(await count("embed_token_cutoffs")).toBe(5);
    // Both replicas did purge work at some point (the lock moves between them), each batch reported.
    expect(new Set(shared.batches.map((x) => x.replica))).toEqual(new Set(["a", "b"]));
  });

  it("reports what it removed in the metrics", async () => {
    const clock = new ManualClock();
    const server = await startTestServer({ RETENTION_BATCH_SIZE: String(BATCH) }, undefined, { clock: clock.now });
    try {
      await queryDatabase(
        server.db.url,
        `INSERT INTO create_requests (organization_id, request_id, fingerprint, created_at)
         SELECT 'o', 'r' || n, 'f', $1::timestamptz FROM generate_series(1, 10) AS n`,
        [new Date(clock.now() - 25 * HOUR)],
      );
      // Every job is due again (whether or not the runner's own timer ran them already).
      clock.advance(2 * HOUR);
      await server.app.jobs.runDue();
      const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
      const value = (name: string) =>
        Number(new RegExp(`^${name}\\{table="create_requests"\\} (\\d+)`, "m").exec(text)?.[1]);
      expect(value("dashboard_retention_rows_removed_total")).toBe(10);
      // 4 + 4 + 2, plus one empty batch for each earlier run the runner's timer may have made.
      expect(value("dashboard_retention_batches_total")).toBeGreaterThanOrEqual(3);
      expect(await queryDatabase(server.db.url, "SELECT 1 FROM create_requests")).toEqual([]);
    } finally {
      await server.stop();
    }
  });
});
