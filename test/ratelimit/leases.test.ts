import fc from "fast-check";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Budget } from "../../src/ratelimit/budget.js";
import { leasedBudget, type LeaseStore } from "../../src/ratelimit/lease-budget.js";
import type { Policy } from "../../src/ratelimit/policies.js";
import { RedisLink } from "../../src/ratelimit/redis-link.js";
import { ManualClock } from "../helpers/clock.js";
import { SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";

const log = pino({ level: "silent" });
let link: RedisLink;
let direct: Redis;
beforeAll(async () => {
  link = new RedisLink(
    { topology: { kind: "node", url: SHARED_REDIS_URL }, commandTimeoutMs: 2000, probeKey: uniquePrefix("probe") },
    log,
  );
  direct = new Redis(SHARED_REDIS_URL);
  for (let i = 0; i < 200 && !link.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(link.ready()).toBe(true);
});
afterAll(async () => {
  await link.close();
  direct.disconnect();
});

const policy = (points: number): Policy => ({ name: "default", points, windowSeconds: 60 });

/** The real link, counting the reservations sent through it (Redis is shared, so its own stats are not ours). */
let roundTrips = 0;
const counted: LeaseStore = {
  reserve: (...args) => {
    roundTrips++;
    return link.reserve(...args);
  },
  ready: () => link.ready(),
  fellBack: () => link.fellBack(),
};

/** N replicas of one budget: each its own process state (leases), all on the one real Redis. */
function replicas(n: number, points: number, prefix: string, clock = new ManualClock()): Budget[] {
  return Array.from({ length: n }, () => leasedBudget(policy(points), prefix, counted, clock.now));
}

async function allowedOf(budget: Budget, key: string, calls: number): Promise<number> {
  const outcomes = await Promise.all(Array.from({ length: calls }, () => Promise.resolve(budget.spend(key))));
  return outcomes.filter((o) => o.allowed).length;
}

describe("budget leases", () => {
  it("never grant more than the limit per window across replicas, whatever the interleaving (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          points: fc.integer({ min: 1, max: 700 }),
          replicaCount: fc.integer({ min: 1, max: 6 }),
          // Bursts: which replica, and how many calls it takes at once (concurrently).
          bursts: fc.array(fc.record({ replica: fc.nat(), calls: fc.integer({ min: 1, max: 120 }) }), {
            minLength: 1,
            maxLength: 20,
          }),
        }),
        async ({ points, replicaCount, bursts }) => {
          const prefix = uniquePrefix("lease-prop");
          const budgets = replicas(replicaCount, points, prefix);
          let allowed = 0;
          let demand = 0;
          // Two bursts run at a time, so replicas race each other for slices.
          for (let i = 0; i < bursts.length; i += 2) {
            const pair = bursts.slice(i, i + 2);
            demand += pair.reduce((sum, b) => sum + b.calls, 0);
            const counts = await Promise.all(
              pair.map((b) => allowedOf(budgets[b.replica % replicaCount]!, "caller", b.calls)),
            );
            allowed += counts.reduce((a, b) => a + b, 0);
          }
          const reserved = Number(await direct.get(`{${prefix}:default:caller}`));
          expect(allowed).toBeLessThanOrEqual(points);
          expect(reserved).toBeLessThanOrEqual(points);
          // What was granted and not spent is the only slack: sitting in other replicas' slices.
          expect(allowed).toBeLessThanOrEqual(reserved);
          if (replicaCount === 1) expect(allowed).toBe(Math.min(points, demand));
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 25) },
    );
  });

  it("stay exact call by call for a small budget: 12 mints alternating over two replicas give exactly 10", async () => {
    const prefix = uniquePrefix("lease-small");
    const [a, b] = replicas(2, 10, prefix);
    const outcomes: boolean[] = [];
    for (let i = 0; i < 12; i++) outcomes.push((await (i % 2 ? b! : a!).spend("minter")).allowed);
    expect(outcomes).toEqual([...Array<boolean>(10).fill(true), false, false]);
    expect(await direct.get(`{${prefix}:default:minter}`)).toBe("10");
  });

  it("grow for a hot caller, so a permitted read costs far fewer than one Redis round trip", async () => {
    const prefix = uniquePrefix("lease-hot");
    const [budget] = replicas(1, 600, prefix);
    const before = roundTrips;
    let allowed = 0;
    // 30 bursts of 16 concurrent reads, as many streams of one caller on one connection would send.
    for (let i = 0; i < 30; i++) allowed += await allowedOf(budget!, "reader", 16);
    expect(allowed).toBe(480);
    // Slices of 1, 2, 4, … 64 (or as many as are waiting): one round trip per call would be 480.
    expect(roundTrips - before).toBeLessThan(48);
  });

  it("report the replica's view in ratelimit-remaining: its slice plus what was unreserved", async () => {
    const prefix = uniquePrefix("lease-remaining");
    const [a, b] = replicas(2, 100, prefix);
    const first = await a!.spend("k");
    expect(first.outcome).toMatchObject({ limit: 100, remaining: 99 });
    const onB = await b!.spend("k");
    // B sees what A had not reserved; A's unspent slice (if any) is not counted as B's.
    expect(onB.outcome.remaining).toBeLessThanOrEqual(98);
    expect(onB.outcome.resetMs).toBeGreaterThan(0);
    expect(onB.outcome.resetMs).toBeLessThanOrEqual(60_000);
  });

  it("never spend a slice after its window has ended by the replica's clock", async () => {
    const prefix = uniquePrefix("lease-window");
    const clock = new ManualClock();
    const [budget] = replicas(1, 600, prefix, clock);
    for (let i = 0; i < 5; i++) await allowedOf(budget!, "w", 16);
    const reserved = Number(await direct.get(`{${prefix}:default:w}`));
    // Redis ends the window (as its TTL would) and the replica's clock passes the end too.
    await direct.del(`{${prefix}:default:w}`);
    clock.advance(60_001);
    expect((await budget!.spend("w")).allowed).toBe(true);
    // The old slice was dropped: this call reserved afresh, in the new window.
    expect(reserved).toBeGreaterThan(80);
    expect(Number(await direct.get(`{${prefix}:default:w}`))).toBe(1);
  });

  it("refuse for the rest of the window with no further round trip once the budget is gone", async () => {
    const prefix = uniquePrefix("lease-exhausted");
    const [budget] = replicas(1, 3, prefix);
    expect(await allowedOf(budget!, "x", 3)).toBe(3);
    const before = roundTrips;
    for (let i = 0; i < 20; i++) expect((await budget!.spend("x")).allowed).toBe(false);
    // One round trip learns the budget is gone; the other 19 refusals are decided from memory.
    expect(roundTrips - before).toBeLessThanOrEqual(1);
  });
});
