import type { JWK } from "jose";
import type { Sql } from "./sql.js";

export interface StoredSigningKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: Date;
}

interface Row {
  kid: string;
  private_jwk: JWK | string;
  public_jwk: JWK | string;
  created_at: Date;
}

const parse = (v: JWK | string): JWK => (typeof v === "string" ? (JSON.parse(v) as JWK) : v);

export class SigningKeyStore {
  constructor(private readonly sql: Sql) {}

  async active(): Promise<StoredSigningKey | undefined> {
    const { rows } = await this.sql.query<Row>(
      "SELECT kid, private_jwk, public_jwk, created_at FROM embed_signing_keys WHERE active",
    );
    const r = rows[0];
    return (
      r && { kid: r.kid, privateJwk: parse(r.private_jwk), publicJwk: parse(r.public_jwk), createdAt: r.created_at }
    );
  }

  /** Stores key as the active one unless a replica already stored one; returns the active key either way. */
  async activateIfNone(key: Omit<StoredSigningKey, "createdAt">): Promise<StoredSigningKey> {
    await this.sql.query(
      `INSERT INTO embed_signing_keys (kid, private_jwk, public_jwk, active) VALUES ($1, $2, $3, true)
       ON CONFLICT DO NOTHING`,
      [key.kid, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk)],
    );
    const active = await this.active();
    if (!active) throw new Error("no active iframe-token signing key after storing one");
    return active;
  }

  /** Publishes key as the next one unless a replica already did. */
  async prepareNextIfNone(key: Omit<StoredSigningKey, "createdAt">): Promise<void> {
    await this.sql.query(
      `INSERT INTO embed_next_signing_key (kid, private_jwk, public_jwk) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING`,
      [key.kid, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk)],
    );
  }

  /** The active key, the prepared next key, and every retired key that may still verify tokens (until its verify_until). */
  async live(now: Date): Promise<LiveSigningKey[]> {
    const { rows } = await this.sql.query<Row & { role: LiveSigningKey["role"]; verify_until: Date | null }>(
      `SELECT kid, private_jwk, public_jwk, created_at, CASE WHEN active THEN 'active' ELSE 'retired' END AS role, verify_until
         FROM embed_signing_keys
        WHERE active OR verify_until > $1
       UNION ALL
       SELECT kid, private_jwk, public_jwk, created_at, 'next', NULL FROM embed_next_signing_key
       ORDER BY created_at DESC`,
      [now],
    );
    return rows.map((r) => ({
      kid: r.kid,
      privateJwk: parse(r.private_jwk),
      publicJwk: parse(r.public_jwk),
      createdAt: r.created_at,
      role: r.role,
      verifyUntil: r.verify_until === null ? undefined : new Date(r.verify_until),
    }));
  }

  /**
   * Activates the prepared next key (or `fallback` when none was prepared),
   * retires the active key, which keeps verifying for graceSeconds, and
   * prepares `next`. Run it inside a transaction: the advisory lock serializes
   * rotations from several replicas.
   */
  async rotate(
    fallback: Omit<StoredSigningKey, "createdAt">,
    next: Omit<StoredSigningKey, "createdAt">,
    graceSeconds: number,
    now: Date,
  ): Promise<{ activated: string; retired: RetiredSigningKey | undefined }> {
    await this.sql.query("SELECT pg_advisory_xact_lock($1)", [ROTATION_LOCK_KEY]);
    const prepared = await this.sql.query<Row>(
      "DELETE FROM embed_next_signing_key RETURNING kid, private_jwk, public_jwk, created_at",
    );
    const p = prepared.rows[0];
    const activated = p ? { kid: p.kid, privateJwk: parse(p.private_jwk), publicJwk: parse(p.public_jwk) } : fallback;
    const { rows } = await this.sql.query<{ kid: string; verify_until: Date }>(
      `UPDATE embed_signing_keys SET active = false, retired_at = $2, verify_until = $2::timestamptz + make_interval(secs => $1)
       WHERE active RETURNING kid, verify_until`,
      [graceSeconds, now],
    );
    await this.sql.query(
      "INSERT INTO embed_signing_keys (kid, private_jwk, public_jwk, active) VALUES ($1, $2, $3, true)",
      [activated.kid, JSON.stringify(activated.privateJwk), JSON.stringify(activated.publicJwk)],
    );
    await this.prepareNextIfNone(next);
    const retired = rows[0];
    return {
      activated: activated.kid,
      retired: retired && { kid: retired.kid, verifyUntil: new Date(retired.verify_until) },
    };
  }
}

export interface LiveSigningKey extends StoredSigningKey {
  /** active signs; next is published ahead of its activation; retired only verifies, until verifyUntil. */
  role: "active" | "next" | "retired";
  verifyUntil: Date | undefined;
}

export interface RetiredSigningKey {
  kid: string;
  verifyUntil: Date;
}

// Any constant will do; distinct from the migration lock.
const ROTATION_LOCK_KEY = 0x6b657973; // "keys"
