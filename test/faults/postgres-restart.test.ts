import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { callerToken } from "../helpers/tokens.js";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
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

// A PostgreSQL of this file's own: it is stopped and started under load (the shared one never is).
let pg: PrivatePostgres;
let server: ServerProcess;
beforeAll(async () => {
  pg = await startPrivatePostgres();
  server = await spawnServer(faultServerEnv(pg.url));
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await pg?.destroy();
});

const CALL_TIMEOUT_MS = 8_000;

describe("PostgreSQL restarted in the middle of a create load", () => {
  it("loses nothing, half-writes nothing, answers promptly while down and recovers without a restart", async () => {
    const org = "fault-pg";
    const headers = { authorization: `Bearer ${await callerToken({ org, admin: true, sub: "loader" })}` };
    const load = startCreateLoad({
      endpoints: () => [connectClientFor(server.baseUrl)],
      headers,
      workers: 8,
      maxRetriesPerCreate: 400,
      callTimeoutMs: CALL_TIMEOUT_MS,
      tenantPrefix: "pg",
    });

    // Each step waits for what the one before it caused, however fast or slow the machine is.
    await load.until((r) => r.acknowledged.size >= 100);
    const stoppedAt = Date.now();
    await pg.stop();
    const downFrom = Date.now();
    const attemptsBeforeOutage = load.result.attempts.length;
    await load.until(
      (r) => r.attempts.slice(attemptsBeforeOutage).filter((a) => a.code === "Unavailable").length >= 20,
    );
    const startCalledAt = Date.now();
    await pg.start();
    const backAt = Date.now();
    const acknowledgedBeforeRecovery = load.result.acknowledged.size;
    await load.until((r) => r.acknowledged.size >= acknowledgedBeforeRecovery + 100);
    const result = await load.stop();

    // Attempts made entirely while PostgreSQL was stopped.
    const during = result.attempts.filter((a) => a.endedAt - a.latencyMs >= downFrom && a.endedAt <= startCalledAt);
    const store = await checkStore(pg.url, org, result.acknowledged);
    const recovery = recoveryMs(result.attempts, backAt);
    recordFigures("postgres-restart", {
      ...createLoadFigures(8, result, store),
      outageMs: backAt - stoppedAt,
      codesDuringOutage: countCodes(during),
      codesOverall: countCodes(result.attempts),
      maxLatencyDuringOutageMs: maxLatency(during),
      maxLatencyOverallMs: maxLatency(result.attempts),
      postgresStartMs: backAt - startCalledAt,
      recoveryMsAfterPostgresStartBegan: recoveryMs(result.attempts, startCalledAt),
      recoveryMsAfterPostgresReady: recovery,
      unavailableAnswers: result.unavailable,
      store,
    });

    expect(result.abandoned).toEqual([]);
    expect(result.acknowledged.size).toBeGreaterThan(0);
    expect(during.length, "calls were made while PostgreSQL was down").toBeGreaterThan(0);
    expectNothingLostOrHalfWritten(store, result.acknowledged.size);
    // No hang: no attempt ran into the client's own deadline, and while down every answer was retryable.
    expect(result.attempts.every((a) => a.code !== "DeadlineExceeded")).toBe(true);
    expect(Object.keys(countCodes(during))).toEqual(["Unavailable"]);
    // Every UNAVAILABLE came from the service itself, with a retry hint.
    expect(Object.keys(result.unavailable)).toEqual(["service-with-retry-info"]);
    expect(recovery).toBeDefined();
  }, 60_000);
});
