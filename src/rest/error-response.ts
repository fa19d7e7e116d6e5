import type { OutgoingHttpHeaders } from "node:http";
import type { Logger } from "pino";
import { ServiceError, type ErrorReason } from "../errors/service-error.js";
import { isTransientDatabaseError } from "../store/transient-errors.js";
import { failure, type RestResponse } from "./envelope.js";
import { BodyTooLargeError } from "../server/read-body.js";

/** The guide's statuses, plus 409, 429 and 503 for what the guide did not have. */
export const STATUS_OF: Record<ErrorReason, number> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VALIDATION_ERROR: 422,
  ALREADY_EXISTS: 409,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  SERVER_ERROR: 500,
  // Added by issue 4 (iframe tokens) so the map stays total; no REST route raises these today.
  FAILED_PRECONDITION: 409,
  TOKEN_INVALID: 422,
  TOKEN_EXPIRED: 409,
  TOKEN_REVOKED: 409,
};

export interface ErrorContext {
  /** The RPC the route stands for, for logs. */
  method: string;
  /** REST names for fields the domain names as in the proto (e.g. page_size → limit). */
  fieldNames?: Record<string, string>;
}

/**
 * Any error thrown while serving a REST route, as the guide's error envelope.
 * Domain errors keep their reason and message; transient database errors are
 * 503 UNAVAILABLE with Retry-After; anything else is a generic 500 whose cause
 * is logged and never sent.
 */
export function errorToRest(err: unknown, log: Logger, ctx: ErrorContext): RestResponse {
  if (err instanceof BodyTooLargeError) return failure(413, err.reason, err.message);
  if (err instanceof ServiceError) {
    if (err.reason === "SERVER_ERROR") {
      log.error({ err, method: ctx.method }, "REST call failed");
      return failure(500, "SERVER_ERROR", "internal server error");
    }
    return failure(STATUS_OF[err.reason], err.reason, messageOf(err, ctx.fieldNames), headersOf(err));
  }
  if (isTransientDatabaseError(err)) {
    log.warn({ err, method: ctx.method }, "database unavailable");
    return failure(503, "UNAVAILABLE", "the service is temporarily unavailable, retry later", { "retry-after": "1" });
  }
  log.error({ err, method: ctx.method }, "REST call failed with an unexpected error");
  return failure(500, "SERVER_ERROR", "internal server error");
}

function messageOf(err: ServiceError, fieldNames: Record<string, string> = {}): string {
  const violations = err.details.fieldViolations;
  if (!violations?.length) return err.message;
  return violations.map((v) => `${fieldNames[v.field] ?? v.field}: ${v.description}`).join("; ");
}

/** What the client needs to act on the error: the auth scheme to use, when to retry, the rate-limit state. */
function headersOf(err: ServiceError): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  if (err.reason === "UNAUTHORIZED") headers["www-authenticate"] = 'Bearer realm="dashboard-service"';
  if (err.details.retryAfterMs !== undefined) {
    headers["retry-after"] = String(Math.max(0, Math.ceil(err.details.retryAfterMs / 1000)));
  }
  // The limiter's own headers (retry-after, ratelimit-*) win: every protocol edge sends the same ones.
  return { ...headers, ...err.details.headers };
}
