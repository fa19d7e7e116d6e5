import proxyaddr from "proxy-addr";
import { DashboardService } from "../gen/dashboard/v1/dashboard_service_pb.js";
import { createCallerVerifier } from "./auth/caller-verifier.js";
import { loadOrCreateDevSecret } from "./auth/dev-secret.js";
import { IFRAME_TOKEN_CREDENTIAL_METHOD } from "./auth/policy.js";
import { createCallGuard } from "./call/guard.js";
import { systemClock, type Clock } from "./clock.js";
import type { Config, KeyEncryptionKey } from "./config/config.js";
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
import { tracedSql } from "./store/traced-sql.js";
import { tracing } from "./tracing/spans.js";
import type { Notifications, Sql } from "./store/sql.js";
import { JobRunner } from "./jobs/job-runner.js";
import { jwksRoute, organizationJwksRoutes } from "./tokens/jwks-route.js";
import { KeySealer } from "./tokens/key-sealing.js";

export interface App {
  sql: Sql;
  server: RunningServer;
  ops: Operations;
  edge: Edge;
  /** Background jobs (key purging), one replica at a time. */
  jobs: JobRunner;
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
    const limiter = createRateLimiter(config, log);
    closers.push(() => limiter.close());
    const sealer = await KeySealer.create(await keyEncryptionKeys(config, log));
    // Health, readiness, metrics, reflection: made before the domain, whose jobs report into the metrics.
    const watchSlots = streamSlots(config.edge.healthWatchesPerConnection, config.edge.healthWatchesMax);
    const ops = await createOperations({ sql, limiter, watchSlots });
    const domain = await createDomain(
      config,
      sql,
      clock,
      log,
      { sealer, rotationBudget: (organizationId) => limiter.consumeKeyRotation(organizationId) },
      (table, removed) => ops.metrics.retentionBatch(table, removed),
    );
    closers.push(domain.close);

    // Off the request path: each job on one replica at a time; stopped before storage closes.
    const jobs = new JobRunner({
      sql,
      clock,
      log,
      election: config.database.kind === "embedded" ? "none" : "advisory-lock",
    });
    for (const job of domain.jobs) jobs.register(job);
    jobs.start();
    closers.push(() => jobs.stop());

    // What every call passes, on every protocol: authentication, then rate limits.
    const verifyCaller = await createCallerVerifier(config.auth, await developmentSecret(config, log), clock);
    const guard = createCallGuard(verifyCaller, limiter, domain.iframeTokenCredential);

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
        organizationJwksRoutes(domain.signingKeys),
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
      { host: config.host, port: server.port, signingKid: domain.signingKeys.configuredKid ?? "per organization" },
      "dashboard-service listening (gRPC, gRPC-Web, Connect and REST on one port)",
    );
    return {
      sql,
      server,
      ops,
      edge,
      jobs,
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
    const sql = postgresSql(config.database.url, config.database.poolMax, {
      heartbeatMs: config.storage.listenHeartbeatMs,
      poolWaitMs: config.storage.poolWaitMs,
      poolMaxWaiting: config.storage.poolMaxWaiting,
      organizationShare: config.storage.organizationShare,
      warn: (fields, message) => log.warn(fields, message),
    });
    if (!tracing()) return sql;
    const url = new URL(config.database.url);
    return tracedSql(sql, {
      namespace: decodeURIComponent(url.pathname.slice(1)) || undefined,
      address: url.hostname || undefined,
      port: url.port ? Number(url.port) : 5432,
    });
  }
  log.warn(
    { dataDir: config.database.dataDir },
    "DATABASE_URL is not set: using the embedded PostgreSQL (PGlite) in DATA_DIR; set DATABASE_URL for production",
  );
  const sql = await embeddedSql(config.database.dataDir);
  return tracing() ? tracedSql(sql, { namespace: undefined, address: undefined, port: undefined }) : sql;
}

/**
 * KEY_ENCRYPTION_KEYS, or outside production (config refuses production
 * without it) a key generated into DATA_DIR, like the development auth secret.
 */
export async function keyEncryptionKeys(config: Config, log: Logger): Promise<KeyEncryptionKey[]> {
  if (config.embed.keyEncryptionKeys) return config.embed.keyEncryptionKeys;
  const file = config.embed.devKeyEncryptionKeyFile;
  log.warn(
    { keyFile: file },
    "KEY_ENCRYPTION_KEYS is not set: sealing signing keys with a development key-encryption key kept in DATA_DIR; set it for production",
  );
  const key = Buffer.from(await loadOrCreateDevSecret(file), "base64url");
  if (key.byteLength !== 32) throw new Error(`${file} does not hold a 32-byte key-encryption key (base64url)`);
  return [{ id: "dev", key: new Uint8Array(key) }];
}

async function developmentSecret(config: Config, log: Logger): Promise<string | undefined> {
  if (config.auth.mode !== "development") return undefined;
  log.warn(
    { secretFile: config.auth.secretFile },
    "no AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_JWT_PUBLIC_KEY: verifying caller tokens with a development secret (mint one with `npm run token`)",
  );
  return loadOrCreateDevSecret(config.auth.secretFile);
}
