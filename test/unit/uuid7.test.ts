import { validate, version } from "uuid";
import { describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/tokens/uuid7.js";

describe("uuidv7", () => {
  it("gives valid, unique version-7 ids, in order within one millisecond and across them", () => {
    // More ids than one fill of the random pool holds (256), all in one millisecond, then the next ones.
    const start = 1_800_000_000_000;
    const ids = [
      ...Array.from({ length: 1_000 }, () => uuidv7(start)),
      ...Array.from({ length: 10 }, (_, i) => uuidv7(start + 1 + i)),
    ];
    for (const id of ids.slice(0, 3)) expect([validate(id), version(id)]).toEqual([true, 7]);
    expect(ids.every((id) => validate(id) && version(id) === 7)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // The time is the millisecond given (the first 48 bits).
    expect(parseInt(ids[0]!.replaceAll("-", "").slice(0, 12), 16)).toBe(start);
    expect(parseInt(ids.at(-1)!.replaceAll("-", "").slice(0, 12), 16)).toBe(start + 10);
  });

  it("never goes back when the clock does", () => {
    const ids = [uuidv7(1_900_000_000_500), uuidv7(1_900_000_000_400), uuidv7(1_900_000_000_400)];
    expect([...ids].sort()).toEqual(ids);
  });
});
