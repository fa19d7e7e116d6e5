import { createHash } from "node:crypto";
import { uuidv7 } from "../tokens/uuid7.js";
import type { Caller } from "../auth/caller.js";
import type { CallScope } from "../call/call-scope.js";
import { assertMayChangeDashboard, assertMayUseTenant, listScope } from "../auth/policy.js";
import type { EmbedConfig } from "../config/config.js";
import { invalidArgument, notFound, ServiceError } from "../errors/service-error.js";
import type { DashboardRecord, DashboardStore } from "../store/dashboard-store.js";
import type { InTransaction, Stores } from "../store/stores.js";
import type { GroupCommit } from "../store/group-commit.js";
import type { NewAuditEvent } from "../store/audit-store.js";
import type { EmbedSigner } from "../tokens/embed-signer.js";
import { lastPossibleExpiry } from "../tokens/embed-verifier.js";
import { ALL_PERMISSIONS, NO_EMBED_DEFAULTS, type EmbedSettings } from "../tokens/embed-settings.js";
import { tenantFilter, type LockedFilter } from "../tokens/filters.js";
import type { PageTokenCodec } from "../tokens/page-token.js";
import {
  createEmbeddableDashboardRules,
  filterViolations,
  listDashboardsRules,
  mintIframeTokenRules,
  tenantRules,
  type CreateEmbeddableDashboardInput,
  type ListDashboardsInput,
  type MintIframeTokenInput,
  type TenantInput,
} from "../validation/requests.js";
import { checkEmbedSettings, checkPermissionSet, checkViewer, overCeiling } from "../validation/embed-rules.js";
import { validate, violationsOf } from "../validation/rules.js";
import {
  ADMIN_ONLY_PATHS,
  applyUpdate,
  changedPaths,
  checkUpdateValues,
  resolveUpdatePaths,
  type DashboardUpdateValues,
  type UpdatePath,
} from "./dashboard-update.js";
import { etagOf } from "./etag.js";
import { keysetPage } from "./keyset-pages.js";

/** UpdateDashboard's input: which dashboard, from which version, which paths, and their values. */
export interface DashboardUpdateInput {
  tenantId: string;
  /**
   * The etags the update may be based on: undefined for none (the last write
   * wins), "*" for any version (REST's If-Match: *), otherwise one of these.
   */
  ifMatch: readonly string[] | "*" | undefined;
  /** The mask as sent; undefined or empty means "the fields set in the request". */
  mask: string[] | undefined;
  /** The paths the request set, for an empty mask. */
  setInRequest: UpdatePath[];
  values: DashboardUpdateValues;
}

/** The tenant's dashboard, or NOT_FOUND. */
function tenantDashboard(input: TenantInput, found: DashboardRecord | undefined): DashboardRecord {
  if (!found) throw notFound(`tenant "${input.tenantId}" has no dashboard`);
  return found;
}

/** What makes two CreateDashboard calls "the same request": the caller and every field. */
function requestFingerprint(caller: Caller, input: CreateEmbeddableDashboardInput): string {
  const fields: unknown[] = [
    caller.subject,
    input.tenantId,
    input.workspaceId,
    input.name,
    input.description ?? null,
    input.allowedOrigins ?? [],
  ];
  // Only when given, so requests from before embed settings keep their fingerprints.
  const settings = [input.embeddingEnabled, input.embedDefaults, input.permissionCeiling];
  if (settings.some((s) => s !== undefined)) fields.push(settings);
  return createHash("sha256").update(JSON.stringify(fields)).digest("base64url");
}

export interface DashboardPage {
  dashboards: DashboardRecord[];
  nextPageToken: string;
  totalSize: number;
}

export interface IframeToken {
  token: string;
  dashboardId: string;
  jti: string;
  /** Unix seconds. */
  expiresAt: number;
}

export interface DashboardsDeps {
  store: DashboardStore;
  signer: EmbedSigner;
  pageTokens: PageTokenCodec;
  embed: Pick<EmbedConfig, "defaultTtlSeconds" | "maxTtlSeconds" | "filterFields">;
  /** Stores bound to one transaction: every change commits together with its audit row. */
  transaction: InTransaction;
  /** Where mints are audited: a mint has no other write to share a transaction with. */
  mintAudit: GroupCommit<NewAuditEvent>;
  /** Milliseconds since the epoch; injectable for tests of expiry rules. */
  now?: () => number;
}

/**
 * The domain operations, shared by every protocol edge. Each one validates its
 * input, asks the policy, then touches storage, in that order.
 */
export class Dashboards {
  private readonly now: () => number;

  constructor(private readonly deps: DashboardsDeps) {
    this.now = deps.now ?? Date.now;
  }

  async create({ caller, deadline }: CallScope, input: CreateEmbeddableDashboardInput): Promise<DashboardRecord> {
    const defaults = checkEmbedSettings(input.embedDefaults ?? {}, "embed_defaults");
    const ceiling = checkPermissionSet(
      input.permissionCeiling ?? [...ALL_PERMISSIONS],
      "permission_ceiling.permissions",
    );
    const violations = [
      ...violationsOf(createEmbeddableDashboardRules, input),
      ...defaults.violations,
      ...ceiling.violations,
    ];
    if (violations.length > 0) throw invalidArgument(violations);
    const embedDefaults = { ...NO_EMBED_DEFAULTS, ...defaults.canonical };
    const over = overCeiling(embedDefaults.permissions, ceiling.canonical, "embed_defaults.permissions.permissions");
    if (over.length > 0) throw invalidArgument(over);
    assertMayUseTenant(caller, input.tenantId);
    assertMayChangeDashboard(
      caller,
      [
        ...(input.embeddingEnabled === undefined ? [] : ["embedding_enabled"]),
        ...(input.permissionCeiling === undefined ? [] : ["permission_ceiling"]),
      ],
      ADMIN_ONLY_PATHS,
    );
    const id = uuidv7();
    const requestId = input.requestId || undefined;
    return this.deps.transaction(
      async (tx) => {
        if (requestId) {
          const fingerprint = requestFingerprint(caller, input);
          const claim = await tx.createRequests.claim(caller.organizationId, requestId, fingerprint);
          if (claim.kind === "replay") {
            if (claim.fingerprint !== fingerprint || !claim.response) {
              throw invalidArgument([{ field: "request_id", description: "was already used for a different request" }]);
            }
            return claim.response;
          }
        }
        const created = await tx.dashboards.insert({
          id,
          organizationId: caller.organizationId,
          tenantId: input.tenantId,
          workspaceId: input.workspaceId,
          name: input.name,
          description: input.description ?? "",
          createdBy: caller.subject,
          allowedOrigins: input.allowedOrigins ?? [],
          embeddingEnabled: input.embeddingEnabled ?? true,
          embedDefaults,
          permissionCeiling: ceiling.canonical,
        });
        await auditChange(tx, caller, "DASHBOARD_CREATED", created);
        if (requestId) await tx.createRequests.complete(caller.organizationId, requestId, created);
        return created;
      },
      deadline,
      caller.organizationId,
    );
  }

  /** A cached dashboard is answered at once, with no promise (a refusal is then thrown at once). */
  get({ caller, deadline }: CallScope, input: TenantInput): DashboardRecord | Promise<DashboardRecord> {
    validate(tenantRules, input);
    assertMayUseTenant(caller, input.tenantId);
    const found = this.deps.store.findByTenant(caller.organizationId, input.tenantId, deadline);
    return found instanceof Promise ? found.then((f) => tenantDashboard(input, f)) : tenantDashboard(input, found);
  }

  async list({ caller, deadline }: CallScope, input: ListDashboardsInput): Promise<DashboardPage> {
    validate(listDashboardsRules, input);
    const scope = listScope(caller);
    const scopeKey = JSON.stringify([scope.organizationId, caller.subject, scope.tenantIds ?? "*"]);
    const { items, nextPageToken, totalSize } = await keysetPage(
      this.deps.pageTokens,
      scopeKey,
      input,
      (page) => this.deps.store.list(scope, page, deadline),
      () => this.deps.store.count(scope, deadline),
    );
    return { dashboards: items, nextPageToken, totalSize };
  }

  /**
   * UpdateDashboard (AIP-134 and AIP-154): the mask says what changes, the
   * policy who may change it, the etag (when given) that nobody changed it
   * since it was read. The row is locked for the read and the write, so of
   * two updates from the same etag exactly one wins. Changing the workspace
   * revokes the dashboard's tokens, which carry the old one.
   */
  async update({ caller, deadline }: CallScope, input: DashboardUpdateInput): Promise<DashboardRecord> {
    validate(tenantRules, { tenantId: input.tenantId });
    const paths = resolveUpdatePaths(input.mask, input.setInRequest);
    checkUpdateValues(paths, input.values);
    assertMayUseTenant(caller, input.tenantId);
    assertMayChangeDashboard(caller, paths, ADMIN_ONLY_PATHS);
    const now = this.now();
    return this.deps.transaction(
      async (tx) => {
        const current = await tx.dashboards.findForUpdate(caller.organizationId, input.tenantId);
        if (!current) throw notFound(`tenant "${input.tenantId}" has no dashboard`);
        if (Array.isArray(input.ifMatch) && !input.ifMatch.includes(etagOf(current))) {
          throw new ServiceError("ETAG_MISMATCH", "the dashboard changed since this etag was read; read it again", {
            metadata: { etag: etagOf(current) },
          });
        }
        const next = applyUpdate(current, paths, input.values);
        const changed = changedPaths(current, next, paths);
        if (changed.length === 0) return current;
        const written = await tx.dashboards.update(caller.organizationId, input.tenantId, next);
        if (changed.includes("workspace_id")) await this.cutOffTokens(tx, caller, written, now);
        await auditChange(tx, caller, "DASHBOARD_UPDATED", written, { paths: changed.join(",") });
        return written;
      },
      deadline,
      caller.organizationId,
    );
  }

  async delete({ caller, deadline }: CallScope, input: TenantInput): Promise<DashboardRecord> {
    validate(tenantRules, input);
    assertMayUseTenant(caller, input.tenantId);
    const now = this.now();
    return this.deps.transaction(
      async (tx) => {
        const deleted = await tx.dashboards.deleteByTenant(caller.organizationId, input.tenantId);
        if (!deleted) throw notFound(`tenant "${input.tenantId}" has no dashboard`);
        // Verification also requires the dashboard to exist; the cutoff states the revocation explicitly.
        await this.cutOffTokens(tx, caller, deleted, now);
        await auditChange(tx, caller, "DASHBOARD_DELETED", deleted);
        return deleted;
      },
      deadline,
      caller.organizationId,
    );
  }

  /** Every token of the dashboard minted until now stops verifying, for as long as any of them could live. */
  private cutOffTokens(tx: Stores, caller: Caller, dashboard: DashboardRecord, now: number): Promise<void> {
    return tx.revocations.cutOff(
      caller.organizationId,
      dashboard.tenantId,
      dashboard.id,
      new Date(now),
      lastPossibleExpiry(now, this.deps.embed.maxTtlSeconds),
    );
  }

  async mintIframeToken({ caller, deadline }: CallScope, input: MintIframeTokenInput): Promise<IframeToken> {
    const settings = checkEmbedSettings(input.settings ?? {}, "");
    const viewer = checkViewer(input.viewer);
    const violations = [
      ...violationsOf(mintIframeTokenRules, input),
      ...filterViolations(input.filters ?? [], this.deps.embed.filterFields),
      ...settings.violations,
      ...viewer.violations,
    ];
    if (violations.length > 0) throw invalidArgument(violations);
    assertMayUseTenant(caller, input.tenantId);
    const issuedAt = Math.floor(this.now() / 1000);
    const expiresAt = input.validUntil ?? issuedAt + this.deps.embed.defaultTtlSeconds;
    if (expiresAt <= issuedAt) {
      throw invalidArgument([{ field: "valid_until", description: "must be in the future" }]);
    }
    if (expiresAt > issuedAt + this.deps.embed.maxTtlSeconds) {
      throw invalidArgument([
        { field: "valid_until", description: `must be at most ${this.deps.embed.maxTtlSeconds} seconds from now` },
      ]);
    }
    const dashboard = await this.deps.store.findByTenant(caller.organizationId, input.tenantId, deadline);
    // One answer for "no dashboard" and "not this tenant's or workspace's": nothing about other rows leaks.
    if (!dashboard || dashboard.id !== input.dashboardId || dashboard.workspaceId !== input.workspaceId) {
      throw notFound(
        `tenant "${input.tenantId}" has no dashboard "${input.dashboardId}" in workspace "${input.workspaceId}"`,
      );
    }
    if (!dashboard.embeddingEnabled) {
      throw new ServiceError("EMBEDDING_PAUSED", "embedding of this dashboard is paused; an admin can resume it");
    }
    if (dashboard.allowedOrigins.length > 0 && !dashboard.allowedOrigins.includes(input.origin ?? "")) {
      throw invalidArgument([
        {
          field: "origin",
          description:
            input.origin === undefined
              ? "is required: this dashboard may only be embedded in its allowed origins"
              : "is not one of this dashboard's allowed embedding origins",
        },
      ]);
    }
    // The tenant filter comes first and from the dashboard itself; callers cannot name that field.
    const filters: LockedFilter[] = [
      tenantFilter(dashboard.tenantId),
      ...(input.filters ?? []).map((f) => ({ field: f.field, operator: f.operator!, values: [...f.values] })),
    ];
    // What the mint leaves unset comes from the dashboard's defaults; it may narrow them, never exceed the ceiling.
    const embed: EmbedSettings = {
      permissions: settings.canonical.permissions ?? dashboard.embedDefaults.permissions,
      locale: settings.canonical.locale ?? dashboard.embedDefaults.locale,
      timeZone: settings.canonical.timeZone ?? dashboard.embedDefaults.timeZone,
      theme: settings.canonical.theme ?? dashboard.embedDefaults.theme,
    };
    const over = overCeiling(embed.permissions, dashboard.permissionCeiling, "permissions.permissions");
    if (over.length > 0) throw invalidArgument(over);
    // Nothing is signed, nor audited, for a caller that has already gone.
    deadline.throwIfDone();
    const signed = await this.deps.signer.sign(
      {
        organizationId: caller.organizationId,
        tenantId: dashboard.tenantId,
        workspaceId: dashboard.workspaceId,
        dashboardId: dashboard.id,
        subject: caller.subject,
        filters,
        origin: input.origin,
        embed,
        viewer: viewer.viewer,
      },
      issuedAt,
      expiresAt,
    );
    // A token that cannot be audited is not handed out; concurrent mints share one commit.
    await this.deps.mintAudit.add(
      {
        id: uuidv7(),
        organizationId: caller.organizationId,
        action: "IFRAME_TOKEN_MINTED",
        actor: caller.subject,
        tenantId: dashboard.tenantId,
        dashboardId: dashboard.id,
        tokenId: signed.jti,
        tokenExpiresAt: new Date(expiresAt * 1000),
        tokenLifetimeSeconds: expiresAt - issuedAt,
        details: {
          kid: signed.kid,
          ...(input.origin === undefined ? {} : { origin: input.origin }),
          ...(viewer.viewer ? { viewer_id: viewer.viewer.id } : {}),
        },
      },
      deadline,
    );
    return { token: signed.token, dashboardId: dashboard.id, jti: signed.jti, expiresAt };
  }
}

/** The audit row of a change to a dashboard, by its caller, in the change's own transaction. */
function auditChange(
  tx: Stores,
  caller: Caller,
  action: "DASHBOARD_CREATED" | "DASHBOARD_UPDATED" | "DASHBOARD_DELETED",
  dashboard: DashboardRecord,
  details?: Record<string, string>,
): Promise<void> {
  return tx.audit.record({
    id: uuidv7(),
    organizationId: caller.organizationId,
    action,
    actor: caller.subject,
    tenantId: dashboard.tenantId,
    dashboardId: dashboard.id,
    ...(details ? { details } : {}),
  });
}
