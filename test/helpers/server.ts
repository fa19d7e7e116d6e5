import { pino } from "pino";
import { startApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";
import { TEST_KEY_ENCRYPTION_KEYS } from "./keys.js";
import { TEST_JWT_SECRET } from "./tokens.js";

export interface TestServer {
  app: App;
  config: Config;
  db: TestDatabase;
  port: number;
  /** http://127.0.0.1:PORT */
  baseUrl: string;
  stop(): Promise<void>;
}

/**
 * The real service, in this process, on a real socket (port 0), backed by a
 * fresh database on the real PostgreSQL. `env` overrides the environment the
 * configuration is parsed from, exactly as in production.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  db?: TestDatabase,
  options: AppOptions = {},
): Promise<TestServer> {
  const database = db ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    DATABASE_URL: database.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    KEY_ENCRYPTION_KEYS: TEST_KEY_ENCRYPTION_KEYS,
    LOG_LEVEL: "silent",
    // Limits out of the way unless a test is about them (it overrides these).
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "1000000",
    RATE_LIMIT_KEY_ROTATIONS: "1000000",
    // Where Redis is used, it decides every call: a busy machine must not push one onto the in-process
    // fallback and change a count. Tests of the fallback set their own, short, timeout.
    REDIS_COMMAND_TIMEOUT_MS: "5000",
    ...env,
  });
  const app = await startApp(config, pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }), options);
  const port = app.server.port;
  return {
    app,
    config,
    db: database,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    async stop() {
      await app.stop(1_000);
      if (!db) await database.drop();
    },
  };
}
