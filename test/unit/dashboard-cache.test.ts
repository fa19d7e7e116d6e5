import { describe, expect, it } from "vitest";
import { DashboardCache, changeNotice, parseChangeNotice } from "../../src/store/dashboard-cache.js";
import type { DashboardRecord } from "../../src/store/dashboard-store.js";

const record = (id: string) => ({ id, tenantId: "t", organizationId: "o" }) as DashboardRecord;

describe("the dashboard cache", () => {
  it("answers from memory once loaded, while listening", async () => {
    const cache = new DashboardCache();
    cache.setListening(true);
    let loads = 0;
    const load = () => {
      loads++;
      return Promise.resolve(record("a"));
    };
    expect(cache.peek("o", "t")).toBeUndefined();
    await cache.read("o", "t", load);
    expect((await cache.read("o", "t", load))?.id).toBe("a");
    expect(loads).toBe(1);
    // What read() answers from memory, peek() gives at once.
    expect(cache.peek("o", "t")?.id).toBe("a");
    cache.forget("o", "t");
    expect(cache.peek("o", "t")).toBeUndefined();
  });

  it("goes to the database every time while not listening", async () => {
    const cache = new DashboardCache();
    let loads = 0;
    const load = () => {
      loads++;
      return Promise.resolve(record("a"));
    };
    await cache.read("o", "t", load);
    await cache.read("o", "t", load);
    expect(loads).toBe(2);
    expect(cache.size).toBe(0);
  });

  it("forgets a changed dashboard, and never stores a read that raced a change", async () => {
    const cache = new DashboardCache();
    cache.setListening(true);
    await cache.read("o", "t", () => Promise.resolve(record("old")));
    cache.forget("o", "t");
    let release!: () => void;
    const slow = cache.read("o", "t", () => new Promise((r) => (release = () => r(record("stale")))));
    cache.forget("o", "t"); // a change commits while the read is in flight
    release();
    expect((await slow)?.id).toBe("stale");
    expect((await cache.read("o", "t", () => Promise.resolve(record("fresh"))))?.id).toBe("fresh");
  });

  it("does not remember absent dashboards, so a create is seen at once", async () => {
    const cache = new DashboardCache();
    cache.setListening(true);
    expect(await cache.read("o", "t", () => Promise.resolve(undefined))).toBeUndefined();
    expect((await cache.read("o", "t", () => Promise.resolve(record("new"))))?.id).toBe("new");
  });

  it("forgets everything when listening stops or resumes", async () => {
    const cache = new DashboardCache();
    cache.setListening(true);
    await cache.read("o", "t", () => Promise.resolve(record("a")));
    cache.setListening(false);
    cache.setListening(true);
    expect((await cache.read("o", "t", () => Promise.resolve(record("b"))))?.id).toBe("b");
  });

  it("keeps entries no longer than their maximum age, and stays bounded", async () => {
    let now = 0;
    const cache = new DashboardCache(2, 1_000, () => now);
    cache.setListening(true);
    await cache.read("o", "t", () => Promise.resolve(record("a")));
    now = 1_000;
    expect((await cache.read("o", "t", () => Promise.resolve(record("b"))))?.id).toBe("b");
    await cache.read("o", "u", () => Promise.resolve(record("c")));
    await cache.read("o", "v", () => Promise.resolve(record("d")));
    expect(cache.size).toBe(2);
  });

  it("encodes change notices so that ids with any characters round-trip", () => {
    expect(parseChangeNotice(changeNotice("o:1", "t/2\u0000"))).toEqual(["o:1", "t/2\u0000"]);
    expect(parseChangeNotice("garbage")).toBeUndefined();
    expect(parseChangeNotice('["only one"]')).toBeUndefined();
  });
});

describe("the dashboard cache's per-key change counts", () => {
  it("a change to another dashboard does not keep a read from being cached", async () => {
    const cache = new DashboardCache();
    cache.setListening(true);
    let loads = 0;
    let release!: () => void;
    const slow = cache.read(
      "o",
      "t",
      () =>
        new Promise((r) => {
          loads++;
          release = () => r(record("a"));
        }),
    );
    // Changes to other tenants, and to the same tenant in another organization, commit meanwhile.
    for (let i = 0; i < 100; i++) cache.forget("o", `other-${i}`);
    cache.forget("p", "t");
    release();
    await slow;
    expect(await cache.read("o", "t", () => Promise.resolve(record("never loaded")))).toMatchObject({ id: "a" });
    expect(loads).toBe(1);
    expect(cache.trackedReads).toBe(0);
  });

  it("of two overlapping reads of one key, only the one begun after the change stores", async () => {
    const cache = new DashboardCache();
    cache.setListening(true);
    const releases: (() => void)[] = [];
    const pending = (id: string) => () => new Promise<DashboardRecord>((r) => releases.push(() => r(record(id))));
    const before = cache.read("o", "t", pending("stale"));
    cache.forget("o", "t");
    const after = cache.read("o", "t", pending("fresh"));
    releases[1]!();
    await after;
    releases[0]!();
    await before;
    expect((await cache.read("o", "t", () => Promise.resolve(record("loaded again"))))?.id).toBe("fresh");
  });
});
