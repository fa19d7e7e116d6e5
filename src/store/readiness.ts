import type { Sql } from "./sql.js";

export interface DatabaseReadiness {
  /** The database answered within the timeout. */
  reachable: boolean;
  /** Every migration this build ships is recorded as applied. */
  migrationsApplied: boolean;
  /** Versions this build expects that the database has not applied (empty when unreachable). */
  pendingVersions: number[];
  /** Why it is not ready, for the readiness body and logs (never SQL or credentials). */
  problem?: string;
}

/**
 * Is the database usable by this build: reachable, with every expected
 * migration applied. Bounded by timeoutMs so a hung database makes a probe
 * fail fast instead of piling up behind the pool's connection timeout.
 */
export async function databaseReadiness(
  sql: Sql,
  expectedVersions: readonly number[],
  timeoutMs: number,
): Promise<DatabaseReadiness> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const applied = sql
    .query<{ version: number }>("SELECT version FROM schema_migrations")
    .then((r) => ({ versions: new Set(r.rows.map((row) => Number(row.version))) }))
    .catch((err: unknown) => ({ error: err as { code?: string } }));
  try {
    const outcome = await Promise.race([applied, timeout]);
    if (outcome === "timeout") {
      return {
        reachable: false,
        migrationsApplied: false,
        pendingVersions: [],
        problem: `no answer within ${timeoutMs} ms`,
      };
    }
    if ("error" in outcome) {
      // 42P01: undefined_table, i.e. reachable but never migrated.
      if (outcome.error?.code === "42P01") {
        return {
          reachable: true,
          migrationsApplied: false,
          pendingVersions: [...expectedVersions],
          problem: "migrations not applied",
        };
      }
      return { reachable: false, migrationsApplied: false, pendingVersions: [], problem: "database unreachable" };
    }
    const pendingVersions = expectedVersions.filter((v) => !outcome.versions.has(v));
    return pendingVersions.length === 0
      ? { reachable: true, migrationsApplied: true, pendingVersions }
      : { reachable: true, migrationsApplied: false, pendingVersions, problem: "migrations not applied" };
  } finally {
    clearTimeout(timer);
  }
}
