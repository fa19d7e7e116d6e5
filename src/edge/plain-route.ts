import { toServiceError } from "../errors/details.js";
import { answerHeaders } from "./answer-headers.js";
import { reasonDefinition } from "../errors/registry.js";
import { ServiceError } from "../errors/service-error.js";
import type { Exchange } from "./exchange.js";
import { writeHead, type HeaderMap } from "./http-types.js";
import type { HttpRoute } from "./routes.js";
import { connectErrorBytes } from "./rpc/status-wire.js";

/** Writes a JSON answer (HEAD gets the headers only). */
export function sendJson(x: Exchange, status: number, body: unknown, headers: HeaderMap = {}): void {
  const payload = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  writeHead(x.res, status, {
    "content-type": "application/json",
    "content-length": String(payload.byteLength),
    ...headers,
  });
  if (x.req.method === "HEAD") x.res.end();
  else x.res.end(payload);
}

/** An error on a plain route: its status from the registry, the body in Connect's error JSON. */
export function sendError(x: Exchange, err: ServiceError, headers: HeaderMap = {}): void {
  x.record.error = err;
  if (x.res.headersSent) {
    x.res.destroy();
    return;
  }
  const body = connectErrorBytes(err);
  writeHead(x.res, reasonDefinition(err.reason).httpStatus, {
    "content-type": "application/json",
    "content-length": String(body.byteLength),
    "cache-control": "no-store",
    ...headers,
  });
  x.res.end(body);
}

export interface PlainRouteOptions {
  /** "GET /healthz" */
  name: string;
  methods: readonly string[];
  servedWhileDraining?: boolean;
  quiet?: boolean;
  /** Headers every answer of the route carries, its errors too (the key sets' CORS, so a page can read a 400). */
  headers?: HeaderMap;
  /** Answers the request; whatever it throws is answered through the registry. */
  serve(x: Exchange): Promise<void> | void;
}

/** A route that answers plain HTTP (operations endpoints, key sets): its methods checked, its errors shaped. */
export function plainRoute(o: PlainRouteOptions): HttpRoute {
  return {
    name: o.name,
    servedWhileDraining: o.servedWhileDraining ?? false,
    quiet: o.quiet ?? false,
    browserFacing: false,
    async serve(x) {
      if (!o.methods.includes(x.req.method ?? "")) {
        sendError(x, new ServiceError("METHOD_NOT_ALLOWED", `use ${o.methods.join(" or ")}`), {
          ...o.headers,
          allow: o.methods.join(", "),
        });
        return;
      }
      try {
        await o.serve(x);
      } catch (err) {
        sendError(x, toServiceError(err), o.headers);
      }
    },
    refuse: (x, err) =>
      sendError(x, err, { ...o.headers, ...answerHeaders({ rateLimit: undefined, refused: false }, err) }),
  };
}
