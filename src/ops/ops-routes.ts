import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { Health as HealthService } from "../../gen/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { PlainRoute } from "../server/http-handler.js";
import type { RequestHandler } from "../server/one-port-listener.js";
import type { Health } from "./health.js";
import { healthServiceImpl } from "./health-service.js";
import { DescriptorIndex, reflectionV1AlphaImpl, reflectionV1Impl } from "./reflection.js";

/** The RPC services of operations, not of the API. */
const OPS_SERVICES = [HealthService, ReflectionV1, ReflectionV1Alpha];
const OPS_PATH_PREFIXES = OPS_SERVICES.map((s) => `/${s.typeName}/`);

export function isOpsRpc(url: string | undefined): boolean {
  return OPS_PATH_PREFIXES.some((p) => url?.startsWith(p));
}

/**
 * grpc.health.v1 and server reflection, on the same port but outside the API's
 * handler: probes and tools like `buf curl` or grpcurl call them without a
 * caller token and without spending anyone's rate limit, exactly as
 * Kubernetes gRPC probes and load balancers expect.
 */
export function opsRpcRoute(health: Health, interceptors: Interceptor[]): PlainRoute {
  const index = new DescriptorIndex([DashboardService, ...OPS_SERVICES]);
  const adapter = connectNodeAdapter({
    routes: (router) => {
      router.service(HealthService, healthServiceImpl(health));
      router.service(ReflectionV1, reflectionV1Impl(index));
      router.service(ReflectionV1Alpha, reflectionV1AlphaImpl(index));
    },
    interceptors,
    // Reflection requests are small; health requests tiny.
    readMaxBytes: 64 * 1024,
  }) as RequestHandler;
  return (req, res) => {
    if (!isOpsRpc(req.url)) return false;
    adapter(req, res);
    return true;
  };
}
