import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { migrate } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import {
  purgeExpiredRevocations,
  purgeOldAuditEvents,
  purgeOldCreateRequests,
  retentionJobs,
  type RetentionSettings,
} from "../../src/store/retention.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
let sql: ReturnType<typeof postgresSql>;
const now = new Date("2026-11-24T12:00:00Z");
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000);
const settings: RetentionSettings = {
  batchSize: 3,
  maxBatches: 100,
  createRequestRetentionHours: 24,
  auditRetentionDays: 30,
};
const count = async (table: string) =>
  (await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = postgresSql(db.url, 2);
  await migrate(sql);
});
afterAll(async () => {
  await sql.close();
  await db.drop();
});
beforeEach(async () => {
  await sql.query("TRUNCATE embed_token_cutoffs, revoked_embed_tokens, create_requests, audit_events");
  // 10 expired and 4 live rows in each table.
  for (let i = 0; i < 14; i++) {
    const expired = i < 10;
    await sql.query(
      "INSERT INTO embed_token_cutoffs (organization_id, tenant_id, issued_not_after, keep_until) VALUES ('o', $1, $2, $3)",
      [`t${i}`, hoursAgo(50), expired ? hoursAgo(1) : hoursAgo(-1)],
    );
    await sql.query(
      "INSERT INTO revoked_embed_tokens (organization_id, jti, tenant_id, expires_at) VALUES ('o', $1, 't', $2)",
      [`j${i}`, expired ? hoursAgo(1) : hoursAgo(-1)],
    );
    await sql.query(
      "INSERT INTO create_requests (organization_id, request_id, fingerprint, created_at) VALUES ('o', $1, 'f', $2)",
      [`r${i}`, expired ? hoursAgo(25) : hoursAgo(23)],
    );
    await sql.query(
      "INSERT INTO audit_events (organization_id, id, action, actor, occurred_at) VALUES ('o', gen_random_uuid(), 'DASHBOARD_CREATED', 'a', $1)",
      [expired ? hoursAgo(31 * 24) : hoursAgo(29 * 24)],
    );
  }
});

describe("retention", () => {
  it("removes only expired revocation rows, in batches of the configured size", async () => {
    // 10 expired per table in batches of 3: 3 + 3 + 3 + 1, per table.
    expect(await purgeExpiredRevocations(sql, now, settings)).toEqual({ removed: 20, batches: 8 });
    expect(await count("embed_token_cutoffs")).toBe(4);
    expect(await count("revoked_embed_tokens")).toBe(4);
    const left = await sql.query<{ live: boolean }>(
      "SELECT bool_and(keep_until >= $1) AS live FROM embed_token_cutoffs",
      [now],
    );
    expect(left.rows[0]!.live).toBe(true);
  });

  it("removes create_requests past the retry window only", async () => {
    expect(await purgeOldCreateRequests(sql, now, settings)).toEqual({ removed: 10, batches: 4 });
    const left = await sql.query<{ request_id: string }>("SELECT request_id FROM create_requests ORDER BY request_id");
    expect(left.rows.map((r) => r.request_id)).toEqual(["r10", "r11", "r12", "r13"]);
  });

  it("removes audit events past AUDIT_RETENTION_DAYS, and none while it is unset", async () => {
    expect(await purgeOldAuditEvents(sql, now, { ...settings, auditRetentionDays: undefined })).toEqual({
      removed: 0,
      batches: 0,
    });
    expect(await count("audit_events")).toBe(14);
    expect(await purgeOldAuditEvents(sql, now, settings)).toEqual({ removed: 10, batches: 4 });
    expect(await count("audit_events")).toBe(4);
  });

  it("a run stops after maxBatches; the next run goes on where it stopped", async () => {
    const bounded = { ...settings, maxBatches: 2 };
    expect(await purgeOldCreateRequests(sql, now, bounded)).toEqual({ removed: 6, batches: 2 });
    expect(await purgeOldCreateRequests(sql, now, bounded)).toEqual({ removed: 4, batches: 2 });
    expect(await count("create_requests")).toBe(4);
  });

  it("exposes each purge as a job reporting what it removed", async () => {
    const jobs = retentionJobs(sql, settings);
    expect(jobs.map((j) => j.name)).toEqual([
      "purge-expired-revocations",
      "purge-old-create-requests",
      "purge-old-audit-events",
    ]);
    const removed = [];
    for (const job of jobs) removed.push((await job.run(now)).removed);
    expect(removed).toEqual([20, 10, 10]);
  });
});
