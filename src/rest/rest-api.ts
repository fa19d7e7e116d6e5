import type { CallGuard } from "../call/guard.js";
import { answerHeaders } from "../edge/answer-headers.js";
import { readBody } from "../edge/body.js";
import type { Exchange } from "../edge/exchange.js";
import type { HeaderMap } from "../edge/http-types.js";
import { runCall, type CallSpec, type CallWire } from "../edge/pipeline.js";
import { decodeOrNull } from "../edge/request-target.js";
import type { HttpRoute, RouteFamily } from "../edge/routes.js";
import { ServiceError } from "../errors/service-error.js";
import type { Dashboards } from "../service/dashboards.js";
import { failure, sendEnvelope, type RestResponse } from "./envelope.js";
import { restErrorResponse } from "./error-response.js";
import { openApiDocument } from "./openapi.js";
import { parseJsonObject } from "./read-body.js";
import { dashboardRoutes, type RestRoute, type RouteCall } from "./routes.js";

export const REST_PREFIX = "/api/";
export const OPENAPI_PATH = "/api/v1/openapi.json";

export interface RestApiDeps {
  dashboards: Dashboards;
  /** The same guard the RPCs pass: authentication and rate limits under the RPC's name. */
  guard: CallGuard;
  maxRequestBytes: number;
  /** The deadline of a REST call (the routes have no deadline header of their own). */
  timeoutMs: number;
}

type RouteInput = Omit<RouteCall, "call">;

/**
 * The guide's REST API: every path under /api/ resolves here, so an unknown
 * route there is a 404 in the guide's envelope rather than a Connect error.
 * Each route runs through the edge's one pipeline, under the RPC it stands
 * for: the same guard, budgets, deadline, error registry and call log.
 */
export function restApi(deps: RestApiDeps): RouteFamily {
  const routes = dashboardRoutes(deps.dashboards).map((route) => ({ route, http: restHttpRoute(route, deps) }));
  const notFound = staticRoute("unknown", (x) =>
    sendEnvelope(x.res, failure(404, "NOT_FOUND", `no route for ${x.req.method} ${x.target.path}`)),
  );
  const openApi = staticRoute(`GET ${OPENAPI_PATH}`, (x) =>
    sendEnvelope(x.res, { status: 200, body: openApiDocument, headers: { "cache-control": "public, max-age=300" } }),
  );
  return {
    prefix: REST_PREFIX,
    resolve(method, path) {
      if (method === "GET" && path === OPENAPI_PATH) return openApi;
      // A wrong method on a known path is a 404 too, to stay inside the guide's list of codes.
      return routes.find(({ route }) => route.method === method && route.pattern.test(path))?.http ?? notFound;
    },
  };
}

function restHttpRoute(route: RestRoute, deps: RestApiDeps): HttpRoute {
  const spec: CallSpec<RouteInput, RestResponse> = {
    name: route.rpc,
    access: "caller",
    defaultTimeoutMs: deps.timeoutMs,
    handle: ({ input, caller, deadline }) => route.handle({ ...input, call: { caller: caller!, deadline } }),
  };
  return {
    name: `dashboard.v1.DashboardService/${route.rpc}`,
    servedWhileDraining: false,
    quiet: false,
    browserFacing: true,
    httpRoute: routeTemplate(route.pattern),
    serve: (x) => {
      x.record.protocol = "rest";
      return runCall(x, spec, restWire(x, route, deps.maxRequestBytes), deps.guard);
    },
    refuse: (x, err) => answerError(x, err, route.fieldName, answerHeaders(NOTHING_CHARGED, err)),
  };
}

/** A route's pattern as a path template: /^\/api\/v1\/dashboards\/(?<tenant_id>[^/]+)$/ → /api/v1/dashboards/{tenant_id}. */
export function routeTemplate(pattern: RegExp): string {
  return pattern.source
    .replace(/^\^|\$$/g, "")
    .replace(/\(\?<(\w+)>[^)]*\)/g, "{$1}")
    .replace(/\\(.)/g, "$1");
}

/** The guide's words, not Connect's: REST clients know no readMaxBytes. */
const restTooLarge = (maxBytes: number) =>
  new ServiceError("MESSAGE_TOO_LARGE", `the request is larger than the ${maxBytes}-byte limit`);

/** A call refused before the guard ran was counted against no budget. */
const NOTHING_CHARGED = { rateLimit: undefined, refused: false };

/** The REST side of a call: path parameters, the query and a JSON body in; the guide's envelope out. */
function restWire(x: Exchange, route: RestRoute, maxRequestBytes: number): CallWire<RouteInput, RestResponse> {
  return {
    begin: () => ({ timeoutMs: undefined }),
    read(deadline, authenticated) {
      const match = route.pattern.exec(x.target.path);
      const params: Record<string, string> = {};
      for (const [name, raw] of Object.entries(match?.groups ?? {})) {
        // Malformed percent-encoding is left as it came, so the domain's id rule refuses it by name.
        params[name] = decodeOrNull(raw) ?? raw;
      }
      return Promise.resolve({
        params,
        query: new URLSearchParams(x.target.query),
        header: (name) => x.req.headers[name],
        body: async () => parseJsonObject(await readBody(x, maxRequestBytes, deadline, authenticated, restTooLarge)),
      });
    },
    answer(response, headers) {
      sendEnvelope(x.res, response, headers);
      return Promise.resolve();
    },
    refuse: (err, headers) => answerError(x, err, route.fieldName, headers),
  };
}

function answerError(
  x: Exchange,
  err: ServiceError,
  fieldName: ((field: string) => string) | undefined,
  headers: HeaderMap,
) {
  x.record.protocol = "rest";
  x.record.error = err;
  if (x.res.destroyed || x.res.headersSent) return;
  const response = restErrorResponse(err, fieldName);
  // After refusing an oversized HTTP/1.1 body unread, the connection cannot be reused.
  const close: HeaderMap =
    err.reason === "MESSAGE_TOO_LARGE" && x.req.httpVersionMajor === 1 ? { connection: "close" } : {};
  sendEnvelope(x.res, response, { ...headers, ...close });
}

/** A REST path answered without a call (the OpenAPI document, a 404): no guard, no budget. */
function staticRoute(name: string, answer: (x: Exchange) => void): HttpRoute {
  return {
    name,
    servedWhileDraining: false,
    quiet: false,
    browserFacing: true,
    serve: (x) => {
      x.record.protocol = "rest";
      answer(x);
      if (x.res.statusCode === 404) x.record.error = new ServiceError("ROUTE_NOT_FOUND", "no such REST route");
      return Promise.resolve();
    },
    refuse: (x, err) => answerError(x, err, undefined, answerHeaders(NOTHING_CHARGED, err)),
  };
}
