import type { Caller } from "../auth/caller.js";
import { auditScope } from "../auth/policy.js";
import type { AuditEventRecord, AuditStore } from "../store/audit-store.js";
import type { PageTokenCodec } from "../tokens/page-token.js";
import { listAuditEventsRules, type ListAuditEventsInput } from "../validation/requests.js";
import { validate } from "../validation/rules.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./dashboards.js";

export interface AuditEventPage {
  events: AuditEventRecord[];
  nextPageToken: string;
  totalSize: number;
}

/** ListAuditEvents: the organization's trail, with exactly ListDashboards' paging rules. */
export class AuditEvents {
  constructor(private readonly deps: { audit: AuditStore; pageTokens: PageTokenCodec }) {}

  async list(caller: Caller, input: ListAuditEventsInput): Promise<AuditEventPage> {
    validate(listAuditEventsRules, input);
    const scope = auditScope(caller);
    // "audit" keeps a ListDashboards token from being replayed here, and the other way round.
    const scopeKey = JSON.stringify(["audit", scope.organizationId, caller.subject, scope.tenantIds ?? "*"]);
    const cursor = input.pageToken === "" ? undefined : this.deps.pageTokens.decode(input.pageToken, scopeKey);
    const pageSize = input.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(input.pageSize, MAX_PAGE_SIZE);
    const [rows, totalSize] = await Promise.all([
      this.deps.audit.list(scope, { afterId: cursor?.afterId, skip: input.skip, limit: pageSize + 1 }),
      this.deps.audit.count(scope),
    ]);
    const events = rows.slice(0, pageSize);
    const last = events.at(-1);
    const nextPageToken = rows.length > pageSize && last ? this.deps.pageTokens.encode({ afterId: last.id }, scopeKey) : "";
    return { events, nextPageToken, totalSize };
  }
}
