import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { ErrorReason, ServiceError } from "./service-error.js";

/** The ErrorInfo domain of every error this service returns (AIP-193). */
export const ERROR_DOMAIN = "dashboard-service";

const CODE_OF: Record<ErrorReason, Code> = {
  UNAUTHORIZED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  NOT_FOUND: Code.NotFound,
  VALIDATION_ERROR: Code.InvalidArgument,
  ALREADY_EXISTS: Code.AlreadyExists,
  RATE_LIMITED: Code.ResourceExhausted,
  UNAVAILABLE: Code.Unavailable,
  SERVER_ERROR: Code.Internal,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  // The token under verification is an argument, not the caller's credential: never UNAUTHENTICATED.
  TOKEN_INVALID: Code.InvalidArgument,
  TOKEN_EXPIRED: Code.FailedPrecondition,
  TOKEN_REVOKED: Code.FailedPrecondition,
};

/** The reason reported for errors the framework raises itself (bad framing, oversized bodies...). */
const REASON_OF_CODE: Partial<Record<Code, ErrorReason>> = {
  [Code.InvalidArgument]: "VALIDATION_ERROR",
  [Code.ResourceExhausted]: "VALIDATION_ERROR",
  [Code.Unauthenticated]: "UNAUTHORIZED",
  [Code.PermissionDenied]: "FORBIDDEN",
  [Code.NotFound]: "NOT_FOUND",
  [Code.Unimplemented]: "NOT_FOUND",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DeadlineExceeded]: "UNAVAILABLE",
  [Code.Canceled]: "UNAVAILABLE",
};

export function serviceErrorToConnect(err: ServiceError): ConnectError {
  const details: ConstructorParameters<typeof ConnectError>[3] & object = [
    {
      desc: ErrorInfoSchema,
      value: create(ErrorInfoSchema, { reason: err.reason, domain: ERROR_DOMAIN, metadata: err.details.metadata ?? {} }),
    },
  ];
  if (err.details.fieldViolations?.length) {
    details.push({
      desc: BadRequestSchema,
      value: create(BadRequestSchema, { fieldViolations: err.details.fieldViolations }),
    });
  }
  if (err.details.retryAfterMs !== undefined) {
    const ms = Math.max(0, Math.ceil(err.details.retryAfterMs));
    details.push({
      desc: RetryInfoSchema,
      value: create(RetryInfoSchema, {
        retryDelay: create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 }),
      }),
    });
  }
  // Error metadata becomes response headers (Connect, gRPC-Web) or trailers (gRPC).
  const metadata = err.details.headers ? new Headers(err.details.headers) : undefined;
  return new ConnectError(err.message, CODE_OF[err.reason], metadata, details, err);
}

/** The ErrorInfo for an error that carries only a code (raised by the framework, not by us). */
export function errorInfoForCode(code: Code) {
  return create(ErrorInfoSchema, { reason: REASON_OF_CODE[code] ?? "SERVER_ERROR", domain: ERROR_DOMAIN });
}

/**
 * Gives a ConnectError raised by the framework itself its one ErrorInfo, so
 * clients can rely on every error carrying exactly one.
 */
export function withErrorInfo(err: ConnectError): ConnectError {
  if (err.findDetails(ErrorInfoSchema).length > 0) return err;
  const reason = REASON_OF_CODE[err.code] ?? "SERVER_ERROR";
  const message = reason === "SERVER_ERROR" ? "internal server error" : err.rawMessage;
  return new ConnectError(
    message,
    reason === "SERVER_ERROR" ? Code.Internal : err.code,
    err.metadata,
    [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN }) }],
    err,
  );
}
