import { invalidArgument, type FieldViolation } from "../errors/service-error.js";
import type { DashboardChanges, DashboardRecord } from "../store/dashboard-store.js";
import type { EmbedPermission } from "../tokens/embed-settings.js";
import {
  checkEmbedSettings,
  checkPermissionSet,
  overCeiling,
  type EmbedSettingsInput,
} from "../validation/embed-rules.js";
import { webOrigin } from "../validation/requests.js";
import { id, text } from "../validation/rules.js";

/** A field of Dashboard an update may change, as AIP-134 masks name it. */
export type UpdatePath =
  | "name"
  | "description"
  | "workspace_id"
  | "allowed_origins"
  | "embedding_enabled"
  | "embed_defaults.permissions"
  | "embed_defaults.locale"
  | "embed_defaults.time_zone"
  | "embed_defaults.theme"
  | "permission_ceiling";

const EMBED_DEFAULT_PATHS: UpdatePath[] = [
  "embed_defaults.permissions",
  "embed_defaults.locale",
  "embed_defaults.time_zone",
  "embed_defaults.theme",
];
const MUTABLE: UpdatePath[] = [
  "name",
  "description",
  "workspace_id",
  "allowed_origins",
  "embedding_enabled",
  ...EMBED_DEFAULT_PATHS,
  "permission_ceiling",
];
/** Fields a dashboard is born with and keeps: naming one in an update is INVALID_ARGUMENT. */
export const IMMUTABLE = [
  "id",
  "tenant_id",
  "dashboard_id",
  "organization_id",
  "created_by",
  "created_at",
  "updated_at",
  "etag",
];

/** What only organization admins may change: where and whether the dashboard embeds, and its ceiling. */
export const ADMIN_ONLY_PATHS: readonly UpdatePath[] = [
  "workspace_id",
  "allowed_origins",
  "embedding_enabled",
  "permission_ceiling",
];

/** An update's new values, as the request gave them (a path not in the update is ignored). */
export interface DashboardUpdateValues {
  name?: string | undefined;
  description?: string | undefined;
  workspaceId?: string | undefined;
  allowedOrigins?: string[] | undefined;
  embeddingEnabled?: boolean | undefined;
  embedDefaults?: EmbedSettingsInput | undefined;
  permissionCeiling?: (EmbedPermission | undefined)[] | undefined;
}

/**
 * The paths an update changes, by AIP-134's rules: the mask's, with "*"
 * meaning every mutable field and "embed_defaults" all of its members; an
 * absent or empty mask means the fields the request set. An unknown or
 * immutable path is INVALID_ARGUMENT naming it.
 */
export function resolveUpdatePaths(
  mask: readonly string[] | undefined,
  setInRequest: readonly UpdatePath[],
): UpdatePath[] {
  if (mask === undefined || mask.length === 0) {
    if (setInRequest.length === 0) {
      throw invalidArgument([{ field: "update_mask", description: "names no field, and the request sets none" }]);
    }
    return [...setInRequest];
  }
  const paths = new Set<UpdatePath>();
  const violations: FieldViolation[] = [];
  mask.forEach((path, i) => {
    const at = `update_mask.paths[${i}]`;
    if (path === "*") MUTABLE.forEach((p) => paths.add(p));
    else if (path === "embed_defaults") EMBED_DEFAULT_PATHS.forEach((p) => paths.add(p));
    else if ((MUTABLE as string[]).includes(path)) paths.add(path as UpdatePath);
    else if (IMMUTABLE.some((f) => path === f || path.startsWith(`${f}.`))) {
      violations.push({ field: at, description: `"${path}" cannot be changed` });
    } else violations.push({ field: at, description: `"${path}" is not a field of Dashboard that can be updated` });
  });
  if (violations.length > 0) throw invalidArgument(violations);
  return MUTABLE.filter((p) => paths.has(p));
}

/** Checks the values the paths take, before anything is read, so a bad update costs no transaction. */
export function checkUpdateValues(paths: readonly UpdatePath[], v: DashboardUpdateValues): void {
  const violations: FieldViolation[] = [];
  const check = (field: string, problem: string | undefined) => {
    if (problem) violations.push({ field: `dashboard.${field}`, description: problem });
  };
  if (paths.includes("name")) check("name", text(1, 200)(v.name ?? ""));
  if (paths.includes("description")) check("description", text(0, 2000)(v.description ?? ""));
  if (paths.includes("workspace_id")) check("workspace_id", id(v.workspaceId ?? ""));
  if (paths.includes("allowed_origins")) {
    const origins = v.allowedOrigins ?? [];
    if (origins.length > 20) check("allowed_origins", "must list at most 20 origins");
    origins.forEach((o, i) => check(`allowed_origins[${i}]`, webOrigin(o)));
    if (new Set(origins).size !== origins.length) check("allowed_origins", "must not repeat an origin");
  }
  const defaults = embedDefaultsInput(paths, v.embedDefaults);
  violations.push(...checkEmbedSettings(defaults, "dashboard.embed_defaults").violations);
  if (paths.includes("permission_ceiling")) {
    violations.push(
      ...checkPermissionSet(v.permissionCeiling ?? [], "dashboard.permission_ceiling.permissions").violations,
    );
  }
  if (violations.length > 0) throw invalidArgument(violations);
}

/**
 * The dashboard after the update: each path takes the request's value (its
 * zero value when the request left it unset, as AIP-134 says for a path in
 * the mask), everything else stays. The defaults must stay within the
 * ceiling, whichever of the two changed.
 */
export function applyUpdate(
  current: DashboardRecord,
  paths: readonly UpdatePath[],
  v: DashboardUpdateValues,
): DashboardChanges {
  const has = (p: UpdatePath) => paths.includes(p);
  const defaults = checkEmbedSettings(embedDefaultsInput(paths, v.embedDefaults), "").canonical;
  const next: DashboardChanges = {
    name: has("name") ? (v.name ?? "") : current.name,
    description: has("description") ? (v.description ?? "") : current.description,
    workspaceId: has("workspace_id") ? (v.workspaceId ?? "") : current.workspaceId,
    allowedOrigins: has("allowed_origins") ? (v.allowedOrigins ?? []) : current.allowedOrigins,
    embeddingEnabled: has("embedding_enabled") ? (v.embeddingEnabled ?? false) : current.embeddingEnabled,
    embedDefaults: {
      permissions: defaults.permissions ?? current.embedDefaults.permissions,
      locale: defaults.locale ?? current.embedDefaults.locale,
      timeZone: defaults.timeZone ?? current.embedDefaults.timeZone,
      theme: defaults.theme ?? current.embedDefaults.theme,
    },
    permissionCeiling: has("permission_ceiling")
      ? checkPermissionSet(v.permissionCeiling ?? [], "").canonical
      : current.permissionCeiling,
  };
  const over = overCeiling(
    next.embedDefaults.permissions,
    next.permissionCeiling,
    "dashboard.embed_defaults.permissions.permissions",
  );
  if (over.length > 0) throw invalidArgument(over);
  return next;
}

/** The paths whose value the update actually changes (what the audit row lists). */
export function changedPaths(
  current: DashboardRecord,
  next: DashboardChanges,
  paths: readonly UpdatePath[],
): UpdatePath[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const valueOf = (d: DashboardChanges, p: UpdatePath): unknown => {
    switch (p) {
      case "name":
        return d.name;
      case "description":
        return d.description;
      case "workspace_id":
        return d.workspaceId;
      case "allowed_origins":
        return d.allowedOrigins;
      case "embedding_enabled":
        return d.embeddingEnabled;
      case "embed_defaults.permissions":
        return d.embedDefaults.permissions;
      case "embed_defaults.locale":
        return d.embedDefaults.locale;
      case "embed_defaults.time_zone":
        return d.embedDefaults.timeZone;
      case "embed_defaults.theme":
        return d.embedDefaults.theme;
      case "permission_ceiling":
        return d.permissionCeiling;
    }
  };
  return paths.filter((p) => !same(valueOf(current, p), valueOf(next, p)));
}

/** The default settings the update sets: only the members its paths name, the others undefined (kept). */
function embedDefaultsInput(paths: readonly UpdatePath[], given: EmbedSettingsInput | undefined): EmbedSettingsInput {
  return {
    permissions: paths.includes("embed_defaults.permissions") ? (given?.permissions ?? []) : undefined,
    locale: paths.includes("embed_defaults.locale") ? (given?.locale ?? "") : undefined,
    timeZone: paths.includes("embed_defaults.time_zone") ? (given?.timeZone ?? "") : undefined,
    theme: paths.includes("embed_defaults.theme") ? (given?.theme === undefined ? "" : given.theme) : undefined,
  };
}
