import type { ErrorReason } from "./registry.js";

export type { ErrorReason } from "./registry.js";

export interface FieldViolation {
  /** The request field, as named in the proto (snake_case). */
  field: string;
  description: string;
}

export interface ServiceErrorDetails {
  fieldViolations?: FieldViolation[];
  /** ErrorInfo metadata: short machine-readable facts (the rate-limit policy, the mask path...). */
  metadata?: Record<string, string>;
  /** When a retry may succeed; defaults to the reason's own suggestion for retryable reasons. */
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * The one error type of the service. Every layer raises these, with the
 * reason that says what went wrong; each protocol edge renders it, through the
 * registry (src/errors/registry.ts), in its own form. It carries no protocol
 * detail (no HTTP status, no headers): the edge derives those.
 */
export class ServiceError extends Error {
  constructor(
    readonly reason: ErrorReason,
    message: string,
    readonly details: ServiceErrorDetails = {},
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

export const malformed = (message: string, cause?: unknown) =>
  new ServiceError("MALFORMED_REQUEST", message, cause === undefined ? {} : { cause });
