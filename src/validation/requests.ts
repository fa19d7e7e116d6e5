import type { FieldViolation } from "../errors/service-error.js";
import {
  FILTER_FIELD_PATTERN,
  isSingleValued,
  MAX_FILTER_VALUE_LENGTH,
  MAX_FILTER_VALUES,
  MAX_FILTERS,
  namesTenantColumn,
  TENANT_FILTER_FIELD,
  type FilterOperator,
} from "../tokens/filters.js";
import type { EmbedPermission } from "../tokens/embed-settings.js";
import type { EmbedSettingsInput, EmbedViewerInput } from "./embed-rules.js";
import { id, integer, optional, text, type Check, type Schema } from "./rules.js";

/** The domain's inputs, one per operation, and the rules each must meet. */

export interface CreateDashboardInput {
  tenantId: string;
  workspaceId: string;
  name: string;
  description?: string | undefined;
}

export const createDashboardRules: Schema<CreateDashboardInput> = {
  tenantId: { field: "tenant_id", check: id },
  workspaceId: { field: "workspace_id", check: id },
  name: { field: "name", check: text(1, 200) },
  description: { field: "description", check: optional(text(0, 2000)) },
};

export interface TenantInput {
  tenantId: string;
}

export const tenantRules: Schema<TenantInput> = {
  tenantId: { field: "tenant_id", check: id },
};

/** The largest `skip` a list takes. */
export const MAX_SKIP = 10_000;

export interface ListDashboardsInput {
  pageSize: number;
  pageToken: string;
  skip: number;
}

export const listDashboardsRules: Schema<ListDashboardsInput> = {
  // Above 1000 is coerced, not refused (AIP-158); only negatives are errors.
  pageSize: { field: "page_size", check: integer(0, Number.MAX_SAFE_INTEGER) },
  pageToken: { field: "page_token", check: text(0, 1024) },
  // Each skipped row is still read (OFFSET): past this a client pages with tokens, which cost nothing.
  skip: { field: "skip", check: integer(0, MAX_SKIP) },
};

export interface CreateIframeTokenInput {
  tenantId: string;
  workspaceId: string;
  dashboardId: string;
  /** Unix seconds; range-checked against the clock by the token service. */
  validUntil?: number | undefined;
}

export const createIframeTokenRules: Schema<CreateIframeTokenInput> = {
  tenantId: { field: "tenant_id", check: id },
  workspaceId: { field: "workspace_id", check: id },
  dashboardId: { field: "dashboard_id", check: id },
  validUntil: { field: "valid_until", check: optional(integer(0, Number.MAX_SAFE_INTEGER)) },
};

// --- Iframe tokens done right (issue 4): origins, locked filters, verification, revocation, audit ---

const MAX_ALLOWED_ORIGINS = 20;

/** A serialized web origin (`https://app.example.com[:port]`): scheme, host and port only, lower case. */
export const webOrigin: Check = (v) => {
  if (typeof v !== "string" || v === "") return "is required";
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return "must be an origin such as https://app.example.com";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http or https origin";
  if (url.origin !== v) return `must be an origin with no path, query or trailing slash (such as ${url.origin})`;
  return undefined;
};

const originList: Check = (v) => {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return "must be a list";
  if (v.length > MAX_ALLOWED_ORIGINS) return `must list at most ${MAX_ALLOWED_ORIGINS} origins`;
  for (const [i, origin] of v.entries()) {
    const problem = webOrigin(origin);
    if (problem) return `[${i}] ${problem}`;
  }
  if (new Set(v).size !== v.length) return "must not repeat an origin";
  return undefined;
};

/** createDashboardRules plus the optional embedding origins and settings. */
export interface CreateEmbeddableDashboardInput extends CreateDashboardInput {
  allowedOrigins?: string[] | undefined;
  /** AIP-155 idempotency key; empty or absent means none. */
  requestId?: string | undefined;
  /** Unset: true. */
  embeddingEnabled?: boolean | undefined;
  embedDefaults?: EmbedSettingsInput | undefined;
  /** Unset: every permission. */
  permissionCeiling?: (EmbedPermission | undefined)[] | undefined;
}

export const createEmbeddableDashboardRules: Schema<CreateEmbeddableDashboardInput> = {
  ...createDashboardRules,
  allowedOrigins: { field: "allowed_origins", check: originList },
  requestId: { field: "request_id", check: (v) => (v === undefined || v === "" ? undefined : id(v)) },
  // Checked by the embed rules (validation/embed-rules.ts), which also make them canonical.
  embeddingEnabled: { field: "embedding_enabled", check: () => undefined },
  embedDefaults: { field: "embed_defaults", check: () => undefined },
  permissionCeiling: { field: "permission_ceiling", check: () => undefined },
};

/** A filter as requested; operator is undefined when the request named none or one outside the closed set. */
export interface RequestedFilter {
  field: string;
  operator: FilterOperator | undefined;
  values: string[];
}

export interface MintIframeTokenInput extends CreateIframeTokenInput {
  filters?: RequestedFilter[] | undefined;
  /** The origin the page embedding the dashboard is served from. */
  origin?: string | undefined;
  /** What the mint sets of the embed settings; the rest comes from the dashboard's defaults. */
  settings?: EmbedSettingsInput | undefined;
  viewer?: EmbedViewerInput | undefined;
}

export const mintIframeTokenRules: Schema<MintIframeTokenInput> = {
  ...createIframeTokenRules,
  filters: {
    field: "filters",
    check: (v) => (Array.isArray(v) && v.length > MAX_FILTERS ? `must have at most ${MAX_FILTERS} filters` : undefined),
  },
  origin: { field: "origin", check: optional(webOrigin) },
  // Checked by the embed rules (validation/embed-rules.ts).
  settings: { field: "settings", check: () => undefined },
  viewer: { field: "viewer", check: () => undefined },
};

/**
 * Every problem with the requested filters, each named by its path
 * (`filters[1].operator`). knownFields, when configured, is the closed set of
 * field names; the tenant field is never accepted from a caller.
 */
export function filterViolations(
  filters: RequestedFilter[],
  knownFields: readonly string[] | undefined,
): FieldViolation[] {
  const violations: FieldViolation[] = [];
  filters.slice(0, MAX_FILTERS).forEach((f, i) => {
    const at = (member: string, description: string) =>
      violations.push({ field: `filters[${i}].${member}`, description });
    if (namesTenantColumn(f.field)) {
      at("field", `${TENANT_FILTER_FIELD} is set by the server from the request's tenant and cannot be given`);
    } else if (!FILTER_FIELD_PATTERN.test(f.field)) {
      at("field", "must be a column name (letters, digits and _, optionally qualified once with a dot)");
    } else if (knownFields && !knownFields.includes(f.field)) {
      at("field", `is not a filterable field (one of: ${knownFields.join(", ")})`);
    }
    if (f.operator === undefined) {
      at(
        "operator",
        "must be one of EQUALS, NOT_EQUALS, IN, NOT_IN, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL",
      );
    } else if (isSingleValued(f.operator) && f.values.length !== 1) {
      at("values", "must have exactly one value for this operator");
    } else if (f.values.length < 1 || f.values.length > MAX_FILTER_VALUES) {
      at("values", `must have 1 to ${MAX_FILTER_VALUES} values`);
    }
    f.values.forEach((value, j) => {
      const problem = text(0, MAX_FILTER_VALUE_LENGTH)(value);
      if (problem) at(`values[${j}]`, problem);
    });
  });
  return violations;
}

export interface VerifyIframeTokenInput {
  token: string;
}

export const verifyIframeTokenRules: Schema<VerifyIframeTokenInput> = {
  // Compact JWS characters only; the signature check does the rest.
  token: {
    field: "token",
    check: (v) => (typeof v === "string" && /^[A-Za-z0-9_\-.]{1,8192}$/.test(v) ? undefined : "must be a compact JWS"),
  },
};

/** Exactly one target: a token of the tenant, one of its dashboards, or all of its tokens. */
export type RevokeTarget = { tokenId: string } | { dashboardId: string } | { allTenantTokens: true };

export interface RevokeIframeTokensInput {
  tenantId: string;
  target: RevokeTarget | undefined;
}

export const revokeIframeTokensRules: Schema<RevokeIframeTokensInput> = {
  tenantId: { field: "tenant_id", check: id },
  target: {
    field: "target",
    check: (v) => {
      if (v === undefined) return "set one of token_id, dashboard_id or all_tenant_tokens";
      const t = v as Partial<Record<string, unknown>>;
      // A bad member is reported under its own name (AIP-193), not the oneof's.
      const member = (field: string, value: unknown) => {
        const problem = id(value);
        return typeof problem === "string" ? { field, description: problem } : problem;
      };
      if ("tokenId" in t) return member("token_id", t.tokenId);
      if ("dashboardId" in t) return member("dashboard_id", t.dashboardId);
      return t.allTenantTokens === true ? undefined : "all_tenant_tokens must be true when it is the target";
    },
  },
};

export interface ListAuditEventsInput {
  pageSize: number;
  pageToken: string;
  skip: number;
  /** AIP-160; parsed (and refused with INVALID_FILTER) by validation/audit-filter.ts. Absent or empty: none. */
  filter?: string | undefined;
}

/** The same rules as ListDashboards (AIP-158); the filter has its own parser, with its own reason. */
export const listAuditEventsRules: Schema<ListAuditEventsInput> = {
  ...listDashboardsRules,
  filter: { field: "filter", check: () => undefined },
};
