import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Deadline } from "../../src/call/deadline.js";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Deadline", () => {
  it("tells its listeners once, with DEADLINE_EXCEEDED, when it passes", () => {
    const deadline = new Deadline(100);
    const heard: string[] = [];
    deadline.onDone((reason) => heard.push(reason.reason));
    vi.advanceTimersByTime(99);
    expect([deadline.done, heard]).toEqual([false, []]);
    vi.advanceTimersByTime(1);
    deadline.cancel();
    expect(heard).toEqual(["DEADLINE_EXCEEDED"]);
    expect(deadline.reason?.reason).toBe("DEADLINE_EXCEEDED");
    expect(() => deadline.throwIfDone()).toThrow(deadline.reason);
  });

  it("a listener taken back is not called; one added after the end is called at once", () => {
    const deadline = new Deadline(undefined);
    const heard: string[] = [];
    const stop = deadline.onDone(() => heard.push("stopped"));
    deadline.onDone((reason) => heard.push(`kept ${reason.reason}`));
    stop();
    deadline.cancel();
    deadline.onDone((reason) => heard.push(`late ${reason.reason}`));
    expect(heard).toEqual(["kept CANCELED", "late CANCELED"]);
  });

  it("makes its signal only when asked, and a signal asked for after the end is already aborted", () => {
    const early = new Deadline(50);
    const signal = early.signal;
    expect(signal.aborted).toBe(false);
    vi.advanceTimersByTime(50);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(early.reason);

    const late = new Deadline(50);
    late.cancel();
    expect(late.signal.aborted).toBe(true);
    expect(late.signal.reason).toBe(late.reason);
  });

  it("ends once: the first reason stays", () => {
    const deadline = new Deadline(10);
    deadline.cancel();
    vi.advanceTimersByTime(10);
    expect(deadline.reason?.reason).toBe("CANCELED");
    expect(deadline.signal.reason).toBe(deadline.reason);
  });

  it("dispose stops its timer: a finished call never ends later", () => {
    const deadline = new Deadline(10);
    deadline.dispose();
    vi.advanceTimersByTime(1_000);
    expect(deadline.done).toBe(false);
    expect(deadline.remainingMs()).toBe(0);
  });

  it("sets no timer until something waits on it, and a deadline nobody waited on has still passed", () => {
    const unwatched = new Deadline(100);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(100);
    expect(() => unwatched.throwIfDone()).toThrow(expect.objectContaining({ reason: "DEADLINE_EXCEEDED" }));

    // Waited on part-way through, it still ends at its own time, not a whole timeout after the wait began.
    const watched = new Deadline(100);
    vi.advanceTimersByTime(60);
    const heard: string[] = [];
    watched.onDone((reason) => heard.push(reason.reason));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(39);
    expect(heard).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(heard).toEqual(["DEADLINE_EXCEEDED"]);
    expect(vi.getTimerCount()).toBe(0);

    // Its signal is a wait too; asked for once the time has come, it is aborted at once.
    const late = new Deadline(10);
    vi.advanceTimersByTime(10);
    expect(late.signal.aborted).toBe(true);
    expect(late.reason?.reason).toBe("DEADLINE_EXCEEDED");
  });

  it("reasonNow ends a call whose time has come before its timer has run (a busy event loop)", () => {
    vi.useRealTimers();
    const deadline = new Deadline(5);
    const heard: string[] = [];
    deadline.onDone((reason) => heard.push(reason.reason));
    expect(deadline.reasonNow()).toBeUndefined();
    // Synchronous: the clock passes the deadline, and its timer cannot run in between.
    const start = performance.now();
    while (performance.now() - start < 10);
    expect(deadline.reason).toBeUndefined();
    expect(deadline.reasonNow()?.reason).toBe("DEADLINE_EXCEEDED");
    expect([deadline.reason?.reason, heard]).toEqual(["DEADLINE_EXCEEDED", ["DEADLINE_EXCEEDED"]]);
    deadline.dispose();
  });
});
