import { ConfigError, loadConfig } from "./config/config.js";
import { createLogger } from "./log/logger.js";
import { startApp } from "./app.js";

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
const log = createLogger(config.logLevel);

// 2. Dependencies and server: storage, migrations, signing keys, the one port.
const app = await startApp(config, log);

// 3. Signals: drain in-flight calls, close storage, exit 0.
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "unclean shutdown");
        process.exit(1);
      },
    );
  });
}
