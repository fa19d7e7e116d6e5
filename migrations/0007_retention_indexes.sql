-- Retention (issue 17): the jobs delete expired rows in small batches, each
-- found through an index instead of a scan. Only new indexes: replicas of the
-- previous release do not notice them.
--
-- Plain CREATE INDEX, not CONCURRENTLY: the migrator applies every migration
-- inside one transaction (src/store/migrate.ts), where CONCURRENTLY is not
-- allowed. It blocks writes to these two tables while it builds; on a large
-- audit_events table, create the index CONCURRENTLY by hand first and this
-- migration finds it there (IF NOT EXISTS).
CREATE INDEX IF NOT EXISTS create_requests_created_at ON create_requests (created_at);
CREATE INDEX IF NOT EXISTS audit_events_occurred_at ON audit_events (occurred_at);
