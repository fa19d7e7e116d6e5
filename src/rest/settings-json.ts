import { invalidArgument, type FieldViolation } from "../errors/service-error.js";
import { IMMUTABLE, type DashboardUpdateValues, type UpdatePath } from "../service/dashboard-update.js";
import { EMBED_PERMISSIONS, EMBED_THEMES, type EmbedPermission, type EmbedTheme } from "../tokens/embed-settings.js";
import type { EmbedSettingsInput, EmbedViewerInput } from "../validation/embed-rules.js";

/**
 * The REST routes' JSON for embed settings, read into the domain's inputs:
 * permissions and themes by their claim names ("export_data", "dark"). A value
 * of the wrong type is handed on as something the domain's rules refuse by
 * name, never dropped.
 */

export const permissionsFromJson = (v: unknown): (EmbedPermission | undefined)[] | undefined =>
  v === undefined || v === null
    ? undefined
    : Array.isArray(v)
      ? v.map((p) => (EMBED_PERMISSIONS.includes(p as EmbedPermission) ? (p as EmbedPermission) : undefined))
      : [undefined];

export function themeFromJson(v: unknown): EmbedTheme | null | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  return EMBED_THEMES.includes(v as (typeof EMBED_THEMES)[number]) ? (v as EmbedTheme) : null;
}

export function settingsFromJson(v: unknown): EmbedSettingsInput | undefined {
  if (v === undefined || v === null) return undefined;
  const o = (typeof v === "object" && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  return {
    permissions: permissionsFromJson(o.permissions),
    locale: o.locale === undefined || o.locale === null ? undefined : (o.locale as string),
    timeZone: o.time_zone === undefined || o.time_zone === null ? undefined : (o.time_zone as string),
    theme: themeFromJson(o.theme),
  };
}

export function viewerFromJson(v: unknown): EmbedViewerInput | undefined {
  if (v === undefined || v === null) return undefined;
  const o = (typeof v === "object" && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  return { id: o.id as string, displayName: (o.display_name as string | undefined) ?? "" };
}

const TOP_LEVEL: Record<string, UpdatePath | "embed_defaults"> = {
  name: "name",
  description: "description",
  workspace_id: "workspace_id",
  allowed_origins: "allowed_origins",
  embedding_enabled: "embedding_enabled",
  embed_defaults: "embed_defaults",
  permission_ceiling: "permission_ceiling",
};
const EMBED_DEFAULT_MEMBERS: Record<string, UpdatePath> = {
  permissions: "embed_defaults.permissions",
  locale: "embed_defaults.locale",
  time_zone: "embed_defaults.time_zone",
  theme: "embed_defaults.theme",
};

/**
 * A JSON merge patch (RFC 7396) of the REST dashboard as an update: each
 * member present names a path, null resets it to its default (the RPC's zero
 * value: an empty description, no origins, embedding paused only when false
 * is sent, the renderer's own settings, every permission allowed). An
 * unknown or immutable member is refused by name.
 */
export function updateFromMergePatch(patch: Record<string, unknown>): {
  paths: UpdatePath[];
  values: DashboardUpdateValues;
} {
  const paths: UpdatePath[] = [];
  const violations: FieldViolation[] = [];
  const values: DashboardUpdateValues = { embedDefaults: {} };
  for (const [key, value] of Object.entries(patch)) {
    const path = TOP_LEVEL[key];
    if (path === undefined) {
      violations.push({
        field: key,
        description: IMMUTABLE.includes(key)
          ? "cannot be changed"
          : "is not a field of a dashboard that can be updated",
      });
      continue;
    }
    if (path === "embed_defaults") {
      const members =
        value === null ? Object.fromEntries(Object.keys(EMBED_DEFAULT_MEMBERS).map((k) => [k, null])) : value;
      if (typeof members !== "object" || members === null || Array.isArray(members)) {
        violations.push({ field: key, description: "must be an object or null" });
        continue;
      }
      for (const [member, memberValue] of Object.entries(members as Record<string, unknown>)) {
        const memberPath = EMBED_DEFAULT_MEMBERS[member];
        if (memberPath === undefined) {
          violations.push({ field: `${key}.${member}`, description: "is not an embed setting" });
          continue;
        }
        paths.push(memberPath);
        const defaults = values.embedDefaults!;
        if (member === "permissions") defaults.permissions = permissionsFromJson(memberValue) ?? [];
        if (member === "locale") defaults.locale = memberValue === null ? "" : (memberValue as string);
        if (member === "time_zone") defaults.timeZone = memberValue === null ? "" : (memberValue as string);
        if (member === "theme") defaults.theme = themeFromJson(memberValue);
      }
      continue;
    }
    paths.push(path);
    switch (path) {
      case "name":
        values.name = value as string;
        break;
      case "description":
        values.description = value === null ? "" : (value as string);
        break;
      case "workspace_id":
        values.workspaceId = value as string;
        break;
      case "allowed_origins":
        values.allowedOrigins = value === null ? [] : (value as string[]);
        break;
      case "embedding_enabled":
        values.embeddingEnabled = value === null ? true : (value as boolean);
        break;
      case "permission_ceiling":
        values.permissionCeiling = value === null ? [...EMBED_PERMISSIONS] : (permissionsFromJson(value) ?? []);
        break;
    }
  }
  if (violations.length > 0) throw invalidArgument(violations);
  if (paths.length === 0) throw invalidArgument([{ field: "body", description: "names no field to change" }]);
  return { paths, values };
}

/**
 * The entity tags of an If-Match header (RFC 9110 §13.1.1): undefined when
 * absent, "*" for any current version. A weak tag (W/"…") never matches, as
 * If-Match compares strongly, so it is kept as sent and fails the comparison.
 */
export function ifMatchTags(header: string | string[] | undefined): string[] | "*" | undefined {
  if (header === undefined) return undefined;
  const joined = Array.isArray(header) ? header.join(",") : header;
  if (joined.trim() === "*") return "*";
  return joined
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
}
