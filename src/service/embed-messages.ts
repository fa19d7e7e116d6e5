import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditAction, AuditEventSchema, type AuditEvent } from "../../gen/dashboard/v1/audit_event_pb.js";
import {
  FilterOperator,
  FilterSchema,
  IframeTokenClaimsSchema,
  type Filter,
  type IframeTokenClaims,
} from "../../gen/dashboard/v1/iframe_token_pb.js";
import type { RevokeIframeTokensRequest } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import type { AuditEventRecord } from "../store/audit-store.js";
import { protoPermissions, protoTheme, viewerMessage } from "./settings-messages.js";
import type { VerifiedEmbedToken } from "../tokens/embed-verifier.js";
import type { FilterOperator as ClaimOperator, LockedFilter } from "../tokens/filters.js";
import type { RequestedFilter, RevokeTarget } from "../validation/requests.js";

/** Protobuf <-> domain for the iframe-token and audit RPCs; nothing here decides anything. */

const CLAIM_OPERATOR: Partial<Record<FilterOperator, ClaimOperator>> = {
  [FilterOperator.EQUALS]: "eq",
  [FilterOperator.NOT_EQUALS]: "neq",
  [FilterOperator.IN]: "in",
  [FilterOperator.NOT_IN]: "not_in",
  [FilterOperator.GREATER_THAN]: "gt",
  [FilterOperator.GREATER_THAN_OR_EQUAL]: "gte",
  [FilterOperator.LESS_THAN]: "lt",
  [FilterOperator.LESS_THAN_OR_EQUAL]: "lte",
};

const PROTO_OPERATOR = Object.fromEntries(
  Object.entries(CLAIM_OPERATOR).map(([proto, claim]) => [claim, Number(proto) as FilterOperator]),
) as Record<ClaimOperator, FilterOperator>;

/** UNSPECIFIED and numbers outside the enum (proto3 enums are open) become undefined, which validation refuses. */
export function requestedFilter(f: Filter): RequestedFilter {
  return { field: f.field, operator: CLAIM_OPERATOR[f.operator], values: f.values };
}

export function filterMessage(f: LockedFilter): Filter {
  return create(FilterSchema, { field: f.field, operator: PROTO_OPERATOR[f.operator], values: f.values });
}

export function claimsMessage(t: VerifiedEmbedToken): IframeTokenClaims {
  return create(IframeTokenClaimsSchema, {
    keyId: t.kid,
    issuer: t.issuer,
    audience: t.audience,
    subject: t.subject,
    issuedAt: BigInt(t.issuedAt),
    notBefore: BigInt(t.notBefore),
    expiresAt: BigInt(t.expiresAt),
    tokenId: t.jti,
    organizationId: t.organizationId,
    tenantId: t.tenantId,
    workspaceId: t.workspaceId,
    dashboardId: t.dashboardId,
    filters: t.filters.map(filterMessage),
    origin: t.origin ?? "",
    permissions: protoPermissions(t.embed.permissions),
    locale: t.embed.locale,
    timeZone: t.embed.timeZone,
    theme: protoTheme(t.embed.theme),
    viewer: viewerMessage(t.viewer),
  });
}

export function revokeTarget(target: RevokeIframeTokensRequest["target"]): RevokeTarget | undefined {
  switch (target.case) {
    case "tokenId":
      return { tokenId: target.value };
    case "dashboardId":
      return { dashboardId: target.value };
    case "allTenantTokens":
      // false is kept so validation can name it instead of treating it as "no target".
      return { allTenantTokens: target.value } as RevokeTarget;
    default:
      return undefined;
  }
}

export function auditEventMessage(e: AuditEventRecord): AuditEvent {
  return create(AuditEventSchema, {
    id: e.id,
    action: AuditAction[e.action],
    organizationId: e.organizationId,
    actor: e.actor,
    tenantId: e.tenantId,
    dashboardId: e.dashboardId,
    tokenId: e.tokenId,
    tokenExpiresAt: e.tokenExpiresAt && timestampFromDate(e.tokenExpiresAt),
    tokenLifetimeSeconds: BigInt(e.tokenLifetimeSeconds ?? 0),
    details: e.details,
    occurredAt: timestampFromDate(e.occurredAt),
  });
}
