import { uuidv7 } from "../tokens/uuid7.js";
import type { CallScope } from "../call/call-scope.js";
import { assertIframeTokenChecksItself, assertMayUseTenant, mayVerifyIframeToken } from "../auth/policy.js";
import type { EmbedConfig } from "../config/config.js";
import { notFound, ServiceError } from "../errors/service-error.js";
import type { RevocationStore } from "../store/revocation-store.js";
import type { InTransaction } from "../store/stores.js";
import {
  lastPossibleExpiry,
  VERIFY_LEEWAY_SECONDS,
  type EmbedVerifier,
  type VerifiedEmbedToken,
} from "../tokens/embed-verifier.js";
import {
  revokeIframeTokensRules,
  verifyIframeTokenRules,
  type RevokeIframeTokensInput,
  type VerifyIframeTokenInput,
} from "../validation/requests.js";
import { validate } from "../validation/rules.js";

export interface IframeTokensDeps {
  verify: EmbedVerifier;
  revocations: RevocationStore;
  transaction: InTransaction;
  embed: Pick<EmbedConfig, "maxTtlSeconds">;
  now?: () => number;
}

export interface Revocation {
  /** For tenant- and dashboard-wide revocations: tokens minted at or before this instant are revoked. */
  issuedNotAfter: Date | undefined;
}

/** Verification and revocation of minted iframe tokens (minting is Dashboards.mintIframeToken). */
export class IframeTokens {
  private readonly now: () => number;

  constructor(private readonly deps: IframeTokensDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Everything a renderer checks offline, plus what only the service knows:
   * revocation and whether the dashboard still exists. TOKEN_EXPIRED tells an
   * embed to refresh; TOKEN_REVOKED and TOKEN_INVALID that it must not.
   */
  async verify({ caller, deadline }: CallScope, input: VerifyIframeTokenInput): Promise<VerifiedEmbedToken> {
    validate(verifyIframeTokenRules, input);
    // Only the caller's organization's keys are tried: another organization's token fails like a forged one.
    const token = await this.deps.verify(input.token, caller.organizationId);
    if (!mayVerifyIframeToken(caller, token.organizationId)) {
      throw new ServiceError("TOKEN_INVALID", "the token is not a valid iframe token");
    }
    assertIframeTokenChecksItself(caller, token.jti);
    const state = await this.deps.revocations.state(
      token.organizationId,
      token.tenantId,
      token.dashboardId,
      token.jti,
      deadline,
    );
    if (state.tokenRevoked) throw new ServiceError("TOKEN_REVOKED", "the token has been revoked");
    if (state.issuedNotAfter && token.mintedAtMs <= state.issuedNotAfter.getTime()) {
      throw new ServiceError(
        "TOKEN_REVOKED",
        "the tokens of this tenant or dashboard issued before a revocation have been revoked",
      );
    }
    if (!state.dashboardExists) throw new ServiceError("TOKEN_REVOKED", "the dashboard of the token no longer exists");
    // A pause is not a revocation: once embedding resumes, the token verifies again until it expires.
    if (!state.embeddingEnabled) {
      throw new ServiceError("EMBEDDING_PAUSED", "embedding of the token's dashboard is paused");
    }
    if (token.origin !== undefined && state.allowedOrigins.length > 0 && !state.allowedOrigins.includes(token.origin)) {
      throw new ServiceError(
        "ORIGIN_NOT_ALLOWED",
        "the token's origin is no longer one the dashboard may be embedded in",
      );
    }
    return token;
  }

  /** Revokes one token, a dashboard's tokens or a tenant's tokens (the last two: everything minted until now). */
  async revoke({ caller, deadline }: CallScope, input: RevokeIframeTokensInput): Promise<Revocation> {
    validate(revokeIframeTokensRules, input);
    assertMayUseTenant(caller, input.tenantId);
    const target = input.target!;
    const now = this.now();
    const org = caller.organizationId;
    return this.deps.transaction(
      async (tx) => {
        let revocation: Revocation = { issuedNotAfter: undefined };
        let details: Record<string, string>;
        let dashboardId: string | undefined;
        if ("tokenId" in target) {
          const mint = await tx.audit.findMint(org, input.tenantId, target.tokenId);
          if (!mint) throw notFound(`tenant "${input.tenantId}" has no iframe token "${target.tokenId}"`);
          // Remembered until the token could no longer verify anyway.
          const forgetAt = new Date(mint.tokenExpiresAt!.getTime() + (VERIFY_LEEWAY_SECONDS + 1) * 1000);
          await tx.revocations.revokeToken(org, input.tenantId, target.tokenId, forgetAt);
          dashboardId = mint.dashboardId;
          details = { scope: "token" };
        } else {
          dashboardId = "dashboardId" in target ? target.dashboardId : undefined;
          if (dashboardId !== undefined) {
            // A cutoff for a made-up dashboard would be a row nobody can ever match: refuse it instead.
            const dashboard = await tx.dashboards.findByTenant(org, input.tenantId);
            if (dashboard?.id !== dashboardId) {
              throw notFound(`tenant "${input.tenantId}" has no dashboard "${dashboardId}"`);
            }
          }
          const issuedNotAfter = new Date(now);
          await tx.revocations.cutOff(
            org,
            input.tenantId,
            dashboardId ?? "",
            issuedNotAfter,
            lastPossibleExpiry(now, this.deps.embed.maxTtlSeconds),
          );
          revocation = { issuedNotAfter };
          details = { scope: dashboardId ? "dashboard" : "tenant", issued_not_after: issuedNotAfter.toISOString() };
        }
        await tx.audit.record({
          id: uuidv7(),
          organizationId: org,
          action: "IFRAME_TOKENS_REVOKED",
          actor: caller.subject,
          tenantId: input.tenantId,
          dashboardId,
          tokenId: "tokenId" in target ? target.tokenId : undefined,
          details,
        });
        // Expired rows go in the retention job (store/retention.ts), off this transaction.
        return revocation;
      },
      deadline,
      org,
    );
  }
}
