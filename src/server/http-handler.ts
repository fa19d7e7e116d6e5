import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { authInterceptor } from "../auth/auth-interceptor.js";
import type { CallerVerifier } from "../auth/caller-verifier.js";
import { dashboardServiceImpl } from "../service/connect-service.js";
import type { Dashboards } from "../service/dashboards.js";
import { errorInterceptor } from "./error-interceptor.js";
import type { RequestHandler } from "./one-port-listener.js";

export interface HttpHandlerDeps {
  dashboards: Dashboards;
  verifyCaller: CallerVerifier;
  log: Logger;
  maxRequestBytes: number;
  /** Interceptors that run after authentication (rate limiting, for example). */
  interceptors?: Interceptor[];
}

/** Every route of the port: the Connect/gRPC/gRPC-Web service, and a 404 for anything else. */
export function createHttpHandler(deps: HttpHandlerDeps): RequestHandler {
  return connectNodeAdapter({
    routes: (router) => router.service(DashboardService, dashboardServiceImpl(deps.dashboards)),
    // The first runs first: errors are shaped last, after auth and limits have had their say.
    interceptors: [errorInterceptor(deps.log), authInterceptor(deps.verifyCaller), ...(deps.interceptors ?? [])],
    readMaxBytes: deps.maxRequestBytes,
    fallback: (_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "not_found", message: "no such route" }));
    },
  }) as RequestHandler;
}
