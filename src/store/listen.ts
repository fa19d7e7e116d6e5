import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import pg from "pg";
import type { Unlisten } from "./sql.js";

/** Where every listener sends (and hears) its own heartbeats; payloads carry the listener's id. */
export const HEARTBEAT_CHANNEL = "dashboard_service_heartbeat";

/** Runs fn every ms until the returned function is called; tests pass one they drive by hand. */
export type Every = (ms: number, fn: () => void) => () => void;

export const everyInterval: Every = (ms, fn) => {
  const timer = setInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export interface ListenOptions {
  /** How often the listener proves it still receives notices (LISTEN_HEARTBEAT_MS). */
  heartbeatMs: number;
  every?: Every;
}

/** Heartbeats missed in a row after which the connection is given up and replaced. */
const MISSES_BEFORE_RECONNECT = 2;

/**
 * LISTEN needs a connection of its own that stays open. Two things can go
 * wrong with it, and both mean notices may be missed:
 * - it drops (a database restart): `error`/`end` fire, the listener reports
 *   it at once and reconnects with backoff, reporting again when it listens;
 * - it goes half-open (a peer or middlebox vanished without a FIN or RST):
 *   nothing fires, notices just stop. TCP keepalive notices that only after
 *   minutes, so every heartbeatMs the listener sends a NOTIFY to itself over
 *   the same connection and expects it back before the next tick. A missed
 *   one reports "not listening" (the cache is bypassed and cleared); the next
 *   heartbeat heard reports "listening" again; two missed in a row replace
 *   the connection. Notices reach a listener in commit order, so hearing a
 *   heartbeat sent after a change proves that change's notice arrived first:
 *   a change is missed for at most two heartbeat intervals.
 */
export async function listenOnDedicatedClient(
  url: string,
  channel: string,
  onPayload: (payload: string) => void,
  onListening: (listening: boolean) => void,
  options: ListenOptions,
): Promise<Unlisten> {
  const every = options.every ?? everyInterval;
  const id = randomUUID();
  let closed = false;
  let client: pg.Client | undefined;
  let retryMs = 100;
  let timer: NodeJS.Timeout | undefined;
  // Liveness of the current connection: the heartbeat awaited (if any) and how many went unanswered.
  let alive = false;
  let awaited: string | undefined;
  let sequence = 0;
  let misses = 0;
  let dropCurrent: (() => void) | undefined;
  const report = (now: boolean) => {
    if (alive === now) return;
    alive = now;
    onListening(now);
  };

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: url,
      application_name: "dashboard-service-listener",
      keepAlive: true,
      keepAliveInitialDelayMillis: options.heartbeatMs,
    });
    const lost = () => {
      if (client !== c) return;
      client = undefined;
      awaited = undefined;
      misses = 0;
      report(false);
      // end() waits for the server's goodbye, which a half-open connection never sends.
      (c as unknown as { connection?: { stream?: Socket } }).connection?.stream?.destroy();
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
    dropCurrent = lost;
    c.on("notification", (n) => {
      if (client !== c || n.payload === undefined) return;
      if (n.channel === channel) onPayload(n.payload);
      else if (n.channel === HEARTBEAT_CHANNEL && n.payload === awaited) {
        awaited = undefined;
        misses = 0;
        report(true);
      }
    });
    client = c;
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}; LISTEN ${pg.escapeIdentifier(HEARTBEAT_CHANNEL)}`);
      retryMs = 100;
      if (client === c && !closed) report(true);
    } catch {
      lost();
    }
  };

  const beat = () => {
    const c = client;
    if (closed || !c) return;
    if (awaited !== undefined) {
      misses++;
      report(false);
      if (misses >= MISSES_BEFORE_RECONNECT) {
        dropCurrent?.();
        return;
      }
    }
    awaited = `${id}:${++sequence}`;
    // Not awaited: on a half-open connection it never answers; the next tick notices instead.
    c.query("SELECT pg_notify($1, $2)", [HEARTBEAT_CHANNEL, awaited]).catch(() => {});
  };
  const stopBeating = every(options.heartbeatMs, beat);

  await connect();
  return async () => {
    closed = true;
    stopBeating();
    clearTimeout(timer);
    const c = client;
    client = undefined;
    report(false);
    await c?.end().catch(() => {});
  };
}
