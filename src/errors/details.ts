import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "../../gen/google/rpc/status_pb.js";
import { ERROR_DOMAIN, reasonDefinition } from "./registry.js";
import { ServiceError } from "./service-error.js";

/** One error detail: a message and its schema (what google.rpc.Status.details packs as Any). */
export interface ErrorDetail<Desc extends DescMessage = DescMessage> {
  desc: Desc;
  value: MessageShape<Desc>;
}

/**
 * The details every answer for err carries, in this order: exactly one
 * ErrorInfo (AIP-193), a BadRequest naming each bad field when there are
 * any, and a RetryInfo when the reason is retryable.
 */
export function errorDetails(err: ServiceError): ErrorDetail[] {
  const details: ErrorDetail[] = [
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
  const retryAfterMs = retryAfterMsOf(err);
  if (retryAfterMs !== undefined) {
    details.push({
      desc: RetryInfoSchema,
      value: create(RetryInfoSchema, {
        retryDelay: create(DurationSchema, {
          seconds: BigInt(Math.floor(retryAfterMs / 1000)),
          nanos: (retryAfterMs % 1000) * 1e6,
        }),
      }),
    });
  }
  return details;
}

/** When a retry may succeed, in whole milliseconds; undefined for errors that retrying cannot fix. */
export function retryAfterMsOf(err: ServiceError): number | undefined {
  const definition = reasonDefinition(err.reason);
  if (!definition.retryable) return undefined;
  const ms = err.details.retryAfterMs ?? definition.defaultRetryAfterMs;
  return ms === undefined ? undefined : Math.max(0, Math.ceil(ms));
}

/** The google.rpc.Status of err, as gRPC's grpc-status-details-bin carries it. */
export function statusOf(err: ServiceError): Status {
  return create(StatusSchema, {
    code: reasonDefinition(err.reason).code,
    message: err.message,
    details: errorDetails(err).map((d) => anyPack(d.desc, d.value)),
  });
}

export function statusBytes(err: ServiceError): Uint8Array {
  return toBinary(StatusSchema, statusOf(err));
}

/** err as connect-es represents it, for code written against connect's API (tests, reference servers). */
export function toConnectError(err: ServiceError): ConnectError {
  return new ConnectError(
    err.message,
    reasonDefinition(err.reason).code,
    undefined,
    errorDetails(err).map((d) => ({ desc: d.desc, value: d.value })),
    err,
  );
}

/**
 * Anything a call threw, as the ServiceError its answer reports. Errors are
 * shaped where they arise (the store turns an unreachable database into
 * UNAVAILABLE, the edge a bad frame into MALFORMED_REQUEST), so this only
 * names what escaped that: a connect-es error (an unimplemented method) keeps
 * its meaning; anything else is SERVER_ERROR, its cause kept for the log and
 * never sent.
 */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) {
    // Whatever a SERVER_ERROR's message says is for the log: the client only learns that it happened.
    if (err.reason === "SERVER_ERROR" && err.message !== INTERNAL_MESSAGE) {
      return new ServiceError("SERVER_ERROR", INTERNAL_MESSAGE, { cause: err });
    }
    return err;
  }
  if (err instanceof ConnectError && err.code === Code.Unimplemented) {
    return new ServiceError("ROUTE_NOT_FOUND", err.rawMessage, { cause: err });
  }
  return new ServiceError("SERVER_ERROR", INTERNAL_MESSAGE, { cause: err });
}

const INTERNAL_MESSAGE = "internal server error";
