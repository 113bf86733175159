-- Applicant threads (one per applicant), their messages across channels, routing queues,
-- the outbox of replies, templates and signatures, and the channel accounts they go through.

-- A configured endpoint: an SMS number, a mailbox, a board account, a generic webhook.
CREATE TABLE channel_accounts (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- sms, email, board, chat
    kind            TEXT NOT NULL,
    -- webhook, demo, kannel, twilio, smsru, smtp, hh, …
    provider        TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- The sender as the applicant sees it: a phone number, an email address, …
    address         TEXT NOT NULL,
    -- Set for a personal sender (a recruiter's own mailbox): only they send from it.
    owner_user_id   TEXT REFERENCES users(id) ON DELETE CASCADE,
    -- JSON settings of the provider (no secrets).
    settings        TEXT NOT NULL DEFAULT '{}',
    -- The provider credential or signing secret.
    secret          TEXT,
    -- New threads from this account wait in this queue.
    queue_id        TEXT,
    enabled         BIGINT NOT NULL DEFAULT 1,
    -- ok, degraded, needs_relogin, down
    health          TEXT NOT NULL DEFAULT 'ok',
    -- auth_failure, no_network, no_inbound, no_outbound, service_unreachable
    health_class    TEXT,
    last_error      TEXT,
    health_since    BIGINT NOT NULL,
    next_retry_at   BIGINT,
    last_inbound_at BIGINT,
    last_outbound_at BIGINT,
    -- "No responses arriving" when nothing came in for this long (seconds); NULL: never.
    inbound_expected_within_s BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX channel_accounts_tenant ON channel_accounts (tenant_id);

-- Routing queues: per vacancy or department, with member recruiters.
CREATE TABLE queues (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    department_id   TEXT REFERENCES departments(id) ON DELETE SET NULL,
    vacancy         TEXT,
    -- manual, round_robin, least_busy
    strategy        TEXT NOT NULL,
    -- Back to the queue when the assignee is away/offline this long (seconds); NULL: never.
    away_limit_s    BIGINT,
    -- Back to the queue when an applicant waits this long for an answer (seconds).
    response_limit_s BIGINT,
    -- Round robin: the member who got the last thread.
    last_user_id    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE queue_members (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    queue_id        TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The most open threads this recruiter holds before getting no more.
    capacity        BIGINT NOT NULL,
    joined_at       BIGINT NOT NULL,
    PRIMARY KEY (queue_id, user_id)
);
CREATE INDEX queue_members_user ON queue_members (tenant_id, user_id);

CREATE TABLE threads (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id          TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    -- The applicant the thread was opened for (a merge can hand it to another; undo returns it).
    origin_contact_id   TEXT NOT NULL,
    -- open, pending, closed
    state               TEXT NOT NULL,
    assignee_id         TEXT REFERENCES users(id) ON DELETE SET NULL,
    queue_id            TEXT REFERENCES queues(id) ON DELETE SET NULL,
    vacancy             TEXT,
    subject             TEXT,
    preview             TEXT,
    -- The last message staff have read (an id: ids sort by time).
    read_upto           TEXT,
    -- Inbound messages after read_upto.
    unread              BIGINT NOT NULL DEFAULT 0,
    last_channel_account_id TEXT,
    last_channel_kind   TEXT,
    last_message_at     BIGINT NOT NULL,
    last_inbound_at     BIGINT,
    -- The oldest inbound message not answered yet.
    awaiting_reply_since BIGINT,
    -- Unassigned and waiting in its queue since (oldest first).
    waiting_since       BIGINT,
    assigned_at         BIGINT,
    first_inbound_at    BIGINT,
    first_response_at   BIGINT,
    resolved_at         BIGINT,
    -- Why the thread went back to its queue last (assignee_away, assignee_offline, no_answer).
    reroute_reason      TEXT,
    rerouted_from       TEXT,
    rerouted_at         BIGINT,
    -- Set when the applicant was merged into another: the messages moved to that thread.
    merged_into         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (tenant_id, contact_id)
);
CREATE INDEX threads_tenant_recent ON threads (tenant_id, last_message_at);
CREATE INDEX threads_waiting ON threads (tenant_id, queue_id, waiting_since);
CREATE INDEX threads_assignee ON threads (tenant_id, assignee_id, state);

-- What ties an inbound message to a thread besides the sender: a board negotiation id,
-- an email Message-ID we sent, a reply token.
CREATE TABLE thread_refs (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    ref         TEXT NOT NULL,
    thread_id   TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, ref)
);

CREATE TABLE thread_messages (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    thread_id           TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    -- The thread the message was first stored in (a merge moves it; an undo moves it back).
    origin_thread_id    TEXT NOT NULL,
    -- in, out, note, system
    direction           TEXT NOT NULL,
    channel_account_id  TEXT REFERENCES channel_accounts(id) ON DELETE SET NULL,
    channel_kind        TEXT,
    author_user_id      TEXT REFERENCES users(id) ON DELETE SET NULL,
    -- The applicant's address it came from (inbound) or went to (outbound).
    remote_address      TEXT,
    subject             TEXT,
    body_text           TEXT NOT NULL,
    -- Sanitised HTML (inbound email), never raw.
    body_html           TEXT,
    -- Lower-case text for search.
    body_search         TEXT NOT NULL,
    attachments         TEXT NOT NULL DEFAULT '[]',
    mentions            TEXT NOT NULL DEFAULT '[]',
    external_id         TEXT,
    client_message_id   TEXT,
    -- queued, sent, delivered, read, failed (outbound); NULL otherwise
    delivery_state      TEXT,
    failure_reason      TEXT,
    provider_message_id TEXT,
    auto_submitted      BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (tenant_id, channel_account_id, external_id),
    UNIQUE (tenant_id, author_user_id, client_message_id)
);
CREATE INDEX thread_messages_thread ON thread_messages (tenant_id, thread_id, id);
CREATE INDEX thread_messages_provider ON thread_messages (channel_account_id, provider_message_id);

-- Replies waiting to be sent by a channel adapter.
CREATE TABLE outbox (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id          TEXT NOT NULL UNIQUE REFERENCES thread_messages(id) ON DELETE CASCADE,
    channel_account_id  TEXT NOT NULL REFERENCES channel_accounts(id) ON DELETE CASCADE,
    -- pending, done, failed
    state               TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    -- A worker holds the entry until then (a crashed worker's entry is taken again).
    locked_until        BIGINT,
    last_error          TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Reply templates and signatures, for the tenant (owner NULL) or one user.
CREATE TABLE templates (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    owner_user_id   TEXT REFERENCES users(id) ON DELETE CASCADE,
    -- template, signature
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX templates_tenant ON templates (tenant_id, owner_user_id);
