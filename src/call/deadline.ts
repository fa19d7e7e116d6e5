import { ServiceError } from "../errors/service-error.js";

/**
 * A call's time budget, and its end: the signal aborts when the deadline the
 * client gave (or the server's default) passes, or when the client goes away.
 * Its reason is the ServiceError the call then answers with (DEADLINE_EXCEEDED
 * or CANCELED), so whatever was waiting on it (a query, a pool checkout, a
 * commit) fails with the right reason wherever it was.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() at which it passes; undefined when the call has no time limit. */
  readonly expiresAt: number | undefined;

  constructor(timeoutMs: number | undefined) {
    if (timeoutMs === undefined) return;
    this.expiresAt = performance.now() + timeoutMs;
    if (timeoutMs <= 0) this.expire();
    else this.timer = setTimeout(() => this.expire(), timeoutMs);
  }

  /** For work that serves no client (start-up, background jobs): it never passes. */
  static none(): Deadline {
    return new Deadline(undefined);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get done(): boolean {
    return this.controller.signal.aborted;
  }

  /** Milliseconds left (0 once passed); undefined without a time limit. */
  remainingMs(): number | undefined {
    return this.expiresAt === undefined ? undefined : Math.max(0, this.expiresAt - performance.now());
  }

  /** The client went away: nobody waits for the answer any more. */
  cancel(): void {
    this.abort(new ServiceError("CANCELED", "the client cancelled the call"));
  }

  /** Throws the reason the call ended, if it has. */
  throwIfDone(): void {
    if (this.controller.signal.aborted) throw this.controller.signal.reason as ServiceError;
  }

  /** The call is over: no timer outlives it. */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expire(): void {
    this.abort(new ServiceError("DEADLINE_EXCEEDED", "the call's deadline passed before it was done"));
  }

  private abort(reason: ServiceError): void {
    clearTimeout(this.timer);
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }
}
