import type { Logger } from "pino";
import { reasonDefinition } from "../errors/registry.js";
import type { Metrics } from "../ops/metrics.js";
import type { Exchange } from "./exchange.js";
import { connectCodeName } from "./rpc/status-wire.js";

const MINT_METHOD = "dashboard.v1.DashboardService/CreateIframeToken";

/**
 * The one observation point: every request the edge takes is recorded here
 * when it is over (answered, refused, or given up by its client), with the
 * code and reason it ended with, whatever refused it (the framework, the
 * guard, a drain, the router, the handler). One log line and the metrics;
 * never a token, never an address in a metric label.
 */
export function observeExchange(x: Exchange, o: { log: Logger; metrics: Metrics }): void {
  x.res.once("close", () => record(x, o));
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
  const level = reason === "SERVER_ERROR" ? "error" : x.record.quiet ? "debug" : "info";
  // No line to build when its level is off.
  if (!o.log.isLevelEnabled(level)) return;
  const line = {
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
