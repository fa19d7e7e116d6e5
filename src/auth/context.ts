import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller } from "./caller.js";
import { unauthenticated } from "../errors/service-error.js";

/** The authenticated caller of a request, set by the auth interceptor. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });

/** The peer address of the connection a request came on (for per-address limits and logs). */
export const clientAddressKey = createContextKey<string>("unknown", { description: "client address" });

export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  // The auth interceptor runs on every route; reaching here without a caller is a wiring bug, fail closed.
  if (!caller) throw unauthenticated();
  return caller;
}
