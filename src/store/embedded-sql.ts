import type { Deadline } from "../call/deadline.js";
import { shapeDatabaseError } from "./database-errors.js";
import type { Notifications, Sql } from "./sql.js";
import { transactionHandle } from "./transaction-handle.js";
import { TxEffects } from "./tx-effects.js";

/**
 * The embedded default: PostgreSQL compiled to WebAssembly, persisted in
 * dataDir. It runs in this process, so it has neither a statement timeout
 * nor a cancel: a deadline is checked before each statement and before
 * COMMIT, and a transaction whose deadline has passed is rolled back there.
 * Its one connection runs everything in turn, so there is no pool to share
 * fairly: the organization a call is charged to is ignored here.
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
  // Inside a transaction PGlite hands out a tx handle; nested use takes a SAVEPOINT on it.
  const within = (tx: Queryable, deadline: Deadline | undefined, effects: TxEffects): Sql => {
    const q = wrap(tx, deadline);
    return transactionHandle(
      {
        run: (text, params) => q.query(text, params),
        exec: (script) => q.exec(script),
        runCleanup: async (text) => {
          await tx.query(text);
        },
      },
      effects,
    );
  };
  const sql: Sql & Notifications = {
    ...wrap(db, undefined),
    inTransaction: false,
    async notify(channel, payload) {
      await sql.query("SELECT pg_notify($1, $2)", [channel, payload]);
    },
    onCommit: (fn) => fn(),
    transaction: async (fn, deadline) => {
      deadline?.throwIfDone();
      const effects = new TxEffects();
      let value;
      try {
        value = await db.transaction(async (tx) => {
          const result = await fn(within(tx, deadline, effects));
          const notices = effects.noticeStatement();
          if (notices) await tx.query(notices.text, notices.params);
          // Throwing here makes PGlite roll back instead of committing.
          deadline?.throwIfDone();
          return result;
        });
      } catch (err) {
        throw shapeDatabaseError(err, deadline);
      }
      effects.committed();
      return value;
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
  return sql;
}
