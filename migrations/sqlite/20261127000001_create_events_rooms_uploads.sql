-- The per-tenant event log that clients resume from, internal staff chat (rooms, members,
-- messages), uploaded files, and out-of-office schedules.

-- The last position handed out per tenant. Incremented inside the transaction that writes
-- the event, so positions are gap-free and commit in order within a tenant.
CREATE TABLE tenant_positions (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL
);

CREATE TABLE events (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    -- Who may see it: 'tenant', 'room:<room id>' or 'user:<user id>'.
    audience    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, position)
);
CREATE INDEX events_tenant_created ON events (tenant_id, created_at);

CREATE TABLE rooms (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name            TEXT,
    -- For direct rooms: the two user ids, sorted and joined by ':' (one room per pair).
    direct_key      TEXT,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, direct_key)
);

CREATE TABLE room_members (
    tenant_id               TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    room_id                 TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at               INTEGER NOT NULL,
    last_read_message_id    TEXT,
    last_read_at            INTEGER,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (tenant_id, user_id);

CREATE TABLE room_messages (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    room_id             TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    author_id           TEXT NOT NULL,
    body                TEXT NOT NULL,
    client_message_id   TEXT,
    mentions            TEXT NOT NULL,
    attachments         TEXT NOT NULL,
    position            INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    edited_at           INTEGER,
    deleted_at          INTEGER,
    UNIQUE (tenant_id, author_id, client_message_id)
);
CREATE INDEX room_messages_room ON room_messages (room_id, id);

CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    uploader_id     TEXT NOT NULL,
    file_name       TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

-- A user's chosen status: manual (busy, away, custom text) with an optional end, and
-- out-of-office periods that set and clear themselves.
CREATE TABLE user_statuses (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    status      TEXT,
    text        TEXT,
    until       INTEGER,
    ooo_from    INTEGER,
    ooo_until   INTEGER,
    ooo_text    TEXT,
    updated_at  INTEGER NOT NULL
);
