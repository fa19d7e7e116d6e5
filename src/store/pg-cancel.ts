import net from "node:net";
import type pg from "pg";

/** The CancelRequest code of the PostgreSQL wire protocol (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Asks the server to cancel whatever the client's backend is running, the
 * way psql's Ctrl-C does: a 16-byte CancelRequest on a connection of its own,
 * which the server answers by closing it. It needs no authentication beyond
 * the backend's key, so it works even when the pool has no free connection.
 * The statement then fails with 57014 (query_canceled).
 */
export function sendCancelRequest(client: pg.ClientBase): void {
  const { processID, secretKey, host, port } = client as pg.ClientBase & {
    processID: number | null;
    secretKey: number | null;
    host: string;
    port: number;
  };
  if (processID === null || secretKey === null) return;
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  message.writeInt32BE(processID, 8);
  message.writeInt32BE(secretKey, 12);
  const socket = host.startsWith("/") ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host);
  socket.once("connect", () => socket.end(message));
  // Best effort: if the cancel cannot be delivered the statement runs on until its statement_timeout.
  socket.once("error", () => socket.destroy());
  socket.setTimeout(5_000, () => socket.destroy());
}
