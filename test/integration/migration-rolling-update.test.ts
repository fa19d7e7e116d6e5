import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmbedPermission, EmbedTheme } from "../../gen/dashboard/v1/embed_settings_pb.js";
import { migrate, readMigrations } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import type { Sql } from "../../src/store/sql.js";
import { dashboardClient, type DashboardClient } from "../helpers/clients.js";
import { failureOf } from "../helpers/errors.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";
import { storedPrivateKeys } from "../tokens/support.js";

/**
 * Migration 0005 (embed settings) on a live database: the previous release
 * (migrations 0001–0004) has written dashboards, an idempotent create and its
 * stored answer; then 0005 is applied while that release keeps writing with
 * its own statements (copied here from it, byte for byte), and the new
 * release serves all of it.
 */

const ORG = "org-rolling";
const PREVIOUS_COLUMNS =
  "id, organization_id, tenant_id, workspace_id, name, description, created_by, allowed_origins, created_at, updated_at";
const previousRelease = {
  insertDashboard: `INSERT INTO dashboards (organization_id, id, tenant_id, workspace_id, name, description, created_by, allowed_origins)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING ${PREVIOUS_COLUMNS}`,
  selectDashboard: `SELECT ${PREVIOUS_COLUMNS} FROM dashboards WHERE organization_id = $1 AND tenant_id = $2`,
  claimRequest: `INSERT INTO create_requests (organization_id, request_id, fingerprint) VALUES ($1, $2, $3)
       ON CONFLICT (organization_id, request_id) DO NOTHING RETURNING request_id`,
  completeRequest: "UPDATE create_requests SET response = $3 WHERE organization_id = $1 AND request_id = $2",
  /** Its fingerprint of a CreateDashboard: the caller and the request's fields (an absent description is null). */
  fingerprint: (fields: unknown[]) => createHash("sha256").update(JSON.stringify(fields)).digest("base64url"),
};

let db: TestDatabase;
let sql: Sql;
let server: TestServer;
let client: DashboardClient;
let admin: ReturnType<typeof bearer>;
const ids = {
  before: "0190f3c2-0000-7000-8000-00000000aa01",
  replayed: "0190f3c2-0000-7000-8000-00000000aa02",
  during: "0190f3c2-0000-7000-8000-00000000aa03",
};

async function insertAsPreviousRelease(id: string, tenantId: string, origins: string[] = []) {
  const { rows } = await sql.query<Record<string, unknown>>(previousRelease.insertDashboard, [
    ORG,
    id,
    tenantId,
    "ws-1",
    `Dashboard of ${tenantId}`,
    "",
    "alice",
    origins,
  ]);
  return rows[0]!;
}

beforeAll(async () => {
  db = await createTestDatabase();
  sql = postgresSql(db.url, 2);
  const all = await readMigrations();
  expect(all.map((m) => m.version)).toContain(5);
  expect(
    await migrate(
      sql,
      all.filter((m) => m.version < 5),
    ),
  ).toEqual([1, 2, 3, 4]);

  // The previous release at work: a dashboard, and an idempotent create whose answer it stored.
  await insertAsPreviousRelease(ids.before, "t-before", ["https://app.example"]);
  const fingerprint = previousRelease.fingerprint(["alice", "t-replayed", "ws-1", "Dashboard of t-replayed", null, []]);
  expect((await sql.query(previousRelease.claimRequest, [ORG, "req-1", fingerprint])).rows).toHaveLength(1);
  const stored = await insertAsPreviousRelease(ids.replayed, "t-replayed");
  const answer = {
    id: stored.id,
    organizationId: ORG,
    tenantId: "t-replayed",
    workspaceId: "ws-1",
    name: stored.name,
    description: "",
    createdBy: "alice",
    allowedOrigins: [],
    createdAt: stored.created_at,
    updatedAt: stored.updated_at,
  };
  await sql.query(previousRelease.completeRequest, [ORG, "req-1", JSON.stringify(answer)]);

  // The new release's migration, while the previous release still serves.
  // (Later migrations are applied by the server started below.)
  expect(
    await migrate(
      sql,
      all.filter((m) => m.version <= 5),
    ),
  ).toEqual([5]);
  await insertAsPreviousRelease(ids.during, "t-during");

  server = await startTestServer({}, db);
  client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  admin = bearer(await callerToken({ org: ORG, admin: true, sub: "alice" }));
});
afterAll(async () => {
  await server?.app.stop(1_000);
  await sql?.close();
  await db?.drop();
});

const ALL_PERMISSIONS = [
  EmbedPermission.DOWNLOAD_IMAGE,
  EmbedPermission.EXPORT_DATA,
  EmbedPermission.DRILL_THROUGH,
  EmbedPermission.VIEW_UNDERLYING_DATA,
  EmbedPermission.FULLSCREEN,
];
const DEFAULTS = {
  embeddingEnabled: true,
  embedDefaults: { permissions: { permissions: [] }, locale: "", timeZone: "", theme: EmbedTheme.UNSPECIFIED },
  permissionCeiling: { permissions: ALL_PERMISSIONS },
};

describe("migration 0005 during a rolling update", () => {
  it("gives rows the previous release wrote, before and during the migration, the defaults it implied", async () => {
    for (const [tenantId, id] of [
      ["t-before", ids.before],
      ["t-during", ids.during],
    ] as const) {
      const { dashboard } = await client.getDashboard({ tenantId }, admin);
      expect(dashboard).toMatchObject({ id, ...DEFAULTS });
      expect(dashboard!.etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    }
  });

  it("keeps the previous release's statements working after it: its reads ignore the new columns", async () => {
    const { rows } = await sql.query<Record<string, unknown>>(previousRelease.selectDashboard, [ORG, "t-before"]);
    expect(Object.keys(rows[0]!).sort()).toEqual(PREVIOUS_COLUMNS.split(", ").sort());
    // The new constraints hold for its inserts (which take the defaults).
    await insertAsPreviousRelease("0190f3c2-0000-7000-8000-00000000aa04", "t-after");
    expect((await client.getDashboard({ tenantId: "t-after" }, admin)).dashboard).toMatchObject(DEFAULTS);
  });

  it("replays a create the previous release answered, with the settings its dashboard got by default", async () => {
    const { dashboard } = await client.createDashboard(
      { tenantId: "t-replayed", workspaceId: "ws-1", name: "Dashboard of t-replayed", requestId: "req-1" },
      admin,
    );
    expect(dashboard).toMatchObject({ id: ids.replayed, tenantId: "t-replayed", ...DEFAULTS });
  });

  it("updates, mints for and pauses those dashboards like any other", async () => {
    const before = (await client.getDashboard({ tenantId: "t-before" }, admin)).dashboard!;
    const { dashboard: updated } = await client.updateDashboard(
      { dashboard: { tenantId: "t-before", name: "Renamed", etag: before.etag }, updateMask: { paths: ["name"] } },
      admin,
    );
    expect(updated!.etag).not.toBe(before.etag);
    const versions = await queryDatabase<{ version: string }>(
      db.url,
      "SELECT version FROM dashboards WHERE organization_id = $1 AND tenant_id = 't-before'",
      [ORG],
    );
    expect(Number(versions[0]!.version)).toBe(2);

    const minted = await client.createIframeToken(
      { tenantId: "t-during", workspaceId: "ws-1", dashboardId: ids.during },
      admin,
    );
    expect((await client.verifyIframeToken({ token: minted.token }, admin)).claims!.permissions).toEqual([]);
    await client.updateDashboard(
      { dashboard: { tenantId: "t-during" }, updateMask: { paths: ["embedding_enabled"] } },
      admin,
    );
    expect(await failureOf(client.verifyIframeToken({ token: minted.token }, admin))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "EMBEDDING_PAUSED",
    });
  });

  it("verifies a token shaped as the previous release signed it (no embed claims) as one with the defaults", async () => {
    // The organization's own key (sealed at rest; unsealed here with the test key-encryption key).
    const [key] = await storedPrivateKeys(db.url, ORG);
    expect(key!.active).toBe(true);
    const now = Math.floor(Date.now() / 1000);
    // Exactly the claims the previous release's signer wrote.
    const token = await new SignJWT({
      organization_id: ORG,
      tenant_id: "t-after",
      workspace_id: "ws-1",
      dashboard_id: "0190f3c2-0000-7000-8000-00000000aa04",
      filters: [{ field: "tenant_id", op: "eq", values: ["t-after"] }],
    })
      .setProtectedHeader({ alg: "EdDSA", kid: key!.kid, typ: "dashboard-embed+jwt" })
      .setIssuer(server.config.embed.issuer)
      .setAudience(server.config.embed.audience)
      .setSubject("alice")
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .setJti("0190f3c2-0000-7000-8000-00000000bb01")
      .sign(await importJWK(key!.jwk, "EdDSA"));
    const { claims } = await client.verifyIframeToken({ token }, admin);
    expect(claims).toMatchObject({ tenantId: "t-after", permissions: [], locale: "", timeZone: "", theme: 0 });
    expect(claims!.viewer).toBeUndefined();
  });
});
