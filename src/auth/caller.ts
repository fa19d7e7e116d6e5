/** Who is calling, as established from a verified bearer token. */
export interface Caller {
  /** `sub` (or the guide's `user_id`) of the token. */
  subject: string;
  /** Every read and write is scoped to this organization. */
  organizationId: string;
  /** Admins may use every tenant of their organization. */
  isAdmin: boolean;
  /** The tenants a non-admin may use. Empty for admins (they have all). */
  tenantIds: ReadonlySet<string>;
  /**
   * Set when the credential was an iframe token (its jti): a renderer holding one may ask for
   * that token's own status and nothing else, so a token that leaks from a page grants no API.
   */
  iframeTokenId?: string;
}
