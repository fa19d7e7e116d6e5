import { describe, expect, it, vi } from "vitest";
import { GroupCommit } from "../../src/store/group-commit.js";

describe("group commit", () => {
  it("writes what arrives during a write together in the next one", async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const group = new GroupCommit<number>(async (items) => {
      writes.push(items);
      if (writes.length === 1) await new Promise<void>((r) => (release = r));
    });
    const first = group.add(1);
    const rest = [2, 3, 4].map((n) => group.add(n));
    release();
    await Promise.all([first, ...rest]);
    expect(writes).toEqual([[1], [2, 3, 4]]);
  });

  it("fails every caller of a failed write, and keeps writing afterwards", async () => {
    let fail = true;
    const group = new GroupCommit<string>(() =>
      fail ? Promise.reject(new Error("database down")) : Promise.resolve(),
    );
    await expect(group.add("a")).rejects.toThrow("database down");
    fail = false;
    await expect(group.add("b")).resolves.toBeUndefined();
  });

  it("splits large backlogs into bounded writes", async () => {
    const sizes: number[] = [];
    let release!: () => void;
    const group = new GroupCommit<number>(async (items) => {
      sizes.push(items.length);
      if (sizes.length === 1) await new Promise<void>((r) => (release = r));
    }, 3);
    const all = [group.add(0)];
    for (let i = 1; i <= 7; i++) all.push(group.add(i));
    release();
    await Promise.all(all);
    expect(sizes).toEqual([1, 3, 3, 1]);
  });
});

describe("group commit under a slow database", () => {
  it("holds at most maxQueued items and refuses more at once with OVERLOADED", async () => {
    let release!: () => void;
    const written: number[] = [];
    const group = new GroupCommit<number>(
      async (items) => {
        written.push(...items);
        if (written.length === 1) await new Promise<void>((r) => (release = r));
      },
      500,
      3,
    );
    const first = group.add(0); // in flight
    const queued = [1, 2, 3].map((n) => group.add(n));
    const refused = await Promise.all(
      [4, 5, 6].map((n) =>
        group.add(n).then(
          () => "written",
          (e: unknown) => e,
        ),
      ),
    );
    expect(group.queued).toBe(3);
    for (const r of refused) expect(r).toMatchObject({ reason: "OVERLOADED", details: { retryAfterMs: 1000 } });
    release();
    await Promise.all([first, ...queued]);
    expect(written).toEqual([0, 1, 2, 3]);
  });

  it("a waiting caller gives up with OVERLOADED before its deadline, queued or in flight", async () => {
    const { Deadline } = await import("../../src/call/deadline.js");
    let release!: () => void;
    const written: string[] = [];
    const group = new GroupCommit<string>(async (items) => {
      await new Promise<void>((r) => (release = r));
      written.push(...items);
    });
    const inFlight = new Deadline(200);
    const queued = new Deadline(200);
    const outcomes = Promise.all(
      [group.add("in flight", inFlight), group.add("queued", queued)].map((p) =>
        p.then(
          () => "ok",
          (e: unknown) => e,
        ),
      ),
    );
    const [a, b] = await outcomes;
    // Shed, not timed out: the shedding timer expires before the deadline's, so it fires first however late.
    expect(a).toMatchObject({ reason: "OVERLOADED" });
    expect(b).toMatchObject({ reason: "OVERLOADED" });
    expect(group.queued).toBe(0);
    release();
    // The dropped queued item is never written; the one in flight was already in the batch.
    await new Promise((r) => setTimeout(r, 0));
    expect(written).toEqual(["in flight"]);
    inFlight.dispose();
    queued.dispose();
  });

  it("sheds each waiting caller at its own time, with one timer for all of them", async () => {
    const { Deadline } = await import("../../src/call/deadline.js");
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    try {
      let release!: () => void;
      const group = new GroupCommit<number>(() => new Promise<void>((r) => (release = r)));
      const outcome = (p: Promise<void>) =>
        p.then(
          () => "written",
          (e: { reason?: string }) => e.reason,
        );
      const deadlines = Array.from({ length: 20 }, () => new Deadline(1_000));
      const patient = deadlines.map((d, i) => outcome(group.add(i, d)));
      const hurried = new Deadline(500);
      const short = outcome(group.add(99, hurried));
      // One Deadline timer per call, and a single shedding timer for the group.
      expect(vi.getTimerCount()).toBe(deadlines.length + 1 + 1);
      // A deadline of 500 ms is shed 100 ms early (a fifth of it), the others 200 ms early.
      await vi.advanceTimersByTimeAsync(400);
      expect(await short).toBe("OVERLOADED");
      expect(group.queued).toBe(deadlines.length - 1);
      await vi.advanceTimersByTimeAsync(400);
      expect(new Set(await Promise.all(patient))).toEqual(new Set(["OVERLOADED"]));
      expect(group.queued).toBe(0);
      release();
      for (const d of [...deadlines, hurried]) d.dispose();
      // Nobody waits any more: no shedding timer is left behind.
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("leaves no shedding timer behind once every waiting caller's item is written", async () => {
    const { Deadline } = await import("../../src/call/deadline.js");
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    try {
      const group = new GroupCommit<number>(() => Promise.resolve());
      const deadlines = [new Deadline(1_000), new Deadline(1_000)];
      await Promise.all(deadlines.map((d, i) => group.add(i, d)));
      for (const d of deadlines) d.dispose();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
