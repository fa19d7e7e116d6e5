import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { Health as HealthService } from "../../gen/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { rpcMethods, type RpcMethod, type StreamSlots } from "../edge/rpc/rpc-method.js";
import type { Health } from "./health.js";
import { healthServiceImpl } from "./health-service.js";
import { DescriptorIndex, reflectionV1AlphaImpl, reflectionV1Impl } from "./reflection.js";

/** Reflection requests are small; health requests tiny. */
const OPS_MAX_REQUEST_BYTES = 64 * 1024;

/**
 * grpc.health.v1 and server reflection, on the same port and through the
 * same edge as the API, but public: probes and tools like `buf curl` or
 * grpcurl call them without a caller token and without spending anyone's
 * rate limit, exactly as Kubernetes gRPC probes and load balancers expect.
 * Health keeps answering while draining (NOT_SERVING is the point), and
 * its watches are capped (a watch is a stream held open on the server).
 */
export function opsRpcMethods(health: Health, watchSlots: StreamSlots): RpcMethod[] {
  const index = new DescriptorIndex([DashboardService, HealthService, ReflectionV1, ReflectionV1Alpha]);
  const routing = { access: "public" as const, maxRequestBytes: OPS_MAX_REQUEST_BYTES, quiet: true };
  return [
    ...rpcMethods(HealthService, healthServiceImpl(health), {
      ...routing,
      servedWhileDraining: true,
      streamSlots: { Watch: watchSlots },
    }),
    ...rpcMethods(ReflectionV1, reflectionV1Impl(index), routing),
    ...rpcMethods(ReflectionV1Alpha, reflectionV1AlphaImpl(index), routing),
  ];
}
