import { decodeJwt, errors, jwtVerify, type JWTPayload } from "jose";
import { systemClock, type Clock } from "../clock.js";
import type { EmbedConfig } from "../config/config.js";
import { ServiceError } from "../errors/service-error.js";
import { EMBED_TOKEN_TYPE } from "./embed-signer.js";
import { embedFromClaims, type EmbedSettings, type EmbedViewer } from "./embed-settings.js";
import { filtersFromClaim, type LockedFilter } from "./filters.js";
import { EMBED_ALGORITHM, KEY_REFRESH_MS, type KeyRing } from "./key-ring.js";

/** Clock skew tolerated on exp and nbf, here and in the README's advice to renderers. */
export const VERIFY_LEEWAY_SECONDS = 5;

/**
 * The latest moment a token minted at or before fromMs can still verify: the
 * maximum lifetime plus the leeway. Revocation rows and retired keys are kept
 * exactly that long (plus a second for rounding), then they can go.
 */
export function lastPossibleExpiry(fromMs: number, maxTtlSeconds: number): Date {
  return new Date(fromMs + (maxTtlSeconds + VERIFY_LEEWAY_SECONDS + 1) * 1000);
}

/**
 * How long a retired key keeps verifying: a replica that has not yet noticed
 * the rotation may sign with it for KEY_REFRESH_MS more, and those tokens too
 * must verify until their exp.
 */
export function retiredKeyGraceSeconds(maxTtlSeconds: number): number {
  return maxTtlSeconds + VERIFY_LEEWAY_SECONDS + Math.ceil(KEY_REFRESH_MS / 1000) + 1;
}

export interface VerifiedEmbedToken {
  kid: string;
  issuer: string;
  audience: string;
  subject: string;
  /** Unix seconds. */
  issuedAt: number;
  notBefore: number;
  expiresAt: number;
  jti: string;
  /** When the token was minted, to the millisecond (from its UUIDv7 jti; iat is whole seconds). */
  mintedAtMs: number;
  organizationId: string;
  tenantId: string;
  workspaceId: string;
  dashboardId: string;
  filters: LockedFilter[];
  origin: string | undefined;
  embed: EmbedSettings;
  viewer: EmbedViewer | undefined;
}

/** Checks a token; with expectedOrganizationId, a token of any other organization is invalid before any key is looked up. */
export type EmbedVerifier = (token: string, expectedOrganizationId?: string) => Promise<VerifiedEmbedToken>;

/** Organization ids as the schema allows them; anything else in a token is not worth a key lookup. */
const ORGANIZATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The organization_id claim, read before the signature is checked: it only
 * chooses whose keys to try, and only that organization's keys (or the
 * configured and previous-release keys) can then verify the token, so a
 * forged claim buys nothing but a failed check.
 */
function claimedOrganization(token: string): string | undefined {
  try {
    const claim = decodeJwt(token).organization_id;
    return typeof claim === "string" && ORGANIZATION_ID.test(claim) ? claim : undefined;
  } catch {
    return undefined;
  }
}

const invalid = (message = "the token is not a valid iframe token") => new ServiceError("TOKEN_INVALID", message);

/**
 * Checks what a renderer checks offline with the JWKS: the signature with a
 * live key (algorithm fixed to EdDSA, typ fixed), iss, aud, and exp/nbf with a
 * small leeway, then the shape of this service's claims. Revocation and the
 * dashboard's existence are the caller's next step (they need storage).
 */
export function createEmbedVerifier(
  config: Pick<EmbedConfig, "issuer" | "audience">,
  keys: KeyRing,
  clock: Clock = systemClock,
): EmbedVerifier {
  return async (token, expectedOrganizationId) => {
    const organizationId = claimedOrganization(token);
    if (!organizationId) throw invalid();
    if (expectedOrganizationId !== undefined && organizationId !== expectedOrganizationId) throw invalid();
    let payload: JWTPayload;
    let kid: string;
    try {
      const verified = await jwtVerify(
        token,
        async (header) => {
          const key = header.kid === undefined ? undefined : await keys.verificationKey(organizationId, header.kid);
          // An unknown or retired key is the same failure as a bad signature.
          if (!key) throw new errors.JWKSNoMatchingKey();
          return key;
        },
        {
          algorithms: [EMBED_ALGORITHM],
          typ: EMBED_TOKEN_TYPE,
          issuer: config.issuer,
          audience: config.audience,
          clockTolerance: VERIFY_LEEWAY_SECONDS,
          currentDate: new Date(clock()),
          requiredClaims: ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"],
        },
      );
      payload = verified.payload;
      kid = verified.protectedHeader.kid!;
    } catch (err) {
      if (err instanceof errors.JWTExpired)
        throw new ServiceError("TOKEN_EXPIRED", "the token has expired; mint a new one");
      if (err instanceof errors.JOSEError) throw invalid();
      throw err;
    }
    const p = payload as Record<string, unknown>;
    const strings = ["sub", "jti", "organization_id", "tenant_id", "workspace_id", "dashboard_id"] as const;
    if (!strings.every((name) => typeof p[name] === "string" && p[name] !== "")) throw invalid();
    if (p.origin !== undefined && typeof p.origin !== "string") throw invalid();
    const filters = filtersFromClaim(p.filters);
    if (!filters) throw invalid();
    const settings = embedFromClaims(p);
    if (!settings) throw invalid();
    const jti = p.jti as string;
    return {
      kid,
      issuer: payload.iss!,
      audience: config.audience,
      subject: payload.sub!,
      issuedAt: payload.iat!,
      notBefore: payload.nbf!,
      expiresAt: payload.exp!,
      jti,
      mintedAtMs: uuidV7Milliseconds(jti) ?? payload.iat! * 1000,
      organizationId: p.organization_id as string,
      tenantId: p.tenant_id as string,
      workspaceId: p.workspace_id as string,
      dashboardId: p.dashboard_id as string,
      filters,
      origin: p.origin,
      embed: settings.embed,
      viewer: settings.viewer,
    };
  };
}

/** The timestamp a UUIDv7 carries in its first 48 bits, or undefined for any other string. */
function uuidV7Milliseconds(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)) return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
