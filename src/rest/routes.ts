import type { CallScope } from "../call/call-scope.js";
import type { Dashboards } from "../service/dashboards.js";
import { toDashboardJson } from "./dashboard-json.js";
import { success, type RestResponse } from "./envelope.js";

export interface RouteCall {
  call: CallScope;
  /** Path parameters, percent-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The JSON object body (read, bounded, and parsed only by routes that take one). */
  body: () => Promise<Record<string, unknown>>;
}

export interface RestRoute {
  method: "GET" | "POST" | "DELETE";
  /** Matched against the whole path; named groups become params. */
  pattern: RegExp;
  /** The RPC this route stands for: the same guard budget, the same domain operation. */
  rpc: "CreateDashboard" | "GetDashboard" | "ListDashboards" | "DeleteDashboard" | "CreateIframeToken";
  /** REST names of fields the domain reports with their proto names. */
  fieldNames?: Record<string, string>;
  handle(call: RouteCall): Promise<RestResponse>;
}

/**
 * The guide's routes. Each one only translates: JSON and query strings in, a
 * Dashboards operation (which validates and applies the policy), the envelope
 * out. Values are handed over untyped-as-received so the domain's rules, not
 * this edge, decide what is acceptable.
 */
export function dashboardRoutes(dashboards: Dashboards): RestRoute[] {
  return [
    {
      method: "POST",
      pattern: /^\/api\/v1\/dashboards\/iframe-token$/,
      rpc: "CreateIframeToken",
      async handle({ call, body }) {
        const b = await body();
        const minted = await dashboards.mintIframeToken(call, {
          tenantId: b.tenant_id as string,
          workspaceId: b.workspace_id as string,
          dashboardId: b.dashboard_id as string,
          validUntil: absentIfNull(b.valid_until) as number | undefined,
        });
        return success({ token: minted.token, dashboard_id: minted.dashboardId, expires_at: minted.expiresAt });
      },
    },
    {
      method: "POST",
      pattern: /^\/api\/v1\/dashboards$/,
      rpc: "CreateDashboard",
      async handle({ call, body }) {
        const b = await body();
        const created = await dashboards.create(call, {
          tenantId: b.tenant_id as string,
          workspaceId: b.workspace_id as string,
          name: b.name as string,
          description: absentIfNull(b.description) as string | undefined,
          // As on the RPC (AIP-155): a retry with the same id gets the original dashboard back.
          requestId: absentIfNull(b.request_id) as string | undefined,
        });
        return success(toDashboardJson(created), 201, {
          location: `/api/v1/dashboards/${encodeURIComponent(created.tenantId)}`,
        });
      },
    },
    {
      method: "GET",
      pattern: /^\/api\/v1\/dashboards$/,
      rpc: "ListDashboards",
      fieldNames: { page_size: "limit" },
      async handle({ call, query }) {
        const page = await dashboards.list(call, {
          pageSize: integerParam(query, "limit"),
          pageToken: "",
          skip: integerParam(query, "skip"),
        });
        return {
          status: 200,
          body: { success: true, data: page.dashboards.map(toDashboardJson), total: page.totalSize },
        };
      },
    },
    {
      method: "GET",
      pattern: /^\/api\/v1\/dashboards\/(?<tenant_id>[^/]+)$/,
      rpc: "GetDashboard",
      async handle({ call, params }) {
        return success(toDashboardJson(await dashboards.get(call, { tenantId: params.tenant_id! })));
      },
    },
    {
      method: "DELETE",
      pattern: /^\/api\/v1\/dashboards\/(?<tenant_id>[^/]+)$/,
      rpc: "DeleteDashboard",
      async handle({ call, params }) {
        await dashboards.delete(call, { tenantId: params.tenant_id! });
        return { status: 200, body: { success: true, message: "Dashboard deleted successfully" } };
      },
    },
  ];
}

/** JSON null means "not given", as the guide's optional fields allowed. */
const absentIfNull = (v: unknown): unknown => (v === null ? undefined : v);

/** An absent parameter is 0 (the domain's default); anything but a plain integer is NaN, which the domain refuses by name. */
function integerParam(query: URLSearchParams, name: string): number {
  const raw = query.get(name);
  if (raw === null) return 0;
  return /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
}
