/** `npm run migrate`: applies pending migrations to the configured database and exits. */
import { loadConfig } from "../config/config.js";
import { migrate } from "./migrate.js";
import { embeddedSql } from "./embedded-sql.js";
import { postgresSql } from "./postgres-sql.js";

const config = loadConfig(process.env);
const sql =
  config.database.kind === "postgres"
    ? postgresSql(config.database.url, 1)
    : await embeddedSql(config.database.dataDir);
try {
  const applied = await migrate(sql);
  process.stdout.write(applied.length ? `applied migrations ${applied.join(", ")}\n` : "the schema is up to date\n");
} finally {
  await sql.close();
}
