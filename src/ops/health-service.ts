import type { ServiceImpl } from "@connectrpc/connect";
import {
  HealthCheckResponse_ServingStatus as Status,
  type Health as HealthService,
} from "../../gen/health/v1/health_pb.js";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { ServiceError } from "../errors/service-error.js";
import type { Health } from "./health.js";

/** "" is the server as a whole (gRPC health convention); the API is the one service behind it. */
export const HEALTH_SERVICE_NAMES: readonly string[] = ["", DashboardService.typeName];

/** How often an open Watch re-checks readiness; changes from draining are pushed at once. */
const WATCH_RECHECK_MS = 2_000;

/**
 * grpc.health.v1.Health on the generated descriptors. Both names share one
 * state (the service is all this server does), taken from the same readiness
 * as GET /readyz.
 */
export function healthServiceImpl(health: Health): ServiceImpl<typeof HealthService> {
  const current = async () => ((await health.readiness()).ready ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check(req) {
      if (!HEALTH_SERVICE_NAMES.includes(req.service)) {
        throw new ServiceError("NOT_FOUND", `unknown service "${req.service}"`);
      }
      return { status: await current() };
    },
    async list() {
      const status = await current();
      return { statuses: Object.fromEntries(HEALTH_SERVICE_NAMES.map((name) => [name, { status }])) };
    },
    async *watch(req, ctx) {
      if (!HEALTH_SERVICE_NAMES.includes(req.service)) {
        // The protocol keeps the stream open for a service that may appear later; none will here.
        yield { status: Status.SERVICE_UNKNOWN };
        await waitFor(ctx.signal, health, Infinity);
        return;
      }
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const status = await current();
        if (status !== last) {
          yield { status };
          last = status;
        }
        // A draining server ends its watches after saying NOT_SERVING, so they do not hold up shutdown.
        if (health.draining) return;
        await waitFor(ctx.signal, health, WATCH_RECHECK_MS);
      }
    },
  };
}

/** Resolves after ms, when the call is cancelled, or when draining starts, whichever comes first. */
function waitFor(signal: AbortSignal, health: Health, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe = () => {};
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      unsubscribe();
      resolve();
    };
    if (ms !== Infinity) timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
    unsubscribe = health.onDraining(done);
  });
}
