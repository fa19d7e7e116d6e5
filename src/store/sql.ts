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
 */
export interface Sql {
  query<Row = Record<string, unknown>>(
    text: string,
    params?: unknown[],
    deadline?: Deadline,
  ): Promise<{ rows: Row[]; rowCount: number }>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** Runs fn in one transaction: committed when it resolves (and the deadline has not passed), rolled back otherwise. */
  transaction<T>(fn: (tx: Sql) => Promise<T>, deadline?: Deadline): Promise<T>;
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
