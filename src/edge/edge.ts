import type { Logger } from "pino";
import { peerAddressOf } from "../listener/peer.js";
import type { Metrics } from "../ops/metrics.js";
import { ServiceError } from "../errors/service-error.js";
import { answerHeaders } from "./answer-headers.js";
import { BodyBudget, type BodyBudgetOptions } from "./body-budget.js";
import type { ClientIdentity } from "./client-identity.js";
import { createCors, type CorsOptions } from "./cors.js";
import { Exchange } from "./exchange.js";
import {
  earlyHeaders,
  isHttp2,
  setEarlyHeader,
  type HttpRequest,
  type HttpResponse,
  type RequestHandler,
} from "./http-types.js";
import { observeExchange } from "./observe.js";
import { parseTarget, type RequestTarget } from "./request-target.js";
import { REQUEST_ID_HEADER, requestIdFor } from "./request-id.js";
import type { RoutingTable } from "./routes.js";
import { negotiateRpcWire, refuseUnspoken, serveRpc, type RpcServing } from "./rpc/serve-rpc.js";
import type { RpcMethod } from "./rpc/rpc-method.js";
import { answerUnrouted } from "./unrouted.js";
import { startServerSpan, withServerSpan } from "../tracing/spans.js";

export interface EdgeOptions {
  routes: RoutingTable;
  rpc: RpcServing;
  cors: CorsOptions;
  identity: ClientIdentity;
  bodyBudget: BodyBudgetOptions;
  log: Logger;
  metrics: Metrics;
}

export interface Edge {
  handler: RequestHandler;
  /** From now on, new calls are refused SHUTTING_DOWN in their own protocol; calls already inside carry on. */
  startDraining(): void;
  readonly bodyBudget: BodyBudget;
}

const NO_TARGET: RequestTarget = { path: "", query: "", authority: undefined };

/** The longest a refused call's body is waited for before answering anyway (see answerAfterBody). */
const REFUSAL_BODY_WAIT_MS = 1_000;

/**
 * The port's one request handler. Every request, whatever its protocol, goes
 * the same way: inside the last-resort boundary, its target parsed once, its
 * client identified once, observed once, CORS for the routes browsers call,
 * refused while draining unless the route keeps serving, then routed: to the
 * RPC pipeline, or to the route that serves it.
 */
export function createEdge(o: EdgeOptions): Edge {
  const budget = new BodyBudget(o.bodyBudget);
  const cors = createCors(o.cors);
  let draining = false;

  const serve = (req: HttpRequest, res: HttpResponse): Promise<void> | void => {
    const parsed = parseTarget(req.url, req.headers.host ?? req.headers[":authority"], hostLines(req));
    const requestId = requestIdFor(req.headers[REQUEST_ID_HEADER]);
    setEarlyHeader(res, REQUEST_ID_HEADER, requestId);
    const x = new Exchange(
      req,
      res,
      parsed.ok ? parsed.target : NO_TARGET,
      requestId,
      o.identity(peerAddressOf(isHttp2(req) ? req.stream.session?.socket : req.socket), req.headers),
      budget,
    );
    x.serverSpan = startServerSpan(req.headers);
    observeExchange(x, o);
    // Everything the request does from here on runs in its server span, so each span opened on the
    // way (authentication, budgets, SQL, signing) is its child.
    return x.serverSpan ? withServerSpan(x.serverSpan, () => route(x, parsed)) : route(x, parsed);
  };

  const route = (x: Exchange, parsed: ReturnType<typeof parseTarget>): Promise<void> | void => {
    const req = x.req;
    const res = x.res;
    if (!parsed.ok) {
      x.record.route = "invalid";
      return answerUnrouted(x, new ServiceError("MALFORMED_REQUEST", parsed.problem));
    }
    const resolved = o.routes.resolve(req.method ?? "", parsed.target.path);
    if (!resolved) return answerUnrouted(x, new ServiceError("ROUTE_NOT_FOUND", `no route for ${parsed.target.path}`));
    if (resolved.kind === "rpc") {
      const rpc = resolved.rpc;
      x.record.route = `${rpc.service.typeName}/${rpc.method.name}`;
      x.record.quiet = rpc.quiet;
      if (
        rpc.access === "caller" &&
        cors(req, res, rpc.rendererFacing ? "renderer" : "browser") === "preflight-answered"
      )
        return;
      if (draining && !rpc.servedWhileDraining) return refuseRpcWhileDraining(x, rpc, o.rpc.maxTimeoutMs);
      return serveRpc(x, rpc, o.rpc);
    }
    const http = resolved.route;
    x.record.route = http.name;
    x.record.quiet = http.quiet;
    x.record.httpRoute = http.httpRoute;
    if (http.browserFacing && cors(req, res) === "preflight-answered") return;
    if (draining && !http.servedWhileDraining) {
      return answerAfterBody(x, () => {
        const err = shuttingDown();
        x.record.error = err;
        http.refuse(x, err);
      });
    }
    return http.serve(x);
  };

  return {
    bodyBudget: budget,
    startDraining() {
      draining = true;
    },
    handler(req, res) {
      // A draining HTTP/1.1 connection is not reused for another call.
      if (draining && req.httpVersionMajor === 1) setEarlyHeader(res, "connection", "close");
      let served: Promise<void> | void;
      try {
        served = serve(req, res);
      } catch (err) {
        lastResort(o, req, res, err);
        return;
      }
      served?.catch((err: unknown) => lastResort(o, req, res, err));
    },
  };
}

function refuseRpcWhileDraining(x: Exchange, rpc: RpcMethod, maxTimeoutMs: number): void {
  answerAfterBody(x, () => {
    try {
      const err = shuttingDown();
      x.record.error = err;
      negotiateRpcWire(x, rpc, maxTimeoutMs).refuse(err, answerHeaders({ rateLimit: undefined, refused: false }, err));
    } catch (err) {
      refuseUnspoken(x, err as ServiceError);
    }
  });
}

/** How many Host lines an HTTP/1 request carried (HTTP/2 has one :authority). */
function hostLines(req: HttpRequest): number {
  if (isHttp2(req)) return 1;
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === "host") n++;
  return n;
}

const shuttingDown = () =>
  new ServiceError("SHUTTING_DOWN", "the server is shutting down; retry the call", { retryAfterMs: 1000 });

/**
 * Answers once the request's body has arrived (it is read and dropped):
 * answering and closing while the client still writes would make it see a
 * reset instead of the answer. Bounded by REFUSAL_BODY_WAIT_MS.
 */
function answerAfterBody(x: Exchange, answer: () => void): void {
  let answered = false;
  const once = () => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    answer();
  };
  const timer = setTimeout(once, REFUSAL_BODY_WAIT_MS);
  if (x.req.complete) return once();
  x.req.once("end", once);
  x.req.once("error", once);
  x.req.resume();
}

/**
 * The last-resort boundary: anything a request's handling throws, however it
 * got past everything else, ends here. It is logged once and counted, the
 * client gets a well-formed INTERNAL in its protocol (or a reset, if the
 * answer had begun), and the process carries on. A test fails if it is ever
 * reached, since every error should have been shaped where it arose.
 */
function lastResort(o: EdgeOptions, req: HttpRequest, res: HttpResponse, err: unknown): void {
  o.metrics.unexpectedErrors.inc({ where: "request" });
  o.log.error({ err, url: String(req.url).slice(0, 200) }, "unexpected error while serving a request");
  try {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const internal = new ServiceError("SERVER_ERROR", "internal server error", { cause: err });
    const x = new Exchange(
      req,
      res,
      NO_TARGET,
      earlyHeaders(res)?.[REQUEST_ID_HEADER] ?? "",
      "unknown",
      new BodyBudget({ maxBytes: 0, maxUnauthenticatedBytes: 0 }),
    );
    answerUnrouted(x, internal);
  } catch {
    res.destroy();
  }
}
