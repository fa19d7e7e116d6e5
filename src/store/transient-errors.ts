/**
 * Errors that mean "the database is not reachable right now" rather than "this
 * request is wrong": the caller should retry later (UNAVAILABLE), not be told
 * the server is broken.
 */
const TRANSIENT_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN"]);

export function isTransientDatabaseError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutdown, crash, cannot connect now),
    // 53300 too_many_connections: the server is there but cannot take this connection now.
    if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300") {
      return true;
    }
  }
  const message = (err as { message?: unknown }).message;
  // 55000 is object_not_in_prerequisite_state, mostly a permanent mistake; only a database that is
  // "not currently accepting connections" (being dropped, renamed or started) is a passing state.
  if (code === "55000") return typeof message === "string" && message.includes("not currently accepting connections");
  return (
    typeof message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
      message,
    )
  );
}
