import { randomBytes } from "node:crypto";
import { uuidv7 } from "../tokens/uuid7.js";
import type { CallScope } from "../call/call-scope.js";
import { assertMayPurgeTenant } from "../auth/policy.js";
import { systemClock, type Clock } from "../clock.js";
import type { EmbedConfig } from "../config/config.js";
import type { InTransaction } from "../store/stores.js";
import { lastPossibleExpiry } from "../tokens/embed-verifier.js";
import { tenantRules, type TenantInput } from "../validation/requests.js";
import { validate } from "../validation/rules.js";

/** What a purge removed or changed; all zero when the tenant had nothing left. */
export interface TenantPurged {
  dashboardsDeleted: number;
  revocationsDeleted: number;
  createRequestsDeleted: number;
  auditEventsPseudonymized: number;
}

export interface TenantPurgeDeps {
  transaction: InTransaction;
  embed: Pick<EmbedConfig, "maxTtlSeconds">;
  now?: Clock;
}

/**
 * PurgeTenant: erases what the service holds about one tenant, in one transaction, so a purge is
 * either complete or did not happen. Repeating it is safe: what is gone stays gone, pseudonyms are
 * not pseudonymized again, and the answer is zeros (each request is audited all the same).
 */
export class TenantPurge {
  private readonly now: Clock;

  constructor(private readonly deps: TenantPurgeDeps) {
    this.now = deps.now ?? systemClock;
  }

  async purge({ caller, deadline }: CallScope, input: TenantInput): Promise<TenantPurged> {
    validate(tenantRules, input);
    assertMayPurgeTenant(caller, input.tenantId);
    const org = caller.organizationId;
    const tenant = input.tenantId;
    // Fresh for each purge and never stored: the pseudonyms it makes cannot be traced back (audit-store.ts).
    const salt = randomBytes(32);
    return this.deps.transaction(async (tx) => {
      const now = this.now();
      // Its settings are its columns; the store announces the change, so every replica's cache forgets it.
      const deleted = await tx.dashboards.deleteByTenant(org, tenant);
      const revocationsDeleted = await tx.revocations.forgetTenantRevocations(org, tenant);
      // The tokens minted so far must keep failing once their revocation rows are gone. Their dashboard
      // is gone too, which alone fails them; the tenant-wide cutoff says it explicitly, as DeleteDashboard
      // does, so the refusal does not hang on that row never coming back (restored from a backup, say).
      await tx.revocations.cutOff(
        org,
        tenant,
        "",
        new Date(now),
        lastPossibleExpiry(now, this.deps.embed.maxTtlSeconds),
      );
      const createRequestsDeleted = await tx.createRequests.deleteForTenant(org, tenant);
      const { events } = await tx.audit.pseudonymizeTenant(org, tenant, salt);
      const purged: TenantPurged = {
        dashboardsDeleted: deleted ? 1 : 0,
        revocationsDeleted,
        createRequestsDeleted,
        auditEventsPseudonymized: events,
      };
      // Written after the pseudonymization, so it keeps the admin's name: who erased is the record.
      await tx.audit.record({
        id: uuidv7(),
        organizationId: org,
        action: "TENANT_PURGED",
        actor: caller.subject,
        tenantId: tenant,
        dashboardId: deleted?.id,
        details: {
          dashboards_deleted: String(purged.dashboardsDeleted),
          revocations_deleted: String(purged.revocationsDeleted),
          create_requests_deleted: String(purged.createRequestsDeleted),
          audit_events_pseudonymized: String(purged.auditEventsPseudonymized),
        },
      });
      return purged;
    }, deadline);
  }
}
