import type { Caller } from "../auth/caller.js";
import { Deadline } from "../call/deadline.js";
import type { CallGuard } from "../call/guard.js";
import { toServiceError } from "../errors/details.js";
import type { ServiceError } from "../errors/service-error.js";
import { RateLimitRefusal } from "../ratelimit/headers.js";
import { answerHeaders, type AnswerState } from "./answer-headers.js";
import type { Exchange } from "./exchange.js";
import type { HeaderMap } from "./http-types.js";

/** A call as the pipeline runs it: its name, who may make it, and what it does. */
export interface CallSpec<I, O> {
  /** The name budgets know the call by ("GetDashboard"); REST routes give the RPC they stand for. */
  name: string;
  /** "caller": authenticated and rate-limited. "public": neither (health checks, reflection). */
  access: "caller" | "public";
  /** The deadline when the client gives none; undefined for none (long-lived streams). */
  defaultTimeoutMs: number | undefined;
  /** May answer at once, with no promise (a handler that had all it needed in memory). */
  handle(call: HandledCall<I>): O | Promise<O>;
}

export interface HandledCall<I> {
  input: I;
  /** Set for "caller" calls: who the guard let through. */
  caller: Caller | undefined;
  deadline: Deadline;
  exchange: Exchange;
}

/**
 * One protocol's side of a call: how it reads the request and writes the
 * answer. gRPC, gRPC-Web, Connect (POST, GET, streaming) and the REST routes
 * each have one; the pipeline is the same for all of them.
 */
export interface CallWire<I, O> {
  /** Reads the protocol's own headers (the client's deadline, its compression); throws for malformed ones. */
  begin(): { timeoutMs: number | undefined };
  /**
   * Reads and decodes the request, bounded in size, time and the process-wide body budget. These two
   * may finish at once (a body that has all arrived, an answer written uncompressed): the pipeline
   * awaits only a promise, so such a call takes no microtask turns for them.
   */
  read(deadline: Deadline, authenticated: boolean): I | Promise<I>;
  answer(output: O, headers: HeaderMap, deadline: Deadline): void | Promise<void>;
  /** Answers the error in the protocol's form; never throws. */
  refuse(err: ServiceError, headers: HeaderMap): void;
}

/**
 * The one pipeline every call goes through, on every protocol, in this order:
 *  1. the client is identified (when the exchange is made, from the peer and trusted proxies);
 *  2. its credential is checked, from headers, before any of its body is read;
 *  3. its budgets are charged;
 *  4. its request is read and its handler run, within its deadline;
 *  5. whatever it ends with is answered in its protocol, through the error registry;
 *  6. the observation point records it (when the exchange closes; see observe.ts).
 */
export async function runCall<I, O>(x: Exchange, spec: CallSpec<I, O>, wire: CallWire<I, O>, guard: CallGuard) {
  const state: AnswerState = { rateLimit: undefined, refused: false };
  let deadline: Deadline | undefined;
  try {
    const { timeoutMs } = wire.begin();
    deadline = new Deadline(timeoutMs ?? spec.defaultTimeoutMs);
    const current = deadline;
    x.onClientGone(() => current.cancel());
    let caller: Caller | undefined;
    if (spec.access === "caller") {
      const admission = guard({
        method: spec.name,
        authorization: headerValue(x.req.headers.authorization),
        clientAddress: x.clientAddress,
      });
      const guarded = admission instanceof Promise ? await admission : admission;
      caller = guarded.caller;
      state.rateLimit = guarded.rateLimit;
      x.record.caller = caller;
    }
    const reading = wire.read(deadline, caller !== undefined);
    const input = reading instanceof Promise ? await reading : reading;
    const handling = spec.handle({ input, caller, deadline, exchange: x });
    const output = handling instanceof Promise ? await handling : handling;
    const answering = wire.answer(output, answerHeaders(state, undefined), deadline);
    if (answering instanceof Promise) await answering;
  } catch (thrown) {
    const err = toServiceError(thrown);
    if (err instanceof RateLimitRefusal) {
      state.rateLimit = err.outcome;
      state.refused = true;
    }
    x.record.error = err;
    wire.refuse(err, answerHeaders(state, err));
  } finally {
    deadline?.dispose();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
