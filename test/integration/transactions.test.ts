import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardCache, DASHBOARD_CHANGES_CHANNEL } from "../../src/store/dashboard-cache.js";
import { embeddedSql } from "../../src/store/embedded-sql.js";
import { migrate } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import type { Notifications, Sql } from "../../src/store/sql.js";
import { inTransaction, storesOn } from "../../src/store/stores.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const dashboard = (tenantId: string) => ({
  id: crypto.randomUUID(),
  organizationId: "org",
  tenantId,
  workspaceId: "w",
  name: tenantId,
  description: "",
  createdBy: "test",
  allowedOrigins: [],
  embeddingEnabled: true,
  embedDefaults: { permissions: [], locale: "", timeZone: "", theme: "" as const },
  permissionCeiling: [],
});

const tenants = async (sql: Sql) =>
  (await sql.query<{ tenant_id: string }>("SELECT tenant_id FROM dashboards ORDER BY tenant_id")).rows.map(
    (r) => r.tenant_id,
  );

class Failure extends Error {}

/** The same contract on both databases the service runs on. */
function transactionContract(
  name: string,
  open: () => Promise<{ sql: Sql & Notifications; close: () => Promise<void> }>,
) {
  describe(`transactions on ${name}`, () => {
    let sql: Sql & Notifications;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ sql, close } = await open());
      await migrate(sql);
    });
    afterAll(() => close());

    it("a failed nested transaction rolls back to its savepoint and keeps the outer work", async () => {
      await sql.query("DELETE FROM dashboards");
      const caught = await sql.transaction(async (tx) => {
        await tx.query(
          "INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by) VALUES ('org', $1, 'outer', 'w', 'n', 't')",
          [crypto.randomUUID()],
        );
        const error = await tx
          .transaction(async (inner) => {
            await inner.query(
              "INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by) VALUES ('org', $1, 'inner', 'w', 'n', 't')",
              [crypto.randomUUID()],
            );
            expect(await tenants(inner)).toEqual(["inner", "outer"]);
            throw new Failure("inner fails");
          })
          .catch((err: unknown) => err);
        // The outer transaction is usable after the inner one failed (no "current transaction is aborted").
        expect(await tenants(tx)).toEqual(["outer"]);
        return error;
      });
      expect(caught).toBeInstanceOf(Failure);
      expect(await tenants(sql)).toEqual(["outer"]);
    });

    it("a failed statement inside a savepoint leaves the outer transaction usable", async () => {
      await sql.query("DELETE FROM dashboards");
      await sql.transaction(async (tx) => {
        await tx.query(
          "INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by) VALUES ('org', $1, 'kept', 'w', 'n', 't')",
          [crypto.randomUUID()],
        );
        await expect(tx.transaction((inner) => inner.query("SELECT * FROM no_such_table"))).rejects.toMatchObject({
          code: "42P01",
        });
        await tx.query(
          "INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by) VALUES ('org', $1, 'after', 'w', 'n', 't')",
          [crypto.randomUUID()],
        );
      });
      expect(await tenants(sql)).toEqual(["after", "kept"]);
    });

    it("an outer rollback drops what a released savepoint did", async () => {
      await sql.query("DELETE FROM dashboards");
      await expect(
        sql.transaction(async (tx) => {
          await tx.transaction((inner) =>
            inner.query(
              "INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by) VALUES ('org', $1, 'inner', 'w', 'n', 't')",
              [crypto.randomUUID()],
            ),
          );
          expect(await tenants(tx)).toEqual(["inner"]);
          throw new Failure("outer fails");
        }),
      ).rejects.toBeInstanceOf(Failure);
      expect(await tenants(sql)).toEqual([]);
    });

    it("evicts and announces on commit; a rollback, whole or to a savepoint, does neither", async () => {
      await sql.query("DELETE FROM dashboards");
      const cache = new DashboardCache();
      cache.setListening(true);
      const forgotten: string[] = [];
      const forget = cache.forget.bind(cache);
      cache.forget = (org, tenant) => {
        forgotten.push(tenant);
        forget(org, tenant);
      };
      const notices: string[] = [];
      const unlisten = await sql.listen(
        DASHBOARD_CHANGES_CHANNEL,
        (p) => notices.push(p),
        () => {},
      );
      const run = inTransaction(sql, cache);
      try {
        await expect(
          run(async (tx) => {
            await tx.dashboards.insert(dashboard("rolled-back"));
            throw new Failure("no");
          }),
        ).rejects.toBeInstanceOf(Failure);
        expect(forgotten).toEqual([]);

        await run(async (tx) => {
          await tx.dashboards.insert(dashboard("committed"));
          await tx.dashboards.update("org", "committed", { ...dashboard("committed"), name: "twice" });
          // Evictions wait for the commit.
          expect(forgotten).toEqual([]);
        });
        expect(forgotten).toEqual(["committed", "committed"]);
        forgotten.length = 0;

        await run(async (tx) => {
          await tx.dashboards.insert(dashboard("kept"));
          const nested: typeof tx.savepoint = (fn) => tx.savepoint(fn);
          await nested((inner) => inner.dashboards.insert(dashboard("savepoint-kept")));
          await expect(
            nested(async (inner) => {
              await inner.dashboards.insert(dashboard("savepoint-dropped"));
              throw new Failure("inner");
            }),
          ).rejects.toBeInstanceOf(Failure);
          // A unique violation inside a savepoint: ALREADY_EXISTS, and the outer transaction goes on.
          await expect(nested((inner) => inner.dashboards.insert(dashboard("kept")))).rejects.toMatchObject({
            reason: "ALREADY_EXISTS",
          });
          expect(forgotten).toEqual([]);
        });
        expect(forgotten.sort()).toEqual(["kept", "savepoint-kept"]);
        expect(await tenants(sql)).toEqual(["committed", "kept", "savepoint-kept"]);

        // Notices arrive in commit order: once the marker is in, every earlier notice is too.
        await sql.notify(DASHBOARD_CHANGES_CHANNEL, "marker");
        for (let i = 0; i < 500 && !notices.includes("marker"); i++) await new Promise((r) => setTimeout(r, 10));
        expect(notices.filter((n) => n !== "marker").map((n) => (JSON.parse(n) as string[])[1])).toEqual([
          "committed",
          "kept",
          "savepoint-kept",
        ]);
      } finally {
        await unlisten();
      }
    });

    it("a cached read is not served inside a transaction, which sees its own writes", async () => {
      await sql.query("DELETE FROM dashboards");
      const cache = new DashboardCache();
      cache.setListening(true);
      const run = inTransaction(sql, cache);
      await run((tx) => tx.dashboards.insert(dashboard("seen")));
      const stores = inTransaction(sql, cache);
      const outside = storesOn(sql, cache);
      const missed = outside.dashboards.findByTenant("org", "seen");
      expect(missed).toBeInstanceOf(Promise);
      expect((await missed)?.name).toBe("seen");
      // Cached now: answered at once, with no promise, as the same record.
      const hit = outside.dashboards.findByTenant("org", "seen");
      expect(hit).not.toBeInstanceOf(Promise);
      expect(hit).toBe(await missed);
      await expect(
        stores(async (tx) => {
          await tx.dashboards.update("org", "seen", { ...dashboard("seen"), name: "changed" });
          const own = tx.dashboards.findByTenant("org", "seen");
          expect(own).toBeInstanceOf(Promise);
          expect((await own)?.name).toBe("changed");
          throw new Failure("undo");
        }),
      ).rejects.toBeInstanceOf(Failure);
      expect((await outside.dashboards.findByTenant("org", "seen"))?.name).toBe("seen");
    });
  });
}

let db: TestDatabase;
transactionContract("PostgreSQL", async () => {
  db = await createTestDatabase();
  const sql = postgresSql(db.url, 4);
  return {
    sql,
    close: async () => {
      await sql.close();
      await db.drop();
    },
  };
});

transactionContract("PGlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dash-pglite-"));
  const sql = await embeddedSql(dir);
  return {
    sql,
    close: async () => {
      await sql.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
