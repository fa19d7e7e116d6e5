import type { Logger } from "pino";
import { reasonDefinition, type ErrorReason } from "../errors/registry.js";
import type { Metrics } from "../ops/metrics.js";
import type { Exchange } from "./exchange.js";
import { connectCodeName } from "./rpc/status-wire.js";
import { callerTraceId, SpanStatusCode, type Attributes } from "../tracing/spans.js";

const MINT_METHOD = "dashboard.v1.DashboardService/CreateIframeToken";

/**
 * The one observation point: every request the edge takes is recorded here
 * when it is over (answered, refused, or given up by its client), with the
 * code and reason it ended with, whatever refused it (the framework, the
 * guard, a drain, the router, the handler). One log line and the metrics;
 * never a token, never an address in a metric label.
 */
export function observeExchange(x: Exchange, o: { log: Logger; metrics: Metrics }): void {
  x.onClose(() => record(x, o));
}

/** Metric children by their labels, bound once: label sets are few (routes × codes × protocols). */
interface Bound {
  calls: { inc(): void };
  duration: { observe(v: number): void };
}
const children = new WeakMap<Metrics, Map<string, Bound>>();

function metricChildren(metrics: Metrics, method: string, code: string, protocol: string, reason: string) {
  let byLabels = children.get(metrics);
  if (!byLabels) children.set(metrics, (byLabels = new Map<string, Bound>()));
  const key = `${method}\u0000${code}\u0000${protocol}\u0000${reason}`;
  let bound = byLabels.get(key);
  if (!bound) {
    bound = {
      calls: metrics.calls.labels({ method, code, protocol, reason }),
      duration: metrics.duration.labels({ method, code }),
    };
    byLabels.set(key, bound);
  }
  return bound;
}

function record(x: Exchange, o: { log: Logger; metrics: Metrics }): void {
  // Ended by the edge; otherwise the client left first (see Exchange.onClientGone).
  const finished = x.res.writableEnded;
  const err = x.record.error;
  let reason = err?.reason;
  // Gone before its answer was out, with nothing else to say: the client cancelled.
  if (!finished && !err) reason = "CANCELED";
  // gRPC's code names, as Prometheus queries and the call log have always spelled them (OK, NOT_FOUND).
  const code = reason === undefined ? "OK" : connectCodeName(reasonDefinition(reason).code).toUpperCase();
  const seconds = (performance.now() - x.startedAt) / 1000;
  const bound = metricChildren(o.metrics, x.record.route, code, x.record.protocol, reason ?? "");
  bound.calls.inc();
  bound.duration.observe(seconds);
  if (reason === "RATE_LIMITED") {
    o.metrics.rateLimitRefusals.inc({ method: x.record.route.slice(x.record.route.lastIndexOf("/") + 1) });
  }
  if (code === "OK" && x.record.route === MINT_METHOD) o.metrics.iframeTokensMinted.inc();
  const ids = x.serverSpan?.span.spanContext();
  if (x.serverSpan) endServerSpan(x, reason);
  const level = reason === "SERVER_ERROR" ? "error" : x.record.quiet ? "debug" : "info";
  // No line to build when its level is off.
  if (!o.log.isLevelEnabled(level)) return;
  const line = {
    // The server span's ids; with tracing off, the caller's trace (from its traceparent) where it sent one.
    ...(ids ? { trace_id: ids.traceId, span_id: ids.spanId } : traceOf(x.req.headers.traceparent)),
    requestId: x.requestId,
    method: x.record.route,
    protocol: x.record.protocol,
    code,
    ...(reason ? { reason } : {}),
    status: x.res.statusCode,
    durationMs: Math.round(seconds * 1e4) / 10,
    caller: x.record.caller
      ? { subject: x.record.caller.subject, organizationId: x.record.caller.organizationId }
      : undefined,
    clientAddress: x.clientAddress,
    ...(finished ? {} : { completed: false }),
  };
  if (reason === "SERVER_ERROR") {
    // The cause (a stack, SQL) is for the log only; the client got "internal server error".
    o.log.error({ ...line, err: err?.cause ?? err }, "call failed");
  } else if (x.record.quiet) o.log.debug(line, "call");
  else o.log.info(line, "call");
}

function traceOf(traceparent: string | string[] | undefined): { trace_id?: string } {
  const traceId = callerTraceId(traceparent);
  return traceId === undefined ? {} : { trace_id: traceId };
}

/** gRPC codes the semantic conventions count as the server's failure (the others are the caller's). */
const SERVER_FAULTS = new Set([2, 4, 12, 13, 14, 15]);

/**
 * Names the server span and gives it the RPC or HTTP semantic-convention attributes, once the outcome
 * is known. Nothing a caller sent goes in: no path (it holds ids and, for Connect GETs, the message),
 * no query, no header.
 */
function endServerSpan(x: Exchange, reason: ErrorReason | undefined): void {
  const { span } = x.serverSpan!;
  const code = reason === undefined ? 0 : reasonDefinition(reason).code;
  const r = x.record;
  const method = x.req.method ?? "";
  const attributes: Attributes = {
    "http.request.method": method,
    "http.response.status_code": x.res.statusCode,
    "network.protocol.version": x.req.httpVersionMajor === 2 ? "2" : x.req.httpVersion,
    "dashboard.request_id": x.requestId,
  };
  const slash = r.route.lastIndexOf("/");
  if (r.protocol === "rest") {
    span.updateName(r.httpRoute ? `${method} ${r.httpRoute}` : r.route === "unknown" ? method : r.route);
    if (r.httpRoute) attributes["http.route"] = r.httpRoute;
  } else if (r.protocol !== "http" && slash > 0) {
    span.updateName(r.route);
    attributes["rpc.system"] = r.protocol === "connect" ? "connect_rpc" : "grpc";
    attributes["rpc.service"] = r.route.slice(0, slash);
    attributes["rpc.method"] = r.route.slice(slash + 1);
    if (r.protocol === "connect") {
      if (reason) attributes["rpc.connect_rpc.error_code"] = connectCodeName(reasonDefinition(reason).code);
    } else attributes["rpc.grpc.status_code"] = code;
  } else span.updateName(r.route === "unknown" || r.route === "invalid" ? method : r.route);
  if (reason) attributes["error.type"] = reason;
  span.setAttributes(attributes);
  if (x.res.statusCode >= 500 || (reason && SERVER_FAULTS.has(code))) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
