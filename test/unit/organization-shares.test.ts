import { describe, expect, it } from "vitest";
import { Deadline } from "../../src/call/deadline.js";
import { ServiceError } from "../../src/errors/service-error.js";
import { OrganizationShares } from "../../src/store/organization-shares.js";

const reasonOf = (p: Promise<unknown>) =>
  p.then(
    () => "granted",
    (err: unknown) => (err instanceof ServiceError ? err.reason : String(err)),
  );

/** Settles when every promise callback queued so far has run (no timers involved). */
const flush = () => new Promise<void>((r) => setImmediate(r));

describe("an organization's fair share of the pool", () => {
  it("holds one organization to its share while another is served at once", async () => {
    const shares = new OrganizationShares(2, 10);
    const a1 = await shares.acquire("a", undefined, 60_000);
    await shares.acquire("a", undefined, 60_000);
    let thirdGranted = false;
    const a3 = shares.acquire("a", undefined, 60_000).then((release) => {
      thirdGranted = true;
      return release;
    });
    // b is not behind a's queue: its own share is untouched.
    const b = await shares.acquire("b", undefined, 60_000);
    await flush();
    expect(thirdGranted).toBe(false);
    expect(shares.stats()).toMatchObject({ held: 3, waiting: 1, organizationsAtShare: 1, waited: 1 });
    a1();
    expect(thirdGranted).toBe(false); // handed over asynchronously, but already counted as held
    const release3 = await a3;
    expect(shares.stats()).toMatchObject({ held: 3, waiting: 0 });
    release3();
    b();
  });

  it("serves an organization's waiters first come, first served", async () => {
    const shares = new OrganizationShares(1, 10);
    const first = await shares.acquire("a", undefined, 60_000);
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) =>
      shares.acquire("a", undefined, 60_000).then((release) => {
        order.push(n);
        release();
      }),
    );
    first();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
    expect(shares.stats()).toMatchObject({ held: 0, waiting: 0 });
  });

  it("refuses at once, OVERLOADED, when the organization's queue is full; others are unaffected", async () => {
    const shares = new OrganizationShares(1, 2);
    const held = await shares.acquire("a", undefined, 60_000);
    const queued = [shares.acquire("a", undefined, 60_000), shares.acquire("a", undefined, 60_000)];
    expect(await reasonOf(shares.acquire("a", undefined, 60_000))).toBe("OVERLOADED");
    expect(shares.stats().refusedQueueFull).toBe(1);
    (await shares.acquire("b", undefined, 60_000))();
    held();
    for (const q of queued) (await q)();
    expect(shares.stats()).toMatchObject({ held: 0, waiting: 0 });
  });

  it("gives up before the deadline with OVERLOADED, and at once with the call's reason when it ends", async () => {
    const shares = new OrganizationShares(1, 10);
    const held = await shares.acquire("a", undefined, 60_000);
    // The wait bound the caller computed from its deadline (shedAfterMs) runs out first.
    const long = new Deadline(60_000);
    expect(await reasonOf(shares.acquire("a", long, 5))).toBe("OVERLOADED");
    long.dispose();
    const cancelled = new Deadline(60_000);
    const waiting = reasonOf(shares.acquire("a", cancelled, 60_000));
    cancelled.cancel();
    expect(await waiting).toBe("CANCELED");
    cancelled.dispose();
    // A call whose deadline has passed does not even queue.
    const passed = new Deadline(0);
    expect(await reasonOf(shares.acquire("a", passed, 60_000))).toBe("DEADLINE_EXCEEDED");
    expect(shares.stats()).toMatchObject({ held: 1, waiting: 0, refusedWaitTimeout: 2 });
    // Nobody who gave up is handed the slot: the next waiter is.
    const next = shares.acquire("a", undefined, 60_000);
    held();
    (await next)();
    expect(shares.stats()).toMatchObject({ held: 0, waiting: 0 });
  });

  it("gives the slot back once when the work fails, however often release is called", async () => {
    const shares = new OrganizationShares(1, 10);
    const work = async () => {
      const release = await shares.acquire("a", undefined, 60_000);
      try {
        throw new Error("the statement failed");
      } finally {
        release();
        release();
      }
    };
    await expect(work()).rejects.toThrow("the statement failed");
    await expect(work()).rejects.toThrow("the statement failed");
    expect(shares.stats()).toMatchObject({ held: 0, waiting: 0, organizationsAtShare: 0 });
    const [x, y] = [await shares.acquire("a", undefined, 60_000), shares.acquire("a", undefined, 60_000)];
    x();
    x(); // a second release of x must not free y's slot for a third caller
    const yRelease = await y;
    expect(shares.stats().held).toBe(1);
    yRelease();
  });
});
