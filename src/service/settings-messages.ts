import { create } from "@bufbuild/protobuf";
import type { Dashboard } from "../../gen/dashboard/v1/dashboard_pb.js";
import {
  EmbedPermission as ProtoPermission,
  EmbedPermissionsSchema,
  EmbedSettingsSchema,
  EmbedTheme as ProtoTheme,
  EmbedViewerSchema,
  type EmbedPermissions as ProtoPermissions,
  type EmbedSettings as ProtoSettings,
  type EmbedViewer as ProtoViewer,
} from "../../gen/dashboard/v1/embed_settings_pb.js";
import type { EmbedPermission, EmbedSettings, EmbedTheme, EmbedViewer } from "../tokens/embed-settings.js";
import type { EmbedSettingsInput, EmbedViewerInput } from "../validation/embed-rules.js";
import type { DashboardUpdateValues, UpdatePath } from "./dashboard-update.js";

/** Protobuf <-> domain for embed settings; nothing here decides anything. */

const PERMISSION: Partial<Record<ProtoPermission, EmbedPermission>> = {
  [ProtoPermission.DOWNLOAD_IMAGE]: "download_image",
  [ProtoPermission.EXPORT_DATA]: "export_data",
  [ProtoPermission.DRILL_THROUGH]: "drill_through",
  [ProtoPermission.VIEW_UNDERLYING_DATA]: "view_underlying_data",
  [ProtoPermission.FULLSCREEN]: "fullscreen",
};
const PROTO_PERMISSION = Object.fromEntries(
  Object.entries(PERMISSION).map(([proto, claim]) => [claim, Number(proto) as ProtoPermission]),
) as Record<EmbedPermission, ProtoPermission>;

const THEME: Partial<Record<ProtoTheme, EmbedTheme>> = {
  [ProtoTheme.LIGHT]: "light",
  [ProtoTheme.DARK]: "dark",
  [ProtoTheme.SYSTEM]: "system",
};
const PROTO_THEME: Record<EmbedTheme, ProtoTheme> = {
  "": ProtoTheme.UNSPECIFIED,
  light: ProtoTheme.LIGHT,
  dark: ProtoTheme.DARK,
  system: ProtoTheme.SYSTEM,
};

/** UNSPECIFIED and numbers outside the enum (proto3 enums are open) become undefined, which validation names. */
export const permissionsFrom = (p: ProtoPermissions): (EmbedPermission | undefined)[] =>
  p.permissions.map((x) => PERMISSION[x]);

/** UNSPECIFIED means unset; a number outside the enum is null, which validation names. */
export function themeFrom(theme: ProtoTheme): EmbedTheme | null | undefined {
  if (theme === ProtoTheme.UNSPECIFIED) return undefined;
  return THEME[theme] ?? null;
}

export function settingsFrom(s: ProtoSettings | undefined): EmbedSettingsInput | undefined {
  if (!s) return undefined;
  return {
    permissions: s.permissions ? permissionsFrom(s.permissions) : undefined,
    locale: s.locale === "" ? undefined : s.locale,
    timeZone: s.timeZone === "" ? undefined : s.timeZone,
    theme: themeFrom(s.theme),
  };
}

export function viewerFrom(v: ProtoViewer | undefined): EmbedViewerInput | undefined {
  return v && { id: v.id, displayName: v.displayName };
}

export const permissionsMessage = (permissions: readonly EmbedPermission[]) =>
  create(EmbedPermissionsSchema, { permissions: permissions.map((p) => PROTO_PERMISSION[p]) });

export const protoPermissions = (permissions: readonly EmbedPermission[]) =>
  permissions.map((p) => PROTO_PERMISSION[p]);

export const protoTheme = (theme: EmbedTheme) => PROTO_THEME[theme];

export function settingsMessage(s: EmbedSettings) {
  return create(EmbedSettingsSchema, {
    permissions: permissionsMessage(s.permissions),
    locale: s.locale,
    timeZone: s.timeZone,
    theme: PROTO_THEME[s.theme],
  });
}

export const viewerMessage = (v: EmbedViewer | undefined) =>
  v && create(EmbedViewerSchema, { id: v.id, displayName: v.displayName });

/**
 * An UpdateDashboardRequest's dashboard as the domain's update values, and
 * which paths it sets (what an empty mask means, per AIP-134): a field is set
 * when it differs from its proto default; a message field when present.
 */
export function updateFrom(d: Dashboard | undefined): { values: DashboardUpdateValues; setInRequest: UpdatePath[] } {
  const set: UpdatePath[] = [];
  if (!d) return { values: {}, setInRequest: set };
  if (d.name !== "") set.push("name");
  if (d.description !== "") set.push("description");
  if (d.workspaceId !== "") set.push("workspace_id");
  if (d.allowedOrigins.length > 0) set.push("allowed_origins");
  if (d.embeddingEnabled) set.push("embedding_enabled");
  if (d.embedDefaults?.permissions) set.push("embed_defaults.permissions");
  if (d.embedDefaults && d.embedDefaults.locale !== "") set.push("embed_defaults.locale");
  if (d.embedDefaults && d.embedDefaults.timeZone !== "") set.push("embed_defaults.time_zone");
  if (d.embedDefaults && d.embedDefaults.theme !== ProtoTheme.UNSPECIFIED) set.push("embed_defaults.theme");
  if (d.permissionCeiling) set.push("permission_ceiling");
  return {
    values: {
      name: d.name,
      description: d.description,
      workspaceId: d.workspaceId,
      allowedOrigins: d.allowedOrigins,
      embeddingEnabled: d.embeddingEnabled,
      embedDefaults: {
        permissions: d.embedDefaults?.permissions ? permissionsFrom(d.embedDefaults.permissions) : [],
        locale: d.embedDefaults?.locale ?? "",
        timeZone: d.embedDefaults?.timeZone ?? "",
        theme: d.embedDefaults ? (themeFrom(d.embedDefaults.theme) ?? "") : "",
      },
      permissionCeiling: d.permissionCeiling ? permissionsFrom(d.permissionCeiling) : [],
    },
    setInRequest: set,
  };
}
