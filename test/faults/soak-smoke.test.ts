import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retentionRemoved, runSoak, SOAK_RETENTION_ENV, startSoakReplicas, tableSizes } from "../../bench/soak.js";
import { queryDatabase } from "../helpers/postgres.js";
import { recordFigures } from "./support.js";

// Retention on windows of seconds, so the few seconds this runs show the purged tables staying flat:
// request ids kept 2.16 s, tokens living 2 s (revocation cutoffs kept 8 s), every job every second.
const RETENTION = {
  ...SOAK_RETENTION_ENV,
  CREATE_REQUEST_RETENTION_HOURS: "0.0006",
  EMBED_TOKEN_MAX_TTL_SECONDS: "2",
  EMBED_TOKEN_DEFAULT_TTL_SECONDS: "2",
  RETENTION_INTERVAL_SECONDS: "1",
};
/** How far behind its window retention may fall: two job intervals and a busy machine's slack. */
const LAG_SECONDS = 2 * 1 + 5;

// The CI part of `npm run soak`: the same load and the same invariants, bounded by a count of calls
// (not by time, so a slow machine checks exactly as much), with seeded choices (so every run makes the same ones).
let replicas: Awaited<ReturnType<typeof startSoakReplicas>>;
beforeAll(async () => {
  replicas = await startSoakReplicas(RETENTION);
}, 120_000);
afterAll(() => replicas?.stop());

describe("soak smoke: two replicas, several organizations, concurrent create/get/list/mint/delete", () => {
  it("the database matches the acknowledged model and no caller sees another organization's data", async () => {
    const report = await runSoak({ ...replicas, operationsPerCaller: 60, seed: 20261201 });

    // What the soak exists for: the database is exactly what was acknowledged, nothing leaked, nothing odd.
    expect(report.databaseMismatches).toEqual([]);
    expect(report.databaseDashboards).toBe(report.modelDashboards);
    expect(report.leaks).toEqual([]);
    expect(report.unexpected).toEqual([]);
    // And each of those checks had something to check: every operation ran and succeeded at least once.
    for (const op of ["create", "get", "list", "mint", "verify", "delete"]) {
      expect(report.outcomes[op]?.OK ?? 0, `${op} succeeded at least once`).toBeGreaterThan(0);
    }

    // Request ids and revocation cutoffs do not grow without bound. Retention runs on the replicas' own
    // clocks, so this waits (bounded, 60 s) until both have purged something of each table...
    let removed: Record<string, number> = {};
    for (let tries = 0; tries < 240; tries++) {
      removed = await retentionRemoved(replicas.baseUrls);
      if ((removed.create_requests ?? 0) > 0 && (removed.embed_token_cutoffs ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(removed.create_requests ?? 0).toBeGreaterThan(0);
    expect(removed.embed_token_cutoffs ?? 0).toBeGreaterThan(0);
    // ...then nothing is kept much past its window: the tables hold at most a window's worth of rows.
    const [late] = await queryDatabase<{ requests: number; cutoffs: number }>(
      replicas.databaseUrl,
      `SELECT (SELECT count(*)::int FROM create_requests
                WHERE created_at < now() - make_interval(secs => $1)) AS requests,
              (SELECT count(*)::int FROM embed_token_cutoffs
                WHERE keep_until < now() - make_interval(secs => $2)) AS cutoffs`,
      [0.0006 * 3600 + LAG_SECONDS, LAG_SECONDS],
    );
    expect(late).toEqual({ requests: 0, cutoffs: 0 });
    const settled = await tableSizes(replicas.databaseUrl);
    expect(settled.create_requests!.rows).toBeLessThan(report.acknowledgedCreates);
    expect(settled.create_requests!.rows).toBeLessThanOrEqual(report.tables.after.create_requests!.rows);
    expect(settled.embed_token_cutoffs!.rows).toBeLessThanOrEqual(report.tables.after.embed_token_cutoffs!.rows);
    recordFigures("soak-smoke", { ...report, settled, removed });
  }, 180_000);
});
