import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp } from "../../src/app.js";
import { loadConfig } from "../../src/config/config.js";
import { randomKek, storedOrganizationKeys, TEST_KEY_ENCRYPTION_KEYS } from "../helpers/keys.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { TEST_JWT_SECRET } from "../helpers/tokens.js";
import { as, client, dashboardWithToken, failure } from "./support.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** `npm run keys -- ...` as an operator runs it (tsx on the sources), against the test database. */
async function keysCommand(db: TestDatabase, keks: string, ...args: string[]) {
  const { stdout } = await run(process.execPath, ["--import", "tsx", "src/keys/keys-command.ts", ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "test",
      DATABASE_URL: db.url,
      KEY_ENCRYPTION_KEYS: keks,
      LOG_LEVEL: "silent",
    },
  });
  return stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** What a backup holds: the whole database, as pg_dump writes it. */
async function dump(db: TestDatabase): Promise<string> {
  const url = new URL(db.url);
  const { stdout } = await run("pg_dump", ["-h", url.hostname, "-p", url.port || "5432", "-U", url.username, db.name], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

const startWith = (db: TestDatabase, keks: string) =>
  startApp(
    loadConfig({
      NODE_ENV: "test",
      HOST: "127.0.0.1",
      PORT: "0",
      DATABASE_URL: db.url,
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      KEY_ENCRYPTION_KEYS: keks,
      LOG_LEVEL: "silent",
    }),
    pino({ level: "silent" }),
  );

describe("signing keys sealed at rest", () => {
  let db: TestDatabase;
  let server: TestServer;
  const orgs = ["org-seal-1", "org-seal-2"];
  const tokens: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer({}, db);
    for (const org of orgs) {
      const admin = await as({ org, admin: true });
      tokens.push((await dashboardWithToken(client(server.baseUrl), admin, "tenant-s")).minted.token);
      await client(server.baseUrl).rotateSigningKey({}, admin);
    }
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it("leaves no private key material in a pg_dump after mints and rotations", async () => {
    const text = await dump(db);
    expect(text).toContain("organization_signing_keys");
    // The private keys exist (they open with the key-encryption key) ...
    const privateParts: string[] = [];
    for (const org of orgs) {
      const keys = await storedOrganizationKeys(db.url, org);
      expect(keys.filter((k) => k.jwk).length).toBe(2); // active and next
      for (const k of keys) if (k.jwk) privateParts.push(k.jwk.d!, Buffer.from(k.jwk.d!, "base64url").toString("hex"));
      for (const k of keys) if (k.jwk) expect(text).toContain(k.sealed!.ct);
    }
    // ... but the dump holds no JWK "d" member, and none of their bytes in any encoding pg_dump would use.
    expect(text).not.toMatch(/"d"\s*:/);
    for (const part of privateParts) expect(text).not.toContain(part);
  });

  it("refuses to start with a wrong key-encryption key, naming it, and never reads plaintext instead", async () => {
    const wrong = `test-1:${Buffer.alloc(32, 9).toString("base64url")}`;
    await expect(startWith(db, wrong)).rejects.toThrow(
      /does not open with key-encryption key "test-1".*Refusing to start/s,
    );
    await expect(startWith(db, randomKek("other"))).rejects.toThrow(/KEY_ENCRYPTION_KEYS does not list/);
  });

  it("reseals everything under a new key-encryption key; the old one can then go", async () => {
    const next = randomKek("test-2");
    const output = await keysCommand(db, `${next},${TEST_KEY_ENCRYPTION_KEYS}`, "reseal", "--actor", "ops-alice");
    expect(output[0]).toMatchObject({ resealed: 4, current: 0, failed: [] });
    for (const org of orgs) {
      const keys = await storedOrganizationKeys(db.url, org, next);
      expect(keys.filter((k) => k.sealed).map((k) => k.sealed!.kek)).toEqual(["test-2", "test-2"]);
    }
    const audit = await queryDatabase<{ organization_id: string; actor: string }>(
      db.url,
      "SELECT organization_id, actor FROM audit_events WHERE action = 'SIGNING_KEYS_RESEALED' ORDER BY organization_id",
    );
    expect(audit).toEqual(orgs.map((o) => ({ organization_id: o, actor: "ops-alice" })));
    // Running it again finds nothing to do.
    expect((await keysCommand(db, next, "reseal"))[0]).toMatchObject({ resealed: 0, current: 4 });

    // A replica with only the new key starts, signs and verifies what was minted before.
    const replica = await startTestServer({ KEY_ENCRYPTION_KEYS: next }, db);
    try {
      const admin = await as({ org: orgs[0]!, admin: true });
      const api = client(replica.baseUrl);
      await expect(api.verifyIframeToken({ token: tokens[0]! }, admin)).resolves.toBeDefined();
      const dashboardId = (await api.getDashboard({ tenantId: "tenant-s" }, admin)).dashboard!.id;
      await expect(
        api.createIframeToken({ tenantId: "tenant-s", workspaceId: "ws-1", dashboardId }, admin),
      ).resolves.toBeDefined();
    } finally {
      await replica.stop();
    }
    // And the old key alone no longer opens anything.
    await expect(startWith(db, TEST_KEY_ENCRYPTION_KEYS)).rejects.toThrow(
      /"test-2", which KEY_ENCRYPTION_KEYS does not list/,
    );
  });
});

describe("npm run keys -- retire --now and rotate --all", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.stop());

  it("retire --now ends every token the key signed at once, online and in the key set; rotate --all rotates everyone", async () => {
    const org = "org-stolen";
    const admin = await as({ org, admin: true });
    const api = client(server.baseUrl);
    const { minted, dashboard } = await dashboardWithToken(api, admin, "tenant-k");
    const stolen = decodeProtectedHeader(minted.token).kid!;
    const bystander = await as({ org: "org-bystander", admin: true });
    const { minted: other } = await dashboardWithToken(api, bystander, "tenant-b");

    const [retired] = await keysCommand(
      server.db,
      TEST_KEY_ENCRYPTION_KEYS,
      "retire",
      "--org",
      org,
      // A kid is base64url, so it may start with "-": given as --kid=KID, it is never taken for an option.
      `--kid=${stolen}`,
      "--now",
    );
    expect(retired).toMatchObject({ organizationId: org, retired: stolen, was: "active" });
    const kids = (await storedOrganizationKeys(server.db.url, org)).filter(
      (k) => k.state !== "retired" || k.verifyUntil! > new Date(),
    );
    expect(kids.map((k) => k.kid)).not.toContain(stolen);

    // This replica re-reads the ring within KEY_REFRESH_MS; a fresh one sees it at once.
    const fresh = await startTestServer({}, server.db);
    try {
      const refused = await failure(client(fresh.baseUrl).verifyIframeToken({ token: minted.token }, admin));
      expect(refused).toMatchObject({ code: Code.InvalidArgument, reason: "TOKEN_INVALID" });
      const set = createRemoteJWKSet(new URL(`${fresh.baseUrl}/.well-known/jwks/${org}.json`));
      await expect(jwtVerify(minted.token, set)).rejects.toThrow();
      // The organization keeps minting, with the key that was next.
      const after = await client(fresh.baseUrl).createIframeToken(
        { tenantId: "tenant-k", workspaceId: "ws-1", dashboardId: dashboard.id },
        admin,
      );
      expect(decodeProtectedHeader(after.token).kid).toBe(retired!.nowActive);
      await expect(jwtVerify(after.token, set)).resolves.toBeDefined();
      // Another organization is untouched.
      await expect(client(fresh.baseUrl).verifyIframeToken({ token: other.token }, bystander)).resolves.toBeDefined();
    } finally {
      await fresh.stop();
    }
    const audit = await queryDatabase<{ actor: string; details: Record<string, string> }>(
      server.db.url,
      "SELECT actor, details FROM audit_events WHERE organization_id = $1 AND action = 'SIGNING_KEY_RETIRED'",
      [org],
    );
    expect(audit.map((e) => [e.actor, e.details.kid, e.details.role])).toEqual([["operator", stolen, "active"]]);

    const rotated = await keysCommand(server.db, TEST_KEY_ENCRYPTION_KEYS, "rotate", "--all", "--reason", "drill");
    expect(rotated.map((r) => r.organizationId).sort()).toEqual(["org-bystander", org]);
  });

  it("refuses to retire without --now, or a key the organization does not have", async () => {
    await expect(
      keysCommand(server.db, TEST_KEY_ENCRYPTION_KEYS, "retire", "--org", "x", "--kid", "k"),
    ).rejects.toThrow(/needs --now/);
    await expect(
      keysCommand(server.db, TEST_KEY_ENCRYPTION_KEYS, "retire", "--org", "org-none", "--kid", "k", "--now"),
    ).rejects.toThrow(/has no published key "k"/);
  });
});
