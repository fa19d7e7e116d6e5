import type { Caller } from "../auth/caller.js";
import type { CallGuard } from "../server/call-guard.js";

/** What is known about the HTTP request being served, for its call log line. */
export interface RequestRecord {
  requestId: string;
  /** The peer address, taken when the request arrives (the socket is gone once the answer is sent). */
  clientAddress?: string | undefined;
  /** The RPC the request stands for, once the call guard has seen it (REST routes name theirs). */
  method?: string;
  /** The verified caller, once the call guard has let the request through. */
  caller?: Caller;
}

// Keyed by the HTTP request object rather than held in an AsyncLocalStorage: on Node 20 the latter
// turns on promise hooks for every promise of every call, a few percent of a read's CPU.
const records = new WeakMap<object, RequestRecord>();

/** Set by the front door when a request arrives; read by the plain-HTTP call log. */
export function attachRecord(request: object, record: RequestRecord): void {
  records.set(request, record);
}

/**
 * The call guard, also noting the method and verified caller in the request's
 * record, so edges that are not Connect (REST) get the same call log and
 * metrics without knowing about them.
 */
export function recordingGuard(guard: CallGuard): CallGuard {
  return async (attempt) => {
    const record = attempt.request === undefined ? undefined : records.get(attempt.request);
    if (record) record.method = attempt.method;
    const guarded = await guard(attempt);
    if (record) record.caller = guarded.caller;
    return guarded;
  };
}
