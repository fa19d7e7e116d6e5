import proxyaddr from "proxy-addr";
import { DashboardService } from "../gen/dashboard/v1/dashboard_service_pb.js";
import { createCallerVerifier } from "./auth/caller-verifier.js";
import { loadOrCreateDevSecret } from "./auth/dev-secret.js";
import { IFRAME_TOKEN_CREDENTIAL_METHOD } from "./auth/policy.js";
import { createCallGuard } from "./call/guard.js";
import { systemClock, type Clock } from "./clock.js";
import type { Config } from "./config/config.js";
import { createClientIdentity } from "./edge/client-identity.js";
import { createEdge, type Edge } from "./edge/edge.js";
import { RoutingTable } from "./edge/routes.js";
import { rpcMethods } from "./edge/rpc/rpc-method.js";
import { streamSlots } from "./edge/stream-slots.js";
import { listen, type RunningServer } from "./listener/server.js";
import type { Logger } from "./log/logger.js";
import { redactUrl } from "./log/redact-url.js";
import { createOperations, type Operations } from "./ops/operations.js";
import { createRateLimiter } from "./ratelimit/create-rate-limiter.js";
import { restApi } from "./rest/rest-api.js";
import { dashboardServiceImpl } from "./service/connect-service.js";
import { createDomain } from "./service/domain.js";
import { embeddedSql } from "./store/embedded-sql.js";
import { migrate } from "./store/migrate.js";
import { postgresSql } from "./store/postgres-sql.js";
import type { Notifications, Sql } from "./store/sql.js";
import { jwksRoute } from "./tokens/jwks-route.js";

export interface App {
  sql: Sql;
  server: RunningServer;
  ops: Operations;
  edge: Edge;
  /** Stops the server (draining calls), then closes Redis, listeners and storage. */
  stop(graceMs?: number): Promise<void>;
}

export interface AppOptions {
  /** What every time-based rule reads; tests move it instead of sleeping. */
  clock?: Clock;
}

/**
 * Opens storage, applies migrations, builds the service and starts serving.
 * Every resource registers how to close it as it is opened, so a start-up that
 * fails half-way closes what it opened, and stop() closes all of it, newest first.
 */
export async function startApp(config: Config, log: Logger, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log.error({ err }, "closing failed"));
  };
  try {
    // Storage, then the domain on it.
    const sql = await openDatabase(config, log);
    closers.push(() => sql.close());
    const applied = await migrate(sql);
    if (applied.length > 0) log.info({ versions: applied }, "applied database migrations");
    const domain = await createDomain(config, sql, clock, log);
    closers.push(domain.close);

    // What every call passes, on every protocol: authentication, then rate limits.
    const verifyCaller = await createCallerVerifier(config.auth, await developmentSecret(config, log), clock);
    const limiter = createRateLimiter(config, log);
    closers.push(() => limiter.close());
    const guard = createCallGuard(verifyCaller, limiter, domain.iframeTokenCredential);

    // Health, readiness, metrics, reflection.
    const watchSlots = streamSlots(config.edge.healthWatchesPerConnection, config.edge.healthWatchesMax);
    const ops = await createOperations({ sql, limiter, watchSlots });

    // The one routing table: the API's RPCs, health and reflection, the key set, the operations
    // routes, and the guide's REST API under /api/.
    const routes = new RoutingTable(
      [
        ...rpcMethods(DashboardService, dashboardServiceImpl(domain.dashboards, domain.embed), {
          access: "caller",
          maxRequestBytes: config.maxRequestBytes,
          rendererFacing: [IFRAME_TOKEN_CREDENTIAL_METHOD],
        }),
        ...ops.rpcs,
      ],
      [...ops.routes, jwksRoute(domain.signingKeys)],
      [
        restApi({
          dashboards: domain.dashboards,
          guard,
          maxRequestBytes: config.maxRequestBytes,
          timeoutMs: config.edge.rpcDefaultTimeoutMs,
        }),
      ],
    );
    const edge = createEdge({
      routes,
      rpc: { guard, maxTimeoutMs: config.edge.rpcMaxTimeoutMs, defaultTimeoutMs: config.edge.rpcDefaultTimeoutMs },
      cors: config.cors,
      identity: createClientIdentity({
        trustedProxies: config.edge.trustedProxies,
        forwardedHeader: config.edge.forwardedHeader,
      }),
      bodyBudget: {
        maxBytes: config.edge.maxBufferedRequestBytes,
        maxUnauthenticatedBytes: config.edge.maxUnauthenticatedBufferedBytes,
      },
      log,
      metrics: ops.metrics,
    });

    // The one port.
    const trustsPeer = proxyaddr.compile(config.edge.trustedProxies);
    const server = await listen(edge.handler, config.host, config.port, {
      limits: config.listener,
      proxyProtocol: config.listener.proxyProtocol,
      trustsPeer: (address) => trustsPeer(address, 0),
    });
    log.info(
      { host: config.host, port: server.port, signingKid: (await domain.signingKeys.signingKey()).kid },
      "dashboard-service listening (gRPC, gRPC-Web, Connect and REST on one port)",
    );
    return {
      sql,
      server,
      ops,
      edge,
      async stop(graceMs = config.shutdownGraceMs) {
        // NOT_SERVING and refuse new calls first, then let the calls already inside finish.
        ops.health.startDraining();
        edge.startDraining();
        log.info({ graceMs }, "draining: refusing new calls, finishing in-flight ones");
        const { drained } = await server.close(graceMs);
        if (!drained) log.warn({ graceMs }, "grace period over: cut the connections still open");
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function openDatabase(config: Config, log: Logger): Promise<Sql & Notifications> {
  if (config.database.kind === "postgres") {
    log.info({ database: redactUrl(config.database.url) }, "using PostgreSQL");
    return postgresSql(config.database.url, config.database.poolMax);
  }
  log.warn(
    { dataDir: config.database.dataDir },
    "DATABASE_URL is not set: using the embedded PostgreSQL (PGlite) in DATA_DIR; set DATABASE_URL for production",
  );
  return embeddedSql(config.database.dataDir);
}

async function developmentSecret(config: Config, log: Logger): Promise<string | undefined> {
  if (config.auth.mode !== "development") return undefined;
  log.warn(
    { secretFile: config.auth.secretFile },
    "no AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY: verifying caller tokens with a development secret (mint one with `npm run token`)",
  );
  return loadOrCreateDevSecret(config.auth.secretFile);
}
