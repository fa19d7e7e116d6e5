import type { Interceptor } from "@connectrpc/connect";
import { unauthenticated } from "../errors/service-error.js";
import { callerKey } from "./context.js";
import { bearerToken, type CallerVerifier } from "./caller-verifier.js";

/** Establishes the caller of every RPC from its bearer token, or refuses the call as UNAUTHENTICATED. */
export function authInterceptor(verify: CallerVerifier): Interceptor {
  return (next) => async (req) => {
    const token = bearerToken(req.header.get("authorization"));
    if (!token) throw unauthenticated("an Authorization: Bearer token is required");
    req.contextValues.set(callerKey, await verify(token));
    return next(req);
  };
}
