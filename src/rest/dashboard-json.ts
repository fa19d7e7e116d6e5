import type { DashboardRecord } from "../store/dashboard-store.js";

/** A dashboard as the guide's REST routes show it: snake_case, RFC 3339 timestamps. */
export interface DashboardJson {
  id: string;
  tenant_id: string;
  workspace_id: string;
  dashboard_id: string;
  name: string;
  description: string;
  organization_id: string;
  created_by: string;
  created_at: string;
  updated_at: string;
}

export function toDashboardJson(d: DashboardRecord): DashboardJson {
  return {
    id: d.id,
    tenant_id: d.tenantId,
    workspace_id: d.workspaceId,
    dashboard_id: d.id,
    name: d.name,
    description: d.description,
    organization_id: d.organizationId,
    created_by: d.createdBy,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
  };
}
