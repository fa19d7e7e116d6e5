import type { Sql } from "./sql.js";

/** A job for a background runner (one replica at a time): what it is called, how often, what it does. */
export interface RetentionJob {
  name: string;
  everyMs: number;
  run(now: Date): Promise<RetentionRun>;
}

/** What one run removed: in all, and per table (for the log line; metrics get every batch as it happens). */
export interface RetentionRun {
  removed: number;
  batches: number;
  tables: Partial<Record<RetentionTable, number>>;
}

/** The tables retention purges (constants of this file, so a bounded label for metrics). */
export type RetentionTable = "embed_token_cutoffs" | "revoked_embed_tokens" | "create_requests" | "audit_events";

/**
 * Told of every DELETE batch as it completes: which table, how many rows. The composition root turns it
 * into metrics (this folder imports no ops code); tests use it to see each batch's size.
 */
export type RetentionReporter = (table: RetentionTable, removed: number) => void;

export interface RetentionSettings {
  /** Rows one DELETE removes (RETENTION_BATCH_SIZE): small, so no statement holds its locks for long. */
  batchSize: number;
  /** Batches one run may delete; what is left waits for the next run, so a backlog never makes a long run. */
  maxBatches: number;
  createRequestRetentionHours: number;
  /** undefined: audit events are kept forever. */
  auditRetentionDays: number | undefined;
  /** RETENTION_INTERVAL_SECONDS: how often every job runs; undefined: each job at its own pace. */
  everyMs?: number;
  /** Where each batch is reported; nowhere when unset. */
  report?: RetentionReporter;
}

export interface Purged {
  removed: number;
  batches: number;
}

/**
 * Deletes the rows of `table` that `expired` ($1: the cutoff) selects, batchSize
 * at a time (each batch its own statement, so its own short transaction),
 * until a batch finds fewer than batchSize or maxBatches ran. `table` and
 * `expired` are constants of this file, never input.
 */
async function purgeInBatches(
  sql: Sql,
  table: RetentionTable,
  expired: string,
  cutoff: Date,
  settings: Pick<RetentionSettings, "batchSize" | "maxBatches" | "report">,
): Promise<Purged> {
  let removed = 0;
  let batches = 0;
  while (batches < settings.maxBatches) {
    const { rowCount } = await sql.query(
      `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE ${expired} LIMIT $2)`,
      [cutoff, settings.batchSize],
    );
    batches++;
    removed += rowCount;
    settings.report?.(table, rowCount);
    if (rowCount < settings.batchSize) break;
  }
  return { removed, batches };
}

/** Revocation rows no unexpired token can match any more. */
export async function purgeExpiredRevocations(sql: Sql, now: Date, settings: RetentionSettings): Promise<Purged> {
  const cutoffs = await purgeInBatches(sql, "embed_token_cutoffs", "keep_until < $1", now, settings);
  const tokens = await purgeInBatches(sql, "revoked_embed_tokens", "expires_at < $1", now, settings);
  return { removed: cutoffs.removed + tokens.removed, batches: cutoffs.batches + tokens.batches };
}

/** CreateDashboard request ids past their retry window: a retry that late creates anew (or is ALREADY_EXISTS). */
export function purgeOldCreateRequests(sql: Sql, now: Date, settings: RetentionSettings): Promise<Purged> {
  const cutoff = new Date(now.getTime() - settings.createRequestRetentionHours * 3_600_000);
  return purgeInBatches(sql, "create_requests", "created_at < $1", cutoff, settings);
}

/** Audit events older than AUDIT_RETENTION_DAYS; none while it is unset. */
export async function purgeOldAuditEvents(sql: Sql, now: Date, settings: RetentionSettings): Promise<Purged> {
  if (settings.auditRetentionDays === undefined) return { removed: 0, batches: 0 };
  const cutoff = new Date(now.getTime() - settings.auditRetentionDays * 86_400_000);
  return purgeInBatches(sql, "audit_events", "occurred_at < $1", cutoff, settings);
}

/**
 * The retention work as jobs, for the background-job runner to schedule (app.ts registers them). Their
 * statements carry no organization: purging is nobody's call, so it is not charged to any share.
 */
export function retentionJobs(sql: Sql, settings: RetentionSettings): RetentionJob[] {
  const job = (name: string, everyMs: number, purge: typeof purgeOldAuditEvents): RetentionJob => ({
    name,
    everyMs: settings.everyMs ?? everyMs,
    async run(now) {
      const tables: RetentionRun["tables"] = {};
      const report: RetentionReporter = (table, removed) => {
        tables[table] = (tables[table] ?? 0) + removed;
        settings.report?.(table, removed);
      };
      const { removed, batches } = await purge(sql, now, { ...settings, report });
      return { removed, batches, tables };
    },
  });
  return [
    job("purge-expired-revocations", 60_000, purgeExpiredRevocations),
    job("purge-old-create-requests", 10 * 60_000, purgeOldCreateRequests),
    job("purge-old-audit-events", 60 * 60_000, purgeOldAuditEvents),
  ];
}
