import { createCallerVerifier } from "./auth/caller-verifier.js";
import { loadOrCreateDevSecret } from "./auth/dev-secret.js";
import { systemClock, type Clock } from "./clock.js";
import type { Config } from "./config/config.js";
import type { Logger } from "./log/logger.js";
import { redactUrl } from "./log/redact-url.js";
import { createOperations } from "./ops/operations.js";
import { createRateLimiter } from "./ratelimit/create-rate-limiter.js";
import { createRestRouter } from "./rest/router.js";
import { createCallGuard } from "./server/call-guard.js";
import { withCors } from "./server/cors.js";
import { createHttpHandler } from "./server/http-handler.js";
import { listen, type RunningServer } from "./server/server.js";
import { AuditEvents } from "./service/audit-events.js";
import { Dashboards } from "./service/dashboards.js";
import type { EmbedServices } from "./service/embed-services.js";
import { IframeTokens } from "./service/iframe-tokens.js";
import { SigningKeys } from "./service/signing-keys.js";
import { AuditStore, type NewAuditEvent } from "./store/audit-store.js";
import { DashboardCache } from "./store/dashboard-cache.js";
import { followDashboardChanges } from "./store/dashboard-changes.js";
import { DashboardStore } from "./store/dashboard-store.js";
import { GroupCommit } from "./store/group-commit.js";
import { migrate } from "./store/migrate.js";
import { RevocationStore } from "./store/revocation-store.js";
import { sharedSecret } from "./store/secret-store.js";
import { SigningKeyStore } from "./store/signing-key-store.js";
import { embeddedSql, postgresSql, type Notifications, type Sql } from "./store/sql.js";
import { inTransaction } from "./store/stores.js";
import { createEmbedSigner } from "./tokens/embed-signer.js";
import { createEmbedVerifier } from "./tokens/embed-verifier.js";
import { jwksRoute } from "./tokens/jwks-route.js";
import { KeyRing } from "./tokens/key-ring.js";
import { PageTokenCodec } from "./tokens/page-token.js";

export interface App {
  sql: Sql;
  server: RunningServer;
  /** Stops the server (draining calls), then closes Redis, listeners and storage. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Opens storage, applies migrations, builds the service and starts serving.
 * Every resource registers how to close it as it is opened, so a start-up that
 * fails half-way closes what it opened, and stop() closes all of it, newest first.
 */
export interface AppOptions {
  /** What every time-based rule reads; tests move it instead of sleeping. */
  clock?: Clock;
}

export async function startApp(config: Config, log: Logger, options: AppOptions = {}): Promise<App> {
  const clock = options.clock ?? systemClock;
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log.error({ err }, "closing failed"));
  };
  try {
    const sql = await openDatabase(config, log);
    closers.push(() => sql.close());
    const applied = await migrate(sql);
    if (applied.length > 0) log.info({ versions: applied }, "applied database migrations");

    // Credentials and keys.
    const verifyCaller = await createCallerVerifier(config.auth, await developmentSecret(config, log), clock);
    const signingKeys = await KeyRing.open(new SigningKeyStore(sql), {
      configuredKeyJwk: config.embed.signingKeyJwk,
      now: clock,
    });
    const pageTokens = new PageTokenCodec(config.pageTokenSecret ?? (await sharedSecret(sql, "page_token_key")));

    // The domain. Page views read the same dashboards over and over: every replica caches them and
    // forgets one the moment any replica changes it.
    const transaction = inTransaction(sql);
    const dashboardCache = new DashboardCache(undefined, undefined, clock);
    closers.push(await followDashboardChanges(sql, dashboardCache, log));
    const dashboards = new Dashboards({
      store: new DashboardStore(sql, dashboardCache),
      signer: createEmbedSigner(config.embed, signingKeys),
      pageTokens,
      embed: config.embed,
      transaction,
      mintAudit: new GroupCommit<NewAuditEvent>((events) => new AuditStore(sql).recordMany(events)),
      now: clock,
    });
    const embed: EmbedServices = {
      iframeTokens: new IframeTokens({
        verify: createEmbedVerifier(config.embed, signingKeys, clock),
        revocations: new RevocationStore(sql),
        transaction,
        embed: config.embed,
        now: clock,
      }),
      signingKeys: new SigningKeys({ keys: signingKeys, transaction, embed: config.embed, now: clock }),
      auditEvents: new AuditEvents({ audit: new AuditStore(sql), pageTokens }),
    };

    // What every call passes, on every protocol: authentication, then rate limits.
    const limiter = createRateLimiter(config, log);
    closers.push(() => limiter.close());
    // Health, readiness, metrics, reflection and call logs; the guard notes each call's caller for them.
    const ops = await createOperations({ sql, limiter, log });
    const guard = ops.recordingGuard(createCallGuard(verifyCaller, limiter));

    // The one port: operations routes first (they must answer whatever else is routed), the
    // iframe-token public keys, the guide's REST API, then the RPCs on every protocol.
    const handler = createHttpHandler({
      dashboards,
      embed,
      guard,
      log,
      maxRequestBytes: config.maxRequestBytes,
      observers: ops.observers,
      plainRoutes: [
        ...ops.routes,
        jwksRoute(signingKeys, log),
        createRestRouter({ dashboards, guard, log, maxRequestBytes: config.maxRequestBytes }),
      ],
    });
    // CORS wraps every protocol, so preflights are answered before any route or authentication.
    const server = await listen(withCors(ops.frontDoor(handler), config.cors), config.host, config.port);
    log.info(
      { host: config.host, port: server.port, signingKid: (await signingKeys.signingKey()).kid },
      "dashboard-service listening (gRPC, gRPC-Web and Connect on one port)",
    );
    return {
      sql,
      server,
      async stop(graceMs = config.shutdownGraceMs) {
        // NOT_SERVING and refuse new calls first, then let the calls already inside finish.
        ops.startDraining();
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
