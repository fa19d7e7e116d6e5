import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import type { ReadinessReport } from "../../src/ops/health.js";
import { readMigrations, migrate } from "../../src/store/migrate.js";
import { databaseReadiness } from "../../src/store/readiness.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { match } from "../helpers/matchers.js";
import { createTestDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";

const SERVICE = "dashboard.v1.DashboardService";

/** What GET /readyz answers: a status word, and the readiness report unless the report itself failed. */
type ReadyzBody = { status: string } & Partial<ReadinessReport>;

async function readyz(baseUrl: string): Promise<{ status: number; body: ReadyzBody }> {
  const res = await fetch(`${baseUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyzBody };
}

/** Polls until check passes (the state under test changes asynchronously); fails with the last value. */
async function eventually<T>(get: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T = await get();
  while (!ok(last)) {
    if (Date.now() > until) throw new Error(`condition not met; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 200));
    last = await get();
  }
  return last;
}

function healthClient(baseUrl: string): Client<typeof Health> {
  return createClient(Health, createGrpcTransport({ baseUrl }));
}

describe("health and readiness follow PostgreSQL", () => {
  let pg: PrivatePostgres;
  let server: TestServer;
  beforeAll(async () => {
    pg = await startPrivatePostgres();
    server = await startTestServer({}, { url: pg.url, name: "postgres", drop: async () => {} });
  });
  afterAll(async () => {
    await server?.stop();
    await pg?.destroy();
  });

  it("is alive and ready over HTTP and grpc.health.v1 while PostgreSQL is up", async () => {
    const live = await fetch(`${server.baseUrl}/healthz`);
    expect(live.status).toBe(200);
    const ready = await readyz(server.baseUrl);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      ready: true,
      draining: false,
      database: { reachable: true, migrationsApplied: true, pendingVersions: [] },
      rateLimits: { backend: match.stringMatching(/^(redis|in-process)$/) },
    });
    const health = healthClient(server.baseUrl);
    expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    expect((await health.check({ service: SERVICE })).status).toBe(Status.SERVING);
  });

  it("turns not ready (and stays alive) when PostgreSQL stops, and ready again when it is back", async () => {
    const health = healthClient(server.baseUrl);
    const watching = new AbortController();
    const seen: Status[] = [];
    const watch = (async () => {
      for await (const r of health.watch({ service: SERVICE }, { signal: watching.signal })) seen.push(r.status);
    })().catch((err: unknown) => {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    });
    await eventually(
      () => seen.length,
      (n) => n >= 1,
    );
    expect(seen[0]).toBe(Status.SERVING);

    await pg.stop();
    const down = await eventually(
      () => readyz(server.baseUrl),
      (r) => r.status === 503,
    );
    expect(down.body).toMatchObject({ ready: false, draining: false, database: { reachable: false } });
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
    expect((await health.check({ service: "" })).status).toBe(Status.NOT_SERVING);
    expect((await health.check({ service: SERVICE })).status).toBe(Status.NOT_SERVING);
    await eventually(
      () => seen.at(-1),
      (s) => s === Status.NOT_SERVING,
    );

    await pg.start();
    const up = await eventually(
      () => readyz(server.baseUrl),
      (r) => r.status === 200,
    );
    expect(up.body).toMatchObject({ ready: true, database: { reachable: true, migrationsApplied: true } });
    expect((await health.check({ service: SERVICE })).status).toBe(Status.SERVING);
    await eventually(
      () => seen.at(-1),
      (s) => s === Status.SERVING,
    );
    // Watch sends changes only: up, down, up.
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING, Status.SERVING]);

    watching.abort();
    await watch;
  });

  it("answers NOT_FOUND with an ErrorInfo for a service it does not serve", async () => {
    const err = await healthClient(server.baseUrl)
      .check({ service: "other.v1.Service" })
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).findDetails(ErrorInfoSchema).map((i) => i.reason)).toEqual(["NOT_FOUND"]);
  });

  it("answers only GET (and HEAD) on the probe paths", async () => {
    const post = await fetch(`${server.baseUrl}/readyz`, { method: "POST" });
    expect(post.status).toBe(405);
  });
});

describe("readiness needs the migrations applied", () => {
  it("reports a reachable database without this build's migrations as not ready, then ready once migrated", async () => {
    const db = await createTestDatabase();
    const sql = postgresSql(db.url, 2);
    try {
      const expected = (await readMigrations()).map((m) => m.version);
      expect(expected.length).toBeGreaterThan(0);
      const before = await databaseReadiness(sql, expected, 2_000);
      expect(before).toMatchObject({ reachable: true, migrationsApplied: false, pendingVersions: expected });

      await migrate(sql);
      expect(await databaseReadiness(sql, expected, 2_000)).toEqual({
        reachable: true,
        migrationsApplied: true,
        pendingVersions: [],
      });
      // A build newer than the database (a version it has not applied) is not ready either.
      const newer = await databaseReadiness(sql, [...expected, 9999], 2_000);
      expect(newer).toMatchObject({ reachable: true, migrationsApplied: false, pendingVersions: [9999] });
    } finally {
      await sql.close();
      await db.drop();
    }
  });
});

describe("draining", () => {
  it("tells an open Watch NOT_SERVING and ends it when shutdown starts", async () => {
    const server = await startTestServer();
    let stopped = false;
    try {
      const seen: Status[] = [];
      const watch = (async () => {
        for await (const r of healthClient(server.baseUrl).watch({ service: "" })) seen.push(r.status);
      })();
      await eventually(
        () => seen.length,
        (n) => n >= 1,
      );
      expect(seen).toEqual([Status.SERVING]);
      const stopping = server.stop();
      stopped = true;
      // The stream ends by itself (so it does not hold shutdown up), after saying NOT_SERVING.
      await watch;
      expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
      await stopping;
    } finally {
      if (!stopped) await server.stop();
    }
  });
});
