import { cors as connectCors } from "@connectrpc/connect";
import { setEarlyHeader, writeHead, type HttpRequest, type HttpResponse } from "./http-types.js";

/** What browsers may send: Connect's and gRPC-Web's request headers, our bearer token, and REST's If-Match. */
export const CORS_ALLOWED_HEADERS = [...connectCors.allowedHeaders, "authorization", "if-match"];

/** Connect uses POST and GET (NO_SIDE_EFFECTS reads); the REST routes add PATCH and DELETE. */
export const CORS_ALLOWED_METHODS = [...connectCors.allowedMethods, "PATCH", "DELETE"];

/**
 * What browser code may read: the Connect/gRPC-Web status and error headers,
 * and what a client needs to back off or follow up (retry-after, the IETF
 * draft's rate-limit headers, REST's Location, the request id).
 */
export const CORS_EXPOSED_HEADERS = [
  ...connectCors.exposedHeaders,
  "retry-after",
  "ratelimit",
  "ratelimit-policy",
  "ratelimit-limit",
  "ratelimit-remaining",
  "ratelimit-reset",
  "location",
  "etag",
  "x-request-id",
];
const CORS_EXPOSED_HEADERS_VALUE = CORS_EXPOSED_HEADERS.join(", ");

/** Browsers cap this (Chromium at 2 hours); it spares a preflight per call. */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

export interface CorsOptions {
  /** Exact origins (scheme://host[:port]); empty allows none. */
  allowedOrigins: readonly string[];
  /** Origins allowed on renderer-facing routes only (an embed's renderer checking its token), besides those. */
  rendererOrigins?: readonly string[];
}

/** "renderer": a route an embedded renderer calls, open to the renderer origins too. */
export type CorsAudience = "browser" | "renderer";

export type Cors = (req: HttpRequest, res: HttpResponse, audience?: CorsAudience) => "preflight-answered" | "go-on";

/**
 * CORS for the routes browsers call (the API's RPCs and the REST routes). A
 * preflight is answered here, before authentication (browsers never send
 * credentials on it); an actual request from an allowed origin gets the
 * headers that let the page read the answer. A disallowed origin gets no CORS
 * headers, so the browser refuses to hand the answer to the page;
 * non-browser clients are unaffected.
 */
export function createCors(options: CorsOptions): Cors {
  const allowed = new Set(options.allowedOrigins);
  const forRenderers = new Set([...options.allowedOrigins, ...(options.rendererOrigins ?? [])]);
  return (req, res, audience = "browser") => {
    const origin = req.headers.origin;
    // Answers differ by Origin, so caches (Connect GET makes reads cacheable) must key on it, even when it is absent.
    setEarlyHeader(res, "vary", "Origin");
    if (origin === undefined) return "go-on";
    const isAllowed = (audience === "renderer" ? forRenderers : allowed).has(origin);
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      if (!isAllowed) {
        writeHead(res, 403, { "content-length": "0" });
        res.end();
        return "preflight-answered";
      }
      writeHead(res, 204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": CORS_ALLOWED_METHODS.join(", "),
        "access-control-allow-headers": CORS_ALLOWED_HEADERS.join(", "),
        "access-control-max-age": String(PREFLIGHT_MAX_AGE_SECONDS),
        vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
      });
      res.end();
      return "preflight-answered";
    }
    // Set before the answer is written; writeHead writes them with the answer's own.
    if (isAllowed) {
      setEarlyHeader(res, "access-control-allow-origin", origin);
      setEarlyHeader(res, "access-control-expose-headers", CORS_EXPOSED_HEADERS_VALUE);
    }
    return "go-on";
  };
}
