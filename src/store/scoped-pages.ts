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
  );
  return rows;
}

export async function scopedCount(sql: Sql, table: string, scope: Scope, deadline?: Deadline): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${table}
     WHERE organization_id = $1 AND ($2::text[] IS NULL OR tenant_id = ANY($2::text[]))`,
    [scope.organizationId, scope.tenantIds ?? null],
    deadline,
  );
  return Number(rows[0]?.n ?? 0);
}
