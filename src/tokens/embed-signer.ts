import { uuidv7 } from "./uuid7.js";
import { signCompactEd25519 } from "./compact-jws.js";
import type { EmbedConfig } from "../config/config.js";
import { embedClaims, type EmbedSettings, type EmbedViewer } from "./embed-settings.js";
import { filterClaims, type LockedFilter } from "./filters.js";
import { EMBED_ALGORITHM, type KeyRing } from "./key-ring.js";
import { inSpan } from "../tracing/spans.js";

export const EMBED_TOKEN_TYPE = "dashboard-embed+jwt";

export interface EmbedClaims {
  organizationId: string;
  tenantId: string;
  workspaceId: string;
  dashboardId: string;
  /** The caller who minted it, for the renderer's audit. */
  subject: string;
  /** Row-level filters the renderer must apply; the tenant filter is first and always present. */
  filters: LockedFilter[];
  /** The embedding origin the token is bound to, when the mint named one. */
  origin: string | undefined;
  /** What the viewer may do and how to show the dashboard, already within the dashboard's ceiling. */
  embed: EmbedSettings;
  /** The person the token is for, when the mint named one. */
  viewer: EmbedViewer | undefined;
}

export interface SignedEmbedToken {
  token: string;
  jti: string;
  kid: string;
  issuedAt: number;
  expiresAt: number;
}

export interface EmbedSigner {
  sign(claims: EmbedClaims, issuedAt: number, expiresAt: number): Promise<SignedEmbedToken>;
}

/**
 * Signs iframe tokens with Ed25519, with the key the key ring says is active
 * for the token's organization (so every replica signs with the same key, and
 * a rotation elsewhere is picked up within KEY_REFRESH_MS).
 */
export function createEmbedSigner(config: Pick<EmbedConfig, "issuer" | "audience">, keys: KeyRing): EmbedSigner {
  return {
    sign: (claims, issuedAt, expiresAt) =>
      // The key id is public (the key set lists it); the claims are not put on the span.
      inSpan(
        "sign iframe token",
        { attributes: () => ({ "dashboard.signing.algorithm": EMBED_ALGORITHM }) },
        async (span) => {
          const held = keys.signingKey(claims.organizationId);
          const { kid, key } = held instanceof Promise ? await held : held;
          span?.setAttribute("dashboard.signing.kid", kid);
          // Time-ordered, so audit rows and revocation lists sort by issue time.
          const jti = uuidv7();
          const token = await signCompactEd25519(
            { alg: EMBED_ALGORITHM, kid, typ: EMBED_TOKEN_TYPE },
            {
              organization_id: claims.organizationId,
              tenant_id: claims.tenantId,
              workspace_id: claims.workspaceId,
              dashboard_id: claims.dashboardId,
              filters: filterClaims(claims.filters),
              ...(claims.origin === undefined ? {} : { origin: claims.origin }),
              ...embedClaims(claims.embed, claims.viewer),
              iss: config.issuer,
              aud: config.audience,
              sub: claims.subject,
              iat: issuedAt,
              nbf: issuedAt,
              exp: expiresAt,
              jti,
            },
            key,
          );
          return { token, jti, kid, issuedAt, expiresAt };
        },
      ),
  };
}
