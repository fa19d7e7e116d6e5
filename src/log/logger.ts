import { pino, type Logger } from "pino";
import type { Config } from "../config/config.js";

export type { Logger };

/**
 * JSON lines on stdout (one object per line, for log collectors), or with
 * LOG_FORMAT=pretty human-readable lines for development. Secrets (tokens,
 * keys, authorization headers) are redacted wherever they appear in a log object.
 */
export function createLogger(level: Config["logLevel"], format: Config["logFormat"] = "json"): Logger {
  return pino({
    level,
    base: { service: "dashboard-service" },
    redact: {
      paths: [
        "authorization",
        "headers.authorization",
        "*.headers.authorization",
        "token",
        "*.token",
        "secret",
        "*.secret",
        "privateJwk",
      ],
      censor: "[redacted]",
    },
    // pino-pretty is a development dependency, loaded (in a worker) only when asked for.
    transport:
      format === "pretty"
        ? {
            target: "pino-pretty",
            options: { colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" },
          }
        : undefined,
  });
}
