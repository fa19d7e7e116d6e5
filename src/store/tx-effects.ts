/**
 * What a transaction owes the world once it commits: change notices for other
 * replicas and evictions from this replica's caches. Stores record them on the
 * transaction they write through; the transaction, not its caller, applies them:
 * the notices are sent as its last statement before COMMIT (PostgreSQL delivers
 * them on commit only), the evictions run after COMMIT returned, and a rollback,
 * of the whole transaction or of a savepoint, drops what was recorded inside it.
 */
export class TxEffects {
  private readonly notices = new Map<string, { channel: string; payload: string }>();
  private readonly afterCommit: (() => void)[] = [];

  notify(channel: string, payload: string): void {
    // The same change announced twice in one transaction is one notice (PostgreSQL folds them too).
    this.notices.set(JSON.stringify([channel, payload]), { channel, payload });
  }

  onCommit(fn: () => void): void {
    this.afterCommit.push(fn);
  }

  /** A savepoint released: what it recorded now belongs to the enclosing transaction. */
  adopt(child: TxEffects): void {
    for (const [key, notice] of child.notices) this.notices.set(key, notice);
    this.afterCommit.push(...child.afterCommit);
  }

  /** The statement that sends every notice, or undefined when there is none. */
  noticeStatement(): { text: string; params: unknown[] } | undefined {
    if (this.notices.size === 0) return undefined;
    const all = [...this.notices.values()];
    return {
      text: "SELECT pg_notify(n.channel, n.payload) FROM unnest($1::text[], $2::text[]) AS n(channel, payload)",
      params: [all.map((n) => n.channel), all.map((n) => n.payload)],
    };
  }

  /** Runs the after-commit work; one failing does not keep the others from running. */
  committed(): void {
    for (const fn of this.afterCommit.splice(0)) {
      try {
        fn();
      } catch {
        // Evictions are in-memory map operations; nothing here can be retried or reported to the caller.
      }
    }
  }
}
