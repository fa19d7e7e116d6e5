import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { isTransientDatabaseError } from "../../src/store/transient-errors.js";
import { dashboardClient } from "../helpers/clients.js";
import { failureFrom } from "../helpers/errors.js";
import { createTestDatabase, POSTGRES_ADMIN_URL, queryDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

/** The error a real PostgreSQL gives when connecting as url, or undefined if it lets us in. */
async function connectError(url: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await client.end().catch(() => {});
  }
}

function urlFor(database: string, user = "postgres"): string {
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${database}`;
  url.username = user;
  return url.toString();
}

describe("which database errors are passing states (UNAVAILABLE, retry) and which are not", () => {
  let db: TestDatabase;
  const role = `dash_nolimit_${randomBytes(4).toString("hex")}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    await queryDatabase(POSTGRES_ADMIN_URL, `CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
  });
  afterAll(async () => {
    await queryDatabase(POSTGRES_ADMIN_URL, `DROP ROLE IF EXISTS ${role}`);
    await db.drop();
  });

  it("53300 too_many_connections is transient", async () => {
    const err = await connectError(urlFor(db.name, role));
    expect((err as { code?: string }).code).toBe("53300");
    expect(isTransientDatabaseError(err)).toBe(true);
  });

  it("55000 is transient only when the database is not currently accepting connections", async () => {
    await queryDatabase(POSTGRES_ADMIN_URL, `ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
    try {
      const err = await connectError(db.url);
      expect(err).toMatchObject({
        code: "55000",
        message: expect.stringContaining("not currently accepting") as unknown,
      });
      expect(isTransientDatabaseError(err)).toBe(true);
    } finally {
      await queryDatabase(POSTGRES_ADMIN_URL, `ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
    }
    // The rest of class 55 is a mistake in the request, not a passing state.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("CREATE SEQUENCE s");
      const err = await client.query("SELECT currval('s')").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as { code?: string }).code).toBe("55000");
      expect(isTransientDatabaseError(err)).toBe(false);
    } finally {
      await client.end();
    }
  });
});

describe("a database that stops accepting connections, seen through the API", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await queryDatabase(POSTGRES_ADMIN_URL, `ALTER DATABASE ${server.db.name} ALLOW_CONNECTIONS true`);
    await server.stop();
  });

  it("answers UNAVAILABLE with a retry hint, then serves again once it accepts them", async () => {
    const client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    const admin = bearer(await callerToken({ org: "org-transient", admin: true }));
    await client.createDashboard({ tenantId: "t-1", workspaceId: "ws-1", name: "Before" }, admin);

    await queryDatabase(POSTGRES_ADMIN_URL, `ALTER DATABASE ${server.db.name} ALLOW_CONNECTIONS false`);
    // Every connection the service holds goes, so its next call has to open a new one.
    await queryDatabase(
      POSTGRES_ADMIN_URL,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
      [server.db.name],
    );
    const err = await client.listDashboards({}, admin).catch((e: unknown) => e);
    expect(failureFrom(err)).toMatchObject({ code: Code.Unavailable, reason: "UNAVAILABLE" });
    expect(ConnectError.from(err).findDetails(RetryInfoSchema)).toHaveLength(1);

    await queryDatabase(POSTGRES_ADMIN_URL, `ALTER DATABASE ${server.db.name} ALLOW_CONNECTIONS true`);
    expect((await client.listDashboards({}, admin)).totalSize).toBe(1);
  });
});
