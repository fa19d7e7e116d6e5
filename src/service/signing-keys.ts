import { uuidv7 } from "../tokens/uuid7.js";
import type { CallScope } from "../call/call-scope.js";
import { assertMayRotateSigningKeys } from "../auth/policy.js";
import { systemClock, type Clock } from "../clock.js";
import type { EmbedConfig } from "../config/config.js";
import { ServiceError } from "../errors/service-error.js";
import type { Deadline } from "../call/deadline.js";
import type { InTransaction } from "../store/stores.js";
import { retiredKeyGraceSeconds } from "../tokens/embed-verifier.js";
import type { KeyRing } from "../tokens/key-ring.js";

export interface Rotation {
  kid: string;
  retired: { kid: string; verifyUntil: Date } | undefined;
}

/** Spends one of the organization's rotations; throws RATE_LIMITED when it has none left (see ratelimit/). */
export type RotationBudget = (organizationId: string) => Promise<void>;

export interface SigningKeysDeps {
  keys: KeyRing;
  transaction: InTransaction;
  embed: Pick<EmbedConfig, "maxTtlSeconds" | "maxPublishedKeysPerOrganization">;
  rotationBudget: RotationBudget;
  now?: Clock;
}

/** Who did it, for the audit trail: a caller's subject, or the operator running `npm run keys`. */
export interface KeyActor {
  subject: string;
}

/**
 * Rotation and retirement of an organization's iframe-token signing keys: a
 * new active signer, the old one kept for verification only, never touching
 * another organization's ring.
 */
export class SigningKeys {
  private readonly now: Clock;

  constructor(private readonly deps: SigningKeysDeps) {
    this.now = deps.now ?? systemClock;
  }

  /** RotateSigningKey: an organization admin rotates their own organization's key, within its rate limit and bound. */
  async rotate({ caller, deadline }: CallScope): Promise<Rotation> {
    assertMayRotateSigningKeys(caller);
    this.refuseWhenConfigured();
    // Spent only once the caller may rotate, so nobody else in the organization can use up its admins' budget.
    await this.deps.rotationBudget(caller.organizationId);
    return this.rotateOrganization(caller.organizationId, caller, { bounded: true, deadline });
  }

  /**
   * Rotates one organization. `bounded` refuses a rotation that would publish
   * more than SIGNING_KEYS_MAX_PER_ORGANIZATION keys; the operator's emergency
   * rotation (`npm run keys -- rotate --all`) is not bounded.
   */
  async rotateOrganization(
    organizationId: string,
    actor: KeyActor,
    options: { bounded: boolean; deadline?: Deadline; reason?: string },
  ): Promise<Rotation> {
    this.refuseWhenConfigured();
    const keys = this.deps.keys;
    const [fallback, next] = await Promise.all([keys.newKey(organizationId), keys.newKey(organizationId)]);
    const rotation = await this.deps.transaction(
      async (tx) => {
        await tx.organizationKeys.lock(organizationId);
        const now = new Date(this.now());
        if (options.bounded) {
          const published = await tx.organizationKeys.published(organizationId, now);
          // A rotation adds one published key (the retired one stays, a new next one appears).
          if (published.count + 1 > this.deps.embed.maxPublishedKeysPerOrganization) {
            throw new ServiceError(
              "TOO_MANY_SIGNING_KEYS",
              `the organization has ${published.count} published signing keys, the most it may have; ` +
                "retry once the oldest retired key's window has ended",
              {
                retryAfterMs: published.nextExpiry
                  ? Math.max(1000, published.nextExpiry.getTime() - now.getTime())
                  : undefined,
              },
            );
          }
        }
        const { activated, retired } = await tx.organizationKeys.rotate(
          organizationId,
          fallback,
          next,
          retiredKeyGraceSeconds(this.deps.embed.maxTtlSeconds),
          now,
        );
        await tx.audit.record({
          id: uuidv7(),
          organizationId,
          action: "SIGNING_KEY_ROTATED",
          actor: actor.subject,
          details: {
            kid: activated,
            next_kid: next.kid,
            ...(options.reason ? { reason: options.reason } : {}),
            ...(retired
              ? { retired_kid: retired.kid, retired_key_verifies_until: retired.verifyUntil.toISOString() }
              : {}),
          },
        });
        return { kid: activated, retired };
      },
      options.deadline,
      organizationId,
    );
    // This replica signs with the new key at once; the others within KEY_REFRESH_MS.
    keys.invalidate(organizationId);
    return rotation;
  }

  /**
   * Unpublishes one of the organization's keys at once (a stolen key): every
   * token it signed stops verifying. The active key is rotated away first, in
   * the same transaction; a next key is replaced. Audited.
   */
  async retireNow(
    organizationId: string,
    kid: string,
    actor: KeyActor,
  ): Promise<{ role: "active" | "next" | "retired"; rotation: Rotation | undefined }> {
    this.refuseWhenConfigured();
    const keys = this.deps.keys;
    const [fallback, next, replacement] = await Promise.all([
      keys.newKey(organizationId),
      keys.newKey(organizationId),
      keys.newKey(organizationId),
    ]);
    const outcome = await this.deps.transaction(async (tx) => {
      await tx.organizationKeys.lock(organizationId);
      const now = new Date(this.now());
      const live = await tx.organizationKeys.live(organizationId, now);
      const role = live.find((k) => k.kid === kid)?.role;
      if (!role) throw new ServiceError("NOT_FOUND", `organization "${organizationId}" has no published key "${kid}"`);
      let rotation: Rotation | undefined;
      if (role === "active") {
        // Retiring it immediately after: its window is closed below, not left at the grace period.
        const r = await tx.organizationKeys.rotate(organizationId, fallback, next, 0, now);
        rotation = { kid: r.activated, retired: r.retired };
      }
      await tx.organizationKeys.retireNow(organizationId, kid, replacement, now);
      await tx.audit.record({
        id: uuidv7(),
        organizationId,
        action: "SIGNING_KEY_RETIRED",
        actor: actor.subject,
        details: {
          kid,
          role,
          verifies_until: now.toISOString(),
          ...(rotation ? { kid_now_active: rotation.kid } : {}),
        },
      });
      return { role, rotation };
    });
    keys.invalidate(organizationId);
    return outcome;
  }

  private refuseWhenConfigured(): void {
    if (this.deps.keys.isConfiguredByEnvironment) {
      throw new ServiceError(
        "FAILED_PRECONDITION",
        "the signing key is configured by EMBED_SIGNING_KEY and wins over stored keys; rotate it in the environment",
      );
    }
  }
}
