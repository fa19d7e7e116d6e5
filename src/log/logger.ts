import { pino, type Logger } from "pino";
import type { Config } from "../config/config.js";

export type { Logger };

/** JSON lines on stdout; secrets (tokens, keys) are redacted wherever they appear in a log object. */
export function createLogger(level: Config["logLevel"]): Logger {
  return pino({
    level,
    base: { service: "dashboard-service" },
    redact: {
      paths: ["authorization", "headers.authorization", "token", "*.token", "secret", "*.secret", "privateJwk"],
      censor: "[redacted]",
    },
  });
}
