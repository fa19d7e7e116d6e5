import { v7 as uuidv7 } from "uuid";
import type { Clock } from "../clock.js";
import type { Config } from "../config/config.js";
import { SigningKeys, type KeyActor, type Rotation } from "../service/signing-keys.js";
import { OrganizationKeyStore, PrivateKeyStore, SigningKeyStore } from "../store/signing-key-store.js";
import type { Sql } from "../store/sql.js";
import { inTransaction, storesOn } from "../store/stores.js";
import { retiredKeyGraceSeconds } from "../tokens/embed-verifier.js";
import { KeyRing } from "../tokens/key-ring.js";
import { KeySealError, type KeySealer } from "../tokens/key-sealing.js";

/** Audit events that concern the whole service, not one organization (the previous release's global ring). */
export const SERVICE_WIDE_ORGANIZATION = "";

/**
 * What an operator does to signing keys (`npm run keys`), on the same stores,
 * rules and audit trail as the RPCs: an emergency rotation of every
 * organization, the immediate retirement of a stolen key, and resealing.
 */
export class KeyOperations {
  private constructor(
    private readonly sql: Sql,
    private readonly config: Config,
    private readonly sealer: KeySealer,
    private readonly signingKeys: SigningKeys,
    private readonly clock: Clock,
  ) {}

  static async open(sql: Sql, config: Config, sealer: KeySealer, clock: Clock = Date.now): Promise<KeyOperations> {
    const ring = await KeyRing.open(
      {
        organizations: new OrganizationKeyStore(sql),
        global: new SigningKeyStore(sql),
        privateKeys: new PrivateKeyStore(sql),
      },
      { configuredKeyJwk: config.embed.signingKeyJwk, sealer, now: clock },
    ).catch((err: unknown) => {
      // reseal is how a key-encryption key is replaced: it must start even when some records need the old key.
      if (err instanceof KeySealError) return undefined;
      throw err;
    });
    const signingKeys = ring
      ? new SigningKeys({
          keys: ring,
          transaction: inTransaction(sql),
          embed: config.embed,
          // An operator's emergency rotation is not held to the organizations' rate limit.
          rotationBudget: () => Promise.resolve(),
          now: clock,
        })
      : undefined;
    return new KeyOperations(sql, config, sealer, signingKeys as SigningKeys, clock);
  }

  /** Rotates every organization that has keys, at once (not bounded, not rate-limited); each audited. */
  async rotateAll(
    actor: KeyActor,
    reason: string | undefined,
  ): Promise<{ organizationId: string; rotation: Rotation }[]> {
    const done: { organizationId: string; rotation: Rotation }[] = [];
    for (const organizationId of await new OrganizationKeyStore(this.sql).organizations()) {
      const rotation = await this.keys().rotateOrganization(organizationId, actor, {
        bounded: false,
        reason: reason ?? "operator rotated every organization",
      });
      done.push({ organizationId, rotation });
    }
    return done;
  }

  /** Unpublishes one organization's key at once (rotating first when it is the active one). */
  retireNow(organizationId: string, kid: string, actor: KeyActor) {
    return this.keys().retireNow(organizationId, kid, actor);
  }

  /** Unpublishes one key of the previous release's global ring at once; false when it has no such live key. */
  async retireGlobalNow(kid: string, actor: KeyActor): Promise<boolean> {
    return inTransaction(this.sql)(async (tx) => {
      const retired = await tx.signingKeys.retireNow(kid, new Date(this.clock()));
      if (retired) {
        await tx.audit.record({
          id: uuidv7(),
          organizationId: SERVICE_WIDE_ORGANIZATION,
          action: "SIGNING_KEY_RETIRED",
          actor: actor.subject,
          details: { kid, ring: "global", verifies_until: new Date(this.clock()).toISOString() },
        });
      }
      return retired;
    });
  }

  /**
   * Re-seals every stored private key under the first key-encryption key. Run
   * once every replica runs this release: it also retires the previous
   * release's global ring (its keys verify until their tokens have expired)
   * and deletes its private keys, plaintext included, since nothing signs
   * with them any more. A key that does not open is reported, never rewritten.
   */
  async reseal(actor: KeyActor): Promise<{
    resealed: number;
    current: number;
    failed: { kid: string; error: string }[];
    globalRetired: string[];
  }> {
    const kek = this.sealer.currentKekId;
    const globalRetired = await inTransaction(this.sql)(async (tx) => {
      const now = new Date(this.clock());
      const kids = await tx.signingKeys.retireRing(retiredKeyGraceSeconds(this.config.embed.maxTtlSeconds), now);
      await tx.signingKeys.purge(now);
      if (kids.length > 0) {
        await tx.audit.record({
          id: uuidv7(),
          organizationId: SERVICE_WIDE_ORGANIZATION,
          action: "SIGNING_KEY_RETIRED",
          actor: actor.subject,
          details: { ring: "global", kids: kids.join(","), reason: "reseal retires the previous release's ring" },
        });
      }
      return kids;
    });
    const stores = storesOn(this.sql);
    const perOrganization = new Map<string, number>();
    let current = 0;
    const failed: { kid: string; error: string }[] = [];
    for (const key of await stores.privateKeys.all()) {
      if (key.sealed?.kek === kek) {
        current++;
        continue;
      }
      const binding = { organizationId: key.organizationId, kid: key.kid };
      try {
        const jwk = key.sealed ? await this.sealer.unseal(key.sealed, binding) : key.plaintext!;
        if (await stores.privateKeys.replace(key, await this.sealer.seal(jwk, binding))) {
          const org = key.organizationId ?? SERVICE_WIDE_ORGANIZATION;
          perOrganization.set(org, (perOrganization.get(org) ?? 0) + 1);
        }
      } catch (err) {
        if (!(err instanceof KeySealError)) throw err;
        failed.push({ kid: key.kid, error: err.message });
      }
    }
    for (const [organizationId, count] of perOrganization) {
      await stores.audit.record({
        id: uuidv7(),
        organizationId,
        action: "SIGNING_KEYS_RESEALED",
        actor: actor.subject,
        details: { key_encryption_key: kek, keys: String(count) },
      });
    }
    const resealed = [...perOrganization.values()].reduce((a, b) => a + b, 0);
    return { resealed, current, failed, globalRetired };
  }

  private keys(): SigningKeys {
    if (!this.signingKeys) {
      throw new KeySealError(
        "KEY_ENCRYPTION_KEYS does not open the stored signing keys; fix it (or run `npm run keys -- reseal` with the old key listed too)",
      );
    }
    return this.signingKeys;
  }
}
