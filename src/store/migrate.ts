import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Sql } from "./sql.js";

// Any constant will do; it only has to be the same in every replica.
const MIGRATION_LOCK_KEY = 0x64617368; // "dash"

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** migrations/NNNN_name.sql at the project root, found from both src/ and the compiled dist/src/. */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the project root (package.json) to read migrations from");
    dir = parent;
  }
  return join(dir, "migrations");
}

export async function readMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file ${file} is not named NNNN_name.sql`);
    migrations.push({ version: Number(match[1]), name: match[2]!, sql: await readFile(join(dir, file), "utf8") });
  }
  return migrations;
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so
 * replicas starting together apply each migration exactly once and a failed
 * migration leaves the schema as it was. Returns the versions it applied.
 */
export async function migrate(sql: Sql, migrations?: Migration[]): Promise<number[]> {
  const all = migrations ?? (await readMigrations());
  return sql.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer     PRIMARY KEY,
      name       text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number }>("SELECT version FROM schema_migrations");
    const applied = new Set(rows.map((r) => Number(r.version)));
    const done: number[] = [];
    for (const m of all) {
      if (applied.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      done.push(m.version);
    }
    return done;
  });
}
