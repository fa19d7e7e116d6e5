import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { callerToken } from "../helpers/tokens.js";
import {
  checkStore,
  connectClientFor,
  countCodes,
  faultServerEnv,
  maxLatency,
  recordFigures,
  recoveryMs,
  startCreateLoad,
  expectNothingLostOrHalfWritten,
  createLoadFigures,
} from "./support.js";

// Two replicas on one database; one is killed with SIGKILL (no drain, no goodbye) under load.
let db: TestDatabase;
let a: ServerProcess;
let b: ServerProcess;
beforeAll(async () => {
  db = await createTestDatabase();
  a = await spawnServer(faultServerEnv(db.url));
  b = await spawnServer(faultServerEnv(db.url));
}, 120_000);
afterAll(async () => {
  await a?.stop("SIGKILL");
  await b?.stop();
  await db?.drop();
});

describe("kill -9 of one of two replicas in the middle of a create load", () => {
  it("clients fail over and retry with the same request_id: nothing lost, nothing twice, nothing half-written", async () => {
    const org = "fault-replica";
    const headers = { authorization: `Bearer ${await callerToken({ org, admin: true, sub: "loader" })}` };
    const load = startCreateLoad({
      endpoints: () => [connectClientFor(a.baseUrl), connectClientFor(b.baseUrl)],
      headers,
      workers: 8,
      maxRetriesPerCreate: 400,
      callTimeoutMs: 8_000,
      tenantPrefix: "rk",
    });
    await load.until((r) => r.acknowledged.size >= 100);
    const killedAt = Date.now();
    a.child.kill("SIGKILL");
    const acknowledgedAtKill = load.result.acknowledged.size;
    // Creates go on succeeding after the kill: the workers on the killed replica failed over to the survivor.
    await load.until((r) => r.acknowledged.size >= acknowledgedAtKill + 200);
    const result = await load.stop();

    const afterKill = result.attempts.filter((x) => x.endedAt >= killedAt);
    const store = await checkStore(db.url, org, result.acknowledged);
    recordFigures("replica-kill", {
      ...createLoadFigures(8, result, store),
      codesAfterKill: countCodes(afterKill),
      maxLatencyAfterKillMs: maxLatency(afterKill),
      firstSuccessAfterKillMs: recoveryMs(result.attempts, killedAt),
      unavailableAnswers: result.unavailable,
      store,
    });

    expect(a.child.signalCode).toBe("SIGKILL");
    expect(result.abandoned).toEqual([]);
    expect(result.retries, "some calls hit the killed replica and were retried").toBeGreaterThan(0);
    expectNothingLostOrHalfWritten(store, result.acknowledged.size);
    expect(result.attempts.every((x) => x.code !== "DeadlineExceeded")).toBe(true);
    // The survivor answered every retry: it never reported the dead replica's half-done work as a failure.
    expect(Object.keys(result.unavailable).filter((k) => k !== "transport")).toEqual([]);
  }, 60_000);
});
