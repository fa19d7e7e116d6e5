-- Dashboards: one per tenant of an organization. The organization is part of
-- every key and index, so no query can reach across organizations by accident.
CREATE TABLE dashboards (
  organization_id text        NOT NULL,
  id              uuid        NOT NULL,
  tenant_id       text        NOT NULL,
  workspace_id    text        NOT NULL,
  name            text        NOT NULL,
  description     text        NOT NULL DEFAULT '',
  created_by      text        NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  CONSTRAINT dashboards_one_per_tenant UNIQUE (organization_id, tenant_id),
  CONSTRAINT dashboards_tenant_id_format CHECK (tenant_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  CONSTRAINT dashboards_workspace_id_format CHECK (workspace_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  CONSTRAINT dashboards_organization_id_format CHECK (organization_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  CONSTRAINT dashboards_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
  CONSTRAINT dashboards_description_length CHECK (char_length(description) <= 2000)
);

-- Secrets the replicas must share (for example the page-token key), created
-- once by whichever replica needs them first.
CREATE TABLE server_secrets (
  name       text        PRIMARY KEY,
  value      text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Iframe-token signing keys. Exactly one is active; the others stay published
-- until the tokens they signed have expired.
CREATE TABLE embed_signing_keys (
  kid         text        PRIMARY KEY,
  private_jwk jsonb       NOT NULL,
  public_jwk  jsonb       NOT NULL,
  active      boolean     NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz
);
CREATE UNIQUE INDEX embed_signing_keys_one_active ON embed_signing_keys (active) WHERE active;
