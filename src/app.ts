import type { Interceptor } from "@connectrpc/connect";
import { createCallerVerifier } from "./auth/caller-verifier.js";
import { loadOrCreateDevSecret } from "./auth/dev-secret.js";
import type { Config } from "./config/config.js";
import type { Logger } from "./log/logger.js";
import { createHttpHandler, type PlainRoute } from "./server/http-handler.js";
import { createCallGuard } from "./server/call-guard.js";
import { noRateLimits, type RateLimiter } from "./ratelimit/rate-limiter.js";
import { listen, type RunningServer } from "./server/server.js";
import { Dashboards } from "./service/dashboards.js";
import { DashboardStore } from "./store/dashboard-store.js";
import { migrate } from "./store/migrate.js";
import { sharedSecret } from "./store/secret-store.js";
import { SigningKeyStore } from "./store/signing-key-store.js";
import { embeddedSql, postgresSql, type Sql } from "./store/sql.js";
import { createEmbedSigner } from "./tokens/embed-signer.js";
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
    const signer = await createEmbedSigner(config.embed, new SigningKeyStore(sql));
    const pageTokens = new PageTokenCodec(config.pageTokenSecret ?? (await sharedSecret(sql, "page_token_key")));
    const dashboards = new Dashboards({ store: new DashboardStore(sql), signer, pageTokens, embed: config.embed });
    const limiter: RateLimiter = noRateLimits;
    const guard = createCallGuard(verifyCaller, limiter);
    const interceptors: Interceptor[] = [];
    const plainRoutes: PlainRoute[] = [];

    const handler = createHttpHandler({
      dashboards,
      guard,
      log,
      maxRequestBytes: config.maxRequestBytes,
      interceptors,
      plainRoutes,
    });
    const server = await listen(handler, config.host, config.port);
    log.info({ host: config.host, port: server.port, signingKid: signer.kid }, "dashboard-service listening (gRPC, gRPC-Web and Connect on one port)");
    return {
      sql,
      server,
      async stop(graceMs) {
        await server.close(graceMs);
        await limiter.close();
        await sql.close();
      },
    };
  } catch (err) {
    await sql.close().catch(() => {});
    throw err;
  }
}

async function openDatabase(config: Config, log: Logger): Promise<Sql> {
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
