import type pg from "pg";
import type { HttpRoute } from "../edge/routes.js";
import type { RpcMethod, StreamSlots } from "../edge/rpc/rpc-method.js";
import type { RateLimiter } from "../ratelimit/rate-limiter.js";
import { readMigrations } from "../store/migrate.js";
import { databaseReadiness } from "../store/readiness.js";
import type { ShareStats } from "../store/organization-shares.js";
import type { Sql } from "../store/sql.js";
import { Health } from "./health.js";
import { healthRoutes } from "./health-routes.js";
import { Metrics } from "./metrics.js";
import { opsRpcMethods } from "./ops-routes.js";

/** Well inside the probes' timeoutSeconds (3 s in deploy/), so a hung database fails the probe instead of timing it out. */
const READINESS_DATABASE_TIMEOUT_MS = 1_500;

export interface Operations {
  health: Health;
  metrics: Metrics;
  /** /healthz, /readyz and /metrics. */
  routes: { path: string; route: HttpRoute }[];
  /** grpc.health.v1 and server reflection. */
  rpcs: RpcMethod[];
}

/** Everything an operator uses to run the service, wired from its dependencies. */
export async function createOperations(deps: {
  sql: Sql;
  limiter: RateLimiter;
  watchSlots: StreamSlots;
}): Promise<Operations> {
  const expectedVersions = (await readMigrations()).map((m) => m.version);
  const health = new Health({
    database: () => databaseReadiness(deps.sql, expectedVersions, READINESS_DATABASE_TIMEOUT_MS),
    rateLimits: () => deps.limiter.health(),
  });
  const { pool, shares } = deps.sql as Partial<{ pool: pg.Pool; shares: { stats(): ShareStats } }>;
  const metrics = new Metrics({
    pool,
    organizationShares: shares && (() => shares.stats()),
    rateLimits: () => deps.limiter.health(),
  });
  return {
    health,
    metrics,
    routes: [...healthRoutes(health), metrics.route()],
    rpcs: opsRpcMethods(health, deps.watchSlots),
  };
}
