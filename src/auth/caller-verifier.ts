import {
  createRemoteJWKSet,
  errors as joseErrors,
  importSPKI,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { systemClock, type Clock } from "../clock.js";
import type { AuthConfig } from "../config/config.js";
import { unauthenticated } from "../errors/service-error.js";
import type { Caller } from "./caller.js";
import { isValidId } from "../validation/rules.js";
import { VerifiedTokenCache } from "./verified-token-cache.js";

export type CallerVerifier = (bearerToken: string) => Promise<Caller>;

/**
 * Builds the function that turns a bearer token into a Caller. The accepted
 * algorithms are fixed by how the service is configured, never by the token:
 * a shared secret accepts only HS256, public keys only asymmetric algorithms,
 * so `alg: none` and algorithm confusion cannot verify.
 */
export async function createCallerVerifier(
  auth: AuthConfig,
  developmentSecret?: string,
  clock: Clock = systemClock,
): Promise<CallerVerifier> {
  let key: Uint8Array | Awaited<ReturnType<typeof importSPKI>> | JWTVerifyGetKey;
  let algorithms: string[];
  switch (auth.mode) {
    case "secret":
    case "development": {
      const secret = auth.mode === "secret" ? auth.secret : developmentSecret;
      if (!secret) throw new Error("development auth needs its generated secret");
      key = new TextEncoder().encode(secret);
      algorithms = ["HS256"];
      break;
    }
    case "jwks":
      key = createRemoteJWKSet(new URL(auth.jwksUrl));
      algorithms = auth.algorithms;
      break;
    case "public-key": {
      algorithms = auth.algorithms;
      // importSPKI binds the key to one algorithm; the first listed one is used for the key's type.
      key = await importSPKI(auth.publicKeyPem, algorithms[0] ?? "RS256");
      break;
    }
  }
  const options = {
    algorithms,
    issuer: auth.issuer,
    audience: auth.audience,
    requiredClaims: ["exp"],
    clockTolerance: auth.clockToleranceSeconds,
  };

  const cache = new VerifiedTokenCache();
  return async (token) => {
    const now = clock();
    const cached = cache.get(token, now);
    if (cached) return cached;
    let payload: JWTPayload;
    const at = { ...options, currentDate: new Date(now) };
    try {
      // The overloads differ only in the key's type; both branches verify identically.
      payload =
        typeof key === "function" ? (await jwtVerify(token, key, at)).payload : (await jwtVerify(token, key, at)).payload;
    } catch (err) {
      throw unauthenticated(describeJoseError(err));
    }
    const caller = callerFromClaims(payload);
    // exp is required by jwtVerify above.
    cache.set(token, caller, payload.exp! * 1000, now);
    return caller;
  };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the bearer token has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `the bearer token's ${err.claim} claim is not acceptable`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "the bearer token's algorithm is not accepted";
  return "the bearer token is not valid";
}

/** Reads the guide's claims; anything malformed is UNAUTHENTICATED, never a partial grant. */
export function callerFromClaims(claims: JWTPayload): Caller {
  const subject = typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : claims.user_id;
  if (typeof subject !== "string" || subject === "" || subject.length > 256) {
    throw unauthenticated("the bearer token names no subject (sub or user_id)");
  }
  const organizationId = claims.organization_id;
  if (typeof organizationId !== "string" || !isValidId(organizationId)) {
    throw unauthenticated("the bearer token has no valid organization_id claim");
  }
  const roles = claims.roles === undefined ? [] : claims.roles;
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) {
    throw unauthenticated("the bearer token's roles claim must be a list of strings");
  }
  const tenantIds = claims.tenant_ids === undefined ? [] : claims.tenant_ids;
  if (!Array.isArray(tenantIds) || !tenantIds.every((t) => typeof t === "string" && isValidId(t))) {
    throw unauthenticated("the bearer token's tenant_ids claim must be a list of tenant ids");
  }
  const isAdmin = roles.includes("admin");
  return {
    subject,
    organizationId,
    isAdmin,
    tenantIds: new Set(isAdmin ? [] : (tenantIds as string[])),
  };
}

/** Extracts the token from an Authorization header value; undefined when absent or not Bearer. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-_.~+/]+=*)[ ]*$/i.exec(header);
  return match?.[1];
}
