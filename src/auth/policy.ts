import { forbidden, ServiceError } from "../errors/service-error.js";
import type { Caller } from "./caller.js";

/**
 * The one place that decides who may use which tenant. Every path (Connect,
 * gRPC, REST) goes through these functions before it touches storage, so a
 * tenant outside the caller's grant is refused before its existence is known
 * (AIP-193: check permission before existence).
 *
 * Organization isolation is structural rather than a check: the caller's
 * organization comes from the verified token and every store query is keyed by
 * it, so another organization's rows cannot be addressed at all.
 */
export function mayUseTenant(caller: Caller, tenantId: string): boolean {
  return caller.isAdmin || caller.tenantIds.has(tenantId);
}

export function assertMayUseTenant(caller: Caller, tenantId: string): void {
  if (!mayUseTenant(caller, tenantId)) throw forbidden(`the caller may not access tenant "${tenantId}"`);
}

/** What a caller may list: the whole organization, or only its granted tenants. */
export interface ListScope {
  organizationId: string;
  /** undefined means every tenant of the organization. */
  tenantIds: string[] | undefined;
}

export function listScope(caller: Caller): ListScope {
  return {
    organizationId: caller.organizationId,
    tenantIds: caller.isAdmin ? undefined : [...caller.tenantIds].sort(),
  };
}

/**
 * Who may change what on a dashboard: a caller granted the tenant may change
 * how it is named, described and shown (within the ceiling, checked by the
 * domain); only organization admins may change where and whether it embeds,
 * which data it shows, and the most its tokens may grant.
 */
export function assertMayChangeDashboard(caller: Caller, paths: readonly string[], adminOnly: readonly string[]): void {
  if (caller.isAdmin) return;
  const denied = paths.filter((p) => adminOnly.includes(p));
  if (denied.length > 0) throw forbidden(`only an organization admin may change ${denied.join(", ")}`);
}

/**
 * Signing keys serve every organization, so rotating them is for admins only.
 * Any organization's admin may rotate: with overlap no token breaks, the
 * rotation is audited under their organization, and operators can rotate too.
 */
export function assertMayRotateSigningKeys(caller: Caller): void {
  if (!caller.isAdmin) throw forbidden("only an organization admin may rotate the iframe-token signing key");
}

/**
 * Erasing a tenant (PurgeTenant) is for organization admins only, and only of a tenant within their
 * grant (an admin's grant is every tenant of the organization; the check stays so that a narrower
 * admin grant could never widen what a purge reaches). The organization is the caller's own, as
 * everywhere: another organization's tenant of the same name is not addressable.
 */
export function assertMayPurgeTenant(caller: Caller, tenantId: string): void {
  if (!caller.isAdmin) throw forbidden("only an organization admin may purge a tenant");
  assertMayUseTenant(caller, tenantId);
}

/**
 * Any authenticated caller of the token's organization may verify it (a
 * renderer's service account needs no tenant grant: verification reveals no
 * more than the token holder already has). A token of another organization
 * is answered exactly like a forged one, so nothing about it leaks.
 */
export function mayVerifyIframeToken(caller: Caller, tokenOrganizationId: string): boolean {
  return caller.organizationId === tokenOrganizationId;
}

/** The one RPC an iframe token may be the credential of (for its own status; see assertIframeTokenChecksItself). */
export const IFRAME_TOKEN_CREDENTIAL_METHOD = "VerifyIframeToken";

/**
 * An iframe token lives in a browser, where any script on the page can read
 * it, so as a credential it opens exactly one door: asking whether it is
 * still good. Every other call made with it is refused, whatever the call.
 */
export function assertMayCallWith(caller: Caller, method: string): void {
  if (caller.iframeTokenId !== undefined && method !== IFRAME_TOKEN_CREDENTIAL_METHOD) {
    throw new ServiceError(
      "IFRAME_TOKEN_OUT_OF_SCOPE",
      `an iframe token is a credential only for ${IFRAME_TOKEN_CREDENTIAL_METHOD} of itself, not for ${method}`,
    );
  }
}

/**
 * A caller whose credential is an iframe token may verify that token only
 * (same organization and jti, both signed), so a holder learns its own
 * token's status and nothing about any other.
 */
export function assertIframeTokenChecksItself(caller: Caller, tokenId: string): void {
  if (caller.iframeTokenId !== undefined && caller.iframeTokenId !== tokenId) {
    throw new ServiceError(
      "IFRAME_TOKEN_OUT_OF_SCOPE",
      "an iframe token may only verify itself: send the same token as the credential and in the request",
    );
  }
}

/** The audit events a caller may list: like dashboards, the whole organization for admins, else its tenants' events. */
export function auditScope(caller: Caller): ListScope {
  return listScope(caller);
}
