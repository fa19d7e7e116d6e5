import type { Deadline } from "../call/deadline.js";

interface Pending<T> {
  item: T;
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
  ) {}

  add(item: T, deadline?: Deadline): Promise<void> {
    return new Promise((resolve, reject) => {
      if (deadline?.done) {
        reject(deadline.signal.reason as Error);
        return;
      }
      const pending: Pending<T> = { item, resolve, reject };
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
        await this.write(batch.map((b) => b.item));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.writing = false;
  }
}
