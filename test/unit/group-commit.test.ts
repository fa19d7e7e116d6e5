import { describe, expect, it } from "vitest";
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
