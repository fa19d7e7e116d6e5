import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { isTransientDatabaseError } from "../../src/store/transient-errors.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";

/**
 * Regression: PostgreSQL ending a connection while a transaction held it
 * between two statements (what a restart does: FATAL 57P01) emitted an
 * 'error' event nobody listened to, and the whole process died. Found by
 * test/faults/postgres-restart.test.ts. pg_terminate_backend sends the same
 * 57P01 to one backend only, so this runs on the shared server safely.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

describe("a pooled connection lost in the middle of a transaction", () => {
  it("fails that transaction as transient, keeps the process alive, and the pool serves the next one", async () => {
    const sql = postgresSql(db.url, 2);
    try {
      const failure = await sql
        .transaction(async (tx) => {
          const [{ pid }] = (await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows as [
            { pid: number },
          ];
          await queryDatabase(db.url, "SELECT pg_terminate_backend($1)", [pid]);
          // The FATAL arrives while no statement is running on this connection: wait until the backend is gone.
          while ((await queryDatabase(db.url, "SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).length > 0);
          await tx.query("SELECT 1");
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(failure, "the transaction must fail").toBeDefined();
      // Shaped where it arose: the caller sees a retryable UNAVAILABLE, the lost connection as its cause.
      expect(failure).toMatchObject({ reason: "UNAVAILABLE" });
      expect(isTransientDatabaseError((failure as Error).cause)).toBe(true);
      expect((await sql.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await sql.close();
    }
  });
});
