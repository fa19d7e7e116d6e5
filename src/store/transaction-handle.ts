import type { Sql } from "./sql.js";
import { TxEffects } from "./tx-effects.js";

type Result<Row> = { rows: Row[]; rowCount: number };

/** How a transaction's statements reach its one connection, on either database. */
export interface TransactionConnection {
  /** A statement of the transaction (refused once its deadline has passed). */
  run<Row>(text: string, params?: unknown[]): Promise<Result<Row>>;
  /** A script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** A statement that undoes work: sent even after the deadline, which is when it is needed most. */
  runCleanup(text: string): Promise<void>;
}

/**
 * The Sql a transaction's work runs on. A nested `transaction` is a SAVEPOINT:
 * its failure rolls back to the savepoint and rethrows, leaving the outer
 * transaction's work (and its recorded effects) as they were; its success
 * hands its effects to the enclosing transaction, which still decides whether
 * any of it commits. Nested transactions on one handle run one at a time, as
 * every statement of a transaction does.
 */
export function transactionHandle(connection: TransactionConnection, effects: TxEffects, depth = 0): Sql {
  return {
    inTransaction: true,
    query: (text, params) => connection.run(text, params),
    exec: (script) => connection.exec(script),
    notify: (channel, payload) => {
      effects.notify(channel, payload);
      return Promise.resolve();
    },
    onCommit: (fn) => effects.onCommit(fn),
    async transaction(fn) {
      const savepoint = `nested_${depth + 1}`;
      const inner = new TxEffects();
      await connection.run(`SAVEPOINT ${savepoint}`);
      let value;
      try {
        value = await fn(transactionHandle(connection, inner, depth + 1));
      } catch (err) {
        // If even this fails the connection is unusable; the outer transaction fails and rolls back.
        await connection.runCleanup(`ROLLBACK TO SAVEPOINT ${savepoint}`).catch(() => {});
        throw err;
      }
      await connection.run(`RELEASE SAVEPOINT ${savepoint}`);
      effects.adopt(inner);
      return value;
    },
    close: () => Promise.resolve(),
  };
}
