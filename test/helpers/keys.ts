import type { JWK } from "jose";
import type { SealedPrivateKey } from "../../src/tokens/key-sealing.js";
import { KeySealer } from "../../src/tokens/key-sealing.js";
import { queryDatabase } from "./postgres.js";

/** The key-encryption key every test server seals with unless a test sets its own (fixed, so files can unseal). */
export const TEST_KEK_ID = "test-1";
export const TEST_KEK = Buffer.alloc(32, 7).toString("base64url");
export const TEST_KEY_ENCRYPTION_KEYS = `${TEST_KEK_ID}:${TEST_KEK}`;

/** A fresh random key-encryption key entry, id:base64 (standard alphabet, to exercise both). */
export function randomKek(id: string): string {
  return `${id}:${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
}

export async function sealerFor(keys: string = TEST_KEY_ENCRYPTION_KEYS): Promise<KeySealer> {
  return KeySealer.create(
    keys.split(",").map((entry) => {
      const [id, key] = entry.split(":") as [string, string];
      return { id, key: new Uint8Array(Buffer.from(key.replace(/-/g, "+").replace(/_/g, "/"), "base64")) };
    }),
  );
}

export interface StoredOrganizationKey {
  kid: string;
  state: "active" | "next" | "retired";
  /** Unsealed with the test key-encryption key; undefined once the key no longer has a private half. */
  jwk: JWK | undefined;
  sealed: SealedPrivateKey | null;
  verifyUntil: Date | null;
}

/** An organization's stored keys, oldest first, read behind the service's back and unsealed (to forge tokens with). */
export async function storedOrganizationKeys(
  databaseUrl: string,
  organizationId: string,
  keys: string = TEST_KEY_ENCRYPTION_KEYS,
): Promise<StoredOrganizationKey[]> {
  const sealer = await sealerFor(keys);
  const rows = await queryDatabase<{
    kid: string;
    state: StoredOrganizationKey["state"];
    sealed_private_key: SealedPrivateKey | null;
    verify_until: Date | null;
  }>(
    databaseUrl,
    `SELECT kid, state, sealed_private_key, verify_until FROM organization_signing_keys
      WHERE organization_id = $1 ORDER BY created_at, kid`,
    [organizationId],
  );
  return Promise.all(
    rows.map(async (r) => ({
      kid: r.kid,
      state: r.state,
      sealed: r.sealed_private_key,
      verifyUntil: r.verify_until,
      jwk: r.sealed_private_key ? await sealer.unseal(r.sealed_private_key, { organizationId, kid: r.kid }) : undefined,
    })),
  );
}
