//! Job boards in the hub (R-BOARD-1 … R-BOARD-8): one sync task per connected board
//! account (HeadHunter: hh.ru, rabota.by, hh.kz) imports vacancies, their states and every
//! response and invitation — the resume becomes a contact through [`Switch::ingest`], the
//! response a message in the applicant's thread and an application at its mapped stage —
//! then keeps polling as the backstop for webhooks, which name a negotiation or chat to
//! sync at once. The import is resumable: the position (vacancy, collection, page) is kept
//! in the account's `sync_state` after each page, and everything it stores is idempotent
//! (external ids), so a task killed halfway continues without duplicates.
//!
//! Tokens live sealed in the account's secret with the application's client secret; a
//! refreshed pair is stored before anything else (HeadHunter's refresh token works once).
//! A board that wants a new login turns the account `needs_relogin`; the task pauses where
//! it is and resumes when an admin connects again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobers_channels::boards::hh::{HhClient, HhConfig, Site, WEBHOOK_ACTIONS};
use jobers_channels::boards::{
    BoardError, BoardNegotiation, BoardResume, BoardTokens, BoardVacancy, ChatRole, HiddenField,
    WebhookPayload,
};
use jobers_channels::webhook::{InboundPayload, Sender};
use jobers_channels::ErrorClass;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::lease::{retry_after, Lease};
use super::Switch;
use crate::store::{
    Application, BoardMapping, BoardStateRef, BoardVacancyInput, ChannelAccount, HealthReport,
    NewAuditEntry, NewBoardApplication, StoreError, TenantDb, Vacancy,
};

/// The application's settings of a HeadHunter account (no secrets).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HhSettings {
    /// `hh.ru`, `rabota.by` or `hh.kz`.
    pub site: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub api_base: Option<String>,
    pub oauth_base: Option<String>,
    pub user_agent: Option<String>,
}

/// What a HeadHunter account keeps sealed: the application's client secret and the
/// employer's tokens once connected.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct HhSecret {
    pub client_secret: String,
    pub tokens: Option<BoardTokens>,
}

impl HhSecret {
    pub fn parse(raw: Option<&str>) -> HhSecret {
        match raw {
            None => HhSecret::default(),
            Some(r) => serde_json::from_str(r).unwrap_or_else(|_| HhSecret {
                client_secret: r.to_string(),
                tokens: None,
            }),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serialisable")
    }
}

/// Checks a HeadHunter account's settings.
pub fn hh_settings(settings: &serde_json::Value) -> Result<HhSettings, String> {
    let s: HhSettings = serde_json::from_value(settings.clone())
        .map_err(|e| format!("HeadHunter settings: {e}"))?;
    if Site::parse(&s.site).is_none() {
        return Err("HeadHunter settings: site must be hh.ru, rabota.by or hh.kz".into());
    }
    if s.client_id.trim().is_empty() || url::Url::parse(&s.redirect_uri).is_err() {
        return Err("HeadHunter settings: client_id and a redirect_uri URL are required".into());
    }
    for base in [&s.api_base, &s.oauth_base].into_iter().flatten() {
        if url::Url::parse(base).is_err() {
            return Err("HeadHunter settings: api_base and oauth_base must be URLs".into());
        }
    }
    Ok(s)
}

/// The HeadHunter client of an account and its sealed secret.
pub fn client_for(
    account: &ChannelAccount,
    timeout: Duration,
) -> Result<(HhClient, HhSecret), String> {
    let s = hh_settings(&account.settings)?;
    let secret = HhSecret::parse(account.secret.as_deref());
    let site = Site::parse(&s.site).expect("checked");
    let mut config = HhConfig::production(
        site,
        &s.client_id,
        &secret.client_secret,
        &s.redirect_uri,
        s.user_agent
            .as_deref()
            .unwrap_or("Jobers/1.0 (ops@jobers.example)"),
    );
    if let Some(a) = &s.api_base {
        config.api_base = a.trim_end_matches('/').to_string();
    }
    if let Some(o) = &s.oauth_base {
        config.oauth_base = o.trim_end_matches('/').to_string();
    }
    config.timeout = timeout;
    Ok((HhClient::new(config), secret))
}

/// The unguessable token in a board account's webhook URL (HeadHunter does not sign its
/// webhooks): an HMAC of the account id under the sealed secret's client secret.
pub fn hook_token(account: &ChannelAccount) -> String {
    let secret = HhSecret::parse(account.secret.as_deref());
    jobers_channels::sms::kannel::hook_token(&format!("hh:{}", secret.client_secret), &account.id)
}

pub fn hook_token_matches(account: &ChannelAccount, presented: &str) -> bool {
    let expected = hook_token(account);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), presented.as_bytes()).into()
}

/// Something a webhook asked to sync now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Negotiation(String),
    Chat(String),
}

/// The board tasks of this node: work a webhook asked for, and a wake-up per account.
#[derive(Default)]
pub struct BoardTasks {
    pending: Mutex<HashMap<String, Vec<Target>>>,
    wake: Mutex<HashMap<String, Arc<Notify>>>,
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl BoardTasks {
    fn notify_of(&self, account: &str) -> Arc<Notify> {
        self.wake
            .lock()
            .expect("not poisoned")
            .entry(account.to_string())
            .or_default()
            .clone()
    }

    /// Asks the account's task to sync `target` now.
    pub fn push(&self, account: &str, target: Target) {
        self.pending
            .lock()
            .expect("not poisoned")
            .entry(account.to_string())
            .or_default()
            .push(target);
        self.notify_of(account).notify_one();
    }

    /// Wakes the account's task (after a connect).
    pub fn wake(&self, account: &str) {
        self.notify_of(account).notify_one();
    }

    fn has_pending(&self, account: &str) -> bool {
        self.pending
            .lock()
            .expect("not poisoned")
            .get(account)
            .is_some_and(|t| !t.is_empty())
    }

    fn take(&self, account: &str) -> Vec<Target> {
        let mut all = self
            .pending
            .lock()
            .expect("not poisoned")
            .remove(account)
            .unwrap_or_default();
        all.dedup();
        all
    }

    /// Stops an account's task where it is (it is started again, from its stored
    /// position, by the supervisor). For tests of resumption and for operators.
    pub fn abort(&self, account: &str) -> bool {
        match self.running.lock().expect("not poisoned").remove(account) {
            Some(h) => {
                h.abort();
                true
            }
            None => false,
        }
    }
}

/// Where the full pass is (stored after every page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The first full pass (the import) has finished.
    #[serde(default)]
    pub initial_done: bool,
    /// The vacancy being read (board id); none: from the first.
    pub vacancy_id: Option<String>,
    #[serde(default)]
    pub collection: usize,
    #[serde(default)]
    pub page: u32,
}

/// Keeps one sync task per enabled HeadHunter account running.
pub(super) async fn supervise(switch: Switch) {
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        match switch.db().all_channel_accounts().await {
            Ok(accounts) => {
                tasks.retain(|_, h| !h.is_finished());
                for a in accounts.into_iter().filter(|a| a.provider == "hh") {
                    if !tasks.contains_key(&a.id) {
                        let id = a.id.clone();
                        let handle = tokio::spawn(run_account(switch.clone(), a));
                        switch
                            .boards()
                            .running
                            .lock()
                            .expect("not poisoned")
                            .insert(id.clone(), handle.abort_handle());
                        tasks.insert(id, handle);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "boards: listing accounts failed"),
        }
        if switch.pause(Duration::from_millis(500)).await {
            super::end_all(&mut tasks).await;
            return;
        }
    }
}

#[derive(Debug)]
enum SyncError {
    NotConnected,
    Board(BoardError),
    Other(String),
}

impl From<BoardError> for SyncError {
    fn from(e: BoardError) -> Self {
        SyncError::Board(e)
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Other(e.to_string())
    }
}

impl From<crate::error::ApiError> for SyncError {
    fn from(e: crate::error::ApiError) -> Self {
        SyncError::Other(e.to_string())
    }
}

async fn run_account(switch: Switch, account: ChannelAccount) {
    let tdb = switch.db().for_tenant(&account.tenant_id);
    let wake = switch.boards().notify_of(&account.id);
    // A wake-up stored before this task existed is covered by its first pass.
    let _ = tokio::time::timeout(Duration::ZERO, wake.notified()).await;
    // The access token the board refused for good: nothing is tried with it again.
    let mut dead_token: Option<String> = None;
    // The full pass is made by the node holding the account's lease; what a webhook asked
    // for is synced by the node it reached.
    let mut lease: Option<Lease> = None;
    loop {
        let account = match tdb.channel_account(&account.id).await {
            Ok(a) if a.enabled && a.provider == "hh" => a,
            _ => return,
        };
        let poll = Duration::from_millis(switch.config().board_poll_ms.max(50));
        let full = Lease::hold(&mut lease, &switch, &account.tenant_id, || {
            format!("board:{}", account.id)
        })
        .await;
        let mut wait = if full {
            poll
        } else {
            retry_after(&switch).min(poll)
        };
        if !full && !switch.boards().has_pending(&account.id) {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let token = HhSecret::parse(account.secret.as_deref())
            .tokens
            .map(|t| t.access_token);
        if token.is_some() && token == dead_token {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        }
        match sync_once(&switch, &tdb, &account, full).await {
            Ok(()) => {
                if account.health != "ok" {
                    super::outbox::health(
                        &switch,
                        &account.tenant_id,
                        &account.id,
                        HealthReport::OK,
                    )
                    .await;
                }
            }
            Err(SyncError::NotConnected) => {}
            Err(SyncError::Board(e)) => {
                let (health, class) = if e.needs_relogin() {
                    dead_token = token.clone();
                    ("needs_relogin", ErrorClass::AuthFailure)
                } else {
                    let class = e.class().unwrap_or(ErrorClass::ServiceUnreachable);
                    if let Some(after) = e.retry_after() {
                        wait = after.max(Duration::from_millis(50));
                    }
                    (
                        if class == ErrorClass::NoNetwork {
                            "down"
                        } else {
                            "degraded"
                        },
                        class,
                    )
                };
                let next = (health != "needs_relogin")
                    .then(|| crate::store::now_ms() + wait.as_millis() as i64);
                super::outbox::health(
                    &switch,
                    &account.tenant_id,
                    &account.id,
                    HealthReport {
                        health,
                        class: Some(class.as_str()),
                        error: Some(&e.to_string()),
                        next_retry_at: next,
                    },
                )
                .await;
            }
            Err(SyncError::Other(e)) => {
                tracing::warn!(error = %e, account = %account.id, "board sync failed");
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The tokens to work with: refreshed first when expired, and then stored at once.
async fn fresh_tokens(
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    secret: &mut HhSecret,
) -> Result<BoardTokens, SyncError> {
    let Some(mut tokens) = secret.tokens.clone() else {
        return Err(SyncError::NotConnected);
    };
    match client.ensure_fresh(&mut tokens).await {
        Ok(true) => {
            secret.tokens = Some(tokens.clone());
            tdb.set_channel_secret(&account.id, &secret.to_json())
                .await?;
            Ok(tokens)
        }
        Ok(false) => Ok(tokens),
        // Another worker may have refreshed them meanwhile: use what is stored now.
        Err(e) if e.needs_relogin() => match stored_newer(tdb, account, &tokens, secret).await? {
            Some(t) => Ok(t),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// The tokens stored for the account when another worker refreshed them since `tokens`
/// were read (then `secret` takes them too).
async fn stored_newer(
    tdb: &TenantDb,
    account: &ChannelAccount,
    tokens: &BoardTokens,
    secret: &mut HhSecret,
) -> Result<Option<BoardTokens>, SyncError> {
    let stored = tdb.channel_account(&account.id).await?;
    let now = HhSecret::parse(stored.secret.as_deref());
    match now.tokens.clone() {
        Some(t) if t != *tokens => {
            *secret = now;
            Ok(Some(t))
        }
        _ => Ok(None),
    }
}

/// The board said the access token expired (clocks differ, or it was cut short): refresh
/// now, store the new pair at once.
async fn refresh_now(
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    secret: &mut HhSecret,
) -> Result<BoardTokens, SyncError> {
    let Some(tokens) = secret.tokens.clone() else {
        return Err(SyncError::NotConnected);
    };
    match client.refresh(&tokens).await {
        Ok(new) => {
            secret.tokens = Some(new.clone());
            tdb.set_channel_secret(&account.id, &secret.to_json())
                .await?;
            Ok(new)
        }
        // Another worker may have refreshed them meanwhile: use what is stored now.
        Err(e) if e.needs_relogin() => match stored_newer(tdb, account, &tokens, secret).await? {
            Some(t) => Ok(t),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

fn expired(e: &SyncError) -> bool {
    matches!(e, SyncError::Board(BoardError::TokenExpired))
}

fn page_size(switch: &Switch) -> u32 {
    (switch.config().board_page_size as u32).clamp(1, 100)
}

/// What webhooks asked for, then (`full`) the full pass.
async fn sync_once(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    full: bool,
) -> Result<(), SyncError> {
    let timeout = Duration::from_secs(switch.config().send_timeout_secs);
    let (client, mut secret) = client_for(account, timeout).map_err(SyncError::Other)?;
    let tokens = fresh_tokens(tdb, account, &client, &mut secret).await?;
    match sync_with(switch, tdb, account, &client, &tokens.access_token, full).await {
        Err(e) if expired(&e) => {
            let tokens = refresh_now(tdb, account, &client, &mut secret).await?;
            sync_with(switch, tdb, account, &client, &tokens.access_token, full).await
        }
        other => other,
    }
}

async fn sync_with(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    full: bool,
) -> Result<(), SyncError> {
    let client = client.clone();
    let who = match tdb.board_connection(&account.id).await? {
        Some((who, _)) if !who.is_null() => who,
        _ => {
            let me = client.me(token).await?;
            let who = serde_json::to_value(&me).expect("json");
            tdb.set_board_connection(&account.id, Some(&who), None)
                .await?;
            who
        }
    };
    let _ = who;
    let mapping = tdb.board_mapping(&account.id).await?;
    // What webhooks asked for, first.
    for target in switch.boards().take(&account.id) {
        let done = match &target {
            Target::Negotiation(id) => {
                sync_negotiation_by_id(switch, tdb, account, &client, token, &mapping, id).await
            }
            Target::Chat(chat) => sync_chat_by_id(switch, tdb, account, &client, token, chat).await,
        };
        if let Err(e) = done {
            // Not lost: the full pass below (or the next one) covers it.
            if matches!(e, SyncError::Board(ref b) if b.needs_relogin() || b.is_retryable()) {
                return Err(e);
            }
            tracing::warn!(error = ?e, account = %account.id, "board: a webhook's sync failed");
        }
    }
    if !full {
        return Ok(());
    }
    full_pass(switch, tdb, account, &client, token, &mapping).await
}

async fn all_vacancies(
    client: &HhClient,
    token: &str,
    who: &jobers_channels::boards::BoardAccount,
) -> Result<Vec<BoardVacancy>, BoardError> {
    let mut out = Vec::new();
    let mut page = 0;
    loop {
        let p = client.active_vacancies(token, who, page, 100).await?;
        out.extend(p.items.clone());
        match p.next_page() {
            Some(n) => page = n,
            None => break,
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

async fn board_account(
    tdb: &TenantDb,
    account: &ChannelAccount,
) -> Result<jobers_channels::boards::BoardAccount, SyncError> {
    let (who, _) = tdb
        .board_connection(&account.id)
        .await?
        .ok_or(SyncError::NotConnected)?;
    serde_json::from_value(who).map_err(|e| SyncError::Other(e.to_string()))
}

async fn store_cursor(
    tdb: &TenantDb,
    account: &ChannelAccount,
    c: &Cursor,
) -> Result<(), SyncError> {
    tdb.set_sync_state(&account.id, &serde_json::to_string(c).expect("json"))
        .await?;
    Ok(())
}

/// Stores a vacancy and its states as the board reports them.
async fn store_vacancy(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    v: &BoardVacancy,
    pipeline: Option<&jobers_channels::boards::VacancyPipeline>,
) -> Result<Vacancy, SyncError> {
    let states: Vec<BoardStateRef> = pipeline
        .map(|p| {
            p.states
                .iter()
                .map(|s| BoardStateRef {
                    id: s.id.clone(),
                    name: s.name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let (vacancy, events) = tdb
        .upsert_board_vacancy(BoardVacancyInput {
            provider: "hh",
            board_account_id: &account.id,
            board_vacancy_id: &v.id,
            name: &v.name,
            city: v.city.as_deref(),
            url: v.alternate_url.as_deref(),
            states: &states,
            total: pipeline.and_then(|p| p.total()).map(|t| t as i64),
        })
        .await?;
    switch.publish_events(&account.tenant_id, &events).await;
    Ok(vacancy)
}

async fn full_pass(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    mapping: &BoardMapping,
) -> Result<(), SyncError> {
    let who = board_account(tdb, account).await?;
    let mut cursor: Cursor = account
        .sync_state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let vacancies = all_vacancies(client, token, &who).await?;
    let per_page = page_size(switch);
    for v in &vacancies {
        if cursor
            .vacancy_id
            .as_deref()
            .is_some_and(|c| v.id.as_str() < c)
        {
            continue;
        }
        let resuming = cursor.vacancy_id.as_deref() == Some(v.id.as_str());
        let pipeline = client.vacancy_pipeline(token, &v.id).await?;
        let vacancy = store_vacancy(switch, tdb, account, v, Some(&pipeline)).await?;
        let order: Vec<String> = pipeline.states.iter().map(|s| s.id.clone()).collect();
        for (ci, c) in pipeline.collections.iter().enumerate() {
            if resuming && ci < cursor.collection {
                continue;
            }
            let mut page = if resuming && ci == cursor.collection {
                cursor.page
            } else {
                0
            };
            if c.total == Some(0) && page == 0 {
                continue;
            }
            loop {
                let p = client.negotiations(token, c, page, per_page).await?;
                for n in &p.items {
                    take_negotiation(
                        switch, tdb, account, client, token, mapping, &vacancy, &order, n,
                    )
                    .await?;
                }
                progress(switch, tdb, account, cursor.initial_done).await?;
                match p.next_page() {
                    Some(next) => {
                        page = next;
                        cursor = Cursor {
                            initial_done: cursor.initial_done,
                            vacancy_id: Some(v.id.clone()),
                            collection: ci,
                            page,
                        };
                        store_cursor(tdb, account, &cursor).await?;
                    }
                    None => break,
                }
            }
            cursor = Cursor {
                initial_done: cursor.initial_done,
                vacancy_id: Some(v.id.clone()),
                collection: ci + 1,
                page: 0,
            };
            store_cursor(tdb, account, &cursor).await?;
        }
    }
    let done = Cursor {
        initial_done: true,
        vacancy_id: None,
        collection: 0,
        page: 0,
    };
    store_cursor(tdb, account, &done).await?;
    progress(switch, tdb, account, true).await?;
    Ok(())
}

/// The import's counters as an event (`board.import`).
async fn progress(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    initial_done: bool,
) -> Result<(), SyncError> {
    let c = tdb.board_counters(&account.id).await?;
    let payload = json!({
        "account_id": account.id,
        "initial_done": initial_done,
        "responses_loaded": c.responses_loaded,
        "applications_created": c.applications_created,
        "differences": c.differences.len(),
    });
    let events = tdb.board_progress_event(&payload).await?;
    switch.publish_events(&account.tenant_id, &events).await;
    Ok(())
}

async fn sync_negotiation_by_id(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    mapping: &BoardMapping,
    id: &str,
) -> Result<(), SyncError> {
    let n = client.negotiation(token, id).await?;
    let vacancy = match tdb.board_vacancy(&account.id, &n.vacancy_id).await? {
        Some(v) => v,
        None => {
            let pipeline = client.vacancy_pipeline(token, &n.vacancy_id).await?;
            let bv = BoardVacancy {
                id: n.vacancy_id.clone(),
                name: n
                    .vacancy_name
                    .clone()
                    .unwrap_or_else(|| n.vacancy_id.clone()),
                city: None,
                manager_id: None,
                alternate_url: None,
                created_at: None,
                published_at: None,
                responses: None,
                unread_responses: None,
            };
            store_vacancy(switch, tdb, account, &bv, Some(&pipeline)).await?
        }
    };
    let order: Vec<String> = vacancy.board_states.iter().map(|s| s.id.clone()).collect();
    take_negotiation(
        switch, tdb, account, client, token, mapping, &vacancy, &order, &n,
    )
    .await
}

async fn sync_chat_by_id(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    chat_id: &str,
) -> Result<(), SyncError> {
    let app = tdb
        .applications_by_chat(&account.id, chat_id)
        .await?
        .ok_or_else(|| SyncError::Other(format!("no application has chat {chat_id}")))?;
    sync_chat(switch, account, client, token, &app).await
}

fn card_of(resume: &BoardResume, n: &BoardNegotiation) -> serde_json::Value {
    let shown = |field: HiddenField, value: Option<String>| -> serde_json::Value {
        match value {
            Some(v) => json!(v),
            None if resume.is_hidden(field) => json!(field.placeholder(&resume.id)),
            None => serde_json::Value::Null,
        }
    };
    json!({
        "name": shown(HiddenField::Name, resume.full_name()),
        "first_name": resume.first_name,
        "last_name": resume.last_name,
        "middle_name": resume.middle_name,
        "phone": shown(HiddenField::Phones, resume.phone.clone()),
        "email": shown(HiddenField::Email, resume.email.clone()),
        "city": resume.city,
        "title": resume.title,
        "hidden": resume.hidden.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
        "resume_url": resume.alternate_url,
        "board_state": n.state.name,
    })
}

#[allow(clippy::too_many_arguments)]
async fn take_negotiation(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    mapping: &BoardMapping,
    vacancy: &Vacancy,
    order: &[String],
    n: &BoardNegotiation,
) -> Result<(), SyncError> {
    if let Some(app) = tdb.application_by_negotiation(&account.id, &n.id).await? {
        if app.board_state_id.as_deref() != Some(n.state.id.as_str()) {
            board_state_changed(switch, tdb, account, mapping, order, &app, n).await?;
        }
        return sync_chat(switch, account, client, token, &app).await;
    }
    match import_negotiation(switch, tdb, account, client, token, mapping, vacancy, n).await {
        Ok(app) => sync_chat(switch, account, client, token, &app).await,
        Err(SyncError::Board(e)) if !e.needs_relogin() && !e.is_retryable() => {
            tdb.record_board_failure(&account.id, &n.id, &n.vacancy_id, &e.to_string())
                .await?;
            Ok(())
        }
        Err(SyncError::Other(e)) => {
            tdb.record_board_failure(&account.id, &n.id, &n.vacancy_id, &e)
                .await?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The stage of a board state by the account's mapping.
fn stage_of(mapping: &BoardMapping, state: &str) -> Option<String> {
    mapping.stage_for(state)
}

#[allow(clippy::too_many_arguments)]
async fn import_negotiation(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    mapping: &BoardMapping,
    vacancy: &Vacancy,
    n: &BoardNegotiation,
) -> Result<Application, SyncError> {
    let resume_ref = n
        .resume_url
        .clone()
        .or_else(|| n.resume_id.clone())
        .ok_or_else(|| SyncError::Other("the response carries no resume".into()))?;
    let resume = client.resume(token, &resume_ref).await?;
    let card = card_of(&resume, n);
    let invitation = n.state.id != "response";
    // The timeline speaks Russian like the board; a hidden field says so in Russian (the
    // card carries the placeholder the web client translates).
    let name = resume
        .full_name()
        .unwrap_or_else(|| format!("скрыто соискателем (резюме {})", resume.id));
    let mut text = format!(
        "{} на вакансию «{}»\nИмя: {}",
        if invitation {
            "Приглашение"
        } else {
            "Отклик"
        },
        vacancy.name,
        name
    );
    for (label, value, hidden) in [
        ("Город", resume.city.clone(), None),
        ("Телефон", resume.phone.clone(), Some(HiddenField::Phones)),
        ("Email", resume.email.clone(), Some(HiddenField::Email)),
    ] {
        match value {
            Some(v) => text.push_str(&format!("\n{label}: {v}")),
            None if hidden.is_some_and(|h| resume.is_hidden(h)) => {
                text.push_str(&format!("\n{label}: скрыт соискателем"))
            }
            None => {}
        }
    }
    if let Some(url) = &resume.alternate_url {
        text.push_str(&format!("\nРезюме: {url}"));
    }
    let mut sender = Sender {
        name: resume.full_name(),
        hh: Some(resume.id.clone()),
        phone: resume.phone.clone(),
        email: resume.email.clone(),
        ..Default::default()
    };
    let payload = |sender: Sender| InboundPayload {
        id: format!("hh-negotiation:{}", n.id),
        from: sender,
        text: text.clone(),
        html: None,
        subject: None,
        refs: vec![format!("hh-negotiation:{}", n.id)],
        vacancy: Some(vacancy.name.clone()),
        attachments: Vec::new(),
        auto_submitted: false,
    };
    let options = || super::IngestOptions {
        display_text: None,
        assign_to: mapping.responsible_user_id.clone(),
    };
    let ingested = match switch
        .ingest_with(account, payload(sender.clone()), options())
        .await
    {
        Ok(r) => r,
        // A phone or email Jobers cannot read: the board id alone identifies the applicant.
        Err(crate::error::ApiError::Unprocessable { .. }) => {
            sender.phone = None;
            sender.email = None;
            switch
                .ingest_with(account, payload(sender), options())
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let thread = tdb.thread(&ingested.thread_id).await?;
    let resume_upload = match &resume.pdf_url {
        Some(url) => store_pdf(switch, tdb, account, client, token, url, &resume.id).await,
        None => None,
    };
    let state = BoardStateRef {
        id: n.state.id.clone(),
        name: n.state.name.clone(),
    };
    let stage = stage_of(mapping, &n.state.id);
    let (app, events) = tdb
        .insert_board_application(NewBoardApplication {
            contact_id: &thread.contact_id,
            vacancy_id: &vacancy.id,
            thread_id: &thread.id,
            stage_id: stage.as_deref(),
            provider: "hh",
            board_account_id: &account.id,
            negotiation_id: &n.id,
            board_vacancy_id: &n.vacancy_id,
            state: &state,
            chat_id: n.chat_id.as_deref(),
            resume_id: Some(&resume.id),
            board_created_at: n.created_at.as_deref(),
            board_updated_at: n.updated_at.as_deref(),
            resume_upload_id: resume_upload.as_deref(),
            card: &card,
        })
        .await?;
    switch.publish_events(&account.tenant_id, &events).await;
    Ok(app)
}

/// Downloads the resume PDF into the blob store (an upload); `None` when it fails.
async fn store_pdf(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    url: &str,
    resume_id: &str,
) -> Option<String> {
    let bytes = match client.download(token, url).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, account = %account.id, "board: resume PDF not downloaded");
            return None;
        }
    };
    let id = crate::store::new_id();
    switch
        .blobs()
        .put(tdb.tenant_id(), &id, &bytes)
        .await
        .ok()?;
    let sha = hex::encode(Sha256::digest(&bytes));
    tdb.create_upload(
        &id,
        &format!("channel:{}", account.id),
        &format!("resume-{resume_id}.pdf"),
        "application/pdf",
        bytes.len() as i64,
        &sha,
    )
    .await
    .ok()
    .map(|u| u.id)
}

/// Applicant messages of the board chat into the thread (each once, by its id).
async fn sync_chat(
    switch: &Switch,
    account: &ChannelAccount,
    client: &HhClient,
    token: &str,
    app: &Application,
) -> Result<(), SyncError> {
    let (Some(chat), Some(resume)) = (&app.board_chat_id, &app.board_resume_id) else {
        return Ok(());
    };
    let mut page = 0;
    loop {
        let p = client.chat_messages(token, chat, page, 100).await?;
        for m in p.items.iter().filter(|m| m.role == ChatRole::Applicant) {
            let Some(text) = m.text.as_deref().filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            let payload = InboundPayload {
                id: format!("hh-chat:{}", m.id),
                from: Sender {
                    hh: Some(resume.clone()),
                    ..Default::default()
                },
                text: text.to_string(),
                html: None,
                subject: None,
                refs: app
                    .board_negotiation_id
                    .iter()
                    .map(|n| format!("hh-negotiation:{n}"))
                    .collect(),
                vacancy: Some(app.vacancy_name.clone()),
                attachments: Vec::new(),
                auto_submitted: false,
            };
            switch.ingest(account, payload).await?;
        }
        match p.next_page() {
            Some(n) => page = n,
            None => return Ok(()),
        }
    }
}

fn board_time_ms(s: Option<&str>) -> Option<i64> {
    let s = s?;
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The board moved an application. It moves in Jobers too — unless Jobers moved it to a
/// stage the board does not have yet more recently than the board's change (then Jobers'
/// stage stays); either way the conflict is logged.
async fn board_state_changed(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    mapping: &BoardMapping,
    order: &[String],
    app: &Application,
    n: &BoardNegotiation,
) -> Result<(), SyncError> {
    let state = BoardStateRef {
        id: n.state.id.clone(),
        name: n.state.name.clone(),
    };
    let target = stage_of(mapping, &n.state.id);
    // Jobers' stage was not pushed to the board (it has no state there, or the push
    // failed): a conflict, decided by time.
    let jobers_pending = app
        .stage_id
        .as_deref()
        .is_some_and(|s| mapping.state_for(s, order).as_deref() != app.board_state_id.as_deref());
    let board_at = board_time_ms(n.updated_at.as_deref()).unwrap_or_else(crate::store::now_ms);
    let jobers_at = app.stage_changed_at.timestamp_millis();
    let board_wins = !jobers_pending || board_at >= jobers_at;
    let new_stage = if board_wins { target.clone() } else { None };
    let (updated, events) = tdb
        .update_application(
            &app.id,
            new_stage.as_deref(),
            false,
            Some((&state, n.updated_at.as_deref())),
        )
        .await?;
    switch.publish_events(&account.tenant_id, &events).await;
    if jobers_pending {
        tdb.audit(NewAuditEntry {
            actor_user_id: None,
            action: "application_stage_conflict",
            target_type: Some("application"),
            target_id: Some(&app.id),
            source: Some("board"),
            details: json!({
                "board_state": n.state.id,
                "board_changed_at": n.updated_at,
                "jobers_stage": app.stage_id,
                "jobers_changed_at": app.stage_changed_at,
                "winner": if board_wins { "board" } else { "jobers" },
                "stage_now": updated.stage_id,
            }),
        })
        .await?;
    }
    Ok(())
}

/// A webhook of a board account: deduplicated on the event id, then the negotiation or
/// chat it names is synced by the account's task. `false`: seen before.
pub async fn take_webhook(
    switch: &Switch,
    account: &ChannelAccount,
    body: &[u8],
) -> Result<bool, String> {
    let event = jobers_channels::boards::hh::parse_webhook(body)?;
    let tdb = switch.db().for_tenant(&account.tenant_id);
    if !tdb
        .take_board_event(&account.id, &event.id)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(false);
    }
    match event.payload {
        WebhookPayload::NewNegotiation { negotiation_id, .. }
        | WebhookPayload::StateChanged { negotiation_id, .. } => switch
            .boards()
            .push(&account.id, Target::Negotiation(negotiation_id)),
        WebhookPayload::ChatMessage { chat_id, .. } => {
            switch.boards().push(&account.id, Target::Chat(chat_id))
        }
        WebhookPayload::Other { .. } => {}
    }
    Ok(true)
}

/// A recruiter moved an application to `stage_id`. When the stage maps to a board state
/// other than the current one, the board's state changes first (with the message where
/// the board requires one); a refusal leaves the application where it was.
pub async fn move_application(
    switch: &Switch,
    tdb: &TenantDb,
    app: &Application,
    stage_id: &str,
    message: Option<&str>,
) -> Result<Application, crate::error::ApiError> {
    use crate::error::ApiError;
    let mut board_state: Option<(BoardStateRef, Option<String>)> = None;
    if let (Some(account_id), Some(negotiation_id)) =
        (&app.board_account_id, &app.board_negotiation_id)
    {
        let account = tdb.channel_account(account_id).await?;
        let mapping = tdb.board_mapping(account_id).await?;
        let vacancy = tdb.vacancy(&app.vacancy_id).await?;
        let order: Vec<String> = vacancy.board_states.iter().map(|s| s.id.clone()).collect();
        if let Some(state) = mapping.state_for(stage_id, &order) {
            if app.board_state_id.as_deref() != Some(state.as_str()) {
                let timeout = Duration::from_secs(switch.config().send_timeout_secs);
                let (client, mut secret) = client_for(&account, timeout)
                    .map_err(|m| ApiError::unprocessable("board_not_configured", m))?;
                let tokens = match fresh_tokens(tdb, &account, &client, &mut secret).await {
                    Ok(t) => t,
                    Err(SyncError::NotConnected) => {
                        return Err(ApiError::unprocessable(
                            "board_not_connected",
                            "the board account is not connected",
                        ))
                    }
                    Err(SyncError::Board(e)) => return Err(board_api_error(e)),
                    Err(SyncError::Other(e)) => return Err(ApiError::Internal(anyhow::anyhow!(e))),
                };
                let moved = match move_on_board(
                    &client,
                    &tokens.access_token,
                    negotiation_id,
                    &state,
                    message,
                )
                .await
                {
                    Err(BoardError::TokenExpired) => {
                        let tokens = match refresh_now(tdb, &account, &client, &mut secret).await {
                            Ok(t) => t,
                            Err(SyncError::Board(e)) => return Err(board_api_error(e)),
                            Err(e) => return Err(ApiError::Internal(anyhow::anyhow!("{e:?}"))),
                        };
                        move_on_board(
                            &client,
                            &tokens.access_token,
                            negotiation_id,
                            &state,
                            message,
                        )
                        .await
                    }
                    other => other,
                };
                moved.map_err(board_api_error)?;
                let name = vacancy
                    .board_states
                    .iter()
                    .find(|s| s.id == state)
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| state.clone());
                board_state = Some((BoardStateRef { id: state, name }, None));
            }
        }
    }
    let (updated, events) = tdb
        .update_application(
            &app.id,
            Some(stage_id),
            true,
            board_state.as_ref().map(|(s, at)| (s, at.as_deref())),
        )
        .await?;
    switch.publish_events(tdb.tenant_id(), &events).await;
    Ok(updated)
}

/// Moves a negotiation to a state on the board (nothing when it is there already).
async fn move_on_board(
    client: &HhClient,
    token: &str,
    negotiation_id: &str,
    state: &str,
    message: Option<&str>,
) -> Result<(), BoardError> {
    let n = client.negotiation(token, negotiation_id).await?;
    if n.state.id != state {
        client.change_state(token, &n, state, message).await?;
    }
    Ok(())
}

/// A board's refusal as the API's answer.
pub fn board_api_error(e: BoardError) -> crate::error::ApiError {
    use crate::error::ApiError;
    match e {
        BoardError::NeedsRelogin { reason } => ApiError::unprocessable(
            "board_needs_relogin",
            format!("the board needs a new login: {reason}"),
        ),
        BoardError::RetryLater { reason, .. } => ApiError::Unavailable {
            code: "board_unavailable",
            message: reason,
        },
        BoardError::ChatLimit { value } => ApiError::unprocessable(
            "board_chat_limit",
            format!("the board refuses more messages: {value}"),
        ),
        BoardError::TokenExpired => ApiError::Unavailable {
            code: "board_unavailable",
            message: "the board's token expired; retry".into(),
        },
        e @ BoardError::Permanent { .. } => {
            let code = match e.board_error() {
                Some((_, Some("empty_message"))) => "board_message_required",
                Some((_, Some("wrong_state"))) => "board_wrong_state",
                _ => "board_refused",
            };
            ApiError::unprocessable(code, e.to_string())
        }
    }
}

/// Sends a reply through the board chat of the thread's application: the message id is
/// the idempotency key, so a repeat after a crash is the same message on the board.
pub(super) async fn send_chat(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    thread_id: &str,
    message_id: &str,
    text: &str,
) -> Result<String, jobers_channels::SendError> {
    use jobers_channels::SendError;
    let chat = tdb
        .board_chat_of_thread(thread_id, &account.id)
        .await
        .map_err(|e| SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: e.to_string(),
        })?
        .ok_or_else(|| SendError::Permanent {
            reason: "the applicant has no chat on this board".into(),
        })?;
    let timeout = Duration::from_secs(switch.config().send_timeout_secs);
    let (client, mut secret) =
        client_for(account, timeout).map_err(|m| SendError::Permanent { reason: m })?;
    let tokens = match fresh_tokens(tdb, account, &client, &mut secret).await {
        Ok(t) => t,
        Err(SyncError::NotConnected) => {
            return Err(SendError::Auth {
                message: "the board account is not connected".into(),
            })
        }
        Err(SyncError::Board(e)) => return Err(send_error(e)),
        Err(SyncError::Other(m)) => {
            return Err(SendError::Retryable {
                class: ErrorClass::ServiceUnreachable,
                message: m,
            })
        }
    };
    let sent = match client
        .send_chat_message(&tokens.access_token, &chat, text, message_id)
        .await
    {
        Err(BoardError::TokenExpired) => {
            let tokens = match refresh_now(tdb, account, &client, &mut secret).await {
                Ok(t) => t,
                Err(SyncError::Board(e)) => return Err(send_error(e)),
                Err(e) => {
                    return Err(SendError::Retryable {
                        class: ErrorClass::AuthFailure,
                        message: format!("{e:?}"),
                    })
                }
            };
            // The same idempotency key: never a second message on the board.
            client
                .send_chat_message(&tokens.access_token, &chat, text, message_id)
                .await
        }
        other => other,
    };
    sent.map(|m| m.id).map_err(send_error)
}

fn send_error(e: BoardError) -> jobers_channels::SendError {
    use jobers_channels::SendError;
    match e {
        BoardError::NeedsRelogin { reason } => SendError::Auth {
            message: format!("the board needs a new login: {reason}"),
        },
        BoardError::RetryLater { class, reason, .. } => SendError::Retryable {
            class,
            message: reason,
        },
        BoardError::TokenExpired => SendError::Retryable {
            class: ErrorClass::AuthFailure,
            message: "the access token expired".into(),
        },
        other => SendError::Permanent {
            reason: other.to_string(),
        },
    }
}

/// After a connect: who is connected (admin or manager), the webhook subscription, and
/// the account's task woken to start (or resume) the import.
pub async fn connected(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
    client: &HhClient,
    tokens: &BoardTokens,
) -> Result<serde_json::Value, BoardError> {
    let me = client.me(&tokens.access_token).await?;
    let who = serde_json::to_value(&me).expect("json");
    let url = format!(
        "{}/api/v1/hooks/{}/hh?token={}",
        switch.public_url(),
        account.id,
        hook_token(account)
    );
    let subscription = match tdb.board_connection(&account.id).await {
        Ok(Some((_, Some(id)))) => client
            .update_subscription(&tokens.access_token, &id, &url, WEBHOOK_ACTIONS)
            .await
            .map(|_| id)
            .ok(),
        _ => None,
    };
    let subscription = match subscription {
        Some(s) => Some(s),
        None => client
            .subscribe(&tokens.access_token, &url, WEBHOOK_ACTIONS)
            .await
            .map_err(|e| tracing::warn!(error = %e, "board: webhook subscription failed"))
            .ok(),
    };
    let _ = tdb
        .set_board_connection(&account.id, Some(&who), subscription.as_deref())
        .await;
    super::outbox::health(switch, &account.tenant_id, &account.id, HealthReport::OK).await;
    switch.boards().wake(&account.id);
    Ok(who)
}

/// Responses on the board per vacancy (board id, name, the collections' total), asked now.
pub async fn board_totals(
    switch: &Switch,
    tdb: &TenantDb,
    account: &ChannelAccount,
) -> Result<Vec<(String, String, i64)>, String> {
    let timeout = Duration::from_secs(switch.config().send_timeout_secs);
    let (client, mut secret) = client_for(account, timeout)?;
    let tokens = fresh_tokens(tdb, account, &client, &mut secret)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let who = board_account(tdb, account)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let vacancies = all_vacancies(&client, &tokens.access_token, &who)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for v in vacancies {
        let p = client
            .vacancy_pipeline(&tokens.access_token, &v.id)
            .await
            .map_err(|e| e.to_string())?;
        out.push((v.id, v.name, p.total().unwrap_or(0) as i64));
    }
    Ok(out)
}
