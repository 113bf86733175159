-- Tenants, departments, staff users, login sessions with rotating refresh tokens, failed
-- login records and the security audit log. Ids are UUIDv7 text; times are Unix
-- milliseconds (INTEGER), identical in meaning to the PostgreSQL schema.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE departments (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email               TEXT NOT NULL,
    name                TEXT NOT NULL,
    -- Name, phone and title in lower case (Unicode-aware; SQLite's lower() is ASCII-only),
    -- for the directory search.
    search_text         TEXT NOT NULL DEFAULT '',
    role                TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'recruiter')),
    department_id       TEXT REFERENCES departments(id) ON DELETE SET NULL,
    phone               TEXT,
    title               TEXT,
    signature           TEXT,
    password_hash       TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    deactivated_at      INTEGER,
    UNIQUE (tenant_id, email)
);
CREATE INDEX users_tenant_department ON users (tenant_id, department_id);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    user_agent      TEXT,
    source          TEXT
);
CREATE INDEX sessions_tenant_user ON sessions (tenant_id, user_id);

-- One row per refresh token ever issued; a token is valid while used_at is NULL.
-- Presenting a token whose used_at is set is reuse: the whole session (family) is revoked.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at   INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Failed logins, keyed by account (tenant + email) and by source address.
CREATE TABLE login_failures (
    id      TEXT PRIMARY KEY,
    key     TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);

CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    actor_user_id   TEXT,
    action          TEXT NOT NULL,
    target_type     TEXT,
    target_id       TEXT,
    source          TEXT,
    details         TEXT NOT NULL
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);
