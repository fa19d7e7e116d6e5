import { failureOf, type TokenGrant } from "./errors.js";

/** What the scheduler reports when a mint fails. */
export interface RefreshFailure {
  /** The ErrorInfo reason fetchToken's error carried, or "FETCH_FAILED" when it carried none. */
  reason: string;
  message: string;
  /** TOKEN_REVOKED: nothing more will be fetched. */
  final: boolean;
  /** When the next attempt may be made (undefined when final). */
  retryInMs: number | undefined;
}

export interface SchedulerOptions {
  fetchToken: () => Promise<TokenGrant>;
  onToken: (grant: TokenGrant) => void;
  onFailure: (failure: RefreshFailure) => void;
  /** Wall-clock milliseconds; it jumps forward after a sleep, which is how one is noticed. */
  now?: () => number;
  /** Runs fn after ms (timers pause while a machine sleeps); returns its cancel. */
  setTimer?: (fn: () => void, ms: number) => () => void;
  /** [0, 1), for jitter. */
  random?: () => number;
  /** Hidden tabs mint nothing on their own. */
  isVisible?: () => boolean;
  /** Refresh once this fraction of a token's lifetime (from its receipt) has passed. Default 0.75. */
  refreshAt?: number;
  /** Exponential backoff after failures: from initialMs, doubling up to maxMs, each delay jittered to [½, 1]. */
  backoff?: { initialMs: number; maxMs: number };
  /** While embedding is paused, the next look is at least this far off (and only when visible). Default 30 s. */
  pausedRecheckMs?: number;
  /** The longest the scheduler goes without reading the clock, so a sleep is noticed within it. Default 15 s. */
  checkEveryMs?: number;
}

const DEFAULTS = {
  refreshAt: 0.75,
  backoff: { initialMs: 1_000, maxMs: 60_000 },
  pausedRecheckMs: 30_000,
  checkEveryMs: 15_000,
};

/**
 * Keeps one token fresh. Refreshes at a fraction of its lifetime, only while
 * visible, single-flight (concurrent triggers share one fetch), with jittered
 * backoff after failures; RATE_LIMITED waits for its retry-after,
 * EMBEDDING_PAUSED looks again later and lazily, TOKEN_REVOKED stops it for good.
 */
export class RefreshScheduler {
  private readonly o: Required<Omit<SchedulerOptions, "backoff">> & { backoff: { initialMs: number; maxMs: number } };
  private grant: (TokenGrant & { receivedAt: number }) | undefined;
  private inFlight: Promise<TokenGrant | undefined> | undefined;
  private retryAt: number | undefined;
  private failures = 0;
  private forced = false;
  private stopped = false;
  private finalReason: string | undefined;
  private cancelTimer: (() => void) | undefined;

  constructor(options: SchedulerOptions) {
    this.o = {
      now: () => Date.now(),
      setTimer: (fn, ms) => {
        const id = setTimeout(fn, ms);
        return () => clearTimeout(id);
      },
      random: Math.random,
      isVisible: () => true,
      ...DEFAULTS,
      ...options,
    };
  }

  /** The token in use, if any. */
  get current(): TokenGrant | undefined {
    return this.grant && { token: this.grant.token, expiresAt: this.grant.expiresAt };
  }

  /** Set once TOKEN_REVOKED was met: nothing more is fetched. */
  get revoked(): string | undefined {
    return this.finalReason;
  }

  start(): void {
    this.tick();
  }

  /** Something happened that may make a refresh due or possible: visible again, online, woke up, focused. */
  wake(): void {
    this.tick();
  }

  /** The token is no good any more (TOKEN_EXPIRED, or the renderer asks): refresh as soon as visible. */
  refreshSoon(): void {
    this.forced = true;
    this.tick();
  }

  /** TOKEN_REVOKED reported by someone else (the renderer's online check, another tab): stop for good. */
  revoke(reason = "TOKEN_REVOKED", message = "the token has been revoked"): void {
    if (this.stopped) return;
    this.finalReason = reason;
    this.stop();
    this.o.onFailure({ reason, message, final: true, retryInMs: undefined });
  }

  /** A token another tab minted: taken when it outlives the one in use. */
  offer(grant: TokenGrant): void {
    if (this.stopped) return;
    if (this.grant && grant.expiresAt <= this.grant.expiresAt) return;
    this.failures = 0;
    this.retryAt = undefined;
    this.accept(grant);
    this.tick();
  }

  /**
   * Fetches now, whatever the visibility (another tab needs a token), unless
   * stopped; concurrent calls share one fetch. Resolves to the new grant, or
   * undefined when the fetch failed (reported through onFailure).
   */
  refresh(): Promise<TokenGrant | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    this.inFlight ??= this.fetch().finally(() => {
      this.inFlight = undefined;
      this.tick();
    });
    return this.inFlight;
  }

  destroy(): void {
    this.stop();
  }

  private stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private async fetch(): Promise<TokenGrant | undefined> {
    let grant: TokenGrant;
    try {
      grant = await this.o.fetchToken();
      if (typeof grant?.token !== "string" || !Number.isFinite(grant.expiresAt)) {
        throw new Error("fetchToken must resolve to { token: string, expiresAt: number (Unix seconds) }");
      }
    } catch (err) {
      if (!this.stopped) this.failed(err);
      return undefined;
    }
    if (this.stopped) return undefined;
    this.failures = 0;
    this.retryAt = undefined;
    this.accept(grant);
    return grant;
  }

  private accept(grant: TokenGrant): void {
    this.grant = { token: grant.token, expiresAt: grant.expiresAt, receivedAt: this.o.now() };
    this.forced = false;
    this.o.onToken({ token: grant.token, expiresAt: grant.expiresAt });
  }

  private failed(err: unknown): void {
    const { reason, retryAfterSeconds } = failureOf(err);
    const message = err instanceof Error ? err.message : String(err);
    if (reason === "TOKEN_REVOKED") {
      this.revoke(reason, message);
      return;
    }
    let delay: number;
    if (reason === "EMBEDDING_PAUSED") {
      delay = this.o.pausedRecheckMs;
    } else if (reason === "RATE_LIMITED") {
      // The service said when; jitter only ever adds, so tabs told the same second do not return together.
      delay = (retryAfterSeconds ?? 1) * 1000 + Math.floor(this.o.random() * 1000);
    } else {
      this.failures++;
      const ceiling = Math.min(this.o.backoff.maxMs, this.o.backoff.initialMs * 2 ** (this.failures - 1));
      delay = Math.floor(ceiling / 2 + (this.o.random() * ceiling) / 2);
    }
    this.retryAt = this.o.now() + delay;
    this.o.onFailure({ reason: reason ?? "FETCH_FAILED", message, final: false, retryInMs: delay });
  }

  private dueAt(): number {
    if (!this.grant || this.forced) return -Infinity;
    const { receivedAt, expiresAt } = this.grant;
    const lifetime = expiresAt * 1000 - receivedAt;
    return lifetime <= 0 ? -Infinity : receivedAt + lifetime * this.o.refreshAt;
  }

  /** Reads the clock, refreshes when due, visible and not backing off, and otherwise sets the next look. */
  private tick(): void {
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.inFlight) return;
    const now = this.o.now();
    const due = this.dueAt();
    const backingOff = this.retryAt !== undefined && now < this.retryAt;
    let wait: number;
    if (now >= due && !backingOff) {
      if (this.o.isVisible()) {
        this.refresh().catch(() => undefined);
        return;
      }
      // Hidden: becoming visible wakes it; the look is only in case that event never comes.
      wait = this.o.checkEveryMs;
    } else {
      // Never trust one long timer: timers do not run while the machine sleeps, the clock does.
      wait = Math.min((backingOff ? this.retryAt! : due) - now, this.o.checkEveryMs);
    }
    this.cancelTimer = this.o.setTimer(() => this.tick(), Math.max(1, wait));
  }
}
