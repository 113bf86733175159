-- The ATS records (pipelines and stages, vacancies, applications) and the job-board sync:
-- the status mapping of a board account, what its import has read, pending OAuth connects
-- and the board's webhook events already taken.

-- A hiring pipeline of a tenant; one is the default (created on demand).
CREATE TABLE pipelines (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    is_default  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE stages (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    pipeline_id TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    position    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX stages_pipeline ON stages (tenant_id, pipeline_id, position);

-- A vacancy: local, or imported from a board (board account + the board's id).
CREATE TABLE vacancies (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    city              TEXT,
    board_provider    TEXT,
    board_account_id  TEXT REFERENCES channel_accounts(id) ON DELETE SET NULL,
    board_vacancy_id  TEXT,
    board_url         TEXT,
    -- The employer states the board reports for this vacancy (JSON [{id, name}]).
    board_states      TEXT NOT NULL DEFAULT '[]',
    -- A board's vacancy linked to the local vacancy it publishes.
    linked_vacancy_id TEXT REFERENCES vacancies(id) ON DELETE SET NULL,
    -- Applications on the board by its collection counters, at the last sync.
    board_total       BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (tenant_id, board_account_id, board_vacancy_id)
);

-- A candidate (contact) on a vacancy.
CREATE TABLE applications (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id            TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    vacancy_id            TEXT NOT NULL REFERENCES vacancies(id) ON DELETE CASCADE,
    thread_id             TEXT,
    stage_id              TEXT REFERENCES stages(id) ON DELETE SET NULL,
    -- When the stage last changed in Jobers (ms) and whether the board has it.
    stage_changed_at      BIGINT NOT NULL,
    source                TEXT NOT NULL,
    board_account_id      TEXT REFERENCES channel_accounts(id) ON DELETE SET NULL,
    board_negotiation_id  TEXT,
    board_state_id        TEXT,
    board_state_name      TEXT,
    board_chat_id         TEXT,
    board_resume_id       TEXT,
    board_created_at      TEXT,
    board_updated_at      TEXT,
    resume_upload_id      TEXT,
    -- The card as the board showed it (JSON: names, phone, email, city, hidden, links).
    card                  TEXT NOT NULL DEFAULT '{}',
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, board_account_id, board_negotiation_id)
);
CREATE INDEX applications_contact ON applications (tenant_id, contact_id);
CREATE INDEX applications_vacancy ON applications (tenant_id, vacancy_id);
CREATE INDEX applications_thread ON applications (tenant_id, thread_id);

-- How a board account's states map to stages: simple (responses / invitations stages) or
-- extended (one stage per board state, JSON {state_id: stage_id}).
CREATE TABLE board_mappings (
    board_account_id      TEXT PRIMARY KEY REFERENCES channel_accounts(id) ON DELETE CASCADE,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    mode                  TEXT NOT NULL,
    pipeline_id           TEXT REFERENCES pipelines(id) ON DELETE SET NULL,
    responses_stage_id    TEXT,
    invitations_stage_id  TEXT,
    state_stages          TEXT NOT NULL DEFAULT '{}',
    updated_at            BIGINT NOT NULL
);

-- Every response the import of a board account has read: the counters and differences.
CREATE TABLE board_items (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    board_account_id  TEXT NOT NULL REFERENCES channel_accounts(id) ON DELETE CASCADE,
    negotiation_id    TEXT NOT NULL,
    board_vacancy_id  TEXT NOT NULL,
    application_id    TEXT,
    error             TEXT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (board_account_id, negotiation_id)
);
CREATE INDEX board_items_tenant ON board_items (tenant_id, board_account_id);

-- Who is connected to a board account (JSON of the board's account: role, employer).
CREATE TABLE board_connections (
    board_account_id  TEXT PRIMARY KEY REFERENCES channel_accounts(id) ON DELETE CASCADE,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    account           TEXT NOT NULL,
    subscription_id   TEXT,
    connected_at      BIGINT NOT NULL
);

-- An OAuth connect between the redirect and the callback (the verifier sealed).
CREATE TABLE board_oauth_requests (
    state             TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    board_account_id  TEXT NOT NULL REFERENCES channel_accounts(id) ON DELETE CASCADE,
    code_verifier     TEXT NOT NULL,
    expires_at        BIGINT NOT NULL
);

-- Webhook events of a board already taken (deduplicated by the board's event id).
CREATE TABLE board_events (
    board_account_id  TEXT NOT NULL REFERENCES channel_accounts(id) ON DELETE CASCADE,
    event_id          TEXT NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    received_at       BIGINT NOT NULL,
    PRIMARY KEY (board_account_id, event_id)
);
