import pg from "pg";

/**
 * The little the store needs from a PostgreSQL client. Both the real server
 * (through `pg`) and the embedded default (PGlite) implement it, so the same
 * store code and SQL run on either.
 */
export interface Sql {
  query<Row = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: Row[]; rowCount: number }>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
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

export function postgresSql(url: string, poolMax: number): Sql & Notifications & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    // Fail a request quickly rather than queue forever when the database is unreachable.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 10_000,
    application_name: "dashboard-service",
  });
  // An idle client losing its connection (database restart) must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  const onClient = (client: pg.PoolClient): Sql => ({
    async query<Row>(text: string, params?: unknown[]) {
      const result = await client.query(text, params);
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    },
    async exec(script) {
      await client.query(script);
    },
    transaction: (fn) => fn(onClient(client)),
    close: async () => {},
  });
  return {
    pool,
    async query<Row>(text: string, params?: unknown[]) {
      const result = await pool.query(text, params);
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    },
    async exec(script) {
      await pool.query(script);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // pg-pool drops its own 'error' listener while a client is checked out, so a connection lost
      // between two statements (PostgreSQL restarting: FATAL 57P01) would be an unhandled 'error'
      // event that kills the process. Caught here, the next statement fails (UNAVAILABLE) instead
      // and the client is discarded.
      let lost = false;
      const onLost = () => {
        lost = true;
      };
      client.on("error", onLost);
      let broken = false;
      try {
        await client.query("BEGIN");
        const value = await fn(onClient(client));
        await client.query("COMMIT");
        return value;
      } catch (err) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true;
        }
        throw err;
      } finally {
        client.off("error", onLost);
        client.release(broken || lost);
      }
    },
    close: () => pool.end(),
    listen: (channel, onPayload, onListening) => listenOnDedicatedClient(url, channel, onPayload, onListening),
  };
}

/**
 * LISTEN needs a connection of its own that stays open. When it drops (a
 * database restart), notices may be missed, so the listener reports it at once
 * and reconnects with backoff, reporting again when it listens.
 */
async function listenOnDedicatedClient(
  url: string,
  channel: string,
  onPayload: (payload: string) => void,
  onListening: (listening: boolean) => void,
): Promise<Unlisten> {
  let closed = false;
  let client: pg.Client | undefined;
  let retryMs = 100;
  let timer: NodeJS.Timeout | undefined;
  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url, application_name: "dashboard-service-listener" });
    const lost = () => {
      if (client !== c) return;
      client = undefined;
      onListening(false);
      c.end().catch(() => {});
      // connect() handles its own failures (by calling lost() again), so it never rejects.
      if (!closed) {
        timer = setTimeout(() => {
          connect().catch(lost);
        }, retryMs);
      }
      retryMs = Math.min(retryMs * 2, 5_000);
    };
    c.on("error", lost);
    c.on("end", lost);
    c.on("notification", (n) => {
      if (n.channel === channel && n.payload !== undefined) onPayload(n.payload);
    });
    client = c;
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      retryMs = 100;
      if (client === c && !closed) onListening(true);
    } catch {
      lost();
    }
  };
  await connect();
  return async () => {
    closed = true;
    clearTimeout(timer);
    const c = client;
    client = undefined;
    onListening(false);
    await c?.end().catch(() => {});
  };
}

/** The embedded default: PostgreSQL compiled to WebAssembly, persisted in dataDir. */
export async function embeddedSql(dataDir: string): Promise<Sql & Notifications> {
  const { PGlite } = await import("@electric-sql/pglite");
  const db = await PGlite.create(dataDir);
  type Queryable = Pick<typeof db, "query" | "exec">;
  const wrap = (q: Queryable) => ({
    async query<Row>(text: string, params?: unknown[]) {
      const result = await q.query<Row>(text, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(script: string) {
      await q.exec(script);
    },
  });
  // Inside a transaction PGlite hands out a tx handle; nested use joins the same transaction.
  const within = (tx: Queryable): Sql => ({ ...wrap(tx), transaction: (fn) => fn(within(tx)), close: async () => {} });
  return {
    ...wrap(db),
    transaction: (fn) => db.transaction((tx) => fn(within(tx))),
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
