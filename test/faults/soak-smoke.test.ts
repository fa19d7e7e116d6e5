import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runSoak, startSoakReplicas } from "../../bench/soak.js";
import { recordFigures } from "./support.js";

// The CI part of `npm run soak`: the same load and invariants, for a few seconds.
let replicas: Awaited<ReturnType<typeof startSoakReplicas>>;
beforeAll(async () => {
  replicas = await startSoakReplicas();
}, 120_000);
afterAll(() => replicas?.stop());

describe("soak smoke: two replicas, several organizations, concurrent create/get/list/mint/delete", () => {
  it("the database matches the acknowledged model and no caller sees another organization's data", async () => {
    const report = await runSoak({ ...replicas, seconds: 5 });
    recordFigures("soak-smoke", { ...report });
    expect(report.leaks).toEqual([]);
    expect(report.databaseMismatches).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.acknowledgedCreates).toBeGreaterThan(0);
    expect(report.acknowledgedDeletes).toBeGreaterThan(0);
    expect(report.mintedTokens).toBeGreaterThan(0);
    expect(report.databaseDashboards).toBe(report.modelDashboards);
  }, 60_000);
});
