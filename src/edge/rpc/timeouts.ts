import { malformed } from "../../errors/service-error.js";

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };
const CONNECT_TIMEOUT = /^\d{1,10}$/;

/**
 * The deadline a call's client gave, in milliseconds, as the gRPC-over-HTTP/2
 * spec (`grpc-timeout`: at most 8 digits and a unit) and the Connect spec
 * (`connect-timeout-ms`: at most 10 digits) write it. A malformed value, or
 * one above the server's maximum, is refused the way connect-node refuses it
 * (INVALID_ARGUMENT, with the same message), here with reason MALFORMED_REQUEST.
 */
export function parseGrpcTimeout(value: string | undefined, maxTimeoutMs: number): number | undefined {
  if (value === undefined) return undefined;
  const match = GRPC_TIMEOUT.exec(value);
  if (!match) throw malformed(`protocol error: invalid grpc timeout value: ${value}`);
  return bounded(GRPC_UNIT_MS[match[2]!]! * parseInt(match[1]!, 10), maxTimeoutMs);
}

export function parseConnectTimeout(value: string | undefined, maxTimeoutMs: number): number | undefined {
  if (value === undefined) return undefined;
  if (!CONNECT_TIMEOUT.test(value)) throw malformed(`protocol error: invalid connect timeout value: ${value}`);
  return bounded(parseInt(value, 10), maxTimeoutMs);
}

function bounded(timeoutMs: number, maxTimeoutMs: number): number {
  if (timeoutMs > maxTimeoutMs) throw malformed(`timeout ${timeoutMs}ms must be <= ${maxTimeoutMs}`);
  return timeoutMs;
}
