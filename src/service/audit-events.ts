import type { CallScope } from "../call/call-scope.js";
import { auditScope } from "../auth/policy.js";
import { AUDIT_ACTIONS, type AuditEventRecord, type AuditStore } from "../store/audit-store.js";
import type { PageTokenCodec } from "../tokens/page-token.js";
import { canonicalAuditFilter, isEmptyAuditFilter, parseAuditFilter } from "../validation/audit-filter.js";
import { listAuditEventsRules, type ListAuditEventsInput } from "../validation/requests.js";
import { validate } from "../validation/rules.js";
import { keysetPage } from "./keyset-pages.js";

export interface AuditEventPage {
  events: AuditEventRecord[];
  nextPageToken: string;
  totalSize: number;
}

/** ListAuditEvents: the organization's trail, with exactly ListDashboards' paging rules and an AIP-160 filter. */
export class AuditEvents {
  constructor(private readonly deps: { audit: AuditStore; pageTokens: PageTokenCodec }) {}

  async list({ caller, deadline }: CallScope, input: ListAuditEventsInput): Promise<AuditEventPage> {
    validate(listAuditEventsRules, input);
    const filter = parseAuditFilter(input.filter ?? "", AUDIT_ACTIONS);
    // The policy's scope, never the filter, decides what may be seen; the filter only narrows it.
    const scope = auditScope(caller);
    // "audit" keeps a ListDashboards token from being replayed here, and the other way round. The
    // filter (canonical, so spacing and order do not matter) is bound too: a token continues only the
    // listing it came from. Without a filter the key is what it was before filters, so tokens issued
    // by replicas of the previous release keep working during a rolling update.
    const scopeParts: unknown[] = ["audit", scope.organizationId, caller.subject, scope.tenantIds ?? "*"];
    if (!isEmptyAuditFilter(filter)) scopeParts.push(canonicalAuditFilter(filter));
    const {
      items: events,
      nextPageToken,
      totalSize,
    } = await keysetPage(
      this.deps.pageTokens,
      JSON.stringify(scopeParts),
      input,
      (page) => this.deps.audit.list(scope, page, deadline, filter),
      () => this.deps.audit.count(scope, deadline, filter),
    );
    return { events, nextPageToken, totalSize };
  }
}
