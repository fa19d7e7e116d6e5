import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Caller } from "../auth/caller.js";
import { callerKey, clientAddressKey } from "../auth/context.js";
import type { AnswerObserver } from "./front-door.js";
import type { Metrics } from "./metrics.js";
import { REQUEST_ID_HEADER } from "./request-id.js";

export interface CallObserverOptions {
  log: Logger;
  metrics: Metrics;
  /** Level of the per-call line: "info" for the API, "debug" for probes and reflection (they would drown it). */
  level?: "info" | "debug";
}

/** One finished call, whatever its protocol. */
interface FinishedCall {
  requestId: string | undefined;
  /** Fully qualified: "dashboard.v1.DashboardService/GetDashboard". */
  method: string;
  protocol: "grpc" | "grpc-web" | "connect" | "rest";
  /** The gRPC code name ("OK", "NOT_FOUND"...). */
  code: string;
  reason?: string | undefined;
  /** The HTTP status, for REST. */
  status?: number;
  seconds: number;
  caller: Caller | undefined;
  clientAddress: string | undefined;
}

const MINT_METHOD = `${DashboardService.typeName}/CreateIframeToken`;

/** The log line and the metrics of one call: the one place that decides what they hold (never a token). */
function record({ log, metrics, level = "info" }: CallObserverOptions, call: FinishedCall): void {
  metrics.calls.inc({ method: call.method, code: call.code, protocol: call.protocol });
  metrics.duration.observe({ method: call.method, code: call.code }, call.seconds);
  if (call.reason === "RATE_LIMITED")
    metrics.rateLimitRefusals.inc({ method: call.method.slice(call.method.lastIndexOf("/") + 1) });
  if (call.code === "OK" && call.method === MINT_METHOD) metrics.iframeTokensMinted.inc();
  log[level](
    {
      requestId: call.requestId,
      method: call.method,
      protocol: call.protocol,
      code: call.code,
      ...(call.reason ? { reason: call.reason } : {}),
      ...(call.status ? { status: call.status } : {}),
      durationMs: Math.round(call.seconds * 1e4) / 10,
      caller: call.caller ? { subject: call.caller.subject, organizationId: call.caller.organizationId } : undefined,
      clientAddress: call.clientAddress,
    },
    "call",
  );
}

/**
 * One structured log line and the metrics for every RPC. It runs outermost,
 * so it sees the code the client gets (after errors were shaped, after the
 * guard refused). The caller is read from the context the guard filled in;
 * the token itself is never looked at.
 */
export function callObserver(options: CallObserverOptions): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const method = `${req.service.typeName}/${req.method.name}`;
    const protocol = protocolOf(req.header.get("content-type"));
    const finish = (err: unknown) => {
      const error = err === undefined ? undefined : ConnectError.from(err);
      record(options, {
        requestId: req.header.get(REQUEST_ID_HEADER) ?? undefined,
        method,
        protocol,
        code: error ? codeToString(error.code).toUpperCase() : "OK",
        reason: error?.findDetails(ErrorInfoSchema)[0]?.reason,
        seconds: (performance.now() - started) / 1000,
        caller: req.contextValues.get(callerKey),
        clientAddress: req.contextValues.get(clientAddressKey),
      });
    };
    let res;
    try {
      res = await next(req);
    } catch (err) {
      finish(err);
      throw err;
    }
    if (!res.stream) {
      finish(undefined);
      return res;
    }
    // A streaming answer is done when its last message is sent, not when the handler returns the stream.
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (err) {
          finish(err);
          throw err;
        }
        finish(undefined);
      })(),
    };
  };
}

/** The wire protocol of an RPC, from its content type (Connect GET requests have none). */
export function protocolOf(contentType: string | null): "grpc" | "grpc-web" | "connect" {
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/** The gRPC code a REST status stands for (the REST edge maps reasons to these statuses). */
function codeOfStatus(status: number): { code: string; reason?: string } {
  if (status < 400) return { code: "OK" };
  switch (status) {
    case 400:
    case 422:
      return { code: "INVALID_ARGUMENT" };
    case 401:
      return { code: "UNAUTHENTICATED" };
    case 403:
      return { code: "PERMISSION_DENIED" };
    case 404:
      return { code: "NOT_FOUND" };
    case 409:
      return { code: "ALREADY_EXISTS" };
    case 413:
      return { code: "RESOURCE_EXHAUSTED" };
    case 429:
      return { code: "RESOURCE_EXHAUSTED", reason: "RATE_LIMITED" };
    case 503:
      return { code: "UNAVAILABLE" };
    default:
      return { code: status >= 500 ? "INTERNAL" : "UNKNOWN" };
  }
}

/**
 * The same line and metrics for calls that do not go through Connect (the
 * REST routes): told by the front door when the answer is sent, with the
 * method and caller the call guard recorded. Requests the guard never saw
 * (an unknown path, the OpenAPI document) are not calls.
 */
export function plainCallObserver(options: CallObserverOptions): AnswerObserver {
  return (req, res, rec, seconds) => {
    if (rec.method === undefined || !(req.url ?? "").startsWith("/api/")) return;
    const { code, reason } = codeOfStatus(res.statusCode);
    record(options, {
      requestId: rec.requestId,
      method: `${DashboardService.typeName}/${rec.method}`,
      protocol: "rest",
      code,
      reason,
      status: res.statusCode,
      seconds,
      caller: rec.caller,
      clientAddress: rec.clientAddress,
    });
  };
}
