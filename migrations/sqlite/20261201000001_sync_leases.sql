-- One node at a time reads an account's provider (a job board's full pass, a mailbox, an
-- SMS provider's delivery reports): the node holding the account's lease. A lease runs out
-- at `expires_at` (ms) unless its holder renews it; a node that dies loses it by itself.
CREATE TABLE sync_leases (
    name        TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
