//! The switch (R-HUB-2 … R-HUB-4): every channel feeds [`Switch::ingest`]; every reply
//! leaves through [`Switch::reply`] and the outbox; the router (the ACD) hands threads to
//! recruiters who are free.

pub mod boards;
pub mod email;
mod lease;
pub mod outbox;
pub mod routing;
mod writer;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use base64::Engine;
use jobers_channels::webhook::InboundPayload;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Notify};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::blobs::Blobs;
use crate::config::SwitchConfig;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Hub;
use crate::store::{
    Attachment, ChannelAccount, Db, IdentityKey, Ingested, NewThreadMessage, TenantDb,
    ThreadChange, ThreadMessage,
};

/// The switch's clock: the real time plus an offset tests can move forward, so that
/// "away for 10 minutes" can be tested without waiting ten minutes.
#[derive(Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        crate::store::now_ms() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock forward (tests).
    pub fn advance(&self, ms: i64) {
        self.offset.fetch_add(ms, Ordering::Relaxed);
    }
}

/// What only some adapters know about an inbound message.
#[derive(Debug, Default)]
pub(crate) struct IngestOptions {
    /// The text to show (an email without its quoted part).
    pub display_text: Option<String>,
    /// A new thread goes straight to this user (a board account's responsible recruiter)
    /// instead of waiting in its queue; ignored when the user is deactivated.
    pub assign_to: Option<String>,
}

/// What ingest answers an adapter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestResult {
    pub thread_id: String,
    pub message_id: String,
    /// The message had been stored before (same account and external id).
    pub duplicate: bool,
}

/// A reply from a thread.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// The text; or use `template_id`.
    pub text: Option<String>,
    /// A template whose variables are filled in (`{{applicant.name}}`, `{{vacancy}}`,
    /// `{{user.name}}`, `{{company.name}}`).
    pub template_id: Option<String>,
    /// The channel account to send through. Default: the one the applicant last used.
    pub channel_account_id: Option<String>,
    /// `auto` (default: the user's signature, else the company's), `none`, or the text
    /// of an edited signature.
    pub signature: Option<String>,
    pub subject: Option<String>,
    /// Upload ids.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Makes the reply idempotent: a repeat returns the stored message.
    pub client_message_id: Option<String>,
    /// Send an SMS longer than the number's `max_segments` setting (default 3) anyway.
    #[serde(default)]
    pub confirm_long: bool,
}

#[derive(Clone)]
pub struct Switch {
    inner: Arc<SwitchInner>,
}

struct SwitchInner {
    db: Db,
    hub: Hub,
    blobs: Blobs,
    config: SwitchConfig,
    clock: Clock,
    route: mpsc::UnboundedSender<String>,
    outbox: Arc<Notify>,
    public_url: String,
    writers: writer::Writers,
    boards: Arc<boards::BoardTasks>,
    /// Set when the node stops: the readers of providers end and give their leases up.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The node's background tasks: the router, the outbox and the readers of providers
    /// (boards, mailboxes, SMS delivery reports).
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// How long a stopping node waits for a reader of a provider to reach a pause.
const STOP_READERS_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Ends a supervisor's tasks (one per account) and waits until they are gone.
async fn end_all(tasks: &mut std::collections::HashMap<String, tokio::task::JoinHandle<()>>) {
    for (_, task) in tasks.drain() {
        task.abort();
        let _ = task.await;
    }
}

/// SMS parts a reply may take without `confirm_long` (a number's `max_segments` setting
/// overrides it).
pub const DEFAULT_MAX_SEGMENTS: usize = 3;

/// Inbound attachments of these types are kept; others are dropped with a note.
const ACCEPTED_TYPES: &[&str] = &[
    "image/",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/rtf",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
    "application/vnd.ms-excel",
    "audio/",
    "video/",
];

/// Sanitises inbound HTML: no scripts, no event handlers, no styles that escape the
/// message, links open safely.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        // The quote markers of mail clients, so the client can fold quoted text.
        .allowed_classes(
            [
                (
                    "div",
                    ["gmail_quote", "gmail_attr", "moz-cite-prefix"]
                        .into_iter()
                        .collect(),
                ),
                ("blockquote", ["gmail_quote"].into_iter().collect()),
            ]
            .into_iter()
            .collect(),
        )
        .url_schemes(["http", "https", "mailto", "tel"].into_iter().collect())
        .clean(html)
        .to_string()
}

/// The text of an HTML body (for previews and search).
pub fn html_to_text(html: &str) -> String {
    let stripped = ammonia::Builder::empty()
        .clean(&html.replace("<br", "\n<br").replace("</p>", "</p>\n"))
        .to_string();
    stripped
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn valid_text(s: &str) -> bool {
    !s.contains('\0')
}

impl Switch {
    /// Starts the router and the outbox workers of this node.
    pub fn start(
        db: Db,
        hub: Hub,
        blobs: Blobs,
        config: SwitchConfig,
        clock: Clock,
        public_url: String,
    ) -> Switch {
        let (route, route_rx) = mpsc::unbounded_channel();
        let writers = writer::Writers::start(db.clone());
        let switch = Switch {
            inner: Arc::new(SwitchInner {
                db,
                hub,
                blobs,
                config,
                clock,
                route,
                outbox: Arc::new(Notify::new()),
                public_url,
                writers,
                boards: Arc::default(),
                stopping: tokio::sync::watch::channel(false).0,
                tasks: std::sync::Mutex::default(),
            }),
        };
        let tasks = vec![
            tokio::spawn(routing::run(switch.clone(), route_rx)),
            tokio::spawn(outbox::run(switch.clone())),
            tokio::spawn(outbox::poll_statuses(switch.clone())),
            tokio::spawn(email::supervise(switch.clone())),
            tokio::spawn(boards::supervise(switch.clone())),
        ];
        *switch.inner.tasks.lock().expect("not poisoned") = tasks;
        switch
    }

    /// How many of the node's background tasks (router, outbox, readers) still run: all
    /// five until `stop`, none after it.
    pub fn tasks_running(&self) -> usize {
        let tasks = self.inner.tasks.lock().expect("not poisoned");
        tasks.iter().filter(|t| !t.is_finished()).count()
    }

    /// Stops this node's router, outbox and readers of providers, and gives up their
    /// leases, so that another node takes them over at once (not when they run out). Called
    /// when the node stops, before its database pool is closed: nothing of the node uses the
    /// pool after it.
    pub async fn stop(&self) {
        self.inner.stopping.send_replace(true);
        let mut tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("not poisoned"));
        for task in &mut tasks {
            // A reader in the middle of a provider call ends at the next pause, the outbox
            // once its sends under way are recorded; one that takes longer is cut off (what
            // a reader read is stored as it goes; a send cut off is sent again when its
            // lease runs out).
            if tokio::time::timeout(STOP_READERS_WITHIN, &mut *task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
        // Kept, finished, for `tasks_running`.
        *self.inner.tasks.lock().expect("not poisoned") = tasks;
        if let Err(e) = self
            .inner
            .db
            .release_leases_of(self.inner.hub.node_id())
            .await
        {
            tracing::warn!(error = %e, "giving up this node's leases failed");
        }
    }

    /// Completes when the node stops.
    pub(crate) async fn stopped(&self) {
        let mut stopping = self.inner.stopping.subscribe();
        let _ = stopping.wait_for(|s| *s).await;
    }

    /// Waits `how_long`, or less when the node stops; true when it is stopping.
    pub(crate) async fn pause(&self, how_long: std::time::Duration) -> bool {
        tokio::select! {
            _ = self.stopped() => true,
            _ = tokio::time::sleep(how_long) => false,
        }
    }

    /// Where providers reach this hub (webhook URLs are built on it and checked against it).
    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    /// The URL a provider reports this message's delivery to, for providers that take one
    /// per message.
    pub fn status_callback(&self, account: &ChannelAccount, message_id: &str) -> Option<String> {
        let base = format!("{}/api/v1/hooks/{}", self.inner.public_url, account.id);
        match account.provider.as_str() {
            "kannel" => {
                let token = jobers_channels::sms::kannel::hook_token(
                    account.secret.as_deref().unwrap_or(""),
                    &account.id,
                );
                Some(format!("{base}/kannel/dlr?token={token}&msg={message_id}"))
            }
            "twilio" => Some(format!("{base}/twilio/status?msg={message_id}")),
            _ => None,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub(crate) fn config(&self) -> &SwitchConfig {
        &self.inner.config
    }

    /// The job-board sync tasks of this node.
    pub fn boards(&self) -> &boards::BoardTasks {
        &self.inner.boards
    }

    pub(crate) fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    /// Asks the router to look at a tenant now.
    pub fn route_tenant(&self, tenant: &str) {
        let _ = self.inner.route.send(tenant.to_string());
    }

    pub(crate) fn outbox_notify(&self) -> &Arc<Notify> {
        &self.inner.outbox
    }

    async fn publish(&self, tenant: &str, events: &[crate::store::StoredEvent]) {
        if !events.is_empty() {
            self.inner.hub.publish_events(tenant, events).await;
        }
    }

    /// The one entry point of every adapter: stores the message durably with its
    /// applicant and thread and returns only then (the adapter acknowledges its provider
    /// after this). The same external message twice is stored once.
    pub async fn ingest(
        &self,
        account: &ChannelAccount,
        p: InboundPayload,
    ) -> ApiResult<IngestResult> {
        self.ingest_with(account, p, IngestOptions::default()).await
    }

    /// [`Switch::ingest`] with what only some adapters know (see [`IngestOptions`]).
    pub(crate) async fn ingest_with(
        &self,
        account: &ChannelAccount,
        p: InboundPayload,
        options: IngestOptions,
    ) -> ApiResult<IngestResult> {
        let IngestOptions {
            display_text,
            assign_to,
        } = options;
        let max = self.inner.config.max_inbound_chars;
        if p.id.trim().is_empty() || p.id.len() > 200 {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "id must be 1 to 200 characters long",
            ));
        }
        let mut sender = Vec::new();
        for (kind, value) in [
            ("phone", &p.from.phone),
            ("email", &p.from.email),
            ("hh", &p.from.hh),
            ("telegram", &p.from.telegram),
        ] {
            if let Some(v) = value {
                let key = crate::identity::normalize(kind, v)
                    .map_err(|m| ApiError::unprocessable("invalid_identity", m))?;
                sender.push(key);
            }
        }
        if sender.is_empty() {
            return Err(ApiError::unprocessable(
                "no_sender",
                "from must carry a phone, an email, an hh or a telegram id",
            ));
        }
        let texts = [
            Some(&p.text),
            p.html.as_ref(),
            p.subject.as_ref(),
            Some(&p.id),
            p.vacancy.as_ref(),
            p.from.name.as_ref(),
        ];
        if texts.iter().flatten().any(|t| !valid_text(t))
            || p.refs.iter().any(|r| !valid_text(r) || r.len() > 1000)
            || p.attachments
                .iter()
                .any(|a| !valid_text(&a.file_name) || !valid_text(&a.content_type))
        {
            return Err(ApiError::unprocessable(
                "invalid_text",
                "text must not contain NUL characters",
            ));
        }
        let tdb = self.inner.db.for_tenant(&account.tenant_id);
        let html = p.html.as_deref().map(|h| sanitize_html(cut(h, max)));
        let mut text = cut(&p.text, max).to_string();
        if text.trim().is_empty() {
            if let Some(h) = &html {
                text = html_to_text(h);
            }
        }
        // A repeat with attachments is answered before they are stored again.
        if !p.attachments.is_empty() {
            if let Some((message_id, thread_id)) =
                tdb.inbound_message_id(&account.id, p.id.trim()).await?
            {
                metrics::counter!("ingest_duplicates_total").increment(1);
                return Ok(IngestResult {
                    thread_id,
                    message_id,
                    duplicate: true,
                });
            }
        }
        let (attachments, notes) = self.store_attachments(&tdb, account, &p).await?;
        for note in notes {
            text.push_str(&format!("\n[{note}]"));
        }
        let remote = remote_of(&account.kind, &sender);
        let sms_from = remote.clone();
        let name = p
            .from
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| cut(n, 200));
        let outcome = self
            .inner
            .writers
            .ingest(writer::Job {
                account: account.clone(),
                external_id: p.id.trim().to_string(),
                sender,
                sender_name: name.map(str::to_string),
                remote_address: remote,
                refs: p.refs.clone(),
                subject: p.subject.as_deref().map(|s| cut(s, 500).to_string()),
                text,
                html,
                display_text: display_text.as_deref().map(|t| cut(t, max).to_string()),
                attachments,
                vacancy: p.vacancy.clone(),
                auto_submitted: p.auto_submitted,
                assign_to,
                at: crate::store::now_ms(),
            })
            .await?;
        match outcome {
            Ingested::Duplicate {
                thread_id,
                message_id,
            } => {
                metrics::counter!("ingest_duplicates_total").increment(1);
                // A STOP whose recording failed the first time is recorded on the repeat.
                if let (true, Some(out), Some(phone)) = (
                    account.kind == "sms",
                    opt_keyword(&p.text),
                    sms_from.as_deref(),
                ) {
                    tdb.set_opted_out(phone, out).await?;
                }
                Ok(IngestResult {
                    thread_id,
                    message_id,
                    duplicate: true,
                })
            }
            Ingested::Stored {
                thread,
                message,
                events,
                ..
            } => {
                metrics::counter!("ingest_messages_total").increment(1);
                if account.kind == "sms" {
                    if let (Some(out), Some(phone)) = (
                        opt_keyword(&message.text),
                        message.remote_address.as_deref(),
                    ) {
                        tdb.set_opted_out(phone, out).await?;
                    }
                }
                self.publish(&account.tenant_id, &events).await;
                if thread.assignee_id.is_none() && thread.queue_id.is_some() {
                    self.route_tenant(&account.tenant_id);
                }
                Ok(IngestResult {
                    thread_id: thread.id,
                    message_id: message.id,
                    duplicate: false,
                })
            }
        }
    }

    async fn store_attachments(
        &self,
        tdb: &TenantDb,
        account: &ChannelAccount,
        p: &InboundPayload,
    ) -> ApiResult<(Vec<Attachment>, Vec<String>)> {
        let mut kept = Vec::new();
        let mut notes = Vec::new();
        for a in &p.attachments {
            let name = cut(a.file_name.trim(), 200).to_string();
            let ctype = a.content_type.trim().to_ascii_lowercase();
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&a.data_base64) else {
                notes.push(format!("attachment {name} dropped: not valid base64"));
                continue;
            };
            if bytes.len() > self.inner.config.max_attachment_bytes {
                notes.push(format!("attachment {name} dropped: larger than the limit"));
                continue;
            }
            if !ACCEPTED_TYPES.iter().any(|t| ctype.starts_with(t)) {
                notes.push(format!(
                    "attachment {name} dropped: type {ctype} is not accepted"
                ));
                continue;
            }
            let id = crate::store::new_id();
            self.inner
                .blobs
                .put(tdb.tenant_id(), &id, &bytes)
                .await
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("storing attachment: {e}")))?;
            let sha = hex::encode(Sha256::digest(&bytes));
            let upload = tdb
                .create_upload(
                    &id,
                    &format!("channel:{}", account.id),
                    if name.is_empty() { "attachment" } else { &name },
                    &ctype,
                    bytes.len() as i64,
                    &sha,
                )
                .await?;
            kept.push(Attachment {
                upload_id: upload.id,
                file_name: upload.file_name,
                content_type: upload.content_type,
                size: upload.size,
            });
        }
        Ok((kept, notes))
    }

    /// A reply from a thread: the message and its outbox entry in one transaction; a
    /// worker sends it.
    pub async fn reply(
        &self,
        who: &Principal,
        tdb: &TenantDb,
        thread_id: &str,
        req: ReplyRequest,
    ) -> ApiResult<ThreadChange> {
        let thread = tdb.thread(thread_id).await?;
        let account_id = req
            .channel_account_id
            .clone()
            .or(thread.last_channel_account_id.clone())
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "no_channel",
                    "the applicant has not written through any channel yet: choose channel_account_id",
                )
            })?;
        let account = tdb
            .channel_account(&account_id)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => ApiError::unprocessable(
                    "unknown_channel_account",
                    "no such channel account in this workspace",
                ),
                other => other.into(),
            })?;
        if !account.enabled {
            return Err(ApiError::unprocessable(
                "channel_disabled",
                "this channel account is switched off",
            ));
        }
        if account
            .owner_user_id
            .as_deref()
            .is_some_and(|o| o != who.user_id())
        {
            return Err(ApiError::Forbidden {
                code: "not_your_sender",
                message: "this is another user's personal sender".into(),
            });
        }
        let contact = tdb.contact(&thread.contact_id).await?;
        let remote = tdb
            .last_remote_address(thread_id, &account.kind)
            .await?
            .or_else(|| {
                let keys: Vec<IdentityKey> = contact
                    .identities
                    .iter()
                    .map(|i| IdentityKey {
                        kind: i.kind.clone(),
                        value: i.value.clone(),
                    })
                    .collect();
                remote_of(&account.kind, &keys)
            })
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "no_address",
                    "the applicant has no address for this channel (no phone for SMS, no email for mail)",
                )
            })?;
        if account.kind == "sms" && tdb.opted_out(&remote).await? {
            return Err(ApiError::unprocessable(
                "opted_out",
                "the applicant replied STOP: no more SMS to this number until they reply START",
            ));
        }
        let user = tdb.user(who.user_id()).await?;
        let tenant = self.inner.db.tenant(tdb.tenant_id()).await?;
        let vars = [
            ("applicant.name", contact.name.as_deref().unwrap_or("")),
            ("vacancy", thread.vacancy.as_deref().unwrap_or("")),
            ("user.name", user.name.as_str()),
            ("company.name", tenant.name.as_str()),
        ];
        let mut text = match (&req.text, &req.template_id) {
            // Variables typed by hand are filled in too.
            (Some(t), None) => render_template(t, &vars),
            (None, Some(id)) => {
                let template = tdb.template(id, who.user_id()).await.map_err(|e| match e {
                    crate::store::StoreError::NotFound => ApiError::unprocessable(
                        "unknown_template",
                        "no such template for this user",
                    ),
                    other => other.into(),
                })?;
                render_template(&template.body, &vars)
            }
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    "give either text or template_id",
                ))
            }
        };
        let signature = match req.signature.as_deref() {
            None | Some("auto") => match user.signature.clone() {
                Some(s) => Some(s),
                None => tdb.company_signature().await?,
            },
            Some("none") => None,
            Some(edited) => Some(edited.to_string()),
        };
        if let Some(sig) = signature.filter(|s| !s.trim().is_empty()) {
            text = format!("{}\n\n{}", text.trim_end(), sig.trim());
        }
        if text.trim().is_empty() || text.chars().count() > 20_000 || !valid_text(&text) {
            return Err(ApiError::unprocessable(
                "invalid_text",
                "the reply must be 1 to 20000 characters long",
            ));
        }
        if account.kind == "sms" && !req.confirm_long {
            let limit = account
                .settings
                .get("max_segments")
                .and_then(|v| v.as_u64())
                .unwrap_or(DEFAULT_MAX_SEGMENTS as u64) as usize;
            let (encoding, segments) = jobers_channels::sms::segments(&text);
            if segments > limit {
                return Err(ApiError::unprocessable(
                    "sms_confirmation_needed",
                    format!(
                        "this SMS takes {segments} parts ({}), more than the {limit} allowed without confirmation: send again with confirm_long",
                        match encoding {
                            jobers_channels::sms::Encoding::Gsm7 => "GSM-7",
                            jobers_channels::sms::Encoding::Ucs2 => "UCS-2",
                        }
                    ),
                ));
            }
        }
        if req
            .subject
            .as_deref()
            .is_some_and(|t| !valid_text(t) || t.chars().count() > 500)
        {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "subject must be at most 500 characters, without NUL",
            ));
        }
        if let Some(c) = &req.client_message_id {
            if c.is_empty() || c.len() > 100 || !valid_text(c) {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    "client_message_id must be 1 to 100 characters long",
                ));
            }
        }
        let attachments = self.attachments(tdb, &req.attachments).await?;
        let change = tdb
            .add_thread_message(
                thread_id,
                NewThreadMessage {
                    direction: "out",
                    author: Some(who.user_id()),
                    account: Some(&account),
                    remote_address: Some(&remote),
                    subject: req.subject.as_deref(),
                    text: &text,
                    attachments: &attachments,
                    mentions: &[],
                    client_message_id: req.client_message_id.as_deref(),
                },
            )
            .await?;
        self.publish(tdb.tenant_id(), &change.events).await;
        self.inner.outbox.notify_one();
        Ok(change)
    }

    async fn attachments(&self, tdb: &TenantDb, ids: &[String]) -> ApiResult<Vec<Attachment>> {
        let mut out = Vec::new();
        for id in ids {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(ApiError::unprocessable(
                    "unknown_upload",
                    "no such upload in this workspace",
                ));
            }
            let u = tdb.upload(id).await.map_err(|e| match e {
                crate::store::StoreError::NotFound => {
                    ApiError::unprocessable("unknown_upload", "no such upload in this workspace")
                }
                other => other.into(),
            })?;
            out.push(Attachment {
                upload_id: u.id,
                file_name: u.file_name,
                content_type: u.content_type,
                size: u.size,
            });
        }
        Ok(out)
    }

    /// An internal note (staff only), with @mentions that notify.
    pub async fn note(
        &self,
        who: &Principal,
        tdb: &TenantDb,
        thread_id: &str,
        text: &str,
        mentions: &[String],
        client_message_id: Option<&str>,
    ) -> ApiResult<ThreadChange> {
        if text.trim().is_empty() || text.chars().count() > 20_000 || !valid_text(text) {
            return Err(ApiError::unprocessable(
                "invalid_text",
                "the note must be 1 to 20000 characters long",
            ));
        }
        for m in mentions {
            tdb.user(m).await.map_err(|_| {
                ApiError::unprocessable("unknown_user", "no such user in this workspace")
            })?;
        }
        let change = tdb
            .add_thread_message(
                thread_id,
                NewThreadMessage {
                    direction: "note",
                    author: Some(who.user_id()),
                    account: None,
                    remote_address: None,
                    subject: None,
                    text,
                    attachments: &[],
                    mentions,
                    client_message_id,
                },
            )
            .await?;
        self.publish(tdb.tenant_id(), &change.events).await;
        Ok(change)
    }

    /// "Retry" on a failed message.
    pub async fn retry(&self, tdb: &TenantDb, message_id: &str) -> ApiResult<ThreadMessage> {
        let (message, events) = tdb.retry_message(message_id).await?;
        self.publish(tdb.tenant_id(), &events).await;
        self.inner.outbox.notify_one();
        Ok(message)
    }

    /// Publishes the events of a change made elsewhere and lets the router know.
    pub async fn announce(&self, tenant: &str, change: &ThreadChange) {
        self.publish(tenant, &change.events).await;
        if change.thread.assignee_id.is_none() {
            self.route_tenant(tenant);
        }
    }

    pub async fn publish_events(&self, tenant: &str, events: &[crate::store::StoredEvent]) {
        self.publish(tenant, events).await;
    }
}

/// What an SMS that says only this means: `Some(true)` opt out, `Some(false)` opt back in.
pub fn opt_keyword(text: &str) -> Option<bool> {
    let word: String = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation())
        .to_lowercase();
    match word.as_str() {
        "stop"
        | "stopall"
        | "unsubscribe"
        | "cancel"
        | "end"
        | "quit"
        | "стоп"
        | "отписаться"
        | "отписка" => Some(true),
        "start" | "unstop" | "старт" | "подписаться" => Some(false),
        _ => None,
    }
}

/// The applicant's address for a channel kind among their identities.
fn remote_of(kind: &str, keys: &[IdentityKey]) -> Option<String> {
    let want: &[&str] = match kind {
        "sms" => &["phone"],
        "email" => &["email"],
        "board" => &["hh"],
        _ => &["telegram", "phone", "email", "hh"],
    };
    want.iter()
        .find_map(|w| keys.iter().find(|k| k.kind == *w))
        .map(|k| k.value.clone())
}

/// Fills `{{name}}` variables; unknown ones are left as they are.
pub fn render_template(body: &str, vars: &[(&str, &str)]) -> String {
    let mut out = body.to_string();
    for (name, value) in vars {
        for spelling in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
            out = out.replace(&spelling, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_html_is_defused() {
        let dirty = r#"<p onclick="x()">Hi <b>there</b></p><script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">x</a><a href="https://ok.example">ok</a><style>body{display:none}</style><iframe src="https://evil"></iframe>"#;
        let clean = sanitize_html(dirty);
        for bad in [
            "script",
            "onclick",
            "onerror",
            "javascript:",
            "<style",
            "<iframe",
        ] {
            assert!(!clean.contains(bad), "{bad} survived in {clean}");
        }
        assert!(clean.contains("<b>there</b>"));
        assert!(clean.contains(r#"href="https://ok.example""#));
        assert!(clean.contains("noopener"));
        let quoted = sanitize_html(r#"<div class="gmail_quote evil">q</div><p class="x">p</p>"#);
        assert!(quoted.contains(r#"class="gmail_quote""#), "{quoted}");
        assert!(
            !quoted.contains("evil") && !quoted.contains(r#"class="x""#),
            "{quoted}"
        );
    }

    #[test]
    fn html_becomes_text() {
        assert_eq!(
            html_to_text("<p>Hello &amp; welcome</p><p>Line<br>two</p>"),
            "Hello & welcome\nLine\ntwo"
        );
    }

    #[test]
    fn templates_fill_variables() {
        assert_eq!(
            render_template(
                "Здравствуйте, {{applicant.name}}! Вакансия {{ vacancy }}. {{unknown}}",
                &[("applicant.name", "Анна"), ("vacancy", "Курьер")]
            ),
            "Здравствуйте, Анна! Вакансия Курьер. {{unknown}}"
        );
    }

    #[test]
    fn stop_and_start_are_recognised_alone() {
        assert_eq!(opt_keyword(" STOP "), Some(true));
        assert_eq!(opt_keyword("Стоп."), Some(true));
        assert_eq!(opt_keyword("start"), Some(false));
        assert_eq!(opt_keyword("stop the interview please"), None);
        assert_eq!(opt_keyword("Здравствуйте"), None);
    }

    #[test]
    fn the_address_follows_the_channel() {
        let keys = vec![
            IdentityKey {
                kind: "email".into(),
                value: "a@b.c".into(),
            },
            IdentityKey {
                kind: "phone".into(),
                value: "+79161234567".into(),
            },
        ];
        assert_eq!(remote_of("sms", &keys).as_deref(), Some("+79161234567"));
        assert_eq!(remote_of("email", &keys).as_deref(), Some("a@b.c"));
        assert_eq!(remote_of("board", &keys), None);
    }
}
