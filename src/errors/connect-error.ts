import { Code, ConnectError } from "@connectrpc/connect";
import { create, toBinary } from "@bufbuild/protobuf";
import { AnySchema, anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
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
      value: create(ErrorInfoSchema, {
        reason: err.reason,
        domain: ERROR_DOMAIN,
        metadata: err.details.metadata ?? {},
      }),
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

/** connect-es reports an undecodable request as INTERNAL; it is the caller's bad input. */
const DECODE_FAILURE = /^(\[internal\] )?(parse binary|cannot decode|premature EOF|invalid UTF-?8)/i;

/**
 * Gives a ConnectError raised by the framework itself (or by a transport path
 * before any interceptor) its one ErrorInfo, so clients can rely on every error
 * carrying exactly one. An error that already has one is returned as it is.
 */
export function withErrorInfo(err: ConnectError): ConnectError {
  if (err.findDetails(ErrorInfoSchema).length > 0) return err;
  const code = err.code === Code.Internal && DECODE_FAILURE.test(err.rawMessage) ? Code.InvalidArgument : err.code;
  const reason = REASON_OF_CODE[code] ?? "SERVER_ERROR";
  const message = reason === "SERVER_ERROR" ? "internal server error" : err.rawMessage;
  return new ConnectError(
    message,
    reason === "SERVER_ERROR" ? Code.Internal : code,
    err.metadata,
    [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN }) }],
    err,
  );
}

/** The google.rpc.Status of an error, as gRPC's grpc-status-details-bin carries it (unpadded base64). */
export function grpcStatusDetails(err: ConnectError): string {
  const details = err.details.map((d) =>
    "desc" in d
      ? anyPack(d.desc, create(d.desc, d.value))
      : create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }),
  );
  const status = create(StatusSchema, { code: err.code, message: err.rawMessage, details });
  return Buffer.from(toBinary(StatusSchema, status)).toString("base64").replace(/=+$/, "");
}
