import type { FieldViolation } from "../errors/service-error.js";
import {
  canonicalLocale,
  canonicalTimeZone,
  EMBED_PERMISSIONS,
  EMBED_THEMES,
  normalizePermissions,
  type EmbedPermission,
  type EmbedSettings,
  type EmbedTheme,
  type EmbedViewer,
} from "../tokens/embed-settings.js";
import { text } from "./rules.js";

/**
 * Embed settings as a request gives them: undefined where it gave nothing
 * (the dashboard's default applies), and for closed sets, undefined entries
 * where it gave a value outside the set (proto3 enums are open) so the rule
 * can name them instead of dropping them.
 */
export interface EmbedSettingsInput {
  permissions?: (EmbedPermission | undefined)[] | undefined;
  locale?: string | undefined;
  timeZone?: string | undefined;
  /** null: a value outside the closed set. */
  theme?: EmbedTheme | null | undefined;
}

export interface EmbedViewerInput {
  id: string;
  displayName: string;
}

const PERMISSION_NAMES = EMBED_PERMISSIONS.map((p) => p.toUpperCase()).join(", ");
const THEME_NAMES = EMBED_THEMES.map((t) => t.toUpperCase()).join(", ");

/**
 * Every problem with the given settings, named from `at` ("embed_defaults",
 * or "" for a mint's own fields), and the settings in canonical form: a
 * locale as Intl.getCanonicalLocales writes it, a time zone as a formatter
 * made with it resolves it, permissions in the closed set's order without
 * repeats. Nothing Intl refuses ever gets through.
 */
export function checkEmbedSettings(
  input: EmbedSettingsInput,
  at: string,
): { violations: FieldViolation[]; canonical: Partial<EmbedSettings> } {
  const field = (name: string) => (at === "" ? name : `${at}.${name}`);
  const violations: FieldViolation[] = [];
  const canonical: Partial<EmbedSettings> = {};
  if (input.permissions !== undefined) {
    input.permissions.forEach((p, i) => {
      if (p === undefined)
        violations.push({
          // The repeated field inside the EmbedPermissions message.
          field: `${field("permissions")}.permissions[${i}]`,
          description: `must be one of ${PERMISSION_NAMES}`,
        });
    });
    canonical.permissions = normalizePermissions(
      input.permissions.filter((p): p is EmbedPermission => p !== undefined),
    );
  }
  if (input.locale !== undefined && input.locale !== "") {
    const locale = canonicalLocale(input.locale);
    if (locale === undefined) {
      violations.push({ field: field("locale"), description: "must be a BCP 47 language tag (such as en-US)" });
    } else canonical.locale = locale;
  } else if (input.locale === "") canonical.locale = "";
  if (input.timeZone !== undefined && input.timeZone !== "") {
    const timeZone = canonicalTimeZone(input.timeZone);
    if (timeZone === undefined) {
      violations.push({ field: field("time_zone"), description: "must be an IANA time zone (such as Europe/Berlin)" });
    } else canonical.timeZone = timeZone;
  } else if (input.timeZone === "") canonical.timeZone = "";
  if (input.theme === null) violations.push({ field: field("theme"), description: `must be one of ${THEME_NAMES}` });
  else if (input.theme !== undefined) canonical.theme = input.theme;
  return { violations, canonical };
}

/** The permissions of `requested` that `ceiling` does not allow, as violations naming each. */
export function overCeiling(
  requested: readonly EmbedPermission[],
  ceiling: readonly EmbedPermission[],
  at: string,
): FieldViolation[] {
  return requested
    .filter((p) => !ceiling.includes(p))
    .map((p) => ({
      field: at,
      description: `${p.toUpperCase()} is not allowed by this dashboard's permission ceiling`,
    }));
}

/** A permission ceiling as given: every entry known. */
export function checkPermissionSet(
  permissions: (EmbedPermission | undefined)[],
  at: string,
): { violations: FieldViolation[]; canonical: EmbedPermission[] } {
  const violations: FieldViolation[] = [];
  permissions.forEach((p, i) => {
    if (p === undefined) violations.push({ field: `${at}[${i}]`, description: `must be one of ${PERMISSION_NAMES}` });
  });
  return {
    violations,
    canonical: normalizePermissions(permissions.filter((p): p is EmbedPermission => p !== undefined)),
  };
}

const viewerId = text(1, 256);
const viewerName = text(0, 200);

export function checkViewer(viewer: EmbedViewerInput | undefined): {
  violations: FieldViolation[];
  viewer?: EmbedViewer;
} {
  if (viewer === undefined) return { violations: [] };
  const violations: FieldViolation[] = [];
  const idProblem = viewerId(viewer.id);
  if (idProblem) violations.push({ field: "viewer.id", description: idProblem });
  const nameProblem = viewerName(viewer.displayName);
  if (nameProblem) violations.push({ field: "viewer.display_name", description: nameProblem });
  return violations.length > 0
    ? { violations }
    : { violations, viewer: { id: viewer.id, displayName: viewer.displayName } };
}
