import type { Sql } from "./sql.js";

/** A job for a background runner (one replica at a time): what it is called, how often, what it does. */
export interface RetentionJob {
  name: string;
  everyMs: number;
  run(now: Date): Promise<{ removed: number }>;
}

export interface RetentionSettings {
  /** Rows one DELETE removes (RETENTION_BATCH_SIZE): small, so no statement holds its locks for long. */
  batchSize: number;
  /** Batches one run may delete; what is left waits for the next run, so a backlog never makes a long run. */
  maxBatches: number;
  createRequestRetentionHours: number;
  /** undefined: audit events are kept forever. */
  auditRetentionDays: number | undefined;
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
  table: string,
  expired: string,
  cutoff: Date,
  settings: Pick<RetentionSettings, "batchSize" | "maxBatches">,
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

/** The retention work as jobs, for the background-job runner to schedule (it is not wired here). */
export function retentionJobs(sql: Sql, settings: RetentionSettings): RetentionJob[] {
  const job = (name: string, everyMs: number, purge: typeof purgeOldAuditEvents): RetentionJob => ({
    name,
    everyMs,
    run: async (now) => ({ removed: (await purge(sql, now, settings)).removed }),
  });
  return [
    job("purge-expired-revocations", 60_000, purgeExpiredRevocations),
    job("purge-old-create-requests", 10 * 60_000, purgeOldCreateRequests),
    job("purge-old-audit-events", 60 * 60_000, purgeOldAuditEvents),
  ];
}
