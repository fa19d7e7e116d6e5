import { etagOf } from "../service/etag.js";
import type { DashboardRecord } from "../store/dashboard-store.js";
import type { EmbedPermission, EmbedTheme } from "../tokens/embed-settings.js";

/** Embed settings as the REST routes show them: the token's own claim values. */
export interface EmbedSettingsJson {
  permissions: EmbedPermission[];
  /** "" for the renderer's default. */
  locale: string;
  time_zone: string;
  theme: EmbedTheme;
}

/** A dashboard as the guide's REST routes show it: snake_case, RFC 3339 timestamps. */
export interface DashboardJson {
  id: string;
  tenant_id: string;
  workspace_id: string;
  dashboard_id: string;
  name: string;
  description: string;
  organization_id: string;
  created_by: string;
  created_at: string;
  updated_at: string;
  // Added after the guide; a client of the guide's routes ignores what it does not know.
  allowed_origins: string[];
  embedding_enabled: boolean;
  embed_defaults: EmbedSettingsJson;
  permission_ceiling: EmbedPermission[];
  /** The version it was read at; also the ETag header, to send back in If-Match. */
  etag: string;
}

export function toDashboardJson(d: DashboardRecord): DashboardJson {
  return {
    id: d.id,
    tenant_id: d.tenantId,
    workspace_id: d.workspaceId,
    dashboard_id: d.id,
    name: d.name,
    description: d.description,
    organization_id: d.organizationId,
    created_by: d.createdBy,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
    allowed_origins: d.allowedOrigins,
    embedding_enabled: d.embeddingEnabled,
    embed_defaults: {
      permissions: d.embedDefaults.permissions,
      locale: d.embedDefaults.locale,
      time_zone: d.embedDefaults.timeZone,
      theme: d.embedDefaults.theme,
    },
    permission_ceiling: d.permissionCeiling,
    etag: etagOf(d),
  };
}
