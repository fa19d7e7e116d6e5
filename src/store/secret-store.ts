import { randomBytes } from "node:crypto";
import type { Sql } from "./sql.js";

/**
 * Returns the named shared secret, creating it if no replica has yet. Insert
 * first and read back, so replicas racing at start-up all end with the one
 * value that won.
 */
export async function sharedSecret(sql: Sql, name: string): Promise<string> {
  await sql.query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [
    name,
    randomBytes(32).toString("base64url"),
  ]);
  const { rows } = await sql.query<{ value: string }>("SELECT value FROM server_secrets WHERE name = $1", [name]);
  return rows[0]!.value;
}
