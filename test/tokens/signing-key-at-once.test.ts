import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, readMigrations } from "../../src/store/migrate.js";
import { postgresSql } from "../../src/store/postgres-sql.js";
import { OrganizationKeyStore, PrivateKeyStore, SigningKeyStore } from "../../src/store/signing-key-store.js";
import type { Sql } from "../../src/store/sql.js";
import { KEY_REFRESH_MS, KeyRing, type SigningKey } from "../../src/tokens/key-ring.js";
import { ManualClock } from "../helpers/clock.js";
import { sealerFor } from "../helpers/keys.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

/**
 * A mint's signing key comes from memory while the organization's ring is fresh and its key imported:
 * at once, with no promise. A ring past KEY_REFRESH_MS, or a key not yet imported, is read through a
 * promise, and both ways give the same key.
 */
let db: TestDatabase;
let sql: Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  sql = postgresSql(db.url, 2);
  await migrate(sql, await readMigrations());
});
afterAll(async () => {
  await sql.close();
  await db.drop();
});

describe("the key ring's signing key", () => {
  it("is given at once while the ring is fresh, and read again once it is not", async () => {
    const clock = new ManualClock();
    const ring = await KeyRing.open(
      {
        organizations: new OrganizationKeyStore(sql),
        global: new SigningKeyStore(sql),
        privateKeys: new PrivateKeyStore(sql),
      },
      { configuredKeyJwk: undefined, sealer: await sealerFor(), now: clock.now },
    );
    // The first mint makes the ring, unseals and imports its key: asynchronous.
    const first = ring.signingKey("org-at-once");
    expect(first).toBeInstanceOf(Promise);
    const made = await first;

    const held = ring.signingKey("org-at-once");
    expect(held).not.toBeInstanceOf(Promise);
    expect((held as SigningKey).kid).toBe(made.kid);
    expect((held as SigningKey).key).toBe(made.key);

    // Past the refresh interval the ring is read again (a rotation elsewhere is picked up), with the same key.
    clock.advance(KEY_REFRESH_MS);
    const reread = ring.signingKey("org-at-once");
    expect(reread).toBeInstanceOf(Promise);
    expect(await reread).toEqual(made);
    expect(ring.signingKey("org-at-once")).not.toBeInstanceOf(Promise);

    // Another organization has a ring and a key of its own.
    const other = await ring.signingKey("org-other");
    expect(other.kid).not.toBe(made.kid);
  });
});
