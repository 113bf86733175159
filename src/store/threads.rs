//! Applicant threads (R-HUB-2, R-COMM-5): one per applicant, holding every message of every
//! channel — inbound, outbound replies, internal notes — with its routing state.
//!
//! Every change is written with its events in one transaction (see `events.rs`); the
//! caller publishes the events after commit.

use serde::Serialize;
use sqlx::{Any, FromRow, Transaction};
use utoipa::ToSchema;

use super::channels::ChannelAccount;
use super::contacts::IdentityKey;
use super::events::{push_event, Audience, StoredEvent};
use super::rooms::{to_json, Attachment};
use super::{new_id, now_ms, to_time, StoreError, StoreResult, TenantDb};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Thread {
    pub id: String,
    pub contact_id: String,
    pub contact_name: Option<String>,
    /// `open`, `pending` (answered, waiting for the applicant) or `closed`.
    pub state: String,
    pub assignee_id: Option<String>,
    pub queue_id: Option<String>,
    pub vacancy: Option<String>,
    pub subject: Option<String>,
    /// The start of the last message.
    pub preview: Option<String>,
    /// Inbound messages staff have not read.
    pub unread: i64,
    pub last_channel_account_id: Option<String>,
    pub last_channel_kind: Option<String>,
    pub last_message_at: chrono::DateTime<chrono::Utc>,
    pub last_inbound_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The oldest applicant message not answered yet.
    pub awaiting_reply_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Unassigned in its queue since.
    pub waiting_since: Option<chrono::DateTime<chrono::Utc>>,
    pub assigned_at: Option<chrono::DateTime<chrono::Utc>>,
    pub first_inbound_at: Option<chrono::DateTime<chrono::Utc>>,
    pub first_response_at: Option<chrono::DateTime<chrono::Utc>>,
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the thread went back to its queue last: `assignee_away`, `assignee_offline`,
    /// `no_answer`, `assignee_removed`.
    pub reroute_reason: Option<String>,
    pub rerouted_from: Option<String>,
    pub rerouted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Set when the applicant was merged into another: the messages are in that thread.
    pub merged_into: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) const THREAD_COLUMNS: &str = "t.id, t.contact_id, c.name AS contact_name, t.state, \
    t.assignee_id, t.queue_id, t.vacancy, t.subject, t.preview, t.unread, t.last_channel_account_id, \
    t.last_channel_kind, t.last_message_at, t.last_inbound_at, t.awaiting_reply_since, t.waiting_since, \
    t.assigned_at, t.first_inbound_at, t.first_response_at, t.resolved_at, t.reroute_reason, \
    t.rerouted_from, t.rerouted_at, t.merged_into, t.created_at, t.updated_at";

/// [`THREAD_COLUMNS`] for `RETURNING` (no join: the contact's name is filled in after).
pub(crate) const THREAD_RETURNING: &str =
    "id, contact_id, CAST(NULL AS TEXT) AS contact_name, state, \
    assignee_id, queue_id, vacancy, subject, preview, unread, last_channel_account_id, \
    last_channel_kind, last_message_at, last_inbound_at, awaiting_reply_since, waiting_since, \
    assigned_at, first_inbound_at, first_response_at, resolved_at, reroute_reason, \
    rerouted_from, rerouted_at, merged_into, created_at, updated_at";

#[derive(FromRow)]
pub(crate) struct ThreadRow {
    id: String,
    contact_id: String,
    contact_name: Option<String>,
    state: String,
    assignee_id: Option<String>,
    queue_id: Option<String>,
    vacancy: Option<String>,
    subject: Option<String>,
    preview: Option<String>,
    unread: i64,
    last_channel_account_id: Option<String>,
    last_channel_kind: Option<String>,
    last_message_at: i64,
    last_inbound_at: Option<i64>,
    awaiting_reply_since: Option<i64>,
    waiting_since: Option<i64>,
    assigned_at: Option<i64>,
    first_inbound_at: Option<i64>,
    first_response_at: Option<i64>,
    resolved_at: Option<i64>,
    reroute_reason: Option<String>,
    rerouted_from: Option<String>,
    rerouted_at: Option<i64>,
    merged_into: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<ThreadRow> for Thread {
    fn from(r: ThreadRow) -> Self {
        Thread {
            id: r.id,
            contact_id: r.contact_id,
            contact_name: r.contact_name,
            state: r.state,
            assignee_id: r.assignee_id,
            queue_id: r.queue_id,
            vacancy: r.vacancy,
            subject: r.subject,
            preview: r.preview,
            unread: r.unread,
            last_channel_account_id: r.last_channel_account_id,
            last_channel_kind: r.last_channel_kind,
            last_message_at: to_time(r.last_message_at),
            last_inbound_at: r.last_inbound_at.map(to_time),
            awaiting_reply_since: r.awaiting_reply_since.map(to_time),
            waiting_since: r.waiting_since.map(to_time),
            assigned_at: r.assigned_at.map(to_time),
            first_inbound_at: r.first_inbound_at.map(to_time),
            first_response_at: r.first_response_at.map(to_time),
            resolved_at: r.resolved_at.map(to_time),
            reroute_reason: r.reroute_reason,
            rerouted_from: r.rerouted_from,
            rerouted_at: r.rerouted_at.map(to_time),
            merged_into: r.merged_into,
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreadMessage {
    pub id: String,
    pub thread_id: String,
    /// `in` (from the applicant), `out` (a reply), `note` (staff only) or `system`.
    pub direction: String,
    pub channel_account_id: Option<String>,
    /// `sms`, `email`, `board`, `chat`; none for notes.
    pub channel_kind: Option<String>,
    pub author_user_id: Option<String>,
    /// The applicant's address it came from or went to.
    pub remote_address: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    /// Sanitised HTML (email), when the message had HTML.
    pub html: Option<String>,
    /// The text without quoted replies and signature (email), for display; `text` keeps
    /// the whole message.
    pub display_text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub mentions: Vec<String>,
    pub external_id: Option<String>,
    pub client_message_id: Option<String>,
    /// Outbound: `queued`, `sent`, `delivered`, `read` or `failed`.
    pub delivery_state: Option<String>,
    pub failure_reason: Option<String>,
    /// An automatic reply (out-of-office, bounce notice): never answered by bots.
    pub auto_submitted: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) const MESSAGE_COLUMNS: &str = "id, thread_id, direction, channel_account_id, channel_kind, \
    author_user_id, remote_address, subject, body_text, body_html, display_text, attachments, mentions, \
    external_id, client_message_id, delivery_state, failure_reason, auto_submitted, created_at, updated_at";

#[derive(FromRow)]
pub(crate) struct MessageRow {
    id: String,
    thread_id: String,
    direction: String,
    channel_account_id: Option<String>,
    channel_kind: Option<String>,
    author_user_id: Option<String>,
    remote_address: Option<String>,
    subject: Option<String>,
    body_text: String,
    body_html: Option<String>,
    display_text: Option<String>,
    attachments: String,
    mentions: String,
    external_id: Option<String>,
    client_message_id: Option<String>,
    delivery_state: Option<String>,
    failure_reason: Option<String>,
    auto_submitted: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<MessageRow> for ThreadMessage {
    fn from(r: MessageRow) -> Self {
        ThreadMessage {
            id: r.id,
            thread_id: r.thread_id,
            direction: r.direction,
            channel_account_id: r.channel_account_id,
            channel_kind: r.channel_kind,
            author_user_id: r.author_user_id,
            remote_address: r.remote_address,
            subject: r.subject,
            text: r.body_text,
            html: r.body_html,
            display_text: r.display_text,
            attachments: serde_json::from_str(&r.attachments).unwrap_or_default(),
            mentions: serde_json::from_str(&r.mentions).unwrap_or_default(),
            external_id: r.external_id,
            client_message_id: r.client_message_id,
            delivery_state: r.delivery_state,
            failure_reason: r.failure_reason,
            auto_submitted: r.auto_submitted != 0,
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
        }
    }
}

/// An inbound message as an adapter hands it to ingest (already normalised and sanitised).
pub struct Inbound<'a> {
    pub account: &'a ChannelAccount,
    /// The provider's id of the message: the same id twice is stored once.
    pub external_id: &'a str,
    pub sender: &'a [IdentityKey],
    pub sender_name: Option<&'a str>,
    pub remote_address: Option<&'a str>,
    /// What ties it to a thread besides the sender (board negotiation id, email references).
    pub refs: &'a [String],
    pub subject: Option<&'a str>,
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub display_text: Option<&'a str>,
    pub attachments: &'a [Attachment],
    pub vacancy: Option<&'a str>,
    pub auto_submitted: bool,
    /// A new thread goes straight to this user when active (a board's responsible recruiter).
    pub assign_to: Option<&'a str>,
    pub at: i64,
}

/// What ingest did.
#[derive(Debug)]
pub enum Ingested {
    Stored {
        thread: Box<Thread>,
        message: Box<ThreadMessage>,
        /// The applicant was new.
        contact_created: bool,
        events: Vec<StoredEvent>,
    },
    /// The same external message was stored before.
    Duplicate {
        thread_id: String,
        message_id: String,
    },
}

/// A reply, a note or a system line, written by staff or by Jobers.
pub struct NewThreadMessage<'a> {
    pub direction: &'a str,
    pub author: Option<&'a str>,
    pub account: Option<&'a ChannelAccount>,
    pub remote_address: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub text: &'a str,
    pub attachments: &'a [Attachment],
    pub mentions: &'a [String],
    pub client_message_id: Option<&'a str>,
}

/// A change to a thread with the events that announce it.
#[derive(Debug)]
pub struct ThreadChange {
    pub thread: Thread,
    pub message: Option<ThreadMessage>,
    pub events: Vec<StoredEvent>,
}

#[derive(Debug, Default)]
pub struct ThreadFilter<'a> {
    /// `mine`, `unassigned` or `all` (default).
    pub scope: Option<&'a str>,
    pub state: Option<&'a str>,
    pub channel_kind: Option<&'a str>,
    pub queue_id: Option<&'a str>,
    pub vacancy: Option<&'a str>,
    /// Applicant name, phone or email.
    pub q: Option<&'a str>,
    /// Threads whose last message is older than this (ms) — the cursor.
    pub before: Option<(i64, &'a str)>,
    pub limit: i64,
}

pub(super) fn preview_of(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(140).collect()
}

impl TenantDb {
    pub(crate) async fn thread_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
    ) -> StoreResult<Thread> {
        let row: ThreadRow = sqlx::query_as(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads t JOIN contacts c ON c.id = t.contact_id \
             WHERE t.tenant_id = $1 AND t.id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.into())
    }

    pub async fn thread(&self, id: &str) -> StoreResult<Thread> {
        let mut tx = self.pool().begin().await?;
        let t = self.thread_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(t)
    }

    /// The live thread of a contact, if it has one.
    pub(crate) async fn thread_of_contact(
        &self,
        tx: &mut Transaction<'static, Any>,
        contact_id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM threads WHERE tenant_id = $1 AND contact_id = $2 AND merged_into IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(contact_id)
        .fetch_optional(&mut **tx)
        .await?)
    }

    pub async fn thread_for_contact(&self, contact_id: &str) -> StoreResult<Thread> {
        let mut tx = self.pool().begin().await?;
        self.contact_in(&mut tx, contact_id).await?;
        let id = self
            .thread_of_contact(&mut tx, contact_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let t = self.thread_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(t)
    }

    pub(crate) async fn message_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
    ) -> StoreResult<ThreadMessage> {
        let row: MessageRow = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.into())
    }

    pub async fn thread_message(&self, id: &str) -> StoreResult<ThreadMessage> {
        let mut tx = self.pool().begin().await?;
        let m = self.message_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(m)
    }

    /// Follows `merged_into` to the thread that holds a merged thread's messages now.
    async fn live_thread(
        &self,
        tx: &mut Transaction<'static, Any>,
        mut id: String,
    ) -> StoreResult<String> {
        for _ in 0..32 {
            let next: Option<Option<String>> = sqlx::query_scalar(
                "SELECT merged_into FROM threads WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&self.tenant_id)
            .bind(&id)
            .fetch_optional(&mut **tx)
            .await?;
            match next {
                Some(Some(n)) => id = n,
                Some(None) => return Ok(id),
                None => return Err(StoreError::NotFound),
            }
        }
        Ok(id)
    }

    /// The thread an inbound message belongs to: by reference, else by the sender.
    /// Creates the contact and the thread when neither exists.
    async fn thread_for_inbound(
        &self,
        tx: &mut Transaction<'static, Any>,
        input: &Inbound<'_>,
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<(String, bool, bool)> {
        for r in input.refs {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT thread_id FROM thread_refs WHERE tenant_id = $1 AND ref = $2",
            )
            .bind(&self.tenant_id)
            .bind(r)
            .fetch_optional(&mut **tx)
            .await?;
            // The reference Jobers sends with every reply (`thread:<id>`).
            let found = match (found, r.strip_prefix("thread:")) {
                (Some(t), _) => Some(t),
                (None, Some(id)) => {
                    sqlx::query_scalar("SELECT id FROM threads WHERE tenant_id = $1 AND id = $2")
                        .bind(&self.tenant_id)
                        .bind(id)
                        .fetch_optional(&mut **tx)
                        .await?
                }
                (None, None) => None,
            };
            if let Some(t) = found {
                let t = self.live_thread(tx, t).await?;
                let contact: String = sqlx::query_scalar(
                    "SELECT contact_id FROM threads WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(&t)
                .fetch_one(&mut **tx)
                .await?;
                // The sender's identities join the applicant when free; one that belongs to
                // someone else is left alone (a recruiter merges by hand).
                for key in input.sender {
                    if self.owner_of(tx, key).await?.is_none() {
                        self.insert_identity(tx, &contact, key).await?;
                    }
                }
                return Ok((t, false, false));
            }
        }
        let (contact_id, created, _merges) = self
            .resolve_ids(tx, input.sender_name, input.sender, first, events)
            .await?;
        if let Some(t) = self.thread_of_contact(tx, &contact_id).await? {
            return Ok((t, created, false));
        }
        let queue = match &input.account.queue_id {
            Some(q) => Some(q.clone()),
            None => self.queue_for_vacancy(tx, input.vacancy).await?,
        };
        let id = self
            .insert_thread(tx, &contact_id, queue.as_deref(), input, now_ms())
            .await?;
        Ok((id, created, true))
    }

    /// `user` when it is an active user of the tenant.
    async fn active_user(
        &self,
        tx: &mut Transaction<'static, Any>,
        user: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND deactivated_at IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(user)
        .fetch_optional(&mut **tx)
        .await?)
    }

    /// A new thread of `contact_id` for an inbound message (its first), in `queue`, or
    /// straight to the message's `assign_to` when that is an active user.
    pub(super) async fn insert_thread(
        &self,
        tx: &mut Transaction<'static, Any>,
        contact_id: &str,
        queue: Option<&str>,
        input: &Inbound<'_>,
        now: i64,
    ) -> StoreResult<String> {
        let id = new_id();
        let assignee = match input.assign_to {
            Some(u) => self.active_user(tx, u).await?,
            None => None,
        };
        sqlx::query(
            "INSERT INTO threads (id, tenant_id, contact_id, origin_contact_id, state, queue_id, vacancy, \
             last_message_at, created_at, updated_at, assignee_id, assigned_at) \
             VALUES ($1, $2, $3, $3, 'open', $4, $5, $6, $6, $6, $7, CASE WHEN $7 IS NULL THEN NULL ELSE $6 END)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(contact_id)
        .bind(queue)
        .bind(input.vacancy)
        .bind(now)
        .bind(assignee)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    /// The queue for new threads about `vacancy`, else the tenant's first queue.
    pub(super) async fn queue_for_vacancy(
        &self,
        tx: &mut Transaction<'static, Any>,
        vacancy: Option<&str>,
    ) -> StoreResult<Option<String>> {
        if let Some(v) = vacancy {
            let q: Option<String> = sqlx::query_scalar(
                "SELECT id FROM queues WHERE tenant_id = $1 AND vacancy = $2 ORDER BY created_at LIMIT 1",
            )
            .bind(&self.tenant_id)
            .bind(v)
            .fetch_optional(&mut **tx)
            .await?;
            if q.is_some() {
                return Ok(q);
            }
        }
        Ok(sqlx::query_scalar(
            "SELECT id FROM queues WHERE tenant_id = $1 AND vacancy IS NULL ORDER BY created_at LIMIT 1",
        )
        .bind(&self.tenant_id)
        .fetch_optional(&mut **tx)
        .await?)
    }

    /// Ingest (R-HUB-2): stores an inbound message with its applicant and thread, in one
    /// transaction with its events. The same `(account, external_id)` twice is stored once.
    pub async fn ingest(&self, input: Inbound<'_>) -> StoreResult<Ingested> {
        let (mut tx, _gate) = self.begin_write().await?;
        let out = self.ingest_in(&mut tx, &input).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// [`TenantDb::ingest`] inside a transaction the caller commits (the ingest writer puts
    /// many messages, of any tenants, in one).
    pub(crate) async fn ingest_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        input: &Inbound<'_>,
    ) -> StoreResult<Ingested> {
        let existing: Option<(String, String)> = sqlx::query_as(
            "SELECT id, thread_id FROM thread_messages WHERE tenant_id = $1 AND channel_account_id = $2 AND external_id = $3",
        )
        .bind(&self.tenant_id)
        .bind(&input.account.id)
        .bind(input.external_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((message_id, thread_id)) = existing {
            return Ok(Ingested::Duplicate {
                thread_id,
                message_id,
            });
        }
        // The tenant's position (and with it the tenant's lock) first, like every other
        // writer, so two transactions never wait on each other's rows.
        let mut first = Some(super::events::next_position(tx, &self.tenant_id).await?);
        let mut events = Vec::new();
        let (thread_id, contact_created, _thread_created) = self
            .thread_for_inbound(tx, input, &mut first, &mut events)
            .await?;
        let now = now_ms();
        let message = self.insert_inbound(tx, input, &thread_id, now).await?;
        self.touch_thread_inbound(tx, input, &thread_id, now)
            .await?;
        for r in input.refs {
            self.add_ref(tx, r, &thread_id).await?;
        }
        self.touch_account_inbound(tx, &input.account.id, now)
            .await?;
        let thread = self.thread_in(tx, &thread_id).await?;
        self.push_thread_events(tx, &mut first, Some(&message), &thread, &mut events)
            .await?;
        Ok(Ingested::Stored {
            thread: Box::new(thread),
            message: Box::new(message),
            contact_created,
            events,
        })
    }

    /// The row of an inbound message (shared by both ingest paths).
    pub(super) async fn insert_inbound(
        &self,
        tx: &mut Transaction<'static, Any>,
        input: &Inbound<'_>,
        thread_id: &str,
        now: i64,
    ) -> StoreResult<ThreadMessage> {
        let text = input.text;
        let row: MessageRow = sqlx::query_as(&format!(
            "INSERT INTO thread_messages (id, tenant_id, thread_id, origin_thread_id, direction, channel_account_id, \
             channel_kind, remote_address, subject, body_text, body_html, body_search, attachments, external_id, \
             auto_submitted, created_at, updated_at, display_text) \
             VALUES ($1, $2, $3, $3, 'in', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(new_id())
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(&input.account.id)
        .bind(&input.account.kind)
        .bind(input.remote_address)
        .bind(input.subject)
        .bind(text)
        .bind(input.html)
        .bind(text.to_lowercase())
        .bind(to_json(&input.attachments))
        .bind(input.external_id)
        .bind(i64::from(input.auto_submitted))
        .bind(now)
        .bind(input.display_text)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.into())
    }

    /// A new inbound message reopens its thread; an unassigned thread waits in its queue
    /// (oldest first). Returns the thread without `contact_name`.
    pub(super) async fn touch_thread_inbound(
        &self,
        tx: &mut Transaction<'static, Any>,
        input: &Inbound<'_>,
        thread_id: &str,
        now: i64,
    ) -> StoreResult<Thread> {
        let awaiting = (!input.auto_submitted).then_some(now);
        let row: ThreadRow = sqlx::query_as(&format!(
            "UPDATE threads SET state = 'open', resolved_at = NULL, unread = unread + 1, \
             last_channel_account_id = $3, last_channel_kind = $4, last_message_at = $5, last_inbound_at = $5, \
             awaiting_reply_since = COALESCE(awaiting_reply_since, $6), \
             first_inbound_at = COALESCE(first_inbound_at, $5), \
             waiting_since = CASE WHEN assignee_id IS NULL THEN COALESCE(waiting_since, $5) ELSE NULL END, \
             preview = $7, subject = COALESCE($8, subject), vacancy = COALESCE(vacancy, $9), updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {THREAD_RETURNING}"
        ))
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(&input.account.id)
        .bind(&input.account.kind)
        .bind(now)
        .bind(awaiting)
        .bind(preview_of(input.text))
        .bind(input.subject)
        .bind(input.vacancy)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.into())
    }

    /// The account heard from its provider: `last_inbound_at`, and a `no_inbound` health
    /// state is over.
    pub(super) async fn touch_account_inbound(
        &self,
        tx: &mut Transaction<'static, Any>,
        account_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE channel_accounts SET last_inbound_at = $3, \
             health = CASE WHEN health_class = 'no_inbound' THEN 'ok' ELSE health END, \
             health_class = CASE WHEN health_class = 'no_inbound' THEN NULL ELSE health_class END \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(account_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The stored message (and its thread) of an external id on an account, if any.
    pub async fn inbound_message_id(
        &self,
        account_id: &str,
        external_id: &str,
    ) -> StoreResult<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, thread_id FROM thread_messages WHERE tenant_id = $1 AND channel_account_id = $2 AND external_id = $3",
        )
        .bind(&self.tenant_id)
        .bind(account_id)
        .bind(external_id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub(crate) async fn add_ref(
        &self,
        tx: &mut Transaction<'static, Any>,
        r: &str,
        thread_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO thread_refs (tenant_id, ref, thread_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, ref) DO NOTHING",
        )
        .bind(&self.tenant_id)
        .bind(r)
        .bind(thread_id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// `thread.message` (when a message changed) and `thread.updated`, to all staff.
    pub(crate) async fn push_thread_events(
        &self,
        tx: &mut Transaction<'static, Any>,
        first: &mut Option<i64>,
        message: Option<&ThreadMessage>,
        thread: &Thread,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<()> {
        if let Some(m) = message {
            push_event(
                tx,
                &self.tenant_id,
                first,
                "thread.message",
                Audience::Tenant,
                to_json(m),
                events,
            )
            .await?;
        }
        push_event(
            tx,
            &self.tenant_id,
            first,
            "thread.updated",
            Audience::Tenant,
            to_json(thread),
            events,
        )
        .await?;
        Ok(())
    }

    /// A reply (with its outbox entry), a note or a system line. Replies are idempotent by
    /// the author's `client_message_id`: a repeat returns the stored message and no events.
    pub async fn add_thread_message(
        &self,
        thread_id: &str,
        m: NewThreadMessage<'_>,
    ) -> StoreResult<ThreadChange> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let thread = self.thread_in(&mut tx, thread_id).await?;
        if thread.merged_into.is_some() {
            return Err(StoreError::Conflict("thread_merged".into()));
        }
        if let (Some(author), Some(cmid)) = (m.author, m.client_message_id) {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT id FROM thread_messages WHERE tenant_id = $1 AND author_user_id = $2 AND client_message_id = $3",
            )
            .bind(&self.tenant_id)
            .bind(author)
            .bind(cmid)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = existing {
                let message = self.message_in(&mut tx, &id).await?;
                tx.rollback().await?;
                return Ok(ThreadChange {
                    thread,
                    message: Some(message),
                    events: Vec::new(),
                });
            }
        }
        let now = now_ms();
        let id = new_id();
        let outbound = m.direction == "out";
        sqlx::query(
            "INSERT INTO thread_messages (id, tenant_id, thread_id, origin_thread_id, direction, channel_account_id, \
             channel_kind, author_user_id, remote_address, subject, body_text, body_search, attachments, mentions, \
             client_message_id, delivery_state, created_at, updated_at) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(m.direction)
        .bind(m.account.map(|a| a.id.as_str()))
        .bind(m.account.map(|a| a.kind.as_str()))
        .bind(m.author)
        .bind(m.remote_address)
        .bind(m.subject)
        .bind(m.text)
        .bind(m.text.to_lowercase())
        .bind(to_json(&m.attachments))
        .bind(to_json(&m.mentions))
        .bind(m.client_message_id)
        .bind(outbound.then_some("queued"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let (true, Some(account)) = (outbound, m.account) {
            sqlx::query(
                "INSERT INTO outbox (id, tenant_id, message_id, channel_account_id, state, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
            )
            .bind(new_id())
            .bind(&self.tenant_id)
            .bind(&id)
            .bind(&account.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // Answered: the applicant's turn now; the first answer is the first response.
            sqlx::query(
                "UPDATE threads SET state = CASE WHEN state = 'open' THEN 'pending' ELSE state END, \
                 awaiting_reply_since = NULL, first_response_at = COALESCE(first_response_at, $3), \
                 last_message_at = $3, last_channel_account_id = $4, last_channel_kind = $5, preview = $6, \
                 updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&self.tenant_id)
            .bind(thread_id)
            .bind(now)
            .bind(&account.id)
            .bind(&account.kind)
            .bind(preview_of(m.text))
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE threads SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(&self.tenant_id)
                .bind(thread_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let message = self.message_in(&mut tx, &id).await?;
        let thread = self.thread_in(&mut tx, thread_id).await?;
        let mut events = Vec::new();
        self.push_thread_events(&mut tx, &mut first, Some(&message), &thread, &mut events)
            .await?;
        for user in m.mentions {
            let payload = serde_json::json!({
                "thread_id": thread_id, "message_id": id, "by": m.author,
                "text": preview_of(m.text),
            });
            push_event(
                &mut tx,
                &self.tenant_id,
                &mut first,
                "thread.mention",
                Audience::User(user.clone()),
                payload.to_string(),
                &mut events,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ThreadChange {
            thread,
            message: Some(message),
            events,
        })
    }

    /// Where the applicant last wrote from through this kind of channel.
    pub async fn last_remote_address(
        &self,
        thread_id: &str,
        kind: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT remote_address FROM thread_messages WHERE tenant_id = $1 AND thread_id = $2 \
             AND channel_kind = $3 AND direction = 'in' AND remote_address IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(kind)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Email threading of a reply: the Message-ID answered (the applicant's last email) and
    /// the thread's Message-IDs, oldest first (at most 20).
    pub async fn email_context(
        &self,
        thread_id: &str,
    ) -> StoreResult<(Option<String>, Vec<String>)> {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT direction, external_id, provider_message_id FROM thread_messages WHERE tenant_id = $1 \
             AND thread_id = $2 AND channel_kind = 'email' ORDER BY id DESC LIMIT 20",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .fetch_all(self.pool())
        .await?;
        let last_in = rows
            .iter()
            .find(|(d, e, _)| d == "in" && e.as_deref().is_some_and(|e| e.contains('@')))
            .and_then(|(_, e, _)| e.clone());
        let mut refs: Vec<String> = rows
            .iter()
            .rev()
            .filter_map(|(d, e, p)| if d == "in" { e.clone() } else { p.clone() })
            .filter(|id| id.contains('@'))
            .collect();
        refs.dedup();
        Ok((last_in, refs))
    }

    /// The thread's reply token (`reply+<token>@…`), made on first use.
    pub async fn reply_token(&self, thread_id: &str) -> StoreResult<String> {
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT ref FROM thread_refs WHERE tenant_id = $1 AND thread_id = $2 AND ref LIKE 'reply:%' LIMIT 1",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .fetch_optional(self.pool())
        .await?;
        if let Some(r) = existing {
            return Ok(r.trim_start_matches("reply:").to_string());
        }
        let token = hex::encode(rand::random::<[u8; 12]>());
        self.add_thread_ref(thread_id, &format!("reply:{token}"))
            .await?;
        Ok(token)
    }

    /// Ties a reference (a Message-ID we sent, a reply token) to a thread.
    pub async fn add_thread_ref(&self, thread_id: &str, r: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        self.add_ref(&mut tx, r, thread_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Messages of a thread, newest first, before the message id `before`.
    pub async fn thread_messages(
        &self,
        thread_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ThreadMessage>> {
        let mut tx = self.pool().begin().await?;
        self.thread_in(&mut tx, thread_id).await?;
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE tenant_id = $1 AND thread_id = $2 \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(before)
        .bind(limit.clamp(1, 200))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Full-text search over every conversation of the tenant (R-COMM-5), newest first.
    pub async fn search_thread_messages(
        &self,
        q: &str,
        limit: i64,
    ) -> StoreResult<Vec<ThreadMessage>> {
        let Some(pattern) = super::like_pattern(q) else {
            return Ok(Vec::new());
        };
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE tenant_id = $1 \
             AND body_search LIKE $2 ESCAPE '\\' ORDER BY id DESC LIMIT $3"
        ))
        .bind(&self.tenant_id)
        .bind(pattern)
        .bind(limit.clamp(1, 200))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The inbox: threads by last activity, newest first.
    pub async fn list_threads(
        &self,
        user_id: &str,
        f: &ThreadFilter<'_>,
    ) -> StoreResult<Vec<Thread>> {
        let scope = f.scope.unwrap_or("all");
        let pattern = f.q.and_then(super::like_pattern);
        let phone = f.q.and_then(crate::identity::normalize_phone);
        let rows: Vec<ThreadRow> = sqlx::query_as(&format!(
            "SELECT {THREAD_COLUMNS} FROM threads t JOIN contacts c ON c.id = t.contact_id \
             WHERE t.tenant_id = $1 AND t.merged_into IS NULL \
             AND ($2 <> 'mine' OR t.assignee_id = $3) \
             AND ($2 <> 'unassigned' OR (t.assignee_id IS NULL AND t.state <> 'closed')) \
             AND ($4 IS NULL OR t.state = $4) AND ($5 IS NULL OR t.last_channel_kind = $5) \
             AND ($6 IS NULL OR t.queue_id = $6) AND ($7 IS NULL OR t.vacancy = $7) \
             AND ($8 IS NULL OR coalesce(c.name_search, '') LIKE $8 ESCAPE '\\' \
                  OR EXISTS (SELECT 1 FROM identities i WHERE i.tenant_id = $1 AND i.contact_id = t.contact_id \
                             AND (i.value LIKE $8 ESCAPE '\\' OR i.value = $9))) \
             AND ($10 IS NULL OR t.last_message_at < $10 OR (t.last_message_at = $10 AND t.id < $11)) \
             ORDER BY t.last_message_at DESC, t.id DESC LIMIT $12"
        ))
        .bind(&self.tenant_id)
        .bind(scope)
        .bind(user_id)
        .bind(f.state)
        .bind(f.channel_kind)
        .bind(f.queue_id)
        .bind(f.vacancy)
        .bind(pattern)
        .bind(phone)
        .bind(f.before.map(|b| b.0))
        .bind(f.before.map(|b| b.1))
        .bind(f.limit.clamp(1, 200))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Begins a change of a thread: the transaction, its first position and the thread.
    async fn begin_thread_change(
        &self,
        thread_id: &str,
    ) -> StoreResult<(
        Transaction<'static, Any>,
        Option<i64>,
        super::WriteGate,
        Thread,
    )> {
        let (mut tx, position, gate) = self.begin_with_position().await?;
        let before = self.thread_in(&mut tx, thread_id).await?;
        Ok((tx, Some(position), gate, before))
    }

    /// Announces the thread as it is now and commits.
    async fn finish_thread_change(
        &self,
        mut tx: Transaction<'static, Any>,
        mut first: Option<i64>,
        thread_id: &str,
    ) -> StoreResult<ThreadChange> {
        let thread = self.thread_in(&mut tx, thread_id).await?;
        let mut events = Vec::new();
        self.push_thread_events(&mut tx, &mut first, None, &thread, &mut events)
            .await?;
        tx.commit().await?;
        Ok(ThreadChange {
            thread,
            message: None,
            events,
        })
    }

    /// Marks every message of the thread read by staff.
    pub async fn mark_thread_read(&self, thread_id: &str) -> StoreResult<ThreadChange> {
        let (mut tx, first, _gate, _) = self.begin_thread_change(thread_id).await?;
        sqlx::query(
            "UPDATE threads SET unread = 0, read_upto = (SELECT MAX(id) FROM thread_messages m \
             WHERE m.tenant_id = $1 AND m.thread_id = $2) WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .execute(&mut *tx)
        .await?;
        self.finish_thread_change(tx, first, thread_id).await
    }

    /// Closes (resolved) or reopens a thread.
    pub async fn set_thread_state(
        &self,
        thread_id: &str,
        state: &str,
    ) -> StoreResult<ThreadChange> {
        let (mut tx, first, _gate, before) = self.begin_thread_change(thread_id).await?;
        if before.merged_into.is_some() {
            return Err(StoreError::Conflict("thread_merged".into()));
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE threads SET state = $3, \
             resolved_at = CASE WHEN $3 = 'closed' THEN $4 ELSE NULL END, \
             waiting_since = CASE WHEN $3 = 'closed' THEN NULL \
                                  WHEN assignee_id IS NULL THEN COALESCE(waiting_since, $4) ELSE NULL END, \
             updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(state)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.finish_thread_change(tx, first, thread_id).await
    }

    /// Assigns a thread to `user` (or back to its queue with `None`), by a supervisor or
    /// by the router. `reroute_reason` is recorded when the router takes a thread back;
    /// `expect_assignee` makes the change conditional (the router's view may be stale).
    pub async fn assign_thread(
        &self,
        thread_id: &str,
        user: Option<&str>,
        reroute_reason: Option<&str>,
        expect_assignee: Option<Option<&str>>,
    ) -> StoreResult<ThreadChange> {
        let (mut tx, first, _gate, before) = self.begin_thread_change(thread_id).await?;
        if before.merged_into.is_some() {
            return Err(StoreError::Conflict("thread_merged".into()));
        }
        if let Some(e) = expect_assignee {
            if e != before.assignee_id.as_deref() {
                return Err(StoreError::Conflict("thread_changed".into()));
            }
        }
        if let Some(u) = user {
            if self.active_user(&mut tx, u).await?.is_none() {
                return Err(StoreError::UnknownReference("user"));
            }
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE threads SET assignee_id = $3, \
             assigned_at = CASE WHEN $3 IS NULL THEN NULL ELSE $4 END, \
             waiting_since = CASE WHEN $3 IS NULL AND state <> 'closed' THEN $4 ELSE NULL END, \
             reroute_reason = CASE WHEN $5 IS NULL THEN reroute_reason ELSE $5 END, \
             rerouted_from = CASE WHEN $5 IS NULL THEN rerouted_from ELSE $6 END, \
             rerouted_at = CASE WHEN $5 IS NULL THEN rerouted_at ELSE $4 END, \
             updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(user)
        .bind(now)
        .bind(reroute_reason)
        .bind(before.assignee_id.as_deref())
        .execute(&mut *tx)
        .await?;
        self.finish_thread_change(tx, first, thread_id).await
    }

    /// Moves a thread to another queue (it waits there when unassigned).
    pub async fn set_thread_queue(
        &self,
        thread_id: &str,
        queue_id: Option<&str>,
    ) -> StoreResult<ThreadChange> {
        let (mut tx, first, _gate, _) = self.begin_thread_change(thread_id).await?;
        if let Some(q) = queue_id {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM queues WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(q)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::UnknownReference("queue"));
            }
        }
        sqlx::query(
            "UPDATE threads SET queue_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(queue_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.finish_thread_change(tx, first, thread_id).await
    }

    /// Recomputes what a thread shows of its messages (after messages moved between threads).
    pub(crate) async fn recompute_thread(
        &self,
        tx: &mut Transaction<'static, Any>,
        thread_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE threads SET \
             last_message_at = COALESCE((SELECT MAX(created_at) FROM thread_messages m WHERE m.tenant_id = $1 AND m.thread_id = $2), last_message_at), \
             last_inbound_at = (SELECT MAX(created_at) FROM thread_messages m WHERE m.tenant_id = $1 AND m.thread_id = $2 AND m.direction = 'in'), \
             first_inbound_at = (SELECT MIN(created_at) FROM thread_messages m WHERE m.tenant_id = $1 AND m.thread_id = $2 AND m.direction = 'in'), \
             unread = (SELECT COUNT(*) FROM thread_messages m WHERE m.tenant_id = $1 AND m.thread_id = $2 AND m.direction = 'in' \
                       AND (threads.read_upto IS NULL OR m.id > threads.read_upto)), \
             preview = (SELECT m.body_text FROM thread_messages m WHERE m.tenant_id = $1 AND m.thread_id = $2 \
                        AND m.direction IN ('in', 'out') ORDER BY m.id DESC LIMIT 1), \
             updated_at = $3 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(thread_id)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        let preview: Option<String> =
            sqlx::query_scalar("SELECT preview FROM threads WHERE tenant_id = $1 AND id = $2")
                .bind(&self.tenant_id)
                .bind(thread_id)
                .fetch_one(&mut **tx)
                .await?;
        sqlx::query("UPDATE threads SET preview = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(thread_id)
            .bind(preview.as_deref().map(preview_of))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Threads follow a contact merge: the merged applicant's messages join the survivor's
    /// thread (or its thread becomes the survivor's when the survivor had none).
    pub(crate) async fn merge_threads(
        &self,
        tx: &mut Transaction<'static, Any>,
        survivor: &str,
        merged: &str,
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<()> {
        let ts = self.thread_of_contact(tx, survivor).await?;
        let Some(tm) = self.thread_of_contact(tx, merged).await? else {
            return Ok(());
        };
        let now = now_ms();
        match ts {
            None => {
                sqlx::query("UPDATE threads SET contact_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(&tm)
                    .bind(survivor)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                let t = self.thread_in(tx, &tm).await?;
                self.push_thread_events(tx, first, None, &t, events).await?;
            }
            Some(ts) => {
                sqlx::query("UPDATE thread_messages SET thread_id = $3 WHERE tenant_id = $1 AND thread_id = $2")
                    .bind(&self.tenant_id)
                    .bind(&tm)
                    .bind(&ts)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE thread_refs SET thread_id = $3 WHERE tenant_id = $1 AND thread_id = $2",
                )
                .bind(&self.tenant_id)
                .bind(&tm)
                .bind(&ts)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE threads SET merged_into = $3, waiting_since = NULL, unread = 0, updated_at = $4 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(&tm)
                .bind(&ts)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                // The survivor's thread reopens when the merged one was waiting for an answer.
                sqlx::query(
                    "UPDATE threads SET awaiting_reply_since = CASE \
                       WHEN awaiting_reply_since IS NULL THEN (SELECT o.awaiting_reply_since FROM threads o WHERE o.id = $3) \
                       WHEN (SELECT o.awaiting_reply_since FROM threads o WHERE o.id = $3) < awaiting_reply_since \
                         THEN (SELECT o.awaiting_reply_since FROM threads o WHERE o.id = $3) \
                       ELSE awaiting_reply_since END \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(&ts)
                .bind(&tm)
                .execute(&mut **tx)
                .await?;
                self.recompute_thread(tx, &ts).await?;
                for id in [&tm, &ts] {
                    let t = self.thread_in(tx, id).await?;
                    self.push_thread_events(tx, first, None, &t, events).await?;
                }
            }
        }
        Ok(())
    }

    /// Undoes [`merge_threads`]: the messages that came from the merged applicant's
    /// threads (and from applicants merged into it before) go back.
    pub(crate) async fn unmerge_threads(
        &self,
        tx: &mut Transaction<'static, Any>,
        survivor: &str,
        merged: &str,
        first: &mut Option<i64>,
        events: &mut Vec<StoredEvent>,
    ) -> StoreResult<()> {
        // The merged applicant and everyone merged into it (transitively).
        let family: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE fam(id) AS (SELECT $2 UNION SELECT c.id FROM contacts c JOIN fam ON c.merged_into = fam.id \
             WHERE c.tenant_id = $1) SELECT id FROM fam",
        )
        .bind(&self.tenant_id)
        .bind(merged)
        .fetch_all(&mut **tx)
        .await?;
        let now = now_ms();
        let own: Option<String> =
            sqlx::query_scalar("SELECT id FROM threads WHERE tenant_id = $1 AND contact_id = $2")
                .bind(&self.tenant_id)
                .bind(merged)
                .fetch_optional(&mut **tx)
                .await?;
        let ts = self.thread_of_contact(tx, survivor).await?;
        let mut touched: Vec<String> = Vec::new();
        match (own, ts) {
            (Some(own), Some(ts)) => {
                sqlx::query("UPDATE threads SET merged_into = NULL, updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(&own)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                for origin in &family {
                    sqlx::query(
                        "UPDATE thread_messages SET thread_id = $3 WHERE tenant_id = $1 AND thread_id = $2 \
                         AND origin_thread_id IN (SELECT id FROM threads WHERE tenant_id = $1 AND origin_contact_id = $4)",
                    )
                    .bind(&self.tenant_id)
                    .bind(&ts)
                    .bind(&own)
                    .bind(origin)
                    .execute(&mut **tx)
                    .await?;
                }
                touched.push(own);
                touched.push(ts);
            }
            (None, Some(ts)) => {
                // The survivor took over the merged applicant's thread: hand it back.
                let origin: String = sqlx::query_scalar(
                    "SELECT origin_contact_id FROM threads WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(&ts)
                .fetch_one(&mut **tx)
                .await?;
                if family.contains(&origin) {
                    sqlx::query("UPDATE threads SET contact_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                        .bind(&self.tenant_id)
                        .bind(&ts)
                        .bind(merged)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    touched.push(ts);
                }
            }
            _ => {}
        }
        for id in &touched {
            self.recompute_thread(tx, id).await?;
            let t = self.thread_in(tx, id).await?;
            self.push_thread_events(tx, first, None, &t, events).await?;
        }
        Ok(())
    }
}
