import { forbidden } from "../errors/service-error.js";
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
