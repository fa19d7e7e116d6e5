import type { Interceptor } from "@connectrpc/connect";
import type { CallGuard } from "../server/call-guard.js";
import { rateLimitHeaders } from "../ratelimit/headers.js";
import { callerKey, clientAddressKey } from "./context.js";

/** Runs the call guard (authentication, rate limits) for every RPC and hands the caller to the handler. */
export function guardInterceptor(guard: CallGuard): Interceptor {
  return (next) => async (req) => {
    const { caller, rateLimit } = await guard({
      method: req.method.name,
      authorization: req.header.get("authorization"),
      clientAddress: req.contextValues.get(clientAddressKey),
    });
    req.contextValues.set(callerKey, caller);
    const res = await next(req);
    // Clients see their budget on every answer, not only when refused.
    if (rateLimit) for (const [name, value] of Object.entries(rateLimitHeaders(rateLimit))) res.header.set(name, value);
    return res;
  };
}
