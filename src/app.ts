import type { Interceptor } from "@connectrpc/connect";
import { createCallerVerifier } from "./auth/caller-verifier.js";
import { loadOrCreateDevSecret } from "./auth/dev-secret.js";
import type { Config } from "./config/config.js";
import type { Logger } from "./log/logger.js";
import { createHttpHandler, type PlainRoute } from "./server/http-handler.js";
import { createOperations } from "./ops/operations.js";
import { withCors } from "./server/cors.js";
import { createRestRouter } from "./rest/router.js";
import { createCallGuard } from "./server/call-guard.js";
import type { RateLimiter } from "./ratelimit/rate-limiter.js";
import { createRateLimiter } from "./ratelimit/create-rate-limiter.js";
import { listen, type RunningServer } from "./server/server.js";
import { Dashboards } from "./service/dashboards.js";
import { DashboardStore } from "./store/dashboard-store.js";
import { migrate } from "./store/migrate.js";
import { sharedSecret } from "./store/secret-store.js";
import { SigningKeyStore } from "./store/signing-key-store.js";
import { embeddedSql, postgresSql, type Notifications, type Sql } from "./store/sql.js";
import { DashboardCache } from "./store/dashboard-cache.js";
import { followDashboardChanges } from "./store/dashboard-changes.js";
import { createEmbedSigner } from "./tokens/embed-signer.js";
import { KeyRing } from "./tokens/key-ring.js";
import { createEmbedVerifier } from "./tokens/embed-verifier.js";
import { jwksRoute } from "./tokens/jwks-route.js";
import { inTransaction } from "./store/stores.js";
import { AuditStore, type NewAuditEvent } from "./store/audit-store.js";
import { GroupCommit } from "./store/group-commit.js";
import { RevocationStore } from "./store/revocation-store.js";
import { AuditEvents } from "./service/audit-events.js";
import { IframeTokens } from "./service/iframe-tokens.js";
import { SigningKeys } from "./service/signing-keys.js";
import type { EmbedServices } from "./service/embed-services.js";
import { PageTokenCodec } from "./tokens/page-token.js";

export interface App {
  sql: Sql;
  server: RunningServer;
  /** Stops the server (draining calls), then closes storage. */
  stop(graceMs?: number): Promise<void>;
}

/** Opens storage, applies migrations, builds the service and starts serving. */
export async function startApp(config: Config, log: Logger): Promise<App> {
  const sql = await openDatabase(config, log);
  try {
    const applied = await migrate(sql);
    if (applied.length > 0) log.info({ versions: applied }, "applied database migrations");

    const verifyCaller = await createCallerVerifier(config.auth, await developmentSecret(config, log));
    // Iframe-token keys (issue 4): EMBED_SIGNING_KEY wins, else the stored keys every replica shares.
    const signingKeys = await KeyRing.open(new SigningKeyStore(sql), { configuredKeyJwk: config.embed.signingKeyJwk });
    const signer = createEmbedSigner(config.embed, signingKeys);
    const transaction = inTransaction(sql);
    const pageTokens = new PageTokenCodec(config.pageTokenSecret ?? (await sharedSecret(sql, "page_token_key")));
    // Page views read the same dashboards over and over; every replica forgets a dashboard the moment any replica changes it.
    const dashboardCache = new DashboardCache();
    const stopFollowingChanges = await followDashboardChanges(sql, dashboardCache, log);
    const dashboards = new Dashboards({
      store: new DashboardStore(sql, dashboardCache),
      signer,
      pageTokens,
      embed: config.embed,
      transaction,
      mintAudit: new GroupCommit<NewAuditEvent>((events) => new AuditStore(sql).recordMany(events)),
    });
    const embed: EmbedServices = {
      iframeTokens: new IframeTokens({
        verify: createEmbedVerifier(config.embed, signingKeys),
        revocations: new RevocationStore(sql),
        transaction,
        embed: config.embed,
      }),
      signingKeys: new SigningKeys({ keys: signingKeys, transaction, embed: config.embed }),
      auditEvents: new AuditEvents({ audit: new AuditStore(sql), pageTokens }),
    };
    const limiter: RateLimiter = createRateLimiter(config, log);
    // Health, readiness, metrics, reflection, call logs: built first so the guard can note each call's caller.
    const ops = await createOperations({ sql, limiter, log });
    const guard = ops.recordingGuard(createCallGuard(verifyCaller, limiter));
    const interceptors: Interceptor[] = [];
    // Health, readiness, metrics and reflection first: they must answer whatever else is routed.
    const plainRoutes: PlainRoute[] = [...ops.routes];
    // The guide's REST API: the same guard and domain operations as the RPCs.
    // The iframe-token public keys, for renderers that verify offline.
    plainRoutes.push(jwksRoute(signingKeys, log));
    plainRoutes.push(createRestRouter({ dashboards, guard, log, maxRequestBytes: config.maxRequestBytes }));

    const handler = createHttpHandler({
      dashboards,
      embed,
      guard,
      log,
      maxRequestBytes: config.maxRequestBytes,
      interceptors,
      observers: ops.observers,
      plainRoutes,
    });
    // CORS wraps every protocol, so preflights are answered before any route or authentication.
    const server = await listen(withCors(ops.frontDoor(handler), config.cors), config.host, config.port);
    log.info({ host: config.host, port: server.port, signingKid: (await signingKeys.signingKey()).kid }, "dashboard-service listening (gRPC, gRPC-Web and Connect on one port)");
    return {
      sql,
      server,
      async stop(graceMs = config.shutdownGraceMs) {
        // NOT_SERVING and refuse new calls first, then let the calls already inside finish.
        ops.startDraining();
        log.info({ graceMs }, "draining: refusing new calls, finishing in-flight ones");
        const { drained } = await server.close(graceMs);
        if (!drained) log.warn({ graceMs }, "grace period over: cut the connections still open");
        await limiter.close();
        await stopFollowingChanges();
        await sql.close();
      },
    };
  } catch (err) {
    await sql.close().catch(() => {});
    throw err;
  }
}

async function openDatabase(config: Config, log: Logger): Promise<Sql & Notifications> {
  if (config.database.kind === "postgres") {
    const sql = postgresSql(config.database.url, config.database.poolMax);
    log.info({ database: redactUrl(config.database.url) }, "using PostgreSQL");
    return sql;
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

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable)";
  }
}
