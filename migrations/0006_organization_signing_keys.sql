-- Signing keys per organization, sealed at rest (issue 16).
--
-- Safe while replicas of the previous release still serve. Their statements
-- name embed_signing_keys and embed_next_signing_key and match every row of
-- them ("WHERE active", "DELETE FROM embed_next_signing_key"), so rows of
-- other organizations there would be read, retired or signed with by them.
-- The per-organization rings therefore live in a table of their own, which the
-- previous release never reads; its global ring keeps working untouched until
-- `npm run keys -- reseal` retires it, once every replica runs this release.

CREATE TABLE organization_signing_keys (
  -- An RFC 7638 thumbprint of a fresh key: unique across the service, whatever the organization.
  kid                text        PRIMARY KEY,
  organization_id    text        NOT NULL,
  -- next: published ahead of its activation; active: signs; retired: verifies until verify_until.
  state              text        NOT NULL,
  public_jwk         jsonb       NOT NULL,
  -- The private JWK sealed by the application (AES-256-GCM under a key-encryption key it alone holds);
  -- deleted as soon as the key stops signing.
  sealed_private_key jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  retired_at         timestamptz,
  verify_until       timestamptz,
  CONSTRAINT organization_signing_keys_state CHECK (state IN ('next', 'active', 'retired')),
  CONSTRAINT organization_signing_keys_organization_id_format CHECK (organization_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  CONSTRAINT organization_signing_keys_signer_sealed CHECK (state = 'retired' OR sealed_private_key IS NOT NULL),
  CONSTRAINT organization_signing_keys_retired_window CHECK (state <> 'retired' OR verify_until IS NOT NULL)
);
-- What was one active key for the service is one active (and one next) key per organization.
CREATE UNIQUE INDEX organization_signing_keys_one_active ON organization_signing_keys (organization_id)
  WHERE state = 'active';
CREATE UNIQUE INDEX organization_signing_keys_one_next ON organization_signing_keys (organization_id)
  WHERE state = 'next';
CREATE INDEX organization_signing_keys_of_organization ON organization_signing_keys (organization_id, created_at);
CREATE INDEX organization_signing_keys_expiring ON organization_signing_keys (verify_until) WHERE state = 'retired';

-- The global ring's keys get sealed in place by `npm run keys -- reseal`, which then clears the plaintext.
-- Dropping NOT NULL changes no row; the previous release always writes private_jwk.
ALTER TABLE embed_signing_keys ALTER COLUMN private_jwk DROP NOT NULL;
ALTER TABLE embed_signing_keys ADD COLUMN sealed_private_key jsonb;
ALTER TABLE embed_next_signing_key ALTER COLUMN private_jwk DROP NOT NULL;
ALTER TABLE embed_next_signing_key ADD COLUMN sealed_private_key jsonb;
