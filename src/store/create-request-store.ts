import type { DashboardRecord } from "./dashboard-store.js";
import type { Sql } from "./sql.js";
import { ALL_PERMISSIONS } from "../tokens/embed-settings.js";

export type RequestClaim =
  { kind: "claimed" } | { kind: "replay"; fingerprint: string; response: DashboardRecord | undefined };

/** A result as stored: JSON dates, and (from a release before embed settings) maybe without them. */
type StoredResponse = Omit<
  DashboardRecord,
  "createdAt" | "updatedAt" | "embeddingEnabled" | "embedDefaults" | "permissionCeiling" | "version"
> &
  Partial<Pick<DashboardRecord, "embeddingEnabled" | "embedDefaults" | "permissionCeiling" | "version">> & {
    createdAt: string;
    updatedAt: string;
  };

/**
 * CreateDashboard request ids (AIP-155). Claiming inserts the id; a concurrent
 * claim of the same id waits on the unique key until the first transaction
 * ends, then sees its row, so two retries racing never create twice.
 */
export class CreateRequestStore {
  constructor(private readonly sql: Sql) {}

  async claim(organizationId: string, requestId: string, fingerprint: string): Promise<RequestClaim> {
    const inserted = await this.sql.query(
      `INSERT INTO create_requests (organization_id, request_id, fingerprint) VALUES ($1, $2, $3)
       ON CONFLICT (organization_id, request_id) DO NOTHING RETURNING request_id`,
      [organizationId, requestId, fingerprint],
    );
    if (inserted.rows.length > 0) return { kind: "claimed" };
    const { rows } = await this.sql.query<{ fingerprint: string; response: StoredResponse | string | null }>(
      "SELECT fingerprint, response FROM create_requests WHERE organization_id = $1 AND request_id = $2",
      [organizationId, requestId],
    );
    const row = rows[0]!;
    const stored = typeof row.response === "string" ? (JSON.parse(row.response) as StoredResponse) : row.response;
    return {
      kind: "replay",
      fingerprint: row.fingerprint,
      response: stored
        ? {
            // Stored by a release from before embed settings: what its dashboard got by default.
            embeddingEnabled: true,
            embedDefaults: { permissions: [], locale: "", timeZone: "", theme: "" },
            permissionCeiling: [...ALL_PERMISSIONS],
            version: 1,
            ...stored,
            createdAt: new Date(stored.createdAt),
            updatedAt: new Date(stored.updatedAt),
          }
        : undefined,
    };
  }

  async complete(organizationId: string, requestId: string, response: DashboardRecord): Promise<void> {
    await this.sql.query("UPDATE create_requests SET response = $3 WHERE organization_id = $1 AND request_id = $2", [
      organizationId,
      requestId,
      JSON.stringify(response),
    ]);
  }

  /**
   * PurgeTenant: forgets the tenant's request ids (their stored answers name the tenant and who
   * created its dashboard). A claim still inside its own transaction has no answer yet and is not
   * visible here; it commits a dashboard created after the purge.
   */
  async deleteForTenant(organizationId: string, tenantId: string): Promise<number> {
    const { rowCount } = await this.sql.query(
      "DELETE FROM create_requests WHERE organization_id = $1 AND response->>'tenantId' = $2",
      [organizationId, tenantId],
    );
    return rowCount;
  }
}
