import type { Deadline } from "../call/deadline.js";
import type { Sql } from "./sql.js";

/** Which rows a list may see: one organization, optionally narrowed to some tenants. */
export interface Scope {
  organizationId: string;
  /** undefined means every tenant of the organization. */
  tenantIds: string[] | undefined;
}

export interface KeysetPosition {
  afterId: string | undefined;
  skip: number;
  limit: number;
}

/**
 * A keyset page over a table keyed (organization_id, id) with a tenant_id
 * column, in id order (UUIDv7 ids, so creation order): rows after afterId,
 * minus the first skip, at most limit. Rows inserted while a client pages never
 * shift or repeat the ones it has seen. `table` and `columns` are constants of
 * the calling store, never input.
 */
export async function scopedPage<Row>(
  sql: Sql,
  table: string,
  columns: string,
  scope: Scope,
  page: KeysetPosition,
  deadline?: Deadline,
): Promise<Row[]> {
  const { rows } = await sql.query<Row>(
    `SELECT ${columns} FROM ${table}
     WHERE organization_id = $1
       AND ($2::text[] IS NULL OR tenant_id = ANY($2::text[]))
       AND ($3::uuid IS NULL OR id > $3::uuid)
     ORDER BY id
     LIMIT $4 OFFSET $5`,
    [scope.organizationId, scope.tenantIds ?? null, page.afterId ?? null, page.limit, page.skip],
    deadline,
    scope.organizationId,
  );
  return rows;
}

/** Up to this many rows a list's total_size is exact; above it, PostgreSQL's estimate (AIP-158 allows one). */
export const EXACT_COUNT_LIMIT = 10_000;

/**
 * The number of rows in scope: counted exactly while there are at most
 * EXACT_COUNT_LIMIT (so a count never reads more than that many index entries,
 * however large the organization), otherwise the planner's estimate for the
 * same condition, never less than EXACT_COUNT_LIMIT + 1.
 */
export function scopedCount(sql: Sql, table: string, scope: Scope, deadline?: Deadline): Promise<number> {
  return cappedCount(
    sql,
    `${table} WHERE organization_id = $1 AND ($2::text[] IS NULL OR tenant_id = ANY($2::text[]))`,
    [scope.organizationId, scope.tenantIds ?? null],
    scope.organizationId,
    deadline,
  );
}

/**
 * scopedCount for any condition: `fromWhere` is "table WHERE condition" (constants of the calling
 * store; values only as params), counted exactly up to EXACT_COUNT_LIMIT, estimated above it, on
 * the organization's database share.
 */
export async function cappedCount(
  sql: Sql,
  fromWhere: string,
  params: unknown[],
  organizationId: string,
  deadline?: Deadline,
): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${fromWhere} LIMIT ${EXACT_COUNT_LIMIT + 1}) AS capped`,
    params,
    deadline,
    organizationId,
  );
  const exact = Number(rows[0]?.n ?? 0);
  if (exact <= EXACT_COUNT_LIMIT) return exact;
  const plan = await sql.query<{ "QUERY PLAN": unknown }>(
    `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${fromWhere}`,
    params,
    deadline,
    organizationId,
  );
  return Math.max(EXACT_COUNT_LIMIT + 1, Math.round(planRows(plan.rows[0]?.["QUERY PLAN"])));
}

/** "Plan Rows" of EXPLAIN's JSON (pg parses it; PGlite may hand over the text). */
function planRows(plan: unknown): number {
  const parsed = (typeof plan === "string" ? JSON.parse(plan) : plan) as [{ Plan: { "Plan Rows": number } }];
  return Number(parsed[0]?.Plan?.["Plan Rows"] ?? 0);
}
