import { ServiceError } from "../errors/service-error.js";

/**
 * A call's time budget, and its end: the signal aborts when the deadline the
 * client gave (or the server's default) passes, or when the client goes away.
 * Its reason is the ServiceError the call then answers with (DEADLINE_EXCEEDED
 * or CANCELED), so whatever was waiting on it (a query, a pool checkout, a
 * commit) fails with the right reason wherever it was.
 */
export class Deadline {
  // Made on first use of `signal`: most calls (a cached read) end without anyone asking for one.
  private controller: AbortController | undefined;
  private ended: ServiceError | undefined;
  private listeners: ((reason: ServiceError) => void)[] | undefined;
  // Armed only once something waits on the deadline (its signal, a listener): a call that never waits
  // (a cached read) sets no timer. Checks (throwIfDone, reasonNow) read the clock, so a deadline no one
  // waited on is still seen to have passed.
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** performance.now() at which it passes; undefined when the call has no time limit. */
  readonly expiresAt: number | undefined;

  constructor(timeoutMs: number | undefined) {
    if (timeoutMs === undefined) return;
    this.expiresAt = performance.now() + timeoutMs;
    if (timeoutMs <= 0) this.expire();
  }

  /** For work that serves no client (start-up, background jobs): it never passes. */
  static none(): Deadline {
    return new Deadline(undefined);
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.ended) this.controller.abort(this.ended);
      else this.arm();
    }
    return this.controller.signal;
  }

  get done(): boolean {
    return this.ended !== undefined;
  }

  /** Why the call ended (DEADLINE_EXCEEDED or CANCELED); undefined while it goes on. */
  get reason(): ServiceError | undefined {
    return this.ended;
  }

  /**
   * reason, counting a deadline whose time has come but whose timer has not
   * run yet: on a busy event loop the timer runs late, and something timed by
   * another clock (PostgreSQL's statement_timeout, set to the time left) can
   * report first. The call ends here and then, as its timer would have ended it.
   */
  reasonNow(): ServiceError | undefined {
    if (!this.ended && this.expiresAt !== undefined && performance.now() >= this.expiresAt) this.expire();
    return this.ended;
  }

  /**
   * Calls listener once, when the call ends (at once if it has); returns what
   * takes it back. The edge's own waits use this rather than an abort
   * listener on the signal, which would make the signal.
   */
  onDone(listener: (reason: ServiceError) => void): () => void {
    if (this.ended) {
      listener(this.ended);
      return () => {};
    }
    (this.listeners ??= []).push(listener);
    this.arm();
    return () => {
      const at = this.listeners?.indexOf(listener) ?? -1;
      if (at >= 0) this.listeners!.splice(at, 1);
    };
  }

  /** Milliseconds left (0 once passed); undefined without a time limit. */
  remainingMs(): number | undefined {
    return this.expiresAt === undefined ? undefined : Math.max(0, this.expiresAt - performance.now());
  }

  /** The client went away: nobody waits for the answer any more. */
  cancel(): void {
    this.abort(new ServiceError("CANCELED", "the client cancelled the call"));
  }

  /** Throws the reason the call ended, if it has (counting a time that has come, as reasonNow). */
  throwIfDone(): void {
    const reason = this.reasonNow();
    if (reason) throw reason;
  }

  /** The call is over: no timer outlives it, and none is set for it. */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer || this.ended || this.disposed || this.expiresAt === undefined) return;
    // Whole milliseconds: Node keeps one timer list per duration, so calls made together share one.
    const left = Math.ceil(this.expiresAt - performance.now());
    if (left <= 0) this.expire();
    else this.timer = setTimeout(() => this.expire(), left);
  }

  private expire(): void {
    this.abort(new ServiceError("DEADLINE_EXCEEDED", "the call's deadline passed before it was done"));
  }

  private abort(reason: ServiceError): void {
    clearTimeout(this.timer);
    if (this.ended) return;
    this.ended = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) listener(reason);
  }
}
