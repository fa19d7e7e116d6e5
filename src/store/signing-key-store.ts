import type { JWK } from "jose";
import type { SealedPrivateKey } from "../tokens/key-sealing.js";
import type { Sql } from "./sql.js";

/** A key as it is written: the private half already sealed by the application. */
export interface NewSigningKey {
  kid: string;
  publicJwk: JWK;
  sealed: SealedPrivateKey;
}

export type KeyRole = "active" | "next" | "retired";

export interface LiveSigningKey {
  kid: string;
  publicJwk: JWK;
  /** The sealed private key; undefined once the key stopped signing (or for the global ring's plaintext rows). */
  sealed: SealedPrivateKey | undefined;
  role: KeyRole;
  /** When a retired key stops verifying. */
  verifyUntil: Date | undefined;
  createdAt: Date;
}

/** A private key as stored, sealed or (the previous release's rows, until resealed) in plaintext. */
export interface StoredPrivateKey {
  table: "organization" | "global" | "global-next";
  organizationId: string | undefined;
  kid: string;
  sealed: SealedPrivateKey | undefined;
  plaintext: JWK | undefined;
}

export interface RetiredSigningKey {
  kid: string;
  verifyUntil: Date;
}

const json = <T>(v: T | string | null): T | undefined =>
  v === null ? undefined : typeof v === "string" ? (JSON.parse(v) as T) : v;

interface LiveRow {
  kid: string;
  public_jwk: JWK | string;
  sealed_private_key: SealedPrivateKey | string | null;
  role: KeyRole;
  verify_until: Date | null;
  created_at: Date;
}

const toLive = (r: LiveRow): LiveSigningKey => ({
  kid: r.kid,
  publicJwk: json(r.public_jwk)!,
  sealed: json(r.sealed_private_key),
  role: r.role,
  verifyUntil: r.verify_until === null ? undefined : new Date(r.verify_until),
  createdAt: new Date(r.created_at),
});

/**
 * Each organization's ring: one active key, one next key published ahead of
 * its activation, and retired keys until their window ends. Every statement is
 * keyed by the organization, like every other store.
 */
export class OrganizationKeyStore {
  constructor(private readonly sql: Sql) {}

  /** The keys that may sign or verify now (retired ones only inside their window), newest first. */
  async live(organizationId: string, now: Date): Promise<LiveSigningKey[]> {
    const { rows } = await this.sql.query<LiveRow>(
      `SELECT kid, public_jwk, sealed_private_key, state AS role, verify_until, created_at
         FROM organization_signing_keys
        WHERE organization_id = $1 AND (state <> 'retired' OR verify_until > $2)
        ORDER BY created_at DESC, kid`,
      [organizationId, now],
    );
    return rows.map(toLive);
  }

  /** Stores the organization's first active and next keys unless a replica already did. */
  async createIfNone(organizationId: string, active: NewSigningKey, next: NewSigningKey): Promise<void> {
    // ON CONFLICT without a target also covers the partial one-active and one-next indexes: racing replicas keep one each.
    for (const [key, state] of [
      [active, "active"],
      [next, "next"],
    ] as const) {
      await this.sql.query(
        `INSERT INTO organization_signing_keys (kid, organization_id, state, public_jwk, sealed_private_key)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [key.kid, organizationId, state, JSON.stringify(key.publicJwk), JSON.stringify(key.sealed)],
      );
    }
  }

  /** Serializes rotations and retirements of one organization (other organizations are not held up). Transaction only. */
  async lock(organizationId: string): Promise<void> {
    await this.sql.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [ROTATION_LOCK_KEY, organizationId]);
  }

  /**
   * Activates the next key (or `fallback` when there is none), retires the
   * active key, which verifies for graceSeconds more but loses its private
   * half at once, and prepares `next`. Inside a transaction, after lock().
   */
  async rotate(
    organizationId: string,
    fallback: NewSigningKey,
    next: NewSigningKey,
    graceSeconds: number,
    now: Date,
  ): Promise<{ activated: string; retired: RetiredSigningKey | undefined }> {
    const retired = await this.sql.query<{ kid: string; verify_until: Date }>(
      `UPDATE organization_signing_keys
          SET state = 'retired', sealed_private_key = NULL, retired_at = $2,
              verify_until = $2::timestamptz + make_interval(secs => $3)
        WHERE organization_id = $1 AND state = 'active'
        RETURNING kid, verify_until`,
      [organizationId, now, graceSeconds],
    );
    const promoted = await this.sql.query<{ kid: string }>(
      "UPDATE organization_signing_keys SET state = 'active' WHERE organization_id = $1 AND state = 'next' RETURNING kid",
      [organizationId],
    );
    let activated = promoted.rows[0]?.kid;
    if (!activated) {
      await this.insert(organizationId, fallback, "active");
      activated = fallback.kid;
    }
    await this.insert(organizationId, next, "next");
    const r = retired.rows[0];
    return { activated, retired: r && { kid: r.kid, verifyUntil: new Date(r.verify_until) } };
  }

  /**
   * Unpublishes a key at once: a retired key's window ends now, a next key is
   * replaced by `replacement`. Returns the role it had, or undefined when the
   * organization has no such live key. The active key must be rotated away first.
   */
  async retireNow(
    organizationId: string,
    kid: string,
    replacement: NewSigningKey,
    now: Date,
  ): Promise<KeyRole | undefined> {
    const { rows } = await this.sql.query<{ state: KeyRole }>(
      `SELECT state FROM organization_signing_keys
        WHERE organization_id = $1 AND kid = $2 AND (state <> 'retired' OR verify_until > $3)`,
      [organizationId, kid, now],
    );
    const role = rows[0]?.state;
    if (role === "retired" || role === "next") {
      await this.sql.query(
        `UPDATE organization_signing_keys
            SET state = 'retired', sealed_private_key = NULL, retired_at = coalesce(retired_at, $3), verify_until = $3
          WHERE organization_id = $1 AND kid = $2`,
        [organizationId, kid, now],
      );
    }
    if (role === "next") await this.insert(organizationId, replacement, "next");
    return role;
  }

  /** How many keys the organization has published now, and when the oldest retired one leaves. */
  async published(organizationId: string, now: Date): Promise<{ count: number; nextExpiry: Date | undefined }> {
    const { rows } = await this.sql.query<{ count: number; next_expiry: Date | null }>(
      `SELECT count(*)::int AS count, min(verify_until) FILTER (WHERE state = 'retired') AS next_expiry
         FROM organization_signing_keys
        WHERE organization_id = $1 AND (state <> 'retired' OR verify_until > $2)`,
      [organizationId, now],
    );
    const r = rows[0]!;
    return { count: r.count, nextExpiry: r.next_expiry === null ? undefined : new Date(r.next_expiry) };
  }

  /** Organizations that have an active key (an operator's rotate --all). */
  async organizations(): Promise<string[]> {
    const { rows } = await this.sql.query<{ organization_id: string }>(
      "SELECT organization_id FROM organization_signing_keys WHERE state = 'active' ORDER BY organization_id",
    );
    return rows.map((r) => r.organization_id);
  }

  /**
   * Deletes what retired keys no longer need: the private half at once (a
   * rotation already drops it; this catches anything else), and the whole row
   * once no token it signed can still be unexpired.
   */
  async purge(now: Date): Promise<{ scrubbed: number; deleted: number }> {
    const scrubbed = await this.sql.query(
      "UPDATE organization_signing_keys SET sealed_private_key = NULL WHERE state = 'retired' AND sealed_private_key IS NOT NULL",
    );
    const deleted = await this.sql.query(
      "DELETE FROM organization_signing_keys WHERE state = 'retired' AND verify_until <= $1",
      [now],
    );
    return { scrubbed: scrubbed.rowCount, deleted: deleted.rowCount };
  }

  private async insert(organizationId: string, key: NewSigningKey, state: KeyRole): Promise<void> {
    await this.sql.query(
      `INSERT INTO organization_signing_keys (kid, organization_id, state, public_jwk, sealed_private_key)
       VALUES ($1, $2, $3, $4, $5)`,
      [key.kid, organizationId, state, JSON.stringify(key.publicJwk), JSON.stringify(key.sealed)],
    );
  }
}

/**
 * The previous release's one ring for the whole service (embed_signing_keys
 * and embed_next_signing_key). This release never signs with it: it verifies
 * the tokens it signed until they expire, then the ring is gone.
 */
export class SigningKeyStore {
  constructor(private readonly sql: Sql) {}

  /** Its keys that may verify now: the active one, the next one, the retired ones in their window. */
  async live(now: Date): Promise<LiveSigningKey[]> {
    const { rows } = await this.sql.query<LiveRow>(
      `SELECT kid, public_jwk, sealed_private_key, CASE WHEN active THEN 'active' ELSE 'retired' END AS role,
              verify_until, created_at
         FROM embed_signing_keys
        WHERE active OR verify_until > $1
       UNION ALL
       SELECT kid, public_jwk, sealed_private_key, 'next', NULL, created_at FROM embed_next_signing_key
       ORDER BY created_at DESC`,
      [now],
    );
    return rows.map(toLive);
  }

  /**
   * Retires the global ring once every replica runs this release: the active
   * key verifies for graceSeconds more, the next key (never used) goes, and
   * neither keeps its private half.
   */
  async retireRing(graceSeconds: number, now: Date): Promise<string[]> {
    const { rows } = await this.sql.query<{ kid: string }>(
      `UPDATE embed_signing_keys
          SET active = false, retired_at = $2, verify_until = $2::timestamptz + make_interval(secs => $1),
              private_jwk = NULL, sealed_private_key = NULL
        WHERE active RETURNING kid`,
      [graceSeconds, now],
    );
    const next = await this.sql.query<{ kid: string }>("DELETE FROM embed_next_signing_key RETURNING kid");
    return [...rows, ...next.rows].map((r) => r.kid);
  }

  /** Unpublishes one of its keys at once (a stolen one); true when there was such a key. */
  async retireNow(kid: string, now: Date): Promise<boolean> {
    const retired = await this.sql.query(
      `UPDATE embed_signing_keys
          SET active = false, retired_at = coalesce(retired_at, $2), verify_until = $2, private_jwk = NULL, sealed_private_key = NULL
        WHERE kid = $1 AND (active OR verify_until > $2)`,
      [kid, now],
    );
    const next = await this.sql.query("DELETE FROM embed_next_signing_key WHERE kid = $1", [kid]);
    return retired.rowCount + next.rowCount > 0;
  }

  /** Drops the private half of retired keys at once, and their rows once their window is over. */
  async purge(now: Date): Promise<{ scrubbed: number; deleted: number }> {
    const scrubbed = await this.sql.query(
      `UPDATE embed_signing_keys SET private_jwk = NULL, sealed_private_key = NULL
        WHERE NOT active AND (private_jwk IS NOT NULL OR sealed_private_key IS NOT NULL)`,
    );
    const deleted = await this.sql.query(
      "DELETE FROM embed_signing_keys WHERE NOT active AND (verify_until IS NULL OR verify_until <= $1)",
      [now],
    );
    return { scrubbed: scrubbed.rowCount, deleted: deleted.rowCount };
  }
}

/** Every private key the database holds, sealed or not, for resealing and the start-up check. */
export class PrivateKeyStore {
  constructor(private readonly sql: Sql) {}

  async all(): Promise<StoredPrivateKey[]> {
    const { rows } = await this.sql.query<{
      tbl: StoredPrivateKey["table"];
      organization_id: string | null;
      kid: string;
      sealed_private_key: SealedPrivateKey | string | null;
      private_jwk: JWK | string | null;
    }>(
      `SELECT 'organization' AS tbl, organization_id, kid, sealed_private_key, NULL::jsonb AS private_jwk
         FROM organization_signing_keys WHERE sealed_private_key IS NOT NULL
       UNION ALL
       SELECT 'global', NULL, kid, sealed_private_key, private_jwk
         FROM embed_signing_keys WHERE sealed_private_key IS NOT NULL OR private_jwk IS NOT NULL
       UNION ALL
       SELECT 'global-next', NULL, kid, sealed_private_key, private_jwk
         FROM embed_next_signing_key WHERE sealed_private_key IS NOT NULL OR private_jwk IS NOT NULL
       ORDER BY 1, 2, 3`,
    );
    return rows.map((r) => ({
      table: r.tbl,
      organizationId: r.organization_id ?? undefined,
      kid: r.kid,
      sealed: json(r.sealed_private_key),
      plaintext: json(r.private_jwk),
    }));
  }

  /** The key-encryption key ids the stored keys are sealed with, and one record of each (to check it opens). */
  async sealedSamples(): Promise<StoredPrivateKey[]> {
    const seen = new Map<string, StoredPrivateKey>();
    for (const k of await this.all()) if (k.sealed && !seen.has(k.sealed.kek)) seen.set(k.sealed.kek, k);
    return [...seen.values()];
  }

  /** Replaces one key's stored private half with `sealed`, clearing any plaintext; false when the row changed since. */
  async replace(key: StoredPrivateKey, sealed: SealedPrivateKey): Promise<boolean> {
    const table = {
      organization: "organization_signing_keys",
      global: "embed_signing_keys",
      "global-next": "embed_next_signing_key",
    }[key.table];
    const params = [key.kid, JSON.stringify(sealed), key.sealed ? JSON.stringify(key.sealed) : null];
    // Compare-and-set on what was read: a key retired (and scrubbed) meanwhile is not given its private half back.
    const { rowCount } =
      key.table === "organization"
        ? await this.sql.query(
            `UPDATE ${table} SET sealed_private_key = $2 WHERE kid = $1 AND sealed_private_key IS NOT DISTINCT FROM $3::jsonb`,
            params,
          )
        : await this.sql.query(
            `UPDATE ${table} SET sealed_private_key = $2, private_jwk = NULL
              WHERE kid = $1 AND sealed_private_key IS NOT DISTINCT FROM $3::jsonb AND private_jwk IS NOT DISTINCT FROM $4::jsonb`,
            [...params, key.plaintext ? JSON.stringify(key.plaintext) : null],
          );
    return rowCount === 1;
  }
}

// Any constant will do; distinct from the migration lock.
const ROTATION_LOCK_KEY = 0x6b657973; // "keys"
