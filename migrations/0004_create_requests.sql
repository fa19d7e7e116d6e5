-- AIP-155 request ids for CreateDashboard: the first request with an id claims
-- it (in the same transaction as the dashboard it creates) and stores its
-- result, so a retry returns that result and a different request reusing the
-- id is refused.
CREATE TABLE create_requests (
  organization_id text        NOT NULL,
  request_id      text        NOT NULL,
  -- sha256 of the caller and the request's fields
  fingerprint     text        NOT NULL,
  -- the dashboard as first returned (null only inside the claiming transaction)
  response        jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, request_id)
);
