import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobRunner, type Job } from "../../src/jobs/job-runner.js";
import { migrate } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import type { Sql } from "../../src/store/sql.js";
import { ManualClock } from "../helpers/clock.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const log = pino({ level: "silent" });
let db: TestDatabase;
let replicaA: Sql;
let replicaB: Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  // Two pools stand for two replicas: an advisory lock taken on one is seen by the other.
  replicaA = postgresSql(db.url, 3);
  replicaB = postgresSql(db.url, 3);
  await migrate(replicaA);
});
afterAll(async () => {
  await replicaA?.close();
  await replicaB?.close();
  await db?.drop();
});

/** A job that holds its run open until released, recording who ran it and when. */
function gatedJob(name: string, runs: { replica: string; at: number }[], replica: string) {
  let release!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const start = new Promise<void>((r) => (started = r));
  const job: Job = {
    name,
    everyMs: 60_000,
    async run(now) {
      runs.push({ replica, at: now.getTime() });
      started();
      await gate;
    },
  };
  return { job, release: () => release(), started: start };
}

describe("the background-job runner", () => {
  it("runs a job on one replica at a time: the other skips the round while the first holds the lock", async () => {
    const clock = new ManualClock();
    const runs: { replica: string; at: number }[] = [];
    const onA = gatedJob("test.gated", runs, "a");
    const onB = gatedJob("test.gated", runs, "b");
    const a = new JobRunner({ sql: replicaA, clock: clock.now, log });
    const b = new JobRunner({ sql: replicaB, clock: clock.now, log });
    a.register(onA.job);
    b.register(onB.job);

    const roundA = a.runDue();
    await onA.started; // A holds the job's lock now
    expect(await b.runDue()).toEqual([{ name: "test.gated", ran: false }]);
    onA.release();
    expect(await roundA).toEqual([{ name: "test.gated", ran: true }]);
    expect(runs).toEqual([{ replica: "a", at: clock.now() }]);

    // Not due again until everyMs has passed on the clock; then whoever asks first runs it.
    expect(await a.runDue()).toEqual([]);
    clock.advance(60_000);
    onB.release();
    expect(await b.runDue()).toEqual([{ name: "test.gated", ran: true }]);
    expect(runs.map((r) => r.replica)).toEqual(["a", "b"]);
    await Promise.all([a.stop(), b.stop()]);
  });

  it("keeps going after a job fails, and runs the failed job again when it is next due", async () => {
    const clock = new ManualClock();
    let attempts = 0;
    const runner = new JobRunner({ sql: replicaA, clock: clock.now, log });
    runner.register({
      name: "test.flaky",
      everyMs: 1_000,
      run() {
        attempts++;
        return attempts === 1 ? Promise.reject(new Error("first run fails")) : Promise.resolve();
      },
    });
    runner.register({ name: "test.steady", everyMs: 1_000, run: () => Promise.resolve() });
    const first = await runner.runDue();
    expect(first.map((r) => [r.name, r.error === undefined])).toEqual([
      ["test.flaky", false],
      ["test.steady", true],
    ]);
    clock.advance(1_000);
    expect((await runner.runDue()).every((r) => r.ran && r.error === undefined)).toBe(true);
    expect(attempts).toBe(2);
    await runner.stop();
    // Stopped: nothing runs any more, however late it is.
    clock.advance(10_000);
    expect(await runner.runDue()).toEqual([]);
  });
});
