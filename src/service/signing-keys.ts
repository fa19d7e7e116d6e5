import { v7 as uuidv7 } from "uuid";
import type { CallScope } from "../call/call-scope.js";
import { assertMayRotateSigningKeys } from "../auth/policy.js";
import { systemClock, type Clock } from "../clock.js";
import type { EmbedConfig } from "../config/config.js";
import { ServiceError } from "../errors/service-error.js";
import type { InTransaction } from "../store/stores.js";
import { retiredKeyGraceSeconds } from "../tokens/embed-verifier.js";
import { generateSigningKey, type KeyRing } from "../tokens/key-ring.js";

export interface Rotation {
  kid: string;
  retired: { kid: string; verifyUntil: Date } | undefined;
}

/** Rotation of the iframe-token signing key: a new active signer, the old one kept for verification only. */
export class SigningKeys {
  constructor(
    private readonly deps: {
      keys: KeyRing;
      transaction: InTransaction;
      embed: Pick<EmbedConfig, "maxTtlSeconds">;
      now?: Clock;
    },
  ) {}

  async rotate({ caller, deadline }: CallScope): Promise<Rotation> {
    assertMayRotateSigningKeys(caller);
    if (this.deps.keys.isConfiguredByEnvironment) {
      throw new ServiceError(
        "FAILED_PRECONDITION",
        "the signing key is configured by EMBED_SIGNING_KEY and wins over stored keys; rotate it in the environment",
      );
    }
    // The fallback is only used if no next key was prepared (it always is, at start-up and by every rotation).
    const [fallback, next] = await Promise.all([generateSigningKey(), generateSigningKey()]);
    const rotation = await this.deps.transaction(async (tx) => {
      const { activated, retired } = await tx.signingKeys.rotate(
        fallback,
        next,
        retiredKeyGraceSeconds(this.deps.embed.maxTtlSeconds),
        new Date((this.deps.now ?? systemClock)()),
      );
      await tx.audit.record({
        id: uuidv7(),
        organizationId: caller.organizationId,
        action: "SIGNING_KEY_ROTATED",
        actor: caller.subject,
        details: {
          kid: activated,
          next_kid: next.kid,
          ...(retired
            ? { retired_kid: retired.kid, retired_key_verifies_until: retired.verifyUntil.toISOString() }
            : {}),
        },
      });
      return { kid: activated, retired };
    }, deadline);
    // This replica signs with the new key at once; the others within KEY_REFRESH_MS.
    this.deps.keys.invalidate();
    return rotation;
  }
}
