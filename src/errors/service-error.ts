/**
 * The domain's errors. Every path (Connect, gRPC, REST) raises these and each
 * edge translates them to its own protocol, so a rule's outcome is decided once.
 * Reasons are the guide's codes; they are stable API.
 */
export type ErrorReason =
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "VALIDATION_ERROR"
  | "ALREADY_EXISTS"
  | "RATE_LIMITED"
  | "UNAVAILABLE"
  | "SERVER_ERROR"
  // An operation that is not possible in the server's current configuration (e.g. rotating an env-configured key).
  | "FAILED_PRECONDITION"
  // Iframe-token verification outcomes, distinct so an embed can refresh on expiry instead of failing.
  | "TOKEN_EXPIRED"
  | "TOKEN_REVOKED"
  | "TOKEN_INVALID";

export interface FieldViolation {
  /** The request field, as named in the proto (snake_case). */
  field: string;
  description: string;
}

export class ServiceError extends Error {
  constructor(
    readonly reason: ErrorReason,
    message: string,
    readonly details: {
      fieldViolations?: FieldViolation[];
      metadata?: Record<string, string>;
      /** For RATE_LIMITED and UNAVAILABLE: when a retry may succeed. */
      retryAfterMs?: number;
      /** Response headers every protocol edge sends with this error (e.g. retry-after and ratelimit-*). */
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "ServiceError";
  }
}

export const unauthenticated = (message = "missing or invalid credentials") =>
  new ServiceError("UNAUTHORIZED", message);

export const forbidden = (message = "the caller may not access this tenant") => new ServiceError("FORBIDDEN", message);

export const notFound = (message: string) => new ServiceError("NOT_FOUND", message);

export const alreadyExists = (message: string) => new ServiceError("ALREADY_EXISTS", message);

export const invalidArgument = (fieldViolations: FieldViolation[]) =>
  new ServiceError(
    "VALIDATION_ERROR",
    fieldViolations.map((v) => `${v.field}: ${v.description}`).join("; ") || "invalid request",
    { fieldViolations },
  );
