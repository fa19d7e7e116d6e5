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
    return r && { kid: r.kid, privateJwk: parse(r.private_jwk), publicJwk: parse(r.public_jwk), createdAt: r.created_at };
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
}
