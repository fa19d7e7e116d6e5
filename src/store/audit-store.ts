import type { Deadline } from "../call/deadline.js";
import { cappedCount, type KeysetPosition, type Scope } from "./scoped-pages.js";
import type { Sql } from "./sql.js";

/** Every action the trail records, as stored in audit_events.action (the proto's names without AUDIT_ACTION_). */
export const AUDIT_ACTIONS = [
  "DASHBOARD_CREATED",
  "DASHBOARD_DELETED",
  "DASHBOARD_UPDATED",
  "IFRAME_TOKEN_MINTED",
  "IFRAME_TOKENS_REVOKED",
  "SIGNING_KEY_ROTATED",
  "SIGNING_KEY_RETIRED",
  "SIGNING_KEYS_RESEALED",
  "TENANT_PURGED",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/**
 * What ListAuditEvents' filter narrows the caller's scope to (each member: unset means any).
 * Timestamps are RFC 3339 text, already validated; PostgreSQL reads them at full precision.
 */
export interface AuditEventFilter {
  tenantId?: string | undefined;
  action?: string | undefined;
  occurredAt: Partial<Record<">=" | ">" | "<" | "<=", string>>;
}

const NO_FILTER: AuditEventFilter = { occurredAt: {} };

/**
 * The one condition every listing and count of the trail uses: the organization always (the server's,
 * never the filter's), the caller's tenants when it is not an admin, then the filter. Fixed text: a
 * member the filter leaves unset is a NULL parameter, and PostgreSQL plans each call with its values,
 * so an unset member costs nothing and a set one can use its index (migration 0008).
 */
const SCOPED_AND_FILTERED = `audit_events
  WHERE organization_id = $1
    AND ($2::text[] IS NULL OR tenant_id = ANY($2::text[]))
    AND ($3::text IS NULL OR tenant_id = $3::text)
    AND ($4::text IS NULL OR action = $4::text)
    AND ($5::timestamptz IS NULL OR occurred_at >= $5::timestamptz)
    AND ($6::timestamptz IS NULL OR occurred_at > $6::timestamptz)
    AND ($7::timestamptz IS NULL OR occurred_at < $7::timestamptz)
    AND ($8::timestamptz IS NULL OR occurred_at <= $8::timestamptz)`;

const scopedAndFilteredParams = (scope: Scope, f: AuditEventFilter): unknown[] => [
  scope.organizationId,
  scope.tenantIds ?? null,
  f.tenantId ?? null,
  f.action ?? null,
  f.occurredAt[">="] ?? null,
  f.occurredAt[">"] ?? null,
  f.occurredAt["<"] ?? null,
  f.occurredAt["<="] ?? null,
];

/** What PurgeTenant changed in the trail. */
export interface TenantEventsPseudonymized {
  events: number;
}

/** The form of every pseudonym: a value of this form is never pseudonymized again. */
export const PSEUDONYM_PATTERN = "^purged:[0-9a-f]{32}$";

export interface NewAuditEvent {
  id: string;
  organizationId: string;
  action: AuditAction;
  /** The subject of the caller's credentials. */
  actor: string;
  tenantId?: string;
  dashboardId?: string;
  /** For mints (and single-token revocations): the token's jti. */
  tokenId?: string;
  tokenExpiresAt?: Date;
  tokenLifetimeSeconds?: number;
  /** Action-specific facts (revocation scope, key ids, origin...), all strings. */
  details?: Record<string, string>;
}

export interface AuditEventRecord extends Required<Omit<NewAuditEvent, "tokenExpiresAt" | "tokenLifetimeSeconds">> {
  tokenExpiresAt: Date | undefined;
  tokenLifetimeSeconds: number | undefined;
  occurredAt: Date;
}

interface Row {
  id: string;
  organization_id: string;
  action: AuditAction;
  actor: string;
  tenant_id: string;
  dashboard_id: string;
  token_id: string;
  token_expires_at: Date | null;
  token_lifetime_seconds: number | null;
  details: Record<string, string> | string;
  occurred_at: Date;
}

const COLUMNS =
  "id, organization_id, action, actor, tenant_id, dashboard_id, token_id, token_expires_at, token_lifetime_seconds, details, occurred_at";

const toRecord = (r: Row): AuditEventRecord => ({
  id: r.id,
  organizationId: r.organization_id,
  action: r.action,
  actor: r.actor,
  tenantId: r.tenant_id,
  dashboardId: r.dashboard_id,
  tokenId: r.token_id,
  tokenExpiresAt: r.token_expires_at === null ? undefined : new Date(r.token_expires_at),
  tokenLifetimeSeconds: r.token_lifetime_seconds ?? undefined,
  details: typeof r.details === "string" ? (JSON.parse(r.details) as Record<string, string>) : r.details,
  occurredAt: new Date(r.occurred_at),
});

/** The audit trail. Like every store, each statement is keyed by the organization first. */
export class AuditStore {
  constructor(private readonly sql: Sql) {}

  /** Several events in one statement (one commit), for group-committed mints. */
  async recordMany(events: NewAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    const column = <T>(pick: (e: NewAuditEvent) => T) => events.map(pick);
    await this.sql.query(
      `INSERT INTO audit_events
         (organization_id, id, action, actor, tenant_id, dashboard_id, token_id, token_expires_at, token_lifetime_seconds, details)
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                            $8::timestamptz[], $9::integer[], $10::jsonb[])`,
      [
        column((e) => e.organizationId),
        column((e) => e.id),
        column((e) => e.action),
        column((e) => e.actor),
        column((e) => e.tenantId ?? ""),
        column((e) => e.dashboardId ?? ""),
        column((e) => e.tokenId ?? ""),
        column((e) => e.tokenExpiresAt ?? null),
        column((e) => e.tokenLifetimeSeconds ?? null),
        column((e) => JSON.stringify(e.details ?? {})),
      ],
    );
  }

  async record(e: NewAuditEvent): Promise<void> {
    await this.sql.query(
      `INSERT INTO audit_events
         (organization_id, id, action, actor, tenant_id, dashboard_id, token_id, token_expires_at, token_lifetime_seconds, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
        e.organizationId,
        e.id,
        e.action,
        e.actor,
        e.tenantId ?? "",
        e.dashboardId ?? "",
        e.tokenId ?? "",
        e.tokenExpiresAt ?? null,
        e.tokenLifetimeSeconds ?? null,
        JSON.stringify(e.details ?? {}),
      ],
    );
  }

  /** The mint of a token of this tenant, to revoke it by jti (and know how long to remember that). */
  async findMint(organizationId: string, tenantId: string, tokenId: string): Promise<AuditEventRecord | undefined> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${COLUMNS} FROM audit_events
       WHERE organization_id = $1 AND token_id = $2 AND tenant_id = $3 AND action = 'IFRAME_TOKEN_MINTED'`,
      [organizationId, tokenId, tenantId],
      undefined,
      organizationId,
    );
    return rows[0] && toRecord(rows[0]);
  }

  /** A keyset page (id order, so time order) of the events in scope that match the filter. */
  async list(
    scope: Scope,
    page: KeysetPosition,
    deadline?: Deadline,
    filter: AuditEventFilter = NO_FILTER,
  ): Promise<AuditEventRecord[]> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${COLUMNS} FROM ${SCOPED_AND_FILTERED}
         AND ($9::uuid IS NULL OR id > $9::uuid)
       ORDER BY id
       LIMIT $10 OFFSET $11`,
      [...scopedAndFilteredParams(scope, filter), page.afterId ?? null, page.limit, page.skip],
      deadline,
      scope.organizationId,
    );
    return rows.map(toRecord);
  }

  count(scope: Scope, deadline?: Deadline, filter: AuditEventFilter = NO_FILTER): Promise<number> {
    return cappedCount(
      this.sql,
      SCOPED_AND_FILTERED,
      scopedAndFilteredParams(scope, filter),
      scope.organizationId,
      deadline,
    );
  }

  /**
   * Replaces who the tenant's events name (the actor, and the viewer of a mint) by pseudonyms, in
   * one statement. A pseudonym is `purged:` and 32 hex digits of sha256(salt || value): the same
   * person gets the same pseudonym within one purge, so the trail still reads as "one person did
   * these", but with a salt the caller makes fresh for each purge and never stores, no pseudonym
   * can be traced back to the value or linked to another purge's. TENANT_PURGED events keep their
   * actor (who erased is itself the record), and values that already are pseudonyms are left alone,
   * which makes a repeated purge change nothing.
   */
  async pseudonymizeTenant(organizationId: string, tenantId: string, salt: Buffer): Promise<TenantEventsPseudonymized> {
    // The salt travels as hex text and the pattern as a parameter: the same on pg and PGlite.
    const pseudonym = (value: string) =>
      `'purged:' || left(encode(sha256(decode($3::text, 'hex') || convert_to(${value}, 'UTF8')), 'hex'), 32)`;
    const actorIsPerson = "(actor !~ $4::text)";
    const viewerIsPerson = "(details ? 'viewer_id' AND details->>'viewer_id' !~ $4::text)";
    const { rowCount } = await this.sql.query(
      `UPDATE audit_events
          SET actor = CASE WHEN ${actorIsPerson} THEN ${pseudonym("actor")} ELSE actor END,
              details = CASE WHEN ${viewerIsPerson}
                          THEN jsonb_set(details, '{viewer_id}', to_jsonb(${pseudonym("details->>'viewer_id'")}))
                          ELSE details END
        WHERE organization_id = $1 AND tenant_id = $2 AND action <> 'TENANT_PURGED'
          AND (${actorIsPerson} OR ${viewerIsPerson})`,
      [organizationId, tenantId, salt.toString("hex"), PSEUDONYM_PATTERN],
    );
    return { events: rowCount };
  }
}
