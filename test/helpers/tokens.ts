import { SignJWT } from "jose";

/** The HS256 secret test servers are configured with. */
export const TEST_JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long!";

export interface CallerClaims {
  org: string;
  sub?: string;
  admin?: boolean;
  tenants?: string[];
  /** Seconds from now; negative for an expired token; null for no exp claim. */
  expiresIn?: number | null;
  secret?: string;
  extra?: Record<string, unknown>;
  /** The time it is minted at, in Unix seconds (a test's ManualClock); the real time by default. */
  issuedAt?: number;
}

/** A caller token as a customer's backend would mint it. */
export async function callerToken(c: CallerClaims): Promise<string> {
  let jwt = new SignJWT({
    organization_id: c.org,
    roles: c.admin ? ["admin"] : [],
    tenant_ids: c.tenants ?? [],
    ...c.extra,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(c.sub ?? "user-1");
  const issuedAt = c.issuedAt ?? Math.floor(Date.now() / 1000);
  jwt = jwt.setIssuedAt(issuedAt);
  if (c.expiresIn !== null) jwt = jwt.setExpirationTime(issuedAt + (c.expiresIn ?? 3600));
  return jwt.sign(new TextEncoder().encode(c.secret ?? TEST_JWT_SECRET));
}

export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
