import { Code } from "@connectrpc/connect";

/**
 * Every error reason the service answers with, defined once: its gRPC/Connect
 * code, the HTTP status the REST routes answer with, and what it sets on the
 * answer. The protocol edges, the REST edge, the call log and the metrics all
 * read this table; nothing else maps reasons to codes or statuses.
 *
 * Reasons are stable API (ErrorInfo.reason, domain "dashboard-service").
 */
export interface ReasonDefinition {
  code: Code;
  /** The REST routes' status; RPC protocols derive theirs from the code, as their specs say. */
  httpStatus: number;
  /** Safe to retry as is, later: the answer carries RetryInfo and Retry-After. */
  retryable: boolean;
  /** The delay suggested when the error itself names none. */
  defaultRetryAfterMs?: number;
  /** REST answers name the auth scheme to use (WWW-Authenticate). */
  challenge?: boolean;
}

export const REASONS = {
  // The domain's, from the original guide (their REST statuses are the guide's).
  UNAUTHORIZED: { code: Code.Unauthenticated, httpStatus: 401, retryable: false, challenge: true },
  FORBIDDEN: { code: Code.PermissionDenied, httpStatus: 403, retryable: false },
  NOT_FOUND: { code: Code.NotFound, httpStatus: 404, retryable: false },
  VALIDATION_ERROR: { code: Code.InvalidArgument, httpStatus: 422, retryable: false },
  ALREADY_EXISTS: { code: Code.AlreadyExists, httpStatus: 409, retryable: false },
  RATE_LIMITED: { code: Code.ResourceExhausted, httpStatus: 429, retryable: true, defaultRetryAfterMs: 1000 },
  UNAVAILABLE: { code: Code.Unavailable, httpStatus: 503, retryable: true, defaultRetryAfterMs: 1000 },
  SERVER_ERROR: { code: Code.Internal, httpStatus: 500, retryable: false },
  // Not possible in the server's current configuration (e.g. rotating an environment-configured key).
  FAILED_PRECONDITION: { code: Code.FailedPrecondition, httpStatus: 409, retryable: false },
  // Iframe-token verification outcomes; the token is an argument, not the caller's credential.
  TOKEN_INVALID: { code: Code.InvalidArgument, httpStatus: 422, retryable: false },
  TOKEN_EXPIRED: { code: Code.FailedPrecondition, httpStatus: 409, retryable: false },
  TOKEN_REVOKED: { code: Code.FailedPrecondition, httpStatus: 409, retryable: false },
  /** The dashboard changed since the etag the update was based on (AIP-154): re-read and retry the edit. */
  ETAG_MISMATCH: { code: Code.Aborted, httpStatus: 412, retryable: false },
  /** Embedding of the dashboard is paused: no token is minted, existing ones are refused until it resumes. */
  EMBEDDING_PAUSED: { code: Code.FailedPrecondition, httpStatus: 409, retryable: false },
  /** The token is bound to an origin the dashboard no longer allows. */
  ORIGIN_NOT_ALLOWED: { code: Code.FailedPrecondition, httpStatus: 409, retryable: false },
  /** The organization has as many published signing keys as it may; retry once its oldest retired key's window ends. */
  TOO_MANY_SIGNING_KEYS: {
    code: Code.ResourceExhausted,
    httpStatus: 429,
    retryable: true,
    defaultRetryAfterMs: 60_000,
  },
  /** An iframe token was the credential of a call other than VerifyIframeToken of that very token. */
  IFRAME_TOKEN_OUT_OF_SCOPE: { code: Code.PermissionDenied, httpStatus: 403, retryable: false },
  /** A list's AIP-160 `filter` is not in the subset the list understands (with a BadRequest on `filter`). */
  INVALID_FILTER: { code: Code.InvalidArgument, httpStatus: 422, retryable: false },

  // The edge's: refusals raised before a call reaches its handler.
  /** Not a well-formed request: target, authority, framing, message encoding, a timeout or GET parameter. */
  MALFORMED_REQUEST: { code: Code.InvalidArgument, httpStatus: 400, retryable: false },
  /** A unary method sent no message or more than one (a stream to a method that takes one): as connect answers it. */
  WRONG_MESSAGE_COUNT: { code: Code.Unimplemented, httpStatus: 400, retryable: false },
  /** A frame flagged compressed on a request that declared no compression: a protocol error (gRPC says INTERNAL). */
  UNDECLARED_COMPRESSION: { code: Code.Internal, httpStatus: 400, retryable: false },
  /** Larger than MAX_REQUEST_BYTES, compressed or once decompressed. */
  MESSAGE_TOO_LARGE: { code: Code.ResourceExhausted, httpStatus: 413, retryable: false },
  /** A content type no protocol on this path speaks. */
  UNSUPPORTED_MEDIA_TYPE: { code: Code.InvalidArgument, httpStatus: 415, retryable: false },
  /** An HTTP method the path does not take (GET on an RPC with side effects, for one). */
  METHOD_NOT_ALLOWED: { code: Code.InvalidArgument, httpStatus: 405, retryable: false },
  /** A bidirectional stream over HTTP/1.1, which cannot carry one. */
  HTTP_VERSION_NOT_SUPPORTED: { code: Code.InvalidArgument, httpStatus: 505, retryable: false },
  /** No such route, RPC or service; or a compression the server does not implement. */
  ROUTE_NOT_FOUND: { code: Code.Unimplemented, httpStatus: 404, retryable: false },
  UNSUPPORTED_COMPRESSION: { code: Code.Unimplemented, httpStatus: 415, retryable: false },
  /** The call's deadline passed before it was done; what it had started was rolled back. */
  DEADLINE_EXCEEDED: { code: Code.DeadlineExceeded, httpStatus: 504, retryable: false },
  /** The client went away before the answer. */
  CANCELED: { code: Code.Canceled, httpStatus: 499, retryable: false },
  /** This replica is shutting down: retry, another one will answer. */
  SHUTTING_DOWN: { code: Code.Unavailable, httpStatus: 503, retryable: true, defaultRetryAfterMs: 1000 },
  /** A process-wide capacity (buffered request bytes, open streams) is used up for now. */
  OVERLOADED: { code: Code.Unavailable, httpStatus: 503, retryable: true, defaultRetryAfterMs: 1000 },
  /** This connection has as many streams of this kind open as it may. */
  TOO_MANY_STREAMS: { code: Code.ResourceExhausted, httpStatus: 429, retryable: true, defaultRetryAfterMs: 1000 },
} as const satisfies Record<string, ReasonDefinition>;

export type ErrorReason = keyof typeof REASONS;

export function reasonDefinition(reason: ErrorReason): ReasonDefinition {
  return REASONS[reason];
}

/** The ErrorInfo domain of every error this service returns (AIP-193). */
export const ERROR_DOMAIN = "dashboard-service";
