import { toBinary, toJson } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { Code } from "@connectrpc/connect";
import { errorDetails, statusBytes } from "../../errors/details.js";
import { reasonDefinition } from "../../errors/registry.js";
import type { ServiceError } from "../../errors/service-error.js";
import type { HeaderMap } from "../http-types.js";

/**
 * How an error (or success) is written on each RPC protocol: gRPC's status
 * headers and Connect's error JSON, exactly as the two specs (and connect-node)
 * write them, with the details every error carries.
 */

/** gRPC's grpc-status, grpc-message and grpc-status-details-bin (trailers, or gRPC-Web's trailer frame). */
export function grpcStatusHeaders(err: ServiceError | undefined): HeaderMap {
  if (!err) return { "grpc-status": "0" };
  return {
    "grpc-status": String(reasonDefinition(err.reason).code),
    // Percent-encoded (gRPC spec: "Percent-Encoded"); made well-formed first, so a lone surrogate cannot throw here.
    "grpc-message": encodeURIComponent(err.message.toWellFormed()),
    "grpc-status-details-bin": base64Encode(statusBytes(err), "std_raw"),
  };
}

const CODE_NAMES: Record<Code, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

/** The code as the Connect protocol (and the call log) names it: "invalid_argument". */
export function connectCodeName(code: Code): string {
  return CODE_NAMES[code] ?? "unknown";
}

/** The HTTP status of a Connect unary error, from the Connect protocol's table. */
export function connectHttpStatus(code: Code): number {
  switch (code) {
    case Code.Canceled:
      return 499;
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.DeadlineExceeded:
      return 504;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 429;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.Unauthenticated:
      return 401;
    default:
      return 500;
  }
}

/** Connect's error JSON: code, message, and each detail's type, human-readable form and base64 bytes. */
export function connectErrorJson(err: ServiceError): Record<string, unknown> {
  const json: Record<string, unknown> = { code: connectCodeName(reasonDefinition(err.reason).code) };
  if (err.message.length > 0) json.message = err.message.toWellFormed();
  json.details = errorDetails(err).map((d) => ({
    type: d.desc.typeName,
    debug: toJson(d.desc, d.value),
    value: base64Encode(toBinary(d.desc, d.value), "std_raw"),
  }));
  return json;
}

export function connectErrorBytes(err: ServiceError): Uint8Array {
  return Buffer.from(JSON.stringify(connectErrorJson(err)));
}

/** gRPC-Web's trailer frame payload: "name: value" lines, names lower-case and in order, as connect-node writes them. */
export function grpcWebTrailerBytes(trailers: HeaderMap): Uint8Array {
  let text = "";
  for (const name of Object.keys(trailers).sort()) text += `${name}: ${trailers[name]}\r\n`;
  return Buffer.from(text);
}
