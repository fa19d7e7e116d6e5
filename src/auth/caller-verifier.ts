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
import { inSpan, tracing } from "../tracing/spans.js";

/** A caller verified from the cache is returned at once; a token checked by its signature, through a promise. */
export type CallerVerifier = (bearerToken: string) => Caller | Promise<Caller>;

/** A verified token is trusted from memory at most this long, so a key its issuer withdraws stops working by then. */
const CACHE_MAX_AGE_MS = 60_000;

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

  const cache = new VerifiedTokenCache({ maxBytes: auth.tokenCacheMaxBytes, maxAgeMs: CACHE_MAX_AGE_MS, now: clock });
  // Traced, one span per authentication, saying whether the cache answered (hit) or a signature was checked (miss).
  return (token) => {
    if (!tracing()) return cachedCaller(token) ?? verifySignature(token);
    return inSpan("authenticate caller", {}, async (span) => {
      const cached = cachedCaller(token);
      span?.setAttribute("dashboard.auth.cache", cached ? "hit" : "miss");
      return cached ?? verifySignature(token);
    });
  };

  function cachedCaller(token: string): Caller | undefined {
    // Before anything parses it: a token's size is the attacker's to choose, the cost of reading it ours.
    if (token.length > auth.maxTokenBytes) {
      throw unauthenticated(`the bearer token is longer than ${auth.maxTokenBytes} bytes`);
    }
    return cache.get(token);
  }

  async function verifySignature(token: string): Promise<Caller> {
    const now = clock();
    let payload: JWTPayload;
    const at = { ...options, currentDate: new Date(now) };
    try {
      // The overloads differ only in the key's type; both branches verify identically.
      payload =
        typeof key === "function"
          ? (await jwtVerify(token, key, at)).payload
          : (await jwtVerify(token, key, at)).payload;
    } catch (err) {
      throw unauthenticated(describeJoseError(err));
    }
    const caller = callerFromClaims(payload);
    // exp is required by jwtVerify above.
    cache.set(token, caller, payload.exp! * 1000);
    return caller;
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "the bearer token has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `the bearer token's ${err.claim} claim is not acceptable`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "the bearer token's algorithm is not accepted";
  return "the bearer token is not valid";
}

/**
 * Reads the guide's claims; anything malformed is UNAUTHENTICATED, never a
 * partial grant. Every string read must be well-formed text: a lone surrogate
 * or a control character in a claim is refused here, so nothing downstream
 * (rate-limit keys, logs, percent-encoding) ever meets one.
 */
export function callerFromClaims(claims: JWTPayload): Caller {
  const subject = typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : claims.user_id;
  if (!isCleanString(subject, MAX_SUBJECT_LENGTH)) {
    throw unauthenticated("the bearer token names no subject (sub or user_id) of well-formed text");
  }
  const organizationId = claims.organization_id;
  if (typeof organizationId !== "string" || !isValidId(organizationId)) {
    throw unauthenticated("the bearer token has no valid organization_id claim");
  }
  const roles = claims.roles === undefined ? [] : claims.roles;
  if (!Array.isArray(roles) || !roles.every((r) => isCleanString(r, MAX_ROLE_LENGTH))) {
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

const MAX_SUBJECT_LENGTH = 256;
const MAX_ROLE_LENGTH = 128;
/** A non-empty string of well-formed UTF-16 (no lone surrogate), without control characters, at most max long. */
export function isCleanString(value: unknown, max: number): value is string {
  return (
    typeof value === "string" &&
    value.length > 0 &&
    value.length <= max &&
    value.isWellFormed() &&
    !hasControlCharacter(value)
  );
}

/** C0 and C1 controls, DEL included. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** Extracts the token from an Authorization header value; undefined when absent or not Bearer. */
export function bearerToken(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-_.~+/]+=*)[ ]*$/i.exec(header);
  return match?.[1];
}
