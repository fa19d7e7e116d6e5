import type { Deadline } from "../call/deadline.js";
import { alreadyExists } from "../errors/service-error.js";
import { changeNotice, DASHBOARD_CHANGES_CHANNEL, type DashboardCache } from "./dashboard-cache.js";
import { scopedCount, scopedPage, type KeysetPosition, type Scope } from "./scoped-pages.js";
import type { Sql } from "./sql.js";
import type { EmbedPermission, EmbedSettings, EmbedTheme } from "../tokens/embed-settings.js";

export interface DashboardRecord {
  id: string;
  organizationId: string;
  tenantId: string;
  workspaceId: string;
  name: string;
  description: string;
  createdBy: string;
  /** Origins the dashboard may be embedded in; empty means any. */
  allowedOrigins: string[];
  /** false: embedding is paused (no mints; existing tokens refused until it is true again). */
  embeddingEnabled: boolean;
  embedDefaults: EmbedSettings;
  permissionCeiling: EmbedPermission[];
  /** Bumped by every update; the etag is made from it. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export type NewDashboard = Omit<DashboardRecord, "createdAt" | "updatedAt" | "version">;

/** What an update may change. */
export type DashboardChanges = Pick<
  DashboardRecord,
  "name" | "description" | "workspaceId" | "allowedOrigins" | "embeddingEnabled" | "embedDefaults" | "permissionCeiling"
>;

interface Row {
  id: string;
  organization_id: string;
  tenant_id: string;
  workspace_id: string;
  name: string;
  description: string;
  created_by: string;
  allowed_origins: string[];
  embedding_enabled: boolean;
  embed_permissions: string[];
  embed_locale: string;
  embed_time_zone: string;
  embed_theme: string;
  permission_ceiling: string[];
  version: string | number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  "id, organization_id, tenant_id, workspace_id, name, description, created_by, allowed_origins, embedding_enabled, " +
  "embed_permissions, embed_locale, embed_time_zone, embed_theme, permission_ceiling, version, created_at, updated_at";
const UNIQUE_VIOLATION = "23505";

const toRecord = (r: Row): DashboardRecord => ({
  id: r.id,
  organizationId: r.organization_id,
  tenantId: r.tenant_id,
  workspaceId: r.workspace_id,
  name: r.name,
  description: r.description,
  createdBy: r.created_by,
  allowedOrigins: r.allowed_origins ?? [],
  embeddingEnabled: r.embedding_enabled,
  embedDefaults: {
    permissions: r.embed_permissions as EmbedPermission[],
    locale: r.embed_locale,
    timeZone: r.embed_time_zone,
    theme: r.embed_theme as EmbedTheme,
  },
  permissionCeiling: r.permission_ceiling as EmbedPermission[],
  version: Number(r.version),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/**
 * Every statement takes the organization as its first key: rows of another
 * organization cannot be read, changed or counted through this store.
 */
export class DashboardStore {
  /**
   * cache: answers reads outside transactions. Every write, here or in a transaction, records on its Sql
   * the change notice for every replica and this replica's eviction; the transaction applies both when
   * it commits (and neither when it rolls back), so no caller has to remember them.
   */
  constructor(
    private readonly sql: Sql,
    private readonly cache?: DashboardCache,
  ) {}

  private async announceChange(organizationId: string, tenantId: string): Promise<void> {
    await this.sql.notify(DASHBOARD_CHANGES_CHANNEL, changeNotice(organizationId, tenantId));
    const cache = this.cache;
    if (cache) this.sql.onCommit(() => cache.forget(organizationId, tenantId));
  }

  async insert(d: NewDashboard): Promise<DashboardRecord> {
    try {
      const { rows } = await this.sql.query<Row>(
        `INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, description, created_by,
                                 allowed_origins, embedding_enabled, embed_permissions, embed_locale, embed_time_zone,
                                 embed_theme, permission_ceiling)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING ${COLUMNS}`,
        [
          d.organizationId,
          d.id,
          d.tenantId,
          d.workspaceId,
          d.name,
          d.description,
          d.createdBy,
          d.allowedOrigins,
          d.embeddingEnabled,
          d.embedDefaults.permissions,
          d.embedDefaults.locale,
          d.embedDefaults.timeZone,
          d.embedDefaults.theme,
          d.permissionCeiling,
        ],
      );
      await this.announceChange(d.organizationId, d.tenantId);
      return toRecord(rows[0]!);
    } catch (err) {
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
        throw alreadyExists(`tenant "${d.tenantId}" already has a dashboard`);
      }
      throw err;
    }
  }

  /** A dashboard the cache holds is returned at once, with no promise; any other is read from the database. */
  findByTenant(
    organizationId: string,
    tenantId: string,
    deadline?: Deadline,
  ): DashboardRecord | undefined | Promise<DashboardRecord | undefined> {
    // A transaction's reads must see its own writes, which no cache has.
    const cache = this.sql.inTransaction ? undefined : this.cache;
    const cached = cache?.peek(organizationId, tenantId);
    if (cached) return cached;
    const load = async () => {
      const { rows } = await this.sql.query<Row>(
        `SELECT ${COLUMNS} FROM dashboards WHERE organization_id = $1 AND tenant_id = $2`,
        [organizationId, tenantId],
        deadline,
        organizationId,
      );
      return rows[0] && toRecord(rows[0]);
    };
    return cache ? cache.read(organizationId, tenantId, load) : load();
  }

  /** The dashboard, locked until the transaction ends, so an update reads and writes one version. */
  async findForUpdate(organizationId: string, tenantId: string): Promise<DashboardRecord | undefined> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${COLUMNS} FROM dashboards WHERE organization_id = $1 AND tenant_id = $2 FOR UPDATE`,
      [organizationId, tenantId],
    );
    return rows[0] && toRecord(rows[0]);
  }

  /** Writes the changes as the next version. Run it inside the transaction that locked the row. */
  async update(organizationId: string, tenantId: string, c: DashboardChanges): Promise<DashboardRecord> {
    const { rows } = await this.sql.query<Row>(
      `UPDATE dashboards
          SET name = $3, description = $4, workspace_id = $5, allowed_origins = $6, embedding_enabled = $7,
              embed_permissions = $8, embed_locale = $9, embed_time_zone = $10, embed_theme = $11,
              permission_ceiling = $12, version = version + 1, updated_at = now()
        WHERE organization_id = $1 AND tenant_id = $2
        RETURNING ${COLUMNS}`,
      [
        organizationId,
        tenantId,
        c.name,
        c.description,
        c.workspaceId,
        c.allowedOrigins,
        c.embeddingEnabled,
        c.embedDefaults.permissions,
        c.embedDefaults.locale,
        c.embedDefaults.timeZone,
        c.embedDefaults.theme,
        c.permissionCeiling,
      ],
    );
    await this.announceChange(organizationId, tenantId);
    return toRecord(rows[0]!);
  }

  async deleteByTenant(organizationId: string, tenantId: string): Promise<DashboardRecord | undefined> {
    const { rows } = await this.sql.query<Row>(
      `DELETE FROM dashboards WHERE organization_id = $1 AND tenant_id = $2 RETURNING ${COLUMNS}`,
      [organizationId, tenantId],
    );
    if (rows[0]) await this.announceChange(organizationId, tenantId);
    return rows[0] && toRecord(rows[0]);
  }

  async list(scope: Scope, page: KeysetPosition, deadline?: Deadline): Promise<DashboardRecord[]> {
    return (await scopedPage<Row>(this.sql, "dashboards", COLUMNS, scope, page, deadline)).map(toRecord);
  }

  count(scope: Scope, deadline?: Deadline): Promise<number> {
    return scopedCount(this.sql, "dashboards", scope, deadline);
  }
}
