import type { Caller } from "../auth/caller.js";
import type { ErrorReason } from "../errors/registry.js";
import type { ServiceError } from "../errors/service-error.js";
import type { BodyBudget } from "./body-budget.js";
import type { HttpRequest, HttpResponse } from "./http-types.js";
import type { RequestTarget } from "./request-target.js";
import type { ServerSpan } from "../tracing/spans.js";

/** The wire protocol a request spoke, as the call log and metrics name it. */
export type WireProtocol = "grpc" | "grpc-web" | "connect" | "rest" | "http";

/**
 * What the observation point reports about a request once it is over. The
 * edge fills it in as the request goes: the route when it is resolved, the
 * protocol when it is negotiated, the caller when the guard lets it through,
 * the outcome when it is answered.
 */
export interface CallRecord {
  /** The RPC ("dashboard.v1.DashboardService/GetDashboard"), the route ("GET /healthz"), or "unknown". */
  route: string;
  protocol: WireProtocol;
  caller: Caller | undefined;
  /** undefined: answered OK. */
  error: ServiceError | undefined;
  /** Probes, reflection and the like are logged at debug level, so they do not drown the API's lines. */
  quiet: boolean;
  /** For REST routes: the path template ("/api/v1/dashboards/{tenant_id}"), the server span's http.route. */
  httpRoute: string | undefined;
}

/** One request on its way through the edge: parsed once, identified once, observed once. */
export class Exchange {
  readonly record: CallRecord = {
    route: "unknown",
    protocol: "http",
    caller: undefined,
    error: undefined,
    quiet: false,
    httpRoute: undefined,
  };
  readonly startedAt = performance.now();
  /** The request's server span; undefined while tracing is off. */
  serverSpan: ServerSpan | undefined;
  private reserved = 0;
  private reservedUnauthenticated = 0;
  // What runs when the response closes, in the order added: one listener on res for all of it.
  private readonly closeHooks: (() => void)[] = [];

  constructor(
    readonly req: HttpRequest,
    readonly res: HttpResponse,
    readonly target: RequestTarget,
    readonly requestId: string,
    readonly clientAddress: string,
    private readonly budget: BodyBudget,
  ) {
    res.once("close", () => {
      this.releaseAll();
      for (const hook of this.closeHooks) hook();
    });
  }

  /** Calls fn once the response has closed, however it ended (answered, refused, reset). */
  onClose(fn: () => void): void {
    this.closeHooks.push(fn);
  }

  /** Body bytes this request holds, counted against the process-wide budget until the request is over. */
  reserve(bytes: number, authenticated: boolean): void {
    this.budget.reserve(bytes, authenticated);
    if (authenticated) this.reserved += bytes;
    else this.reservedUnauthenticated += bytes;
  }

  /** Gives back bytes a stream has consumed before its end. */
  release(bytes: number, authenticated: boolean): void {
    this.budget.release(bytes, authenticated);
    if (authenticated) this.reserved -= bytes;
    else this.reservedUnauthenticated -= bytes;
  }

  /**
   * Calls fn if the client goes away before the answer is complete (at once if it already has): the
   * response closes before the edge ended it. (On an HTTP/2 reset Node's compatibility layer reports
   * the response as finished, so "ended by us" is the one signal both protocols give alike.)
   */
  onClientGone(fn: () => void): void {
    if (this.res.writableEnded) return;
    if (this.res.destroyed) {
      fn();
      return;
    }
    this.onClose(() => {
      if (!this.res.writableEnded) fn();
    });
  }

  /** Whether the answer's status line has gone out (so only a reset can change it now). */
  get answered(): boolean {
    return this.res.headersSent;
  }

  outcomeReason(): ErrorReason | undefined {
    return this.record.error?.reason;
  }

  private releaseAll(): void {
    if (this.reserved > 0) this.budget.release(this.reserved, true);
    if (this.reservedUnauthenticated > 0) this.budget.release(this.reservedUnauthenticated, false);
    this.reserved = 0;
    this.reservedUnauthenticated = 0;
  }
}
