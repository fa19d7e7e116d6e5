import { ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ServiceError } from "../errors/service-error.js";
import { isTransientDatabaseError } from "../store/transient-errors.js";
import { serviceErrorToConnect, withErrorInfo } from "../errors/connect-error.js";

/**
 * The outermost interceptor: every error leaves as a ConnectError with exactly
 * one ErrorInfo. Domain errors keep their code and message; anything else is
 * INTERNAL with a generic message, its cause (SQL, stack) logged, never sent.
 */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (err instanceof ServiceError) {
        if (err.reason === "SERVER_ERROR") log.error({ err, method: req.method.name }, "call failed");
        throw serviceErrorToConnect(err);
      }
      if (err instanceof ConnectError) throw withErrorInfo(err);
      if (isTransientDatabaseError(err)) {
        log.warn({ err, method: req.method.name }, "database unavailable");
        throw serviceErrorToConnect(
          new ServiceError("UNAVAILABLE", "the service is temporarily unavailable, retry later", {
            retryAfterMs: 1000,
            cause: err,
          }),
        );
      }
      log.error({ err, method: req.method.name }, "call failed with an unexpected error");
      throw serviceErrorToConnect(new ServiceError("SERVER_ERROR", "internal server error", { cause: err }));
    }
  };
}
