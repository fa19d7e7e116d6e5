import type { Deadline } from "../call/deadline.js";
import { currentSpanContext, inLinkedSpan, type SpanContext } from "../tracing/spans.js";
import { overloaded, shedAfterMs } from "./load-shedding.js";

interface Pending<T> {
  item: T;
  /** The span of the call that added it, for the batch span's links. */
  caller: SpanContext | undefined;
  settled: boolean;
  /** performance.now() at which its caller stops waiting (OVERLOADED); Infinity without a deadline. */
  shedAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: items that arrive while a write is in flight go together in
 * the next write, so many concurrent callers share one database commit (and
 * its fsync) instead of each paying for one. Every caller's promise settles
 * only once its own item is durably written, or fails with the write.
 *
 * Bounded, so a slow database sheds load instead of piling up callers: at most
 * maxQueued items wait (more are refused OVERLOADED at once), and a caller
 * stops waiting shortly before its deadline with OVERLOADED (UNAVAILABLE, with
 * a retry hint). An item dropped that way while still queued is never
 * written; one already in the write in flight may still be written (for mints:
 * an audit row of a token nobody received, which over-reports, never under).
 */
export class GroupCommit<T> {
  private queue: Pending<T>[] = [];
  private writing = false;
  // Callers with a deadline that still wait, queued or in the write in flight. One timer, armed for the
  // soonest of them, sheds them all: a timer per item was a cost on every mint.
  private readonly waiting = new Set<Pending<T>>();
  private shedTimer: NodeJS.Timeout | undefined;
  private shedTimerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
    private readonly maxQueued = Number.POSITIVE_INFINITY,
    /** The batch span's name. */
    private readonly name = "group commit",
  ) {}

  /** Items waiting for a write (not counting the one in flight). */
  get queued(): number {
    return this.queue.length;
  }

  add(item: T, deadline?: Deadline): Promise<void> {
    return new Promise((resolve, reject) => {
      const ended = deadline?.reasonNow();
      if (ended) {
        reject(ended);
        return;
      }
      if (this.queue.length >= this.maxQueued) {
        reject(overloaded("audit queue"));
        return;
      }
      const pending: Pending<T> = {
        item,
        caller: currentSpanContext(),
        settled: false,
        shedAt: Number.POSITIVE_INFINITY,
        resolve,
        reject,
      };
      if (deadline) {
        // A call that ended (the client left) while its item is being written gets the write's outcome.
        const stopWaiting = deadline.onDone((reason) => {
          if (this.queue.includes(pending)) this.giveUp(pending, reason);
        });
        const settle = (then: () => void) => {
          if (pending.settled) return;
          pending.settled = true;
          this.waiting.delete(pending);
          if (this.waiting.size === 0) this.disarmShedding();
          stopWaiting();
          then();
        };
        pending.resolve = () => settle(resolve);
        pending.reject = (err) => settle(() => reject(err));
        pending.shedAt = performance.now() + shedAfterMs(deadline.remainingMs());
        this.waiting.add(pending);
        this.armShedding(pending.shedAt);
      }
      this.queue.push(pending);
      // drain() settles every item itself, with the write's outcome, so it never rejects.
      if (!this.writing) this.drain().catch(reject);
    });
  }

  private giveUp(pending: Pending<T>, err: unknown): void {
    const i = this.queue.indexOf(pending);
    if (i !== -1) this.queue.splice(i, 1);
    pending.reject(err);
  }

  private armShedding(at: number): void {
    if (at >= this.shedTimerAt) return;
    clearTimeout(this.shedTimer);
    this.shedTimerAt = at;
    this.shedTimer = setTimeout(() => this.shed(), Math.max(0, at - performance.now()));
  }

  private disarmShedding(): void {
    clearTimeout(this.shedTimer);
    this.shedTimer = undefined;
    this.shedTimerAt = Number.POSITIVE_INFINITY;
  }

  /** Refuses every caller whose time to wait is up, and arms the timer for the next. */
  private shed(): void {
    this.shedTimer = undefined;
    this.shedTimerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const pending of [...this.waiting]) {
      if (pending.shedAt <= now) this.giveUp(pending, overloaded("audit queue"));
      else next = Math.min(next, pending.shedAt);
    }
    if (this.waiting.size > 0) this.armShedding(next);
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        // A batch belongs to no one call: it is a trace of its own, linked to every call it serves.
        await inLinkedSpan(
          this.name,
          batch.map((b) => b.caller),
          () => ({ "dashboard.batch.size": batch.length }),
          () => this.write(batch.map((b) => b.item)),
        );
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.writing = false;
  }
}
