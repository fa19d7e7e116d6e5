import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeNotice, DashboardCache, DASHBOARD_CHANGES_CHANNEL } from "../../src/store/dashboard-cache.js";
import { followDashboardChanges } from "../../src/store/dashboard-changes.js";
import { DashboardStore } from "../../src/store/dashboard-store.js";
import type { Every } from "../../src/store/listen.js";
import { migrate } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { storesOn } from "../../src/store/stores.js";
import { createTestDatabase, POSTGRES_ADMIN_URL, type TestDatabase } from "../helpers/postgres.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/** A heartbeat schedule the test ticks by hand, so "two intervals" is two calls, whatever the machine's speed. */
function manualHeartbeat(): { every: Every; tick(): void } {
  let beat: (() => void) | undefined;
  return {
    every: (_ms, fn) => {
      beat = fn;
      return () => (beat = undefined);
    },
    tick: () => beat?.(),
  };
}

/** Resolves on the next report equal to `want`. */
function listeningEvents() {
  const seen: boolean[] = [];
  const waiters: { want: boolean; resolve: () => void }[] = [];
  return {
    seen,
    record(now: boolean) {
      seen.push(now);
      for (const w of waiters.splice(0)) {
        if (w.want === now) w.resolve();
        else waiters.push(w);
      }
    },
    next(want: boolean): Promise<void> {
      return new Promise((resolve) => waiters.push({ want, resolve }));
    },
  };
}

const newDashboard = (name: string) => ({
  id: crypto.randomUUID(),
  organizationId: "org",
  tenantId: "t",
  workspaceId: "w",
  name,
  description: "",
  createdBy: "test",
  allowedOrigins: [],
  embeddingEnabled: true,
  embedDefaults: { permissions: [], locale: "", timeZone: "", theme: "" as const },
  permissionCeiling: [],
});

let db: TestDatabase;
let proxy: TcpProxy;
let writer: ReturnType<typeof postgresSql>;
beforeAll(async () => {
  db = await createTestDatabase();
  writer = postgresSql(db.url, 2);
  await migrate(writer);
  const target = new URL(POSTGRES_ADMIN_URL);
  proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
});
afterAll(async () => {
  await writer.close();
  await proxy.close();
  await db.drop();
});

describe("a change listener whose connection goes half-open", () => {
  it("serves a stale read for at most two heartbeats, then bypasses and clears the cache until it hears again", async () => {
    const listenUrl = new URL(db.url);
    listenUrl.port = String(proxy.port);
    const heartbeat = manualHeartbeat();
    const replica = postgresSql(db.url, 2, { listenUrl: listenUrl.toString(), heartbeatEvery: heartbeat.every });
    const cache = new DashboardCache();
    const events = listeningEvents();
    const setListening = cache.setListening.bind(cache);
    cache.setListening = (now) => {
      setListening(now);
      events.record(now);
    };
    const forgotten: string[] = [];
    const forget = cache.forget.bind(cache);
    cache.forget = (org, tenant) => {
      forgotten.push(tenant);
      forget(org, tenant);
    };
    // Every notice committed before this one has reached the listener once this one has (commit order).
    let syncs = 0;
    const sync = async () => {
      const marker = `sync-${++syncs}`;
      await writer.notify(DASHBOARD_CHANGES_CHANNEL, changeNotice("org", marker));
      for (let i = 0; i < 500 && !forgotten.includes(marker); i++) await new Promise((r) => setTimeout(r, 10));
      expect(forgotten).toContain(marker);
    };
    const followed = await followDashboardChanges(replica, cache, pino({ level: "silent" }));
    try {
      expect(events.seen).toEqual([true]);
      const store = new DashboardStore(replica, cache);
      const writes = storesOn(writer);
      await writes.dashboards.insert(newDashboard("v1"));
      await sync();
      expect((await store.findByTenant("org", "t"))?.name).toBe("v1");
      expect(cache.size).toBe(1);

      proxy.blackHole();
      await writes.dashboards.update("org", "t", { ...newDashboard("v2") });
      // The notice is lost and nothing has noticed yet: this is the window the bound is about.
      expect((await store.findByTenant("org", "t"))?.name).toBe("v1");
      heartbeat.tick(); // heartbeat 1 goes into the hole
      expect((await store.findByTenant("org", "t"))?.name).toBe("v1");
      const deaf = events.next(false);
      heartbeat.tick(); // heartbeat 1 unanswered: not listening
      await deaf;
      // Bypassed: the database answers, and nothing is stored while deaf.
      expect((await store.findByTenant("org", "t"))?.name).toBe("v2");
      expect((await store.findByTenant("org", "t"))?.name).toBe("v2");
      expect(cache.size).toBe(0);

      // The network heals; the held connection stays dead, so the listener replaces it.
      proxy.heal();
      const accepted = proxy.accepted;
      const back = events.next(true);
      heartbeat.tick(); // second miss in a row: reconnect
      await back;
      expect(proxy.accepted).toBeGreaterThan(accepted);
      await sync();
      expect((await store.findByTenant("org", "t"))?.name).toBe("v2");
      expect(cache.size).toBe(1);
      // Notices flow again: a change made elsewhere is forgotten here.
      await writes.dashboards.update("org", "t", { ...newDashboard("v3") });
      for (let i = 0; i < 500 && cache.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect((await store.findByTenant("org", "t"))?.name).toBe("v3");
      expect(events.seen).toEqual([true, false, true]);
    } finally {
      await followed();
      await replica.close();
    }
  });
});

describe("per-key change counts on a real database", () => {
  it("a dashboard read while other dashboards change on another replica is cached after one load", async () => {
    const replica = postgresSql(db.url, 2);
    const cache = new DashboardCache();
    const followed = await followDashboardChanges(replica, cache, pino({ level: "silent" }));
    let loads = 0;
    const counting = {
      ...replica,
      query: <Row>(text: string, params?: unknown[]) => {
        if (text.includes("FROM dashboards WHERE") && params?.[1] === "steady") loads++;
        return replica.query<Row>(text, params);
      },
    };
    const store = new DashboardStore(counting, cache);
    const writes = storesOn(writer);
    try {
      await writes.dashboards.insert({ ...newDashboard("steady"), tenantId: "steady" });
      for (let i = 0; i < 20; i++) await writes.dashboards.insert({ ...newDashboard(`o${i}`), tenantId: `other-${i}` });
      let writing = true;
      let written = 0;
      const writer = (async () => {
        for (let n = 0; writing && n < 5_000; n++) {
          await writes.dashboards.update("org", `other-${n % 20}`, { ...newDashboard(`v${n}`) });
          written++;
        }
      })();
      // Wait until the other replica's notices are arriving, then read the one dashboard nobody changes.
      for (let i = 0; i < 2_000 && written < 20; i++) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 50; i++) expect((await store.findByTenant("org", "steady"))?.name).toBe("steady");
      writing = false;
      await writer;
      expect(written).toBeGreaterThanOrEqual(20);
      expect(loads).toBe(1);
    } finally {
      await followed();
      await replica.close();
    }
  });
});
