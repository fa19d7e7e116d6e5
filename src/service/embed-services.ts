import type { AuditEvents } from "./audit-events.js";
import type { IframeTokens } from "./iframe-tokens.js";
import type { SigningKeys } from "./signing-keys.js";

/** The iframe-token lifecycle and audit operations beside Dashboards (issue 4). */
export interface EmbedServices {
  iframeTokens: IframeTokens;
  signingKeys: SigningKeys;
  auditEvents: AuditEvents;
}
