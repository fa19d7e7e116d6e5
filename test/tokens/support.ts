import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { importJWK, SignJWT, type JWK, type JWTPayload } from "jose";
import { expect } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { storedOrganizationKeys } from "../helpers/keys.js";
import { bearer, callerToken, type CallerClaims } from "../helpers/tokens.js";

export interface Failure {
  code: Code;
  reason: string;
  message: string;
  /** BadRequest field paths. */
  fields: string[];
}

/** Awaits a call that must fail; returns its code, its one ErrorInfo reason (domain checked) and BadRequest fields. */
export async function failure(call: Promise<unknown>): Promise<Failure> {
  const outcome = await call.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome, "the call should have failed").toBeDefined();
  const err = ConnectError.from(outcome);
  const infos = err.findDetails(ErrorInfoSchema);
  expect(infos, "exactly one ErrorInfo").toHaveLength(1);
  expect(infos[0]!.domain).toBe("dashboard-service");
  const fields = err.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
  return { code: err.code, reason: infos[0]!.reason, message: err.rawMessage, fields };
}

export function client(baseUrl: string): DashboardClient {
  return dashboardClient(createConnectTransport({ baseUrl, httpVersion: "1.1" }));
}

/** Call options carrying a caller token. */
export async function as(claims: CallerClaims): Promise<ReturnType<typeof bearer>> {
  return bearer(await callerToken(claims));
}

/** A tenant's dashboard and one token for it, the way a customer's backend gets them. */
export async function dashboardWithToken(
  api: DashboardClient,
  caller: ReturnType<typeof bearer>,
  tenantId: string,
  extra: { allowedOrigins?: string[] } = {},
) {
  const { dashboard } = await api.createDashboard(
    { tenantId, workspaceId: "ws-1", name: `Dashboard of ${tenantId}`, ...extra },
    caller,
  );
  const minted = await api.createIframeToken({ tenantId, workspaceId: "ws-1", dashboardId: dashboard!.id }, caller);
  return { dashboard: dashboard!, minted };
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * An organization's stored private signing keys that still have a private half (active first, then next),
 * read behind the service's back and unsealed with the test key-encryption key (to forge tokens a renderer must refuse).
 */
export async function storedPrivateKeys(
  databaseUrl: string,
  organizationId: string,
): Promise<{ kid: string; jwk: JWK; active: boolean }[]> {
  const keys = await storedOrganizationKeys(databaseUrl, organizationId);
  return keys
    .filter((k) => k.jwk !== undefined)
    .sort((a, b) => Number(b.state === "active") - Number(a.state === "active"))
    .map((k) => ({ kid: k.kid, jwk: k.jwk!, active: k.state === "active" }));
}

/** Signs payload with a real service key but claims of the test's choosing. */
export async function signWith(
  key: { kid: string; jwk: JWK },
  payload: JWTPayload,
  header: Record<string, unknown> = {},
) {
  const privateKey = await importJWK({ ...key.jwk, alg: "EdDSA" }, "EdDSA");
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: "dashboard-embed+jwt", ...header })
    .sign(privateKey);
}

/** Polls until check passes or the deadline passes (for cross-replica propagation, never for performance). */
export async function eventually(check: () => Promise<void>, timeoutMs = 15_000, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
