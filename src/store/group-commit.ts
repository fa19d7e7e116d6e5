import type { Deadline } from "../call/deadline.js";
import { currentSpanContext, inLinkedSpan, type SpanContext } from "../tracing/spans.js";

interface Pending<T> {
  item: T;
  /** The span of the call that added it, for the batch span's links. */
  caller: SpanContext | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: items that arrive while a write is in flight go together in
 * the next write, so many concurrent callers share one database commit (and
 * its fsync) instead of each paying for one. Every caller's promise settles
 * only once its own item is durably written, or fails with the write. An item
 * whose call ends (deadline passed, client gone) before its batch is taken is
 * dropped unwritten, and the caller gets the call's end as its error.
 */
export class GroupCommit<T> {
  private queue: Pending<T>[] = [];
  private writing = false;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
    /** The batch span's name. */
    private readonly name = "group commit",
  ) {}

  add(item: T, deadline?: Deadline): Promise<void> {
    return new Promise((resolve, reject) => {
      if (deadline?.done) {
        reject(deadline.signal.reason as Error);
        return;
      }
      const pending: Pending<T> = { item, caller: currentSpanContext(), resolve, reject };
      if (deadline) {
        const onAbort = () => {
          const i = this.queue.indexOf(pending);
          if (i === -1) return; // already being written: its outcome is the write's
          this.queue.splice(i, 1);
          reject(deadline.signal.reason as Error);
        };
        deadline.signal.addEventListener("abort", onAbort, { once: true });
        const settle = (then: () => void) => () => {
          deadline.signal.removeEventListener("abort", onAbort);
          then();
        };
        pending.resolve = settle(resolve);
        pending.reject = (err) => settle(() => reject(err))();
      }
      this.queue.push(pending);
      // drain() settles every item itself, with the write's outcome, so it never rejects.
      if (!this.writing) this.drain().catch(reject);
    });
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
