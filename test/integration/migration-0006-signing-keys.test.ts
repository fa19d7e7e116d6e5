import { createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyOperations } from "../../src/keys/key-operations.js";
import { migrate, readMigrations } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import type { Sql } from "../../src/store/sql.js";
import { generateSigningKey } from "../../src/tokens/key-ring.js";
import { ManualClock } from "../helpers/clock.js";
import { failureOf } from "../helpers/errors.js";
import { sealerFor } from "../helpers/keys.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { as, client } from "../tokens/support.js";

/**
 * Migration 0006 (keys per organization, sealed) on a live database: the
 * previous release (0001–0005) has its one global key ring and has signed a
 * token with it; 0006 is applied while that release keeps using its own
 * statements (copied here from it, byte for byte); the new release verifies
 * that token through the global key set until it expires, signs with
 * per-organization keys, and `reseal` retires the global ring.
 */

const ORG = "org-upgrade";
// max TTL 3 s: the retired global key verifies for 3 + 5 + 5 + 1 = 14 s after reseal.
const SHORT_TTL = { EMBED_TOKEN_MAX_TTL_SECONDS: "3", EMBED_TOKEN_DEFAULT_TTL_SECONDS: "3" };
const previousRelease = {
  activateIfNone: `INSERT INTO embed_signing_keys (kid, private_jwk, public_jwk, active) VALUES ($1, $2, $3, true)
       ON CONFLICT DO NOTHING`,
  prepareNextIfNone: `INSERT INTO embed_next_signing_key (kid, private_jwk, public_jwk) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING`,
  live: `SELECT kid, private_jwk, public_jwk, created_at, CASE WHEN active THEN 'active' ELSE 'retired' END AS role, verify_until
         FROM embed_signing_keys
        WHERE active OR verify_until > $1
       UNION ALL
       SELECT kid, private_jwk, public_jwk, created_at, 'next', NULL FROM embed_next_signing_key
       ORDER BY created_at DESC`,
};

const clock = new ManualClock();
let db: TestDatabase;
let sql: Sql;
let server: TestServer;
let legacyKid: string;
let legacyToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = postgresSql(db.url, 2);
  const all = await readMigrations();
  expect(
    await migrate(
      sql,
      all.filter((m) => m.version < 6),
    ),
  ).toEqual([1, 2, 3, 4, 5]);
  // The previous release's ring and a token it signed.
  const [active, next] = [await generateSigningKey(), await generateSigningKey()];
  for (const [statement, key] of [
    [previousRelease.activateIfNone, active],
    [previousRelease.prepareNextIfNone, next],
  ] as const) {
    await sql.query(statement, [key.kid, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk)]);
  }
  legacyKid = active.kid;
  legacyToken = await new SignJWT({
    organization_id: ORG,
    tenant_id: "t-1",
    workspace_id: "ws-1",
    dashboard_id: "0190f3c2-0000-7000-8000-00000000cc01",
    filters: [{ field: "tenant_id", op: "eq", values: ["t-1"] }],
  })
    .setProtectedHeader({ alg: "EdDSA", kid: active.kid, typ: "dashboard-embed+jwt" })
    .setIssuer("dashboard-service")
    .setAudience("dashboard-embed")
    .setSubject("alice")
    .setIssuedAt(clock.seconds())
    .setNotBefore(clock.seconds())
    .setExpirationTime(clock.seconds() + 3)
    .setJti("0190f3c2-0000-7000-8000-00000000cc02")
    .sign(await importJWK(active.privateJwk, "EdDSA"));

  // Only 0006: later migrations are applied by the server started below.
  expect(
    await migrate(
      sql,
      all.filter((m) => m.version <= 6),
    ),
  ).toEqual([6]);
  server = await startTestServer(SHORT_TTL, db, { clock: clock.now });
});
afterAll(async () => {
  await server?.app.stop(1_000);
  await sql?.close();
  await db?.drop();
});

const globalSet = () => createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`));
const verifyOffline = (token: string, set = globalSet()) =>
  jwtVerify(token, set, { algorithms: ["EdDSA"], clockTolerance: 5, currentDate: clock.date() });

describe("migration 0006 during a rolling update", () => {
  it("keeps the previous release's statements working: it still reads and signs with its ring", async () => {
    const { rows } = await sql.query<{ kid: string; role: string; private_jwk: unknown }>(previousRelease.live, [
      new Date(),
    ]);
    expect(rows.map((r) => r.role).sort()).toEqual(["active", "next"]);
    expect(rows.every((r) => r.private_jwk !== null)).toBe(true);
    // Its second replica starting up inserts nothing new (one active key still).
    const again = await generateSigningKey();
    await sql.query(previousRelease.activateIfNone, [
      again.kid,
      JSON.stringify(again.privateJwk),
      JSON.stringify(again.publicJwk),
    ]);
    expect(await queryDatabase(db.url, "SELECT kid FROM embed_signing_keys WHERE active")).toEqual([
      { kid: legacyKid },
    ]);
  });

  it("verifies the previous release's token through the global key set and the RPC, and signs with the organization's key", async () => {
    await expect(verifyOffline(legacyToken)).resolves.toBeDefined();
    const admin = await as({ org: ORG, admin: true, issuedAt: clock.seconds() });
    const api = client(server.baseUrl);
    // Verification goes as far as the dashboard check: the signature was accepted.
    const refused = await failureOf(api.verifyIframeToken({ token: legacyToken }, admin));
    expect(refused).toMatchObject({ reason: "TOKEN_REVOKED" });
    expect(refused.message).toContain("dashboard of the token no longer exists");

    const { dashboard } = await api.createDashboard({ tenantId: "t-1", workspaceId: "ws-1", name: "Upgraded" }, admin);
    const minted = await api.createIframeToken(
      { tenantId: "t-1", workspaceId: "ws-1", dashboardId: dashboard!.id },
      admin,
    );
    const kid = decodeProtectedHeader(minted.token).kid!;
    expect(kid).not.toBe(legacyKid);
    const orgSet = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks/${ORG}.json`));
    await expect(verifyOffline(minted.token, orgSet)).resolves.toBeDefined();
    // The organization's set is its own: the global ring's keys are not in it.
    await expect(verifyOffline(legacyToken, orgSet)).rejects.toThrow();
  });

  it("reseal retires the global ring and deletes its plaintext; its key set verifies until its tokens expired, then is empty", async () => {
    const config = server.config;
    const operations = await KeyOperations.open(sql, config, await sealerFor(), clock.now);
    const outcome = await operations.reseal({ subject: "ops" });
    // The active key (retired, verifying) and the never-used next key (gone).
    expect(outcome.globalRetired).toHaveLength(2);
    expect(outcome.globalRetired).toContain(legacyKid);
    const [legacy] = await queryDatabase<{ active: boolean; verify_until: Date }>(
      db.url,
      "SELECT active, verify_until FROM embed_signing_keys WHERE kid = $1",
      [legacyKid],
    );
    expect(legacy).toMatchObject({ active: false });
    expect(legacy!.verify_until.getTime()).toBe(clock.now() + 14_000);
    const leftovers = await queryDatabase(
      db.url,
      "SELECT kid FROM embed_signing_keys WHERE private_jwk IS NOT NULL OR sealed_private_key IS NOT NULL",
    );
    expect(leftovers).toEqual([]);
    expect(await queryDatabase(db.url, "SELECT kid FROM embed_next_signing_key")).toEqual([]);

    // Still verifying (the ring is re-read within KEY_REFRESH_MS) ...
    clock.advance(5_000);
    await expect(verifyOffline(legacyToken)).resolves.toBeDefined();
    // ... until its window is over: then the global set is empty.
    clock.advance(15_000);
    const res = await fetch(`${server.baseUrl}/.well-known/jwks.json`);
    expect(await res.json()).toEqual({ keys: [] });
    expect(res.headers.get("cache-control")).toMatch(/max-age=60/);
  });
});
