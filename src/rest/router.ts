import type { Logger } from "pino";
import type { CallGuard } from "../server/call-guard.js";
import type { PlainRoute } from "../server/http-handler.js";
import type { Dashboards } from "../service/dashboards.js";
import { rateLimitHeaders } from "../ratelimit/headers.js";
import type { RateLimitOutcome } from "../ratelimit/rate-limiter.js";
import { failure, sendJson, type RestResponse } from "./envelope.js";
import { errorToRest } from "./error-response.js";
import type { PlainRequest } from "./http-types.js";
import { openApiDocument } from "./openapi.js";
import { readBody } from "../server/read-body.js";
import { parseJsonObject } from "./read-body.js";
import { dashboardRoutes, type RestRoute } from "./routes.js";

export const REST_PREFIX = "/api/";
export const OPENAPI_PATH = "/api/v1/openapi.json";

export interface RestRouterDeps {
  dashboards: Dashboards;
  /** The same guard the RPCs pass: authentication and rate limits under the RPC's name. */
  guard: CallGuard;
  log: Logger;
  maxRequestBytes: number;
}

/**
 * The guide's REST API as a plain route: it takes every path under /api/, so
 * an unknown route there is a 404 in the guide's envelope rather than a
 * Connect error.
 */
export function createRestRouter(deps: RestRouterDeps): PlainRoute {
  const routes = dashboardRoutes(deps.dashboards);
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith(REST_PREFIX)) return false;
    void answer(deps, routes, req, url).then(
      (response) => sendJson(res, response, closeAfter(req, response)),
      (err: unknown) => {
        deps.log.error({ err }, "REST response failed");
        res.destroy();
      },
    );
    return true;
  };
}

async function answer(deps: RestRouterDeps, routes: RestRoute[], req: PlainRequest, url: URL): Promise<RestResponse> {
  if (req.method === "GET" && url.pathname === OPENAPI_PATH) {
    return { status: 200, body: openApiDocument, headers: { "cache-control": "public, max-age=300" } };
  }
  const found = match(routes, req.method ?? "", url.pathname);
  if (!found) return failure(404, "NOT_FOUND", `no route for ${req.method} ${url.pathname}`);
  const { route, params } = found;
  let rateLimit: RateLimitOutcome | undefined;
  let response: RestResponse;
  try {
    const guarded = await deps.guard({
      method: route.rpc,
      authorization: req.headers.authorization,
      clientAddress: req.socket?.remoteAddress ?? "unknown",
      request: req,
    });
    rateLimit = guarded.rateLimit;
    response = await route.handle({
      caller: guarded.caller,
      params,
      query: url.searchParams,
      body: async () => parseJsonObject(await readBody(req, deps.maxRequestBytes)),
    });
  } catch (err) {
    response = errorToRest(err, deps.log, { method: route.rpc, fieldNames: route.fieldNames });
  }
  // A call counted against a budget reports it, as the RPCs do.
  return rateLimit ? { ...response, headers: { ...rateLimitHeaders(rateLimit), ...response.headers } } : response;
}

function match(
  routes: RestRoute[],
  method: string,
  path: string,
): { route: RestRoute; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    for (const [name, raw] of Object.entries(m.groups ?? {})) params[name] = decodeSegment(raw);
    return { route, params };
  }
  return undefined;
}

/** Malformed percent-encoding is left as it came, so the domain's id rule refuses it by name. */
function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** After refusing an oversized HTTP/1.1 body unread, the connection cannot be reused. */
function closeAfter(req: PlainRequest, response: RestResponse): Record<string, string> {
  return response.status === 413 && req.httpVersionMajor === 1 ? { connection: "close" } : {};
}
