import pg from "pg";
import type { Deadline } from "../call/deadline.js";
import { shapeDatabaseError } from "./database-errors.js";
import { listenOnDedicatedClient, type Every } from "./listen.js";
import { overloaded, rateLimitedWarning, shedAfterMs } from "./load-shedding.js";
import { OrganizationShares } from "./organization-shares.js";
import { sendCancelRequest } from "./pg-cancel.js";
import type { Notifications, Sql } from "./sql.js";
import { transactionHandle } from "./transaction-handle.js";
import { TxEffects } from "./tx-effects.js";

type Result<Row> = { rows: Row[]; rowCount: number };

export interface PostgresOptions {
  /** LISTEN_HEARTBEAT_MS: how often the change listener proves it is alive (see listen.ts). */
  heartbeatMs?: number;
  /** Drives the heartbeat; tests tick it by hand. */
  heartbeatEvery?: Every;
  /** Where the listener connects, when not url (a test's proxy in front of the same database). */
  listenUrl?: string;
  /** DATABASE_POOL_WAIT_MS: the longest wait for a pooled connection (never past the call's deadline). */
  poolWaitMs?: number;
  /** DATABASE_POOL_MAX_WAITING: calls that may wait for a connection; more are refused at once. */
  poolMaxWaiting?: number;
  /**
   * DATABASE_ORGANIZATION_SHARE: the most connections one organization's calls may hold (see
   * organization-shares.ts); the whole pool when unset. Its queue is bounded by poolMaxWaiting.
   */
  organizationShare?: number;
  /** Where pool errors are reported (rate-limited); without it they are dropped. */
  warn?: (fields: Record<string, unknown>, message: string) => void;
}

/** PostgreSQL through a pg pool, with deadlines carried to the server (see Sql). */
export function postgresSql(
  url: string,
  poolMax: number,
  options: PostgresOptions = {},
): Sql & Notifications & { pool: pg.Pool; shares: OrganizationShares } {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    // Fail a request quickly rather than queue forever when the database is unreachable.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // The ceiling for any statement; a call's own deadline is usually shorter and cuts it first.
    statement_timeout: 10_000,
    application_name: "dashboard-service",
  });
  // An idle client losing its connection (database restart) must not crash the process; the pool replaces
  // it. A restart fails every idle connection at once, so the log line is rate-limited, not each error.
  const onPoolError = options.warn
    ? rateLimitedWarning(options.warn, "an idle database connection failed (the pool replaces it)")
    : () => {};
  pool.on("error", onPoolError);
  const maxWaiting = options.poolMaxWaiting ?? Number.POSITIVE_INFINITY;
  const shares = new OrganizationShares(Math.min(poolMax, options.organizationShare ?? poolMax), maxWaiting);
  const admission: Admission = { waitMs: options.poolWaitMs ?? 5_000, maxWaiting, shares };

  const sql: Sql & Notifications & { pool: pg.Pool; shares: OrganizationShares } = {
    pool,
    shares,
    inTransaction: false,
    async query<Row>(
      text: string,
      params?: unknown[],
      deadline?: Deadline,
      organization?: string,
    ): Promise<Result<Row>> {
      if (!deadline && organization === undefined) {
        try {
          const result = await pool.query(text, params);
          return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
        } catch (err) {
          throw shapeDatabaseError(err, undefined);
        }
      }
      const lease = await checkout(pool, deadline, admission, organization);
      try {
        return await lease.run<Row>(text, params);
      } finally {
        lease.release();
      }
    },
    async exec(script) {
      try {
        await pool.query(script);
      } catch (err) {
        throw shapeDatabaseError(err, undefined);
      }
    },
    async notify(channel, payload) {
      await sql.query("SELECT pg_notify($1, $2)", [channel, payload]);
    },
    onCommit: (fn) => fn(),
    async transaction(fn, deadline, organization) {
      // One slot for the whole transaction: its statements share its connection and never take a second.
      const lease = await checkout(pool, deadline, admission, organization);
      const effects = new TxEffects();
      try {
        // The statement timeout is the call's remaining time, so a statement that waits (on a lock, on I/O)
        // is cut by the server itself when the caller stops waiting, and set in the same round trip as BEGIN.
        const remaining = deadline?.remainingMs();
        await lease.run(
          remaining === undefined
            ? "BEGIN"
            : `BEGIN; SET LOCAL statement_timeout = ${Math.max(1, Math.ceil(remaining))}`,
        );
        const value = await fn(transactionHandle(lease, effects));
        const notices = effects.noticeStatement();
        if (notices) await lease.run(notices.text, notices.params);
        // A write whose deadline passed before commit is rolled back, never committed late.
        deadline?.throwIfDone();
        await lease.run("COMMIT");
        lease.release();
        effects.committed();
        return value;
      } catch (err) {
        await lease.rollback();
        lease.release();
        throw shapeDatabaseError(err, deadline);
      }
    },
    close: () => pool.end(),
    listen: (channel, onPayload, onListening) =>
      listenOnDedicatedClient(options.listenUrl ?? url, channel, onPayload, onListening, {
        heartbeatMs: options.heartbeatMs ?? 2_000,
        every: options.heartbeatEvery,
      }),
  };
  return sql;
}

interface Lease {
  run<Row>(text: string, params?: unknown[]): Promise<Result<Row>>;
  exec(script: string): Promise<void>;
  runCleanup(text: string): Promise<void>;
  rollback(): Promise<void>;
  release(): void;
}

/**
 * A pooled connection for one call. With an organization, a slot of its share
 * is taken first (and given back with the connection), so one organization's
 * calls cannot fill the pool or its queue. While its deadline is pending a
 * statement running on it is cancelled when the deadline passes or the client
 * leaves; a connection that was sent a cancel is discarded, never reused (the
 * cancel could otherwise still land on the next caller's statement).
 */
async function checkout(
  pool: pg.Pool,
  deadline: Deadline | undefined,
  admission: Admission,
  organization: string | undefined,
): Promise<Lease> {
  deadline?.throwIfDone();
  let releaseShare = () => {};
  let client: pg.PoolClient;
  try {
    if (organization !== undefined) {
      releaseShare = await admission.shares.acquire(
        organization,
        deadline,
        shedAfterMs(deadline?.remainingMs(), admission.waitMs),
      );
    }
    // Every connection busy and the queue for them full: waiting would only add to the pile.
    if (pool.idleCount === 0 && pool.waitingCount >= admission.maxWaiting) throw overloaded("database connections");
    client = await admit(pool.connect(), deadline, shedAfterMs(deadline?.remainingMs(), admission.waitMs));
  } catch (err) {
    releaseShare();
    throw shapeDatabaseError(err, deadline);
  }
  // pg-pool drops its own 'error' listener while a client is checked out, so a connection lost
  // between two statements (PostgreSQL restarting: FATAL 57P01) would be an unhandled 'error'
  // event that kills the process. Caught here, the next statement fails (UNAVAILABLE) instead
  // and the client is discarded.
  let broken = false;
  const onLost = () => {
    broken = true;
  };
  client.on("error", onLost);
  let canceled = false;
  const onAbort = () => {
    canceled = true;
    sendCancelRequest(client);
  };
  const stopWatching = deadline?.onDone(onAbort) ?? (() => {});
  const run = async <Row>(text: string, params?: unknown[]): Promise<Result<Row>> => {
    deadline?.throwIfDone();
    try {
      const result = await client.query(text, params);
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    } catch (err) {
      throw shapeDatabaseError(err, deadline);
    }
  };
  let released = false;
  return {
    run,
    async exec(script) {
      await run(script);
    },
    async runCleanup(text) {
      try {
        await client.query(text);
      } catch (err) {
        broken = true;
        throw err;
      }
    },
    async rollback() {
      try {
        await client.query("ROLLBACK");
      } catch {
        broken = true;
      }
    },
    release() {
      if (released) return;
      released = true;
      stopWatching();
      client.off("error", onLost);
      client.release(broken || canceled);
      releaseShare();
    },
  };
}

interface Admission {
  /** The longest wait for a share's slot, and again for a pooled connection (each never past the deadline). */
  waitMs: number;
  maxWaiting: number;
  shares: OrganizationShares;
}

/**
 * The pool's checkout, given up after waitMs (OVERLOADED: the statement never started, retry) or when
 * the deadline passes first (the client left); the connection, when it comes, goes back to the pool.
 */
function admit(
  connecting: Promise<pg.PoolClient>,
  deadline: Deadline | undefined,
  waitMs: number,
): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    let gaveUp = false;
    const giveUp = (err: unknown) => {
      gaveUp = true;
      cleanup();
      reject(err);
    };
    let stopWaiting = () => {};
    const timer = setTimeout(() => giveUp(overloaded("database connections")), waitMs);
    const cleanup = () => {
      clearTimeout(timer);
      stopWaiting();
    };
    stopWaiting = deadline?.onDone(giveUp) ?? (() => {});
    connecting.then(
      (client) => {
        cleanup();
        if (gaveUp) client.release();
        else resolve(client);
      },
      (err: unknown) => {
        cleanup();
        if (!gaveUp) reject(err);
      },
    );
  });
}
