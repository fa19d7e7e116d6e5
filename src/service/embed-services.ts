import type { AuditEvents } from "./audit-events.js";
import type { IframeTokens } from "./iframe-tokens.js";
import type { SigningKeys } from "./signing-keys.js";
import type { TenantPurge } from "./tenant-purge.js";

/** The operations beside Dashboards: the iframe-token lifecycle and the audit trail (issue 4), tenant erasure (issue 17). */
export interface EmbedServices {
  iframeTokens: IframeTokens;
  signingKeys: SigningKeys;
  auditEvents: AuditEvents;
  tenantPurge: TenantPurge;
}
