-- Old events are pruned by age across all tenants (`created_at < cutoff`), which an index
-- led by the tenant cannot serve. An index on the time alone serves it, and each batch of
-- new events touches its one last page instead of the last page of every tenant in the
-- batch (a page written to the log per tenant per commit).
DROP INDEX events_tenant_created;
CREATE INDEX events_created ON events (created_at);
