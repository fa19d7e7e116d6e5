/**
 * Group commit: items that arrive while a write is in flight go together in
 * the next write, so many concurrent callers share one database commit (and
 * its fsync) instead of each paying for one. Every caller's promise settles
 * only once its own item is durably written, or fails with the write.
 */
export class GroupCommit<T> {
  private queue: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private writing = false;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly maxBatch = 500,
  ) {}

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
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
