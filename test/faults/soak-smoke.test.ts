import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSoak, startSoakReplicas } from "../../bench/soak.js";
import { recordFigures } from "./support.js";

// The CI part of `npm run soak`: the same load and the same invariants, bounded by a count of calls
// (not by time, so a slow machine checks exactly as much), with seeded choices (so every run makes the same ones).
let replicas: Awaited<ReturnType<typeof startSoakReplicas>>;
beforeAll(async () => {
  replicas = await startSoakReplicas();
}, 120_000);
afterAll(() => replicas?.stop());

describe("soak smoke: two replicas, several organizations, concurrent create/get/list/mint/delete", () => {
  it("the database matches the acknowledged model and no caller sees another organization's data", async () => {
    const report = await runSoak({ ...replicas, operationsPerCaller: 60, seed: 20261201 });
    recordFigures("soak-smoke", { ...report });

    // What the soak exists for: the database is exactly what was acknowledged, nothing leaked, nothing odd.
    expect(report.databaseMismatches).toEqual([]);
    expect(report.databaseDashboards).toBe(report.modelDashboards);
    expect(report.leaks).toEqual([]);
    expect(report.unexpected).toEqual([]);
    // And each of those checks had something to check: every operation ran and succeeded at least once.
    for (const op of ["create", "get", "list", "mint", "verify", "delete"]) {
      expect(report.outcomes[op]?.OK ?? 0, `${op} succeeded at least once`).toBeGreaterThan(0);
    }
  }, 120_000);
});
