import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { callOf } from "../call/handler-context.js";
import { sharedAnswer } from "../call/shared-answers.js";
import { DashboardSchema, type Dashboard } from "../../gen/dashboard/v1/dashboard_pb.js";
import {
  DashboardService,
  GetDashboardResponseSchema,
  type GetDashboardResponse,
} from "../../gen/dashboard/v1/dashboard_service_pb.js";
import type { DashboardRecord } from "../store/dashboard-store.js";
import type { Dashboards } from "./dashboards.js";
import { auditEventMessage, claimsMessage, requestedFilter, revokeTarget } from "./embed-messages.js";
import type { EmbedServices } from "./embed-services.js";
import { etagOf } from "./etag.js";
import {
  permissionsFrom,
  permissionsMessage,
  settingsFrom,
  settingsMessage,
  themeFrom,
  updateFrom,
  viewerFrom,
} from "./settings-messages.js";

export function toDashboardMessage(d: DashboardRecord): Dashboard {
  return create(DashboardSchema, {
    id: d.id,
    tenantId: d.tenantId,
    workspaceId: d.workspaceId,
    dashboardId: d.id,
    name: d.name,
    description: d.description,
    organizationId: d.organizationId,
    createdBy: d.createdBy,
    allowedOrigins: d.allowedOrigins,
    createdAt: timestampFromDate(d.createdAt),
    updatedAt: timestampFromDate(d.updatedAt),
    etag: etagOf(d),
    embeddingEnabled: d.embeddingEnabled,
    embedDefaults: settingsMessage(d.embedDefaults),
    permissionCeiling: permissionsMessage(d.permissionCeiling),
  });
}

/** Thin handlers: protobuf in, domain call, protobuf out. Rules live in Dashboards and the policy. */
export function dashboardServiceImpl(
  dashboards: Dashboards,
  embed: EmbedServices,
): ServiceImpl<typeof DashboardService> {
  const getAnswers = new WeakMap<DashboardRecord, GetDashboardResponse>();
  const getAnswer = (record: DashboardRecord) =>
    sharedAnswer(getAnswers, record, (r) => create(GetDashboardResponseSchema, { dashboard: toDashboardMessage(r) }));
  return {
    async createDashboard(req, ctx) {
      const created = await dashboards.create(callOf(ctx), {
        tenantId: req.tenantId,
        workspaceId: req.workspaceId,
        name: req.name,
        description: req.description,
        allowedOrigins: req.allowedOrigins,
        requestId: req.requestId,
        embeddingEnabled: req.embeddingEnabled,
        embedDefaults: settingsFrom(req.embedDefaults),
        permissionCeiling: req.permissionCeiling ? permissionsFrom(req.permissionCeiling) : undefined,
      });
      return { dashboard: toDashboardMessage(created) };
    },
    getDashboard(req, ctx) {
      // A cached dashboard is one record object per version: its answer is made, and encoded, once,
      // and given with no promise.
      const record = dashboards.get(callOf(ctx), { tenantId: req.tenantId });
      return record instanceof Promise ? record.then(getAnswer) : getAnswer(record);
    },
    async listDashboards(req, ctx) {
      const page = await dashboards.list(callOf(ctx), {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        skip: req.skip,
      });
      return {
        dashboards: page.dashboards.map(toDashboardMessage),
        nextPageToken: page.nextPageToken,
        totalSize: page.totalSize,
      };
    },
    async updateDashboard(req, ctx) {
      const { values, setInRequest } = updateFrom(req.dashboard);
      const updated = await dashboards.update(callOf(ctx), {
        tenantId: req.dashboard?.tenantId ?? "",
        ifMatch: req.dashboard?.etag ? [req.dashboard.etag] : undefined,
        mask: req.updateMask?.paths,
        setInRequest,
        values,
      });
      return { dashboard: toDashboardMessage(updated) };
    },
    async deleteDashboard(req, ctx) {
      await dashboards.delete(callOf(ctx), { tenantId: req.tenantId });
      return {};
    },
    async createIframeToken(req, ctx) {
      const minted = await dashboards.mintIframeToken(callOf(ctx), {
        tenantId: req.tenantId,
        workspaceId: req.workspaceId,
        dashboardId: req.dashboardId,
        validUntil: req.validUntil === undefined ? undefined : toSafeNumber(req.validUntil),
        filters: req.filters.map(requestedFilter),
        origin: req.origin,
        settings: {
          permissions: req.permissions ? permissionsFrom(req.permissions) : undefined,
          locale: req.locale,
          timeZone: req.timeZone,
          theme: themeFrom(req.theme),
        },
        viewer: viewerFrom(req.viewer),
      });
      return {
        token: minted.token,
        dashboardId: minted.dashboardId,
        expiresAt: BigInt(minted.expiresAt),
        tokenId: minted.jti,
      };
    },
    async verifyIframeToken(req, ctx) {
      return { claims: claimsMessage(await embed.iframeTokens.verify(callOf(ctx), { token: req.token })) };
    },
    async revokeIframeTokens(req, ctx) {
      const revoked = await embed.iframeTokens.revoke(callOf(ctx), {
        tenantId: req.tenantId,
        target: revokeTarget(req.target),
      });
      return { revokedBefore: revoked.issuedNotAfter && timestampFromDate(revoked.issuedNotAfter) };
    },
    async rotateSigningKey(_req, ctx) {
      const rotation = await embed.signingKeys.rotate(callOf(ctx));
      return {
        keyId: rotation.kid,
        retiredKeyId: rotation.retired?.kid ?? "",
        retiredKeyVerifiesUntil: rotation.retired && timestampFromDate(rotation.retired.verifyUntil),
      };
    },
    async listAuditEvents(req, ctx) {
      const page = await embed.auditEvents.list(callOf(ctx), {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        skip: req.skip,
        filter: req.filter,
      });
      return {
        events: page.events.map(auditEventMessage),
        nextPageToken: page.nextPageToken,
        totalSize: page.totalSize,
      };
    },
    async purgeTenant(req, ctx) {
      return embed.tenantPurge.purge(callOf(ctx), { tenantId: req.tenantId });
    },
  };
}

/** Out-of-range int64s become NaN so validation names the field instead of losing precision silently. */
function toSafeNumber(value: bigint): number {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : Number.NaN;
}
