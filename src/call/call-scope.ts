import type { Caller } from "../auth/caller.js";
import type { Deadline } from "./deadline.js";

/**
 * What a domain operation knows of the call it serves: who is calling (as
 * the guard established), and until when the answer is awaited. Storage takes
 * the deadline, so work whose caller has gone is stopped and rolled back.
 */
export interface CallScope {
  caller: Caller;
  deadline: Deadline;
}
