-- Applicants (contacts) and their identities across channels, and the record of merges
-- (so a merge can be undone).

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT,
    -- The name in lower case (Unicode-aware; SQLite's lower() is ASCII-only), for search.
    name_search TEXT,
    city        TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- Set when this contact was merged into another; it then has no identities.
    merged_into TEXT
);
CREATE INDEX contacts_tenant ON contacts (tenant_id, updated_at);

-- kind: phone (E.164), email (lower case), hh (board applicant id), telegram, …
CREATE TABLE identities (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, kind, value)
);
CREATE INDEX identities_contact ON identities (contact_id);

CREATE TABLE contact_merges (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    survivor_id         TEXT NOT NULL,
    merged_id           TEXT NOT NULL,
    -- JSON list of the identity ids moved from the merged contact.
    moved_identities    TEXT NOT NULL,
    -- Who merged: a user id, or NULL when identities met automatically.
    actor_user_id       TEXT,
    reason              TEXT NOT NULL,
    at                  BIGINT NOT NULL,
    undone_at           BIGINT
);
