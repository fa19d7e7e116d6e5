import { id, integer, optional, text, type Schema } from "./rules.js";

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

export interface ListDashboardsInput {
  pageSize: number;
  pageToken: string;
  skip: number;
}

export const listDashboardsRules: Schema<ListDashboardsInput> = {
  // Above 1000 is coerced, not refused (AIP-158); only negatives are errors.
  pageSize: { field: "page_size", check: integer(0, Number.MAX_SAFE_INTEGER) },
  pageToken: { field: "page_token", check: text(0, 1024) },
  skip: { field: "skip", check: integer(0, Number.MAX_SAFE_INTEGER) },
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
