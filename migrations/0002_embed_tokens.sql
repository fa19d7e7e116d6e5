-- Iframe tokens done right (issue 4): origin binding, key retirement, revocation.

-- The origins a dashboard may be embedded in; empty means any (binding is optional).
ALTER TABLE dashboards ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}';

-- A retired key keeps verifying (and stays in the JWKS) until verify_until:
-- the longest token lifetime after its retirement, so nothing it signed breaks
-- early and nothing it signed verifies after.
ALTER TABLE embed_signing_keys ADD COLUMN verify_until timestamptz;
CREATE INDEX embed_signing_keys_live ON embed_signing_keys (verify_until) WHERE NOT active;

-- The key the next rotation activates, generated and published ahead of time,
-- so a renderer holding a cached JWKS already knows it when it starts signing.
-- At most one (the slot column is always true).
CREATE TABLE embed_next_signing_key (
  slot        boolean     PRIMARY KEY DEFAULT true CHECK (slot),
  kid         text        NOT NULL UNIQUE,
  private_jwk jsonb       NOT NULL,
  public_jwk  jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- "Not before" cutoffs: tokens of a tenant (dashboard_id = '') or of one of its
-- dashboards issued at or before issued_not_after are revoked. A row is useless
-- once every token it can match has expired (keep_until) and is purged then.
CREATE TABLE embed_token_cutoffs (
  organization_id  text        NOT NULL,
  tenant_id        text        NOT NULL,
  dashboard_id     text        NOT NULL DEFAULT '',
  issued_not_after timestamptz NOT NULL,
  keep_until       timestamptz NOT NULL,
  PRIMARY KEY (organization_id, tenant_id, dashboard_id)
);
CREATE INDEX embed_token_cutoffs_keep_until ON embed_token_cutoffs (keep_until);

-- Single revoked tokens, kept only until the token would have expired anyway.
CREATE TABLE revoked_embed_tokens (
  organization_id text        NOT NULL,
  jti             text        NOT NULL,
  tenant_id       text        NOT NULL,
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, jti)
);
CREATE INDEX revoked_embed_tokens_expires_at ON revoked_embed_tokens (expires_at);
