import type { Deadline } from "../call/deadline.js";
import { ServiceError } from "../errors/service-error.js";
import { isTransientDatabaseError } from "./transient-errors.js";

const QUERY_CANCELED = "57014";

/**
 * A database error, shaped where it arises: a statement cut short because
 * its call's deadline passed (or its client left) reports that; a database
 * that cannot be reached, or that cut a statement on its own timeout, is
 * UNAVAILABLE (retry later); anything else stays as it is (a constraint the
 * store turns into a domain error, or a bug that becomes SERVER_ERROR).
 */
export function shapeDatabaseError(err: unknown, deadline: Deadline | undefined): unknown {
  if (err instanceof ServiceError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  // Not only the deadline's timer: PostgreSQL's statement_timeout is the time the call had left, and can
  // cut the statement before a busy event loop has run that timer.
  const ended = deadline?.reasonNow();
  if (ended) return ended;
  if (code === QUERY_CANCELED || isTransientDatabaseError(err)) {
    return new ServiceError("UNAVAILABLE", "the service is temporarily unavailable, retry later", { cause: err });
  }
  return err;
}
