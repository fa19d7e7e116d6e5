-- Dashboards you can change and pause, with embed settings (issue 14).
--
-- Safe while replicas of the previous release still serve: every new column
-- has a constant default (no table rewrite, a brief lock), and the previous
-- release names its columns, so its reads ignore these and its inserts get
-- the defaults: embedding on, no default permissions, every permission
-- allowed, the renderer's own locale, time zone and theme.

ALTER TABLE dashboards
  -- Bumped by every update; the etag is derived from it (optimistic concurrency, AIP-154).
  ADD COLUMN version bigint NOT NULL DEFAULT 1,
  -- false pauses embedding: no mints, existing tokens refused, until it is true again.
  ADD COLUMN embedding_enabled boolean NOT NULL DEFAULT true,
  ADD COLUMN embed_permissions text[] NOT NULL DEFAULT '{}',
  ADD COLUMN embed_locale text NOT NULL DEFAULT '',
  ADD COLUMN embed_time_zone text NOT NULL DEFAULT '',
  ADD COLUMN embed_theme text NOT NULL DEFAULT '',
  ADD COLUMN permission_ceiling text[] NOT NULL
    DEFAULT '{download_image,export_data,drill_through,view_underlying_data,fullscreen}';

-- NOT VALID: enforced for every row written from now on without scanning the
-- table under this migration's lock; the rows already there hold the defaults.
ALTER TABLE dashboards
  ADD CONSTRAINT dashboards_embed_permissions_known CHECK (
    embed_permissions <@ '{download_image,export_data,drill_through,view_underlying_data,fullscreen}'::text[]
    AND permission_ceiling <@ '{download_image,export_data,drill_through,view_underlying_data,fullscreen}'::text[]
  ) NOT VALID,
  ADD CONSTRAINT dashboards_embed_theme_known CHECK (embed_theme IN ('', 'light', 'dark', 'system')) NOT VALID,
  ADD CONSTRAINT dashboards_embed_defaults_within_ceiling CHECK (embed_permissions <@ permission_ceiling) NOT VALID;
