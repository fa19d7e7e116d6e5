import { ConfigError, loadConfig } from "./config/config.js";
import { createLogger } from "./log/logger.js";
import { startApp } from "./app.js";
import { startTracing } from "./tracing/sdk.js";

// 1. Configuration: parsed and validated once; bad config stops here with every problem listed.
let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`dashboard-service: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
const log = createLogger(config.logLevel, config.logFormat);
// Before anything serves: the edge's first span needs the SDK (a no-op unless OTEL_* turns it on).
const tracing = await startTracing(config.tracing, log);

// 2. Dependencies and server: storage, migrations, signing keys, the one port.
const app = await startApp(config, log);

// 3. A promise rejected with nobody to handle it is a bug: logged loudly and counted, never a crash
//    (the alert is any increase of dashboard_unexpected_errors_total).
process.on("unhandledRejection", (reason) => {
  app.ops.metrics.unexpectedErrors.inc({ where: "unhandled-rejection" });
  log.error({ err: reason }, "unhandled promise rejection");
});

// 4. Signals: NOT_SERVING, refuse new calls, let in-flight ones finish within
//    SHUTDOWN_GRACE_SECONDS, close the pool and Redis, exit 0.
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    // Closing storage must not hang the exit forever (Kubernetes would SIGKILL at terminationGracePeriodSeconds).
    setTimeout(() => {
      log.error("shutdown did not finish in time after the grace period; exiting");
      process.exit(1);
    }, config.shutdownGraceMs + 5_000).unref();
    app
      .stop(config.shutdownGraceMs)
      .then(() => tracing.shutdown())
      .then(
        () => {
          log.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, "unclean shutdown");
          process.exit(1);
        },
      );
  });
}
