import type { Caller } from "../auth/caller.js";
import type { RateLimitConfig } from "../config/config.js";

/** Policy names are stable API: they appear in ErrorInfo metadata and in keys. */
export type PolicyName =
  "iframe-token" | "iframe-token-status" | "default" | "failed-auth" | "organization" | "key-rotation";

export interface Policy {
  name: PolicyName;
  /** Calls allowed per window. */
  points: number;
  windowSeconds: number;
}

export interface Policies {
  iframeToken: Policy;
  /** Calls whose credential is an iframe token (a renderer checking it), per token. */
  iframeTokenStatus: Policy;
  default: Policy;
  failedAuth: Policy;
  /** Absent when the per-organization ceiling is off. */
  organization: Policy | undefined;
  /** RotateSigningKey per organization: every rotation publishes one more key for a token lifetime. */
  keyRotation: Policy;
}

const MINUTE = 60;

export function policiesFrom(config: RateLimitConfig): Policies {
  return {
    iframeToken: { name: "iframe-token", points: config.iframeTokenPerMinute, windowSeconds: MINUTE },
    iframeTokenStatus: {
      name: "iframe-token-status",
      points: config.iframeTokenStatusPerMinute,
      windowSeconds: MINUTE,
    },
    default: { name: "default", points: config.defaultPerMinute, windowSeconds: MINUTE },
    failedAuth: { name: "failed-auth", points: config.failedAuthPerMinute, windowSeconds: MINUTE },
    organization:
      config.organizationPerMinute > 0
        ? { name: "organization", points: config.organizationPerMinute, windowSeconds: MINUTE }
        : undefined,
    keyRotation: {
      name: "key-rotation",
      points: config.keyRotationsPerOrganization,
      windowSeconds: config.keyRotationWindowSeconds,
    },
  };
}

/**
 * The per-caller policy of an RPC (REST routes pass the RPC they stand for).
 * A renderer's status checks have their own, per token, so embeds in many
 * browsers never spend the budget of the backend that minted their tokens.
 */
export function callerPolicyOf(policies: Policies, method: string, caller?: Caller): Policy {
  if (caller?.iframeTokenId !== undefined) return policies.iframeTokenStatus;
  return method === "CreateIframeToken" ? policies.iframeToken : policies.default;
}

/**
 * A caller is its organization plus its subject: the same `sub` in two
 * organizations is two callers. Each part is escaped so no pair of ids can
 * produce another pair's key.
 */
export function callerKeyOf(caller: Caller): string {
  return `${encodeURIComponent(caller.organizationId)}:${encodeURIComponent(caller.subject)}`;
}

export function organizationKeyOf(caller: Caller): string {
  return encodeURIComponent(caller.organizationId);
}
