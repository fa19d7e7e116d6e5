import * as grpc from "@grpc/grpc-js";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Deadline } from "../../src/call/deadline.js";
import { embeddedSql } from "../../src/store/embedded-sql.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { dashboardClient } from "../helpers/clients.js";
import { queryDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";
import { expectMatchesOpenApi } from "../rest/openapi-validator.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

let server: TestServer;
let admin: ReturnType<typeof bearer>;
beforeAll(async () => {
  // REST calls have no deadline header: the server's default applies, set short here (long enough for a
  // busy machine to hand the call a pooled connection: only the statement may be what runs out of time).
  server = await startTestServer({ RPC_DEFAULT_TIMEOUT_SECONDS: "2" });
  admin = bearer(await callerToken({ org: "org-deadline", admin: true }));
});
afterAll(() => server.stop());

/** A lock on the dashboards table held by the test: every write to it waits until released. */
async function lockDashboards(): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: server.db.url });
  await client.connect();
  await client.query("BEGIN");
  await client.query("LOCK TABLE dashboards IN ACCESS EXCLUSIVE MODE");
  return {
    async release() {
      await client.query("ROLLBACK");
      await client.end();
    },
  };
}

/** Statements of the service waiting for a lock right now. */
async function waitingStatements(): Promise<number> {
  const [row] = await queryDatabase<{ n: number }>(
    server.db.url,
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'dashboard-service' AND wait_event_type = 'Lock'`,
  );
  return row!.n;
}

/** Polls the database until check holds: waiting on the database's own state, never on a length of time. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}

async function rowsFor(tenantId: string) {
  const dashboards = await queryDatabase(server.db.url, "SELECT id FROM dashboards WHERE tenant_id = $1", [tenantId]);
  const events = await queryDatabase(server.db.url, "SELECT id FROM audit_events WHERE tenant_id = $1", [tenantId]);
  return { dashboards: dashboards.length, events: events.length };
}

describe("a call's deadline reaches PostgreSQL", () => {
  for (const [name, transport] of [
    ["Connect", () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" })],
    ["gRPC", () => createGrpcTransport({ baseUrl: server.baseUrl })],
  ] as const) {
    it(`${name}: a create that cannot commit before its deadline is DEADLINE_EXCEEDED and never appears`, async () => {
      const client = dashboardClient(transport());
      const tenantId = `late-${name}`;
      const lock = await lockDashboards();
      let released = false;
      try {
        const err = await client
          .createDashboard({ tenantId, workspaceId: "ws-1", name: "Late" }, { ...admin, timeoutMs: 300 })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        expect(err?.code).toBe(Code.DeadlineExceeded);
        // The statement was cut by the server itself while the lock is still held: nothing of ours waits on it.
        await until(async () => (await waitingStatements()) === 0);
        await lock.release();
        released = true;
        // A later write goes through; the late one, rolled back, never shows up.
        await client.createDashboard({ tenantId: `${tenantId}-after`, workspaceId: "ws-1", name: "After" }, admin);
        expect(await rowsFor(tenantId)).toEqual({ dashboards: 0, events: 0 });
      } finally {
        if (!released) await lock.release();
      }
    });
  }

  it("REST: a call past the server's default deadline is 504 DEADLINE_EXCEEDED in the envelope, and rolled back", async () => {
    // A pooled connection ready before the lock: the call's time goes to its statement, not to opening one
    // (which past the give-up margin would rightly be 503 OVERLOADED instead).
    expect((await fetch(`${server.baseUrl}/api/v1/dashboards`, admin)).status).toBe(200);
    const lock = await lockDashboards();
    let released = false;
    try {
      const res = await fetch(`${server.baseUrl}/api/v1/dashboards`, {
        method: "POST",
        headers: { ...admin.headers, "content-type": "application/json" },
        body: JSON.stringify({ tenant_id: "late-rest", workspace_id: "ws-1", name: "Late" }),
      });
      const body = await res.json();
      expect(res.status).toBe(504);
      expect(body).toMatchObject({ success: false, code: "DEADLINE_EXCEEDED" });
      expectMatchesOpenApi("POST", "/api/v1/dashboards", { status: res.status, headers: res.headers, body });
      await until(async () => (await waitingStatements()) === 0);
      await lock.release();
      released = true;
      expect(await rowsFor("late-rest")).toEqual({ dashboards: 0, events: 0 });
    } finally {
      if (!released) await lock.release();
    }
  });

  it("a client that cancels its call gets its statement cancelled: it never commits", async () => {
    const grpcClient = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const lock = await lockDashboards();
    let released = false;
    try {
      const { CreateDashboardRequestSchema } = await import("../../gen/dashboard/v1/dashboard_service_pb.js");
      const { create, toBinary } = await import("@bufbuild/protobuf");
      const request = Buffer.from(
        toBinary(
          CreateDashboardRequestSchema,
          create(CreateDashboardRequestSchema, {
            tenantId: "gone-client",
            workspaceId: "ws-1",
            name: "Gone",
          }),
        ),
      );
      const metadata = new grpc.Metadata();
      metadata.set("authorization", admin.headers.authorization);
      const outcome = new Promise<grpc.status>((resolve) => {
        const call = grpcClient.makeUnaryRequest(
          "/dashboard.v1.DashboardService/CreateDashboard",
          (b: Buffer) => b,
          (b: Buffer) => b,
          request,
          metadata,
          // A deadline far off, so only the cancel (not the server's default deadline) can end the statement.
          { deadline: Date.now() + 120_000 },
          (err) => resolve(err ? err.code : grpc.status.OK),
        );
        // Cancel once the service's statement is waiting on the lock.
        until(async () => (await waitingStatements()) > 0).then(
          () => call.cancel(),
          () => call.cancel(),
        );
      });
      expect(await outcome).toBe(grpc.status.CANCELLED);
      await until(async () => (await waitingStatements()) === 0);
      await lock.release();
      released = true;
      const client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
      await client.createDashboard({ tenantId: "after-gone", workspaceId: "ws-1", name: "After" }, admin);
      expect(await rowsFor("gone-client")).toEqual({ dashboards: 0, events: 0 });
    } finally {
      if (!released) await lock.release();
      grpcClient.close();
    }
  });

  it("refuses a malformed deadline, and one above RPC_MAX_TIMEOUT_SECONDS, as connect-node does", async () => {
    const call = (headers: Record<string, string>) =>
      fetch(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
        method: "POST",
        headers: { ...admin.headers, "content-type": "application/json", ...headers },
        body: "{}",
      });
    for (const [headers, message] of [
      [{ "connect-timeout-ms": "soon" }, "protocol error: invalid connect timeout value: soon"],
      [{ "connect-timeout-ms": "12345678901" }, "protocol error: invalid connect timeout value: 12345678901"],
      [{ "connect-timeout-ms": "300001" }, "timeout 300001ms must be <= 300000"],
    ] as const) {
      const res = await call(headers);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: string; message: string; details: { type: string; debug: unknown }[] };
      expect(body).toMatchObject({ code: "invalid_argument", message });
      expect(body.details[0]).toMatchObject({
        type: ErrorInfoSchema.typeName,
        debug: { reason: "MALFORMED_REQUEST", domain: "dashboard-service" },
      });
    }
  });
});

describe("transactions never commit once their deadline has passed", () => {
  it("PostgreSQL: a deadline that passes inside the transaction rolls it back, and says so", async () => {
    const sql = postgresSql(server.db.url, 2);
    try {
      const deadline = new Deadline(undefined);
      const failure = await sql
        .transaction(async (tx) => {
          await tx.query("INSERT INTO server_secrets (name, value) VALUES ('deadline-pg', 'x')");
          deadline.cancel();
        }, deadline)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(failure).toMatchObject({ reason: "CANCELED" });
      expect(await queryDatabase(server.db.url, "SELECT 1 FROM server_secrets WHERE name = 'deadline-pg'")).toEqual([]);
    } finally {
      await sql.close();
    }
  });

  it("PGlite (no statement timeout, no cancel): checked before COMMIT, rolled back once passed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "deadline-pglite-"));
    const sql = await embeddedSql(dir);
    try {
      await sql.query("CREATE TABLE t (v text)");
      const deadline = new Deadline(1);
      const failure = await sql
        .transaction(async (tx) => {
          await tx.query("INSERT INTO t VALUES ('late')");
          // Wait for the deadline itself to pass (its event), then try to commit.
          await new Promise<void>((resolve) => deadline.signal.addEventListener("abort", () => resolve()));
        }, deadline)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(failure).toMatchObject({ reason: "DEADLINE_EXCEEDED" });
      expect((await sql.query("SELECT v FROM t")).rows).toEqual([]);
    } finally {
      await sql.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
