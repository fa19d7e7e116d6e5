import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, readMigrations } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

describe("migrations", () => {
  it("are applied exactly once when several replicas start at the same moment", async () => {
    const replicas = Array.from({ length: 4 }, () => postgresSql(db.url, 2));
    try {
      const applied = await Promise.all(replicas.map((sql) => migrate(sql)));
      const all = (await readMigrations()).map((m) => m.version);
      // Exactly one replica applied each migration; the others found nothing to do.
      expect(applied.flat().sort()).toEqual(all);
      const rows = await queryDatabase<{ version: number }>(
        db.url,
        "SELECT version FROM schema_migrations ORDER BY version",
      );
      expect(rows.map((r) => r.version)).toEqual(all);
    } finally {
      await Promise.all(replicas.map((sql) => sql.close()));
    }
  });

  it("roll back entirely when one of them fails", async () => {
    const other = await createTestDatabase();
    const sql = postgresSql(other.url, 1);
    try {
      const broken = [
        { version: 1, name: "fine", sql: "CREATE TABLE first_table (id int)" },
        {
          version: 2,
          name: "broken",
          sql: "CREATE TABLE second_table (id int); SELECT no_such_column FROM first_table",
        },
      ];
      await expect(migrate(sql, broken)).rejects.toThrow(/no_such_column/);
      const tables = await queryDatabase(
        other.url,
        "SELECT tablename FROM pg_tables WHERE tablename IN ('first_table', 'second_table', 'schema_migrations')",
      );
      expect(tables).toEqual([]);
    } finally {
      await sql.close();
      await other.drop();
    }
  });

  it("enforce one dashboard per organization and tenant in the database itself", async () => {
    const insert = (org: string, id: string) =>
      queryDatabase(
        db.url,
        "INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, created_by) VALUES ($1, $2, 't', 'w', 'n', 'u')",
        [org, id],
      );
    await insert("o1", "0190f3c2-0000-7000-8000-000000000001");
    await expect(insert("o1", "0190f3c2-0000-7000-8000-000000000002")).rejects.toThrow(/dashboards_one_per_tenant/);
    await insert("o2", "0190f3c2-0000-7000-8000-000000000003");
  });
});
