-- ListAuditEvents' filter and PurgeTenant (issue 17). Only new indexes: replicas of the previous
-- release do not notice them, and their queries keep working while this one is applied.
--
-- The list is a keyset over (organization_id, id) (UUIDv7 ids, so time order). A filter on the
-- tenant or the action reads these in that order and stops at the page's end instead of sorting
-- the organization's trail; they also serve a non-admin's listing (its tenants) and the purge's
-- pseudonymization (one tenant's events). occurred_at bounds are checked on the rows these find.
--
-- Plain CREATE INDEX, not CONCURRENTLY, as in 0007: the migrator applies each migration inside
-- one transaction (src/store/migrate.ts), where CONCURRENTLY is not allowed, and PGlite has no
-- concurrent builds. A build blocks writes to the table while it runs; on a large audit_events
-- table, create these CONCURRENTLY by hand first and this migration finds them (IF NOT EXISTS).
CREATE INDEX IF NOT EXISTS audit_events_tenant ON audit_events (organization_id, tenant_id, id);
CREATE INDEX IF NOT EXISTS audit_events_action ON audit_events (organization_id, action, id);
-- Erasing a tenant (PurgeTenant, next) finds its CreateDashboard request ids by the tenant in their
-- stored answer; in this migration so that one index build covers both.
CREATE INDEX IF NOT EXISTS create_requests_tenant ON create_requests (organization_id, (response->>'tenantId'));
