import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { unauthenticated } from "../errors/service-error.js";
import type { CallScope } from "./call-scope.js";

/** The call an RPC handler serves, put in its context by the edge once the guard let it through. */
export const callScopeKey = createContextKey<CallScope | undefined>(undefined, { description: "the guarded call" });

export function callOf(ctx: HandlerContext): CallScope {
  const call = ctx.values.get(callScopeKey);
  // The edge guards every API route; a handler reached without a call is a wiring bug: fail closed.
  if (!call) throw unauthenticated();
  return call;
}
