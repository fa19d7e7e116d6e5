-- The audit trail (issue 4): every create, delete, mint, revoke and key
-- rotation, keyed by organization like every other table so no query can read
-- another organization's events. Ids are UUIDv7: keyset order is time order.
CREATE TABLE audit_events (
  organization_id        text        NOT NULL,
  id                     uuid        NOT NULL,
  action                 text        NOT NULL,
  actor                  text        NOT NULL,
  tenant_id              text        NOT NULL DEFAULT '',
  dashboard_id           text        NOT NULL DEFAULT '',
  token_id               text        NOT NULL DEFAULT '',
  token_expires_at       timestamptz,
  token_lifetime_seconds integer,
  details                jsonb       NOT NULL DEFAULT '{}',
  occurred_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id)
);
-- Revoking one token looks up its mint (tenant, expiry) by token id.
CREATE INDEX audit_events_token ON audit_events (organization_id, token_id) WHERE token_id <> '';
