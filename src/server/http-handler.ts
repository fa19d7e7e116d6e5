import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { createContextValues } from "@connectrpc/connect";
import { guardInterceptor } from "../auth/auth-interceptor.js";
import { clientAddressKey } from "../auth/context.js";
import type { CallGuard } from "./call-guard.js";
import { dashboardServiceImpl } from "../service/connect-service.js";
import type { Dashboards } from "../service/dashboards.js";
import type { EmbedServices } from "../service/embed-services.js";
import { errorInterceptor } from "./error-interceptor.js";
import { rpcAdapter } from "./rpc-adapter.js";
import { createGrpcUnaryPath } from "./lean/grpc-unary.js";
import { createConnectUnaryPath } from "./lean/connect-unary.js";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { RequestHandler } from "./one-port-listener.js";

/**
 * A plain HTTP route served on the same port beside the RPCs (REST, health,
 * metrics, JWKS...). It returns true when it took the request.
 */
export type PlainRoute = (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]) => boolean;

export interface HttpHandlerDeps {
  dashboards: Dashboards;
  /** Iframe-token verification, revocation, key rotation and the audit trail. */
  embed: EmbedServices;
  /** Authentication and rate limits, shared with every other protocol edge. */
  guard: CallGuard;
  log: Logger;
  maxRequestBytes: number;
  /** Interceptors that run first, around everything else, to see the code each call ends with (logs, metrics). */
  observers?: Interceptor[];
  /** Tried in order before the RPC routes. */
  plainRoutes?: PlainRoute[];
}

/** Every route of the port: plain HTTP routes first, then the Connect/gRPC/gRPC-Web service, else 404. */
export function createHttpHandler(deps: HttpHandlerDeps): RequestHandler {
  const dashboardImpl = dashboardServiceImpl(deps.dashboards, deps.embed);
  // The first runs first: errors are shaped last, after auth and limits have had their say.
  const interceptors = [...(deps.observers ?? []), errorInterceptor(deps.log), guardInterceptor(deps.guard)];
  const contextValues = (req: { socket: { remoteAddress?: string | undefined } }) =>
    createContextValues().set(clientAddressKey, req.socket.remoteAddress ?? "unknown");
  // Unary gRPC and Connect POSTs take the lean paths; everything else, and anything they decline, the general adapter.
  const lean = {
    services: [{ service: DashboardService, impl: dashboardImpl as unknown as Partial<ServiceImpl<DescService>> }],
    interceptors,
    readMaxBytes: deps.maxRequestBytes,
    contextValues,
  };
  const grpcUnary = createGrpcUnaryPath(lean);
  const connectUnary = createConnectUnaryPath(lean);
  const rpc = rpcAdapter({
    routes: (router) => router.service(DashboardService, dashboardImpl),
    interceptors,
    contextValues,
    readMaxBytes: deps.maxRequestBytes,
    fallback: (_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "not_found", message: "no such route" }));
    },
  });
  const plainRoutes = deps.plainRoutes ?? [];
  return (req, res) => {
    for (const route of plainRoutes) if (route(req, res)) return;
    if (req.httpVersionMajor === 2 && grpcUnary(req as Http2ServerRequest, res as Http2ServerResponse)) return;
    if (connectUnary(req, res)) return;
    rpc(req, res);
  };
}
