import { describe, expect, it } from "vitest";
import { EmbedTokenError, type TokenGrant } from "../../sdk/embed/src/errors.js";
import { RefreshScheduler, type RefreshFailure, type SchedulerOptions } from "../../sdk/embed/src/scheduler.js";

/**
 * A wall clock and timers that move only when told. `sleep` is a machine
 * asleep: the wall clock jumps, pending timers are pushed back by as much
 * (they do not run while asleep), which is how a browser behaves.
 */
class Machine {
  nowMs = 1_800_000_000_000;
  private timers: { at: number; fn: () => void }[] = [];

  readonly now = () => this.nowMs;
  readonly setTimer = (fn: () => void, ms: number) => {
    const timer = { at: this.nowMs + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  };

  /** Moves awake time forward, running each timer at its time and letting what it started settle. */
  async advance(ms: number): Promise<void> {
    const target = this.nowMs + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.nowMs = next.at;
      next.fn();
    }
    this.nowMs = target;
    await settle();
  }

  sleep(ms: number): void {
    this.nowMs += ms;
    for (const t of this.timers) t.at += ms;
  }
}

/** Lets promise chains started by a timer finish (event-loop turns, not wall time). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function harness(overrides: Partial<SchedulerOptions> & { lifetimeSeconds?: number } = {}) {
  const machine = new Machine();
  const fetched: number[] = [];
  const tokens: TokenGrant[] = [];
  const failures: RefreshFailure[] = [];
  let visible = true;
  let failWith: unknown;
  const lifetime = overrides.lifetimeSeconds ?? 100;
  const scheduler = new RefreshScheduler({
    fetchToken: () => {
      fetched.push(machine.nowMs);
      if (failWith !== undefined) return Promise.reject(failWith instanceof Error ? failWith : new Error("x"));
      return Promise.resolve({ token: `t${fetched.length}`, expiresAt: machine.nowMs / 1000 + lifetime });
    },
    onToken: (g) => tokens.push(g),
    onFailure: (f) => failures.push(f),
    now: machine.now,
    setTimer: machine.setTimer,
    random: () => 0.5,
    isVisible: () => visible,
    ...overrides,
  });
  return {
    machine,
    scheduler,
    fetched,
    tokens,
    failures,
    setVisible: (v: boolean) => (visible = v),
    failWith: (e: unknown) => (failWith = e),
  };
}

describe("the refresh scheduler", () => {
  it("fetches at once, then at three quarters of each token's lifetime, again and again", async () => {
    const h = harness();
    const start = h.machine.nowMs;
    h.scheduler.start();
    await h.machine.advance(0);
    expect(h.fetched).toEqual([start]);
    await h.machine.advance(74_999);
    expect(h.fetched).toHaveLength(1);
    await h.machine.advance(1);
    expect(h.fetched).toEqual([start, start + 75_000]);
    await h.machine.advance(75_000 * 3);
    expect(h.fetched).toEqual([0, 1, 2, 3, 4].map((i) => start + 75_000 * i));
    expect(h.tokens.map((t) => t.token)).toEqual(["t1", "t2", "t3", "t4", "t5"]);
  });

  it("honours a configured fraction of the lifetime", async () => {
    const h = harness({ refreshAt: 0.5 });
    h.scheduler.start();
    await h.machine.advance(50_000);
    expect(h.fetched).toHaveLength(2);
  });

  it("shares one fetch among concurrent triggers (single-flight)", async () => {
    let release: (g: TokenGrant) => void = () => {};
    const h = harness({
      fetchToken: () => {
        h.fetched.push(h.machine.nowMs);
        return new Promise<TokenGrant>((resolve) => (release = resolve));
      },
    });
    const all = [h.scheduler.refresh(), h.scheduler.refresh(), h.scheduler.refresh()];
    h.scheduler.refreshSoon();
    h.scheduler.wake();
    h.scheduler.start();
    await settle();
    expect(h.fetched).toHaveLength(1);
    release({ token: "shared", expiresAt: h.machine.nowMs / 1000 + 100 });
    expect((await Promise.all(all)).map((g) => g?.token)).toEqual(["shared", "shared", "shared"]);
    expect(h.tokens).toHaveLength(1);
  });

  it("mints nothing while hidden, however long, and at once when visible again", async () => {
    const h = harness();
    h.setVisible(false);
    h.scheduler.start();
    h.scheduler.refreshSoon(); // the renderer asking does not make a hidden tab mint either
    await h.machine.advance(3_600_000);
    expect(h.fetched).toEqual([]);
    h.setVisible(true);
    h.scheduler.wake();
    await settle();
    expect(h.fetched).toHaveLength(1);
  });

  it("goes hidden with a token: the due refresh waits until the tab is visible", async () => {
    const h = harness();
    h.scheduler.start();
    await h.machine.advance(0);
    h.setVisible(false);
    await h.machine.advance(600_000);
    expect(h.fetched).toHaveLength(1);
    h.setVisible(true);
    h.scheduler.wake();
    await settle();
    expect(h.fetched).toHaveLength(2);
  });

  it("replaces an expired token at once on resume after a sleep, and within one check without a wake event", async () => {
    const h = harness({ checkEveryMs: 15_000 });
    h.scheduler.start();
    await h.machine.advance(10_000);
    expect(h.fetched).toHaveLength(1);
    h.machine.sleep(3_600_000);
    h.scheduler.wake(); // visibilitychange / online / pageshow / focus
    await settle();
    expect(h.fetched).toHaveLength(2);
    expect(h.fetched[1]).toBe(h.machine.nowMs);

    const quiet = harness({ checkEveryMs: 15_000 });
    quiet.scheduler.start();
    await quiet.machine.advance(10_000);
    quiet.machine.sleep(3_600_000);
    const woke = quiet.machine.nowMs;
    await quiet.machine.advance(15_000);
    expect(quiet.fetched).toHaveLength(2);
    expect(quiet.fetched[1]! - woke).toBeLessThanOrEqual(15_000);
  });

  it("backs off exponentially after failures, each delay jittered by the injected random", async () => {
    const h = harness({ random: () => 0.5, backoff: { initialMs: 1_000, maxMs: 8_000 } });
    h.failWith(new Error("network down"));
    const start = h.machine.nowMs;
    h.scheduler.start();
    await h.machine.advance(20_000);
    // ceilings 1, 2, 4, 8, 8 s; each delay is ceiling × (½ + ½ × 0.5) = ¾ of it.
    const gaps = h.fetched.map((t, i) => t - (h.fetched[i - 1] ?? start));
    expect(gaps.slice(0, 6)).toEqual([0, 750, 1_500, 3_000, 6_000, 6_000]);
    expect(h.failures[0]).toMatchObject({ reason: "FETCH_FAILED", final: false, retryInMs: 750 });

    const low = harness({ random: () => 0, backoff: { initialMs: 1_000, maxMs: 8_000 } });
    low.failWith(new Error("x"));
    low.scheduler.start();
    await low.machine.advance(2_000);
    expect(low.failures.map((f) => f.retryInMs).slice(0, 3)).toEqual([500, 1_000, 2_000]);
  });

  it("recovers after a failure: the next success resets the backoff", async () => {
    const h = harness();
    h.failWith(new Error("x"));
    h.scheduler.start();
    await h.machine.advance(0);
    h.failWith(undefined);
    await h.machine.advance(750);
    expect(h.tokens).toHaveLength(1);
    expect(h.fetched).toHaveLength(2);
  });

  it("stops for good on TOKEN_REVOKED: reported final, and fetchToken is never called again", async () => {
    const h = harness();
    h.failWith(new EmbedTokenError("revoked", "TOKEN_REVOKED"));
    h.scheduler.start();
    await h.machine.advance(0);
    expect(h.failures).toEqual([{ reason: "TOKEN_REVOKED", message: "revoked", final: true, retryInMs: undefined }]);
    h.scheduler.wake();
    h.scheduler.refreshSoon();
    expect(await h.scheduler.refresh()).toBeUndefined();
    await h.machine.advance(3_600_000);
    expect(h.fetched).toHaveLength(1);
    expect(h.scheduler.revoked).toBe("TOKEN_REVOKED");
  });

  it("stops for good when the renderer reports TOKEN_REVOKED", async () => {
    const h = harness();
    h.scheduler.start();
    await h.machine.advance(0);
    h.scheduler.revoke();
    await h.machine.advance(3_600_000);
    expect(h.fetched).toHaveLength(1);
    expect(h.failures.at(-1)).toMatchObject({ reason: "TOKEN_REVOKED", final: true });
  });

  it("looks again later on EMBEDDING_PAUSED, and lazily: not while hidden", async () => {
    const h = harness({ pausedRecheckMs: 30_000 });
    h.failWith(new EmbedTokenError("paused", "EMBEDDING_PAUSED"));
    h.scheduler.start();
    await h.machine.advance(0);
    expect(h.failures).toEqual([{ reason: "EMBEDDING_PAUSED", message: "paused", final: false, retryInMs: 30_000 }]);
    await h.machine.advance(29_999);
    expect(h.fetched).toHaveLength(1);
    h.setVisible(false);
    await h.machine.advance(600_000);
    expect(h.fetched).toHaveLength(1);
    h.failWith(undefined);
    h.setVisible(true);
    h.scheduler.wake();
    await settle();
    expect(h.fetched).toHaveLength(2);
    expect(h.tokens).toHaveLength(1);
  });

  it("waits for retry-after on RATE_LIMITED (jitter only adds)", async () => {
    const h = harness({ random: () => 0 });
    h.failWith(new EmbedTokenError("slow down", "RATE_LIMITED", 7));
    h.scheduler.start();
    await h.machine.advance(6_999);
    expect(h.fetched).toHaveLength(1);
    expect(h.failures[0]).toMatchObject({ reason: "RATE_LIMITED", retryInMs: 7_000 });
    await h.machine.advance(1);
    expect(h.fetched).toHaveLength(2);

    const jittered = harness({ random: () => 0.5 });
    jittered.failWith(new EmbedTokenError("slow down", "RATE_LIMITED", 7));
    jittered.scheduler.start();
    await jittered.machine.advance(0);
    expect(jittered.failures[0]!.retryInMs).toBe(7_500);
  });

  it("takes a newer token from another tab instead of fetching, and schedules from it", async () => {
    const h = harness();
    h.scheduler.start();
    await h.machine.advance(50_000);
    h.scheduler.offer({ token: "from-tab-2", expiresAt: h.machine.nowMs / 1000 + 100 });
    h.scheduler.offer({ token: "older", expiresAt: h.machine.nowMs / 1000 + 10 });
    expect(h.tokens.map((t) => t.token)).toEqual(["t1", "from-tab-2"]);
    await h.machine.advance(74_999);
    expect(h.fetched).toHaveLength(1);
    await h.machine.advance(1);
    expect(h.fetched).toHaveLength(2);
  });
});
