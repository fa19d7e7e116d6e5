/**
 * The embed settings a token carries for its renderer: what the viewer may
 * do (a closed set of permissions), and how to show the dashboard (locale,
 * time zone, theme). A dashboard has defaults and a permission ceiling; a mint
 * may narrow them, never widen them. Values are the token's claim values.
 */
export const EMBED_PERMISSIONS = [
  "download_image",
  "export_data",
  "drill_through",
  "view_underlying_data",
  "fullscreen",
] as const;
export type EmbedPermission = (typeof EMBED_PERMISSIONS)[number];

export const EMBED_THEMES = ["light", "dark", "system"] as const;
/** "" leaves the choice to the renderer. */
export type EmbedTheme = (typeof EMBED_THEMES)[number] | "";

export interface EmbedSettings {
  permissions: EmbedPermission[];
  /** Canonical BCP 47 tag, or "" for the renderer's default. */
  locale: string;
  /** Canonical IANA time zone, or "" for the renderer's default. */
  timeZone: string;
  theme: EmbedTheme;
}

/** The person within the tenant a token is minted for. */
export interface EmbedViewer {
  id: string;
  displayName: string;
}

/** A new dashboard's defaults: nothing beyond viewing, and the renderer decides how it looks. */
export const NO_EMBED_DEFAULTS: EmbedSettings = { permissions: [], locale: "", timeZone: "", theme: "" };

/** A new dashboard's ceiling: every permission; an admin narrows it per dashboard. */
export const ALL_PERMISSIONS: readonly EmbedPermission[] = EMBED_PERMISSIONS;

/** The set in a stable order (the closed set's), without repeats: what is stored and signed. */
export function normalizePermissions(permissions: readonly EmbedPermission[]): EmbedPermission[] {
  return EMBED_PERMISSIONS.filter((p) => permissions.includes(p));
}

export const MAX_LOCALE_LENGTH = 64;
export const MAX_TIME_ZONE_LENGTH = 64;

/** The canonical form of a BCP 47 tag as Intl sees it ("EN-us" → "en-US"), or undefined when Intl refuses it. */
export function canonicalLocale(tag: string): string | undefined {
  if (tag.length === 0 || tag.length > MAX_LOCALE_LENGTH) return undefined;
  try {
    const canonical = Intl.getCanonicalLocales(tag);
    return canonical.length === 1 ? canonical[0] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The canonical name of an IANA time zone as Intl resolves it ("europe/berlin"
 * → "Europe/Berlin"), or undefined. Offsets ("+05:30") are refused although
 * newer V8 (Node 22 and later) accepts them: they are not IANA names, and a
 * renderer on an older engine could not use them.
 */
export function canonicalTimeZone(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_TIME_ZONE_LENGTH || !IANA_NAME_START.test(name)) return undefined;
  try {
    const resolved = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    return IANA_NAME_START.test(resolved) ? resolved : undefined;
  } catch {
    return undefined;
  }
}

/** Every IANA zone name ("UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires") begins with a letter; offsets do not. */
const IANA_NAME_START = /^[A-Za-z]/;

/**
 * The settings as token claims: permissions always (an empty list means
 * nothing beyond viewing, which a renderer could not tell apart from a
 * missing claim otherwise), the rest only when set.
 */
export function embedClaims(embed: EmbedSettings, viewer: EmbedViewer | undefined): Record<string, unknown> {
  return {
    permissions: [...embed.permissions],
    ...(embed.locale === "" ? {} : { locale: embed.locale }),
    ...(embed.timeZone === "" ? {} : { time_zone: embed.timeZone }),
    ...(embed.theme === "" ? {} : { theme: embed.theme }),
    ...(viewer
      ? { viewer: viewer.displayName === "" ? { id: viewer.id } : { id: viewer.id, name: viewer.displayName } }
      : {}),
  };
}

/**
 * Reads the claims back; undefined when they are not what this service
 * writes. A token minted before embed settings existed has none of them,
 * which reads as the defaults (nothing beyond viewing).
 */
export function embedFromClaims(
  p: Record<string, unknown>,
): { embed: EmbedSettings; viewer: EmbedViewer | undefined } | undefined {
  const permissions = p.permissions ?? [];
  if (!Array.isArray(permissions) || !permissions.every((x) => EMBED_PERMISSIONS.includes(x as EmbedPermission))) {
    return undefined;
  }
  const optionalString = (v: unknown) => v === undefined || typeof v === "string";
  if (!optionalString(p.locale) || !optionalString(p.time_zone)) return undefined;
  if (p.theme !== undefined && !EMBED_THEMES.includes(p.theme as (typeof EMBED_THEMES)[number])) return undefined;
  let viewer: EmbedViewer | undefined;
  if (p.viewer !== undefined) {
    const v = p.viewer as Record<string, unknown> | null;
    if (typeof v !== "object" || v === null || typeof v.id !== "string" || !optionalString(v.name)) return undefined;
    viewer = { id: v.id, displayName: v.name ?? "" };
  }
  return {
    embed: {
      permissions: permissions as EmbedPermission[],
      locale: p.locale ?? "",
      timeZone: p.time_zone ?? "",
      theme: (p.theme as EmbedTheme | undefined) ?? "",
    },
    viewer,
  };
}
