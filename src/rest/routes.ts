import type { CallScope } from "../call/call-scope.js";
import type { Dashboards } from "../service/dashboards.js";
import { ServiceError } from "../errors/service-error.js";
import type { DashboardRecord } from "../store/dashboard-store.js";
import { etagOf } from "../service/etag.js";
import { toDashboardJson } from "./dashboard-json.js";
import { success, type RestResponse } from "./envelope.js";
import {
  ifMatchTags,
  permissionsFromJson,
  settingsFromJson,
  themeFromJson,
  updateFromMergePatch,
  viewerFromJson,
} from "./settings-json.js";

export interface RouteCall {
  call: CallScope;
  /** Path parameters, percent-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** A request header, as Node parsed it (lower-case name). */
  header: (name: string) => string | string[] | undefined;
  /** The JSON object body (read, bounded, and parsed only by routes that take one). */
  body: () => Promise<Record<string, unknown>>;
}

export interface RestRoute {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  /** Matched against the whole path; named groups become params. */
  pattern: RegExp;
  /** The RPC this route stands for: the same guard budget, the same domain operation. */
  rpc:
    "CreateDashboard" | "GetDashboard" | "ListDashboards" | "UpdateDashboard" | "DeleteDashboard" | "CreateIframeToken";
  /** The REST name of a field the domain reports by its proto path. */
  fieldName?: (field: string) => string;
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
      fieldName: restFieldName,
      async handle({ call, body }) {
        const b = await body();
        const minted = await dashboards.mintIframeToken(call, {
          tenantId: b.tenant_id as string,
          workspaceId: b.workspace_id as string,
          dashboardId: b.dashboard_id as string,
          validUntil: absentIfNull(b.valid_until) as number | undefined,
          origin: absentIfNull(b.origin) as string | undefined,
          settings: {
            permissions: permissionsFromJson(b.permissions),
            locale: absentIfNull(b.locale) as string | undefined,
            timeZone: absentIfNull(b.time_zone) as string | undefined,
            theme: themeFromJson(b.theme),
          },
          viewer: viewerFromJson(b.viewer),
        });
        return success({
          token: minted.token,
          dashboard_id: minted.dashboardId,
          expires_at: minted.expiresAt,
          token_id: minted.jti,
        });
      },
    },
    {
      method: "POST",
      pattern: /^\/api\/v1\/dashboards$/,
      rpc: "CreateDashboard",
      fieldName: restFieldName,
      async handle({ call, body }) {
        const b = await body();
        const created = await dashboards.create(call, {
          tenantId: b.tenant_id as string,
          workspaceId: b.workspace_id as string,
          name: b.name as string,
          description: absentIfNull(b.description) as string | undefined,
          // As on the RPC (AIP-155): a retry with the same id gets the original dashboard back.
          requestId: absentIfNull(b.request_id) as string | undefined,
          allowedOrigins: absentIfNull(b.allowed_origins) as string[] | undefined,
          embeddingEnabled: absentIfNull(b.embedding_enabled) as boolean | undefined,
          embedDefaults: settingsFromJson(b.embed_defaults),
          permissionCeiling: permissionsFromJson(b.permission_ceiling),
        });
        return success(toDashboardJson(created), 201, {
          location: `/api/v1/dashboards/${encodeURIComponent(created.tenantId)}`,
          ...etagHeader(created),
        });
      },
    },
    {
      method: "GET",
      pattern: /^\/api\/v1\/dashboards$/,
      rpc: "ListDashboards",
      fieldName: (field) => (field === "page_size" ? "limit" : field),
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
        const dashboard = await dashboards.get(call, { tenantId: params.tenant_id! });
        return success(toDashboardJson(dashboard), 200, etagHeader(dashboard));
      },
    },
    {
      method: "PATCH",
      pattern: /^\/api\/v1\/dashboards\/(?<tenant_id>[^/]+)$/,
      rpc: "UpdateDashboard",
      // The RPC's fields are members of its request's dashboard; the patch is the dashboard itself.
      fieldName: (field) => restFieldName(field.replace(/^dashboard\./, "")),
      async handle({ call, params, header, body }) {
        assertMergePatch(header("content-type"));
        const { paths, values } = updateFromMergePatch(await body());
        const updated = await dashboards.update(call, {
          tenantId: params.tenant_id!,
          ifMatch: ifMatchTags(header("if-match")),
          // A merge patch names exactly what it changes: its members are the mask.
          mask: paths,
          setInRequest: paths,
          values,
        });
        return success(toDashboardJson(updated), 200, etagHeader(updated));
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

/**
 * A proto field path as the REST JSON names it: a permission set is a plain
 * array there, not a message around one ("permissions.permissions[1]" is
 * "permissions[1]").
 */
const restFieldName = (field: string) => field.replace(/(^|\.)(permissions|permission_ceiling)\.permissions/, "$1$2");

const etagHeader = (d: DashboardRecord) => ({ etag: etagOf(d) });

/** RFC 7396's media type, or plain JSON (what a client of the guide's routes sends); a JSON Patch is refused, not misread. */
function assertMergePatch(contentType: string | string[] | undefined): void {
  const type = String(contentType ?? "application/json")
    .split(";")[0]!
    .trim()
    .toLowerCase();
  if (type !== "application/merge-patch+json" && type !== "application/json") {
    throw new ServiceError(
      "UNSUPPORTED_MEDIA_TYPE",
      `PATCH takes application/merge-patch+json (RFC 7396), not ${type === "" ? "an empty content type" : type}`,
    );
  }
}

/** JSON null means "not given", as the guide's optional fields allowed. */
const absentIfNull = (v: unknown): unknown => (v === null ? undefined : v);

/** An absent parameter is 0 (the domain's default); anything but a plain integer is NaN, which the domain refuses by name. */
function integerParam(query: URLSearchParams, name: string): number {
  const raw = query.get(name);
  if (raw === null) return 0;
  return /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
}
