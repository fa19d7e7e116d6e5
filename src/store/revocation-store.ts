import type { Deadline } from "../call/deadline.js";
import type { Sql } from "./sql.js";

/** What a verification needs to know about one token, read in one round trip. */
export interface RevocationState {
  /** The token's jti is on the revoked list. */
  tokenRevoked: boolean;
  /** The latest tenant- or dashboard-wide cutoff: tokens issued at or before it are revoked. */
  issuedNotAfter: Date | undefined;
  /** The dashboard the token names still exists in that tenant. */
  dashboardExists: boolean;
  /** Its embedding is not paused (false too when it no longer exists). */
  embeddingEnabled: boolean;
  /** The origins it may be embedded in now (empty: any). */
  allowedOrigins: string[];
}

/**
 * Revocation in PostgreSQL, so every replica sees it at once. Two cheap
 * structures instead of a list of every token: "not before" cutoffs per tenant
 * or dashboard, and the jtis revoked one by one. Rows are kept only as long as
 * a token they match could still be unexpired, then purged.
 */
export class RevocationStore {
  constructor(private readonly sql: Sql) {}

  /** Revokes every token of the tenant (dashboardId '') or of one of its dashboards issued up to `issuedNotAfter`. */
  async cutOff(
    organizationId: string,
    tenantId: string,
    dashboardId: string,
    issuedNotAfter: Date,
    keepUntil: Date,
  ): Promise<void> {
    await this.sql.query(
      `INSERT INTO embed_token_cutoffs (organization_id, tenant_id, dashboard_id, issued_not_after, keep_until)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (organization_id, tenant_id, dashboard_id) DO UPDATE
         SET issued_not_after = GREATEST(embed_token_cutoffs.issued_not_after, EXCLUDED.issued_not_after),
             keep_until = GREATEST(embed_token_cutoffs.keep_until, EXCLUDED.keep_until)`,
      [organizationId, tenantId, dashboardId, issuedNotAfter, keepUntil],
    );
  }

  /**
   * PurgeTenant: removes the tenant's dashboard cutoffs and single-token revocations, and returns how
   * many. Its tenant-wide cutoff is the caller's to move (cutOff with dashboardId ''): it covers every
   * token these rows covered, names nobody, and keeps the tenant's earlier tokens refused after the
   * rows are gone.
   */
  async forgetTenantRevocations(organizationId: string, tenantId: string): Promise<number> {
    const { rows } = await this.sql.query<{ n: number }>(
      `WITH cutoffs AS (
         DELETE FROM embed_token_cutoffs
          WHERE organization_id = $1 AND tenant_id = $2 AND dashboard_id <> '' RETURNING 1
       ), tokens AS (
         DELETE FROM revoked_embed_tokens WHERE organization_id = $1 AND tenant_id = $2 RETURNING 1
       )
       SELECT ((SELECT count(*) FROM cutoffs) + (SELECT count(*) FROM tokens))::int AS n`,
      [organizationId, tenantId],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async revokeToken(organizationId: string, tenantId: string, jti: string, expiresAt: Date): Promise<void> {
    await this.sql.query(
      `INSERT INTO revoked_embed_tokens (organization_id, jti, tenant_id, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (organization_id, jti) DO NOTHING`,
      [organizationId, jti, tenantId, expiresAt],
    );
  }

  async state(
    organizationId: string,
    tenantId: string,
    dashboardId: string,
    jti: string,
    deadline?: Deadline,
  ): Promise<RevocationState> {
    const { rows } = await this.sql.query<{
      token_revoked: boolean;
      issued_not_after: Date | null;
      dashboard_exists: boolean;
      embedding_enabled: boolean | null;
      allowed_origins: string[] | null;
    }>(
      `SELECT
         EXISTS (SELECT 1 FROM revoked_embed_tokens WHERE organization_id = $1 AND jti = $4) AS token_revoked,
         (SELECT max(issued_not_after) FROM embed_token_cutoffs
           WHERE organization_id = $1 AND tenant_id = $2 AND dashboard_id IN ('', $3)) AS issued_not_after,
         d.id IS NOT NULL AS dashboard_exists,
         d.embedding_enabled,
         d.allowed_origins
       FROM (SELECT 1) AS one
       LEFT JOIN dashboards d ON d.organization_id = $1 AND d.tenant_id = $2 AND d.id::text = $3`,
      [organizationId, tenantId, dashboardId, jti],
      deadline,
      organizationId,
    );
    const r = rows[0]!;
    return {
      tokenRevoked: r.token_revoked,
      issuedNotAfter: r.issued_not_after === null ? undefined : new Date(r.issued_not_after),
      dashboardExists: r.dashboard_exists,
      embeddingEnabled: r.embedding_enabled === true,
      allowedOrigins: r.allowed_origins ?? [],
    };
  }
}
