import type { Deadline } from "../call/deadline.js";

/**
 * The little the store needs from a PostgreSQL client. Both the real server
 * (through `pg`, postgres-sql.ts) and the embedded default (PGlite,
 * embedded-sql.ts) implement it, so the same store code and SQL run on either.
 *
 * A deadline, where given, bounds the work: it is not started once the
 * deadline has passed, a statement running when it passes is cancelled, and a
 * transaction is never committed after it. Errors come out shaped (see
 * database-errors.ts): DEADLINE_EXCEEDED, CANCELED or UNAVAILABLE where that
 * is what happened.
 *
 * An organization, where given, is whose fair share of the connections the
 * work is charged to (organization-shares.ts): a plain key, the same one every
 * statement is keyed by. Work of no one organization passes none.
 */
export interface Sql {
  query<Row = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    deadline?: Deadline,
    organization?: string,
  ): Promise<{ rows: Row[]; rowCount: number }>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /**
   * Runs fn in one transaction: committed when it resolves (and the deadline has not passed), rolled back
   * otherwise. Called on a transaction's handle it takes a SAVEPOINT: a failure inside rolls back only what
   * fn did there (and rethrows), the enclosing transaction goes on (see transaction-handle.ts).
   * The organization is charged once, for the transaction's connection; its statements take nothing more.
   */
  transaction<T>(fn: (tx: Sql) => Promise<T>, deadline?: Deadline, organization?: string): Promise<T>;
  /** Whether this is a transaction's handle: its reads see its own uncommitted writes, no cache may answer them. */
  readonly inTransaction: boolean;
  /**
   * Announces a change on a NOTIFY channel. In a transaction it is sent as the last statement before COMMIT
   * and never when the transaction (or the savepoint it was made in) rolls back; outside one, at once.
   */
  notify(channel: string, payload: string): Promise<void>;
  /** Runs fn once the work so far is committed: after COMMIT in a transaction (never after a rollback), at once outside one. */
  onCommit(fn: () => void): void;
  close(): Promise<void>;
}

/** Receives NOTIFY payloads on a channel; says when it is (and is not) receiving them. */
export interface Notifications {
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    onListening: (listening: boolean) => void,
  ): Promise<Unlisten>;
}

export type Unlisten = () => Promise<void>;
