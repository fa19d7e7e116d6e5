import pg from "pg";
import type { Unlisten } from "./sql.js";

/**
 * LISTEN needs a connection of its own that stays open. When it drops (a
 * database restart), notices may be missed, so the listener reports it at once
 * and reconnects with backoff, reporting again when it listens.
 */
export async function listenOnDedicatedClient(
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
