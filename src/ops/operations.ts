import type { Interceptor } from "@connectrpc/connect";
import type pg from "pg";
import type { Logger } from "pino";
import type { RateLimiter } from "../ratelimit/rate-limiter.js";
import type { PlainRoute } from "../server/http-handler.js";
import type { RequestHandler } from "../server/one-port-listener.js";
import { readMigrations } from "../store/migrate.js";
import { databaseReadiness } from "../store/readiness.js";
import type { Sql } from "../store/sql.js";
import { callObserver, plainCallObserver } from "./call-observer.js";
import { frontDoor } from "./front-door.js";
import { Health } from "./health.js";
import { healthRoutes, LIVENESS_PATH, pathOf, READINESS_PATH } from "./health-routes.js";
import { METRICS_PATH, Metrics } from "./metrics.js";
import { isOpsRpc, opsRpcRoute } from "./ops-routes.js";
import { recordingGuard } from "./request-context.js";
import type { CallGuard } from "../server/call-guard.js";

/** Well inside the probes' timeoutSeconds (3 s in deploy/), so a hung database fails the probe instead of timing it out. */
const READINESS_DATABASE_TIMEOUT_MS = 1_500;

export interface Operations {
  health: Health;
  metrics: Metrics;
  /** Outermost interceptors of the API: the per-call log line and metrics. */
  observers: Interceptor[];
  /** The call guard, noting method and caller for the call log of edges that are not Connect (REST). */
  recordingGuard(guard: CallGuard): CallGuard;
  /** /healthz, /readyz, /metrics, grpc.health.v1 and reflection; put them before other routes. */
  routes: PlainRoute[];
  /** Wraps the whole port: request ids, and refusing new calls once draining. */
  frontDoor(handler: RequestHandler): RequestHandler;
  /** Shutdown has begun: report NOT_SERVING and refuse new calls (in-flight ones carry on). */
  startDraining(): void;
}

/** Everything an operator uses to run the service, wired from its dependencies. */
export async function createOperations(deps: { sql: Sql; limiter: RateLimiter; log: Logger }): Promise<Operations> {
  const expectedVersions = (await readMigrations()).map((m) => m.version);
  const health = new Health({
    database: () => databaseReadiness(deps.sql, expectedVersions, READINESS_DATABASE_TIMEOUT_MS),
    rateLimits: () => deps.limiter.health(),
  });
  const pool = (deps.sql as Partial<{ pool: pg.Pool }>).pool;
  const metrics = new Metrics({ pool, rateLimits: () => deps.limiter.health() });
  const routes = [
    healthRoutes(health),
    metrics.route(),
    opsRpcRoute(health, [callObserver({ log: deps.log, metrics, level: "debug" })]),
  ];
  const servedWhileDraining = (req: { url?: string }) =>
    isOpsRpc(req.url) || [LIVENESS_PATH, READINESS_PATH, METRICS_PATH].includes(pathOf(req.url));
  const doors: ReturnType<typeof frontDoor>[] = [];
  return {
    health,
    metrics,
    observers: [callObserver({ log: deps.log, metrics })],
    recordingGuard,
    routes,
    frontDoor(handler) {
      const door = frontDoor(handler, servedWhileDraining, plainCallObserver({ log: deps.log, metrics }));
      doors.push(door);
      return door.handler;
    },
    startDraining() {
      health.startDraining();
      for (const door of doors) door.startDraining();
    },
  };
}
