import { AsyncLocalStorage } from "node:async_hooks";
import type { Caller } from "../auth/caller.js";
import type { CallGuard } from "../server/call-guard.js";

/** What is known about the HTTP request being served, wherever in its async work the code is. */
export interface RequestRecord {
  requestId: string;
  /** The peer address, taken when the request arrives (the socket is gone once the answer is sent). */
  clientAddress?: string | undefined;
  /** The RPC the request stands for, once the call guard has seen it (REST routes name theirs). */
  method?: string;
  /** The verified caller, once the call guard has let the request through. */
  caller?: Caller;
}

/** Set by the front door around each request; read by the plain-HTTP call log. */
export const requestContext = new AsyncLocalStorage<RequestRecord>();

/**
 * The call guard, also noting the method and verified caller in the request's
 * record, so edges that are not Connect (REST) get the same call log and
 * metrics without knowing about them.
 */
export function recordingGuard(guard: CallGuard): CallGuard {
  return async (attempt) => {
    const record = requestContext.getStore();
    if (record) record.method = attempt.method;
    const guarded = await guard(attempt);
    if (record) record.caller = guarded.caller;
    return guarded;
  };
}
