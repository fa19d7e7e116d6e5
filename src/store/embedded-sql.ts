import type { Deadline } from "../call/deadline.js";
import { shapeDatabaseError } from "./database-errors.js";
import type { Notifications, Sql } from "./sql.js";

/**
 * The embedded default: PostgreSQL compiled to WebAssembly, persisted in
 * dataDir. It runs in this process, so it has neither a statement timeout
 * nor a cancel: a deadline is checked before each statement and before
 * COMMIT, and a transaction whose deadline has passed is rolled back there.
 */
export async function embeddedSql(dataDir: string): Promise<Sql & Notifications> {
  const { PGlite } = await import("@electric-sql/pglite");
  const db = await PGlite.create(dataDir);
  type Queryable = Pick<typeof db, "query" | "exec">;
  const wrap = (q: Queryable, outer: Deadline | undefined) => ({
    async query<Row>(text: string, params?: unknown[], deadline = outer) {
      deadline?.throwIfDone();
      try {
        const result = await q.query<Row>(text, params);
        return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
      } catch (err) {
        throw shapeDatabaseError(err, deadline);
      }
    },
    async exec(script: string) {
      await q.exec(script);
    },
  });
  // Inside a transaction PGlite hands out a tx handle; nested use joins the same transaction.
  const within = (tx: Queryable, deadline: Deadline | undefined): Sql => ({
    ...wrap(tx, deadline),
    transaction: (fn) => fn(within(tx, deadline)),
    close: () => Promise.resolve(),
  });
  return {
    ...wrap(db, undefined),
    transaction: async (fn, deadline) => {
      deadline?.throwIfDone();
      try {
        return await db.transaction(async (tx) => {
          const value = await fn(within(tx, deadline));
          // Throwing here makes PGlite roll back instead of committing.
          deadline?.throwIfDone();
          return value;
        });
      } catch (err) {
        throw shapeDatabaseError(err, deadline);
      }
    },
    close: () => db.close(),
    // One in-process database: its notices cannot be missed.
    async listen(channel, onPayload, onListening) {
      const unlisten = await db.listen(channel, onPayload);
      onListening(true);
      return async () => {
        onListening(false);
        await unlisten();
      };
    },
  };
}
