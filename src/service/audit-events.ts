import type { CallScope } from "../call/call-scope.js";
import { auditScope } from "../auth/policy.js";
import type { AuditEventRecord, AuditStore } from "../store/audit-store.js";
import type { PageTokenCodec } from "../tokens/page-token.js";
import { listAuditEventsRules, type ListAuditEventsInput } from "../validation/requests.js";
import { validate } from "../validation/rules.js";
import { keysetPage } from "./keyset-pages.js";

export interface AuditEventPage {
  events: AuditEventRecord[];
  nextPageToken: string;
  totalSize: number;
}

/** ListAuditEvents: the organization's trail, with exactly ListDashboards' paging rules. */
export class AuditEvents {
  constructor(private readonly deps: { audit: AuditStore; pageTokens: PageTokenCodec }) {}

  async list({ caller, deadline }: CallScope, input: ListAuditEventsInput): Promise<AuditEventPage> {
    validate(listAuditEventsRules, input);
    const scope = auditScope(caller);
    // "audit" keeps a ListDashboards token from being replayed here, and the other way round.
    const scopeKey = JSON.stringify(["audit", scope.organizationId, caller.subject, scope.tenantIds ?? "*"]);
    const {
      items: events,
      nextPageToken,
      totalSize,
    } = await keysetPage(
      this.deps.pageTokens,
      scopeKey,
      input,
      (page) => this.deps.audit.list(scope, page, deadline),
      () => this.deps.audit.count(scope, deadline),
    );
    return { events, nextPageToken, totalSize };
  }
}
