//! An in-process HeadHunter for the demo and the tests. It follows the published API for
//! what Jobers uses: the OAuth authorize page (auto-approving a configured employer user)
//! and token endpoint with HeadHunter's refresh rules and error answers, `/me`, managers and
//! manager accounts, active vacancies, negotiations with per-vacancy collections, items with
//! actions and state changes, resumes with hidden fields and a PDF, `/common/chats`
//! messages with idempotency and the in-a-row limit, webhook subscriptions and deliveries
//! (unsigned, as HeadHunter's, retried with growing intervals until the receiver answers
//! 2xx or 409), `HH-User-Agent` enforcement, and 429 / 5xx on demand.
//!
//! The employer has an admin (`ADMIN_USER`, manager `ADMIN_MANAGER`) and a manager
//! (`MANAGER_USER`, manager `MANAGER_MANAGER`) who sees only its own vacancies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::pkce_challenge;

pub const EMPLOYER_ID: &str = "4100";
pub const EMPLOYER_NAME: &str = "ООО «Ромашка»";
pub const ADMIN_USER: &str = "u-admin";
pub const ADMIN_MANAGER: &str = "7001";
pub const MANAGER_USER: &str = "u-manager";
pub const MANAGER_MANAGER: &str = "7002";

/// The employer states of every simulated vacancy, in funnel order, with whether moving to
/// it requires a message to the applicant.
pub const STATES: &[(&str, &str, bool)] = &[
    ("response", "Отклик", false),
    ("consider", "Подумать", false),
    ("phone_interview", "Телефонное интервью", true),
    ("assessment", "Оценка", false),
    ("interview", "Собеседование", true),
    ("offer", "Предложение о работе", true),
    ("hired", "Выход на работу", false),
    ("discard_by_employer", "Отказ", false),
];

/// Messages the employer may send in a row before the applicant must answer.
pub const IN_A_ROW_LIMIT: usize = 5;

/// An applicant who responds to a vacancy.
#[derive(Debug, Clone, Default)]
pub struct Applicant {
    pub first_name: String,
    pub last_name: String,
    pub middle_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub city: String,
    pub title: String,
    /// HeadHunter's `hidden_fields` ids: `names_and_photo`, `phones`, `email`,
    /// `other_contacts`, `experience`.
    pub hidden: Vec<String>,
}

/// What a new response created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponse {
    pub negotiation_id: String,
    pub resume_id: String,
    pub chat_id: String,
}

/// One attempt to deliver a webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub action_type: String,
    pub attempt: u32,
    /// The receiver's HTTP status (0: no answer).
    pub status: u16,
}

struct User {
    id: String,
    manager_id: String,
    first_name: String,
    last_name: String,
    email: String,
    admin: bool,
    password_invalidated: bool,
}

struct Code {
    user: String,
    redirect_uri: String,
    challenge: Option<String>,
    used: bool,
}

struct Access {
    user: String,
    expires_at: Instant,
    dead: Option<&'static str>,
}

struct Refresh {
    user: String,
    access: String,
    used: bool,
    dead: Option<&'static str>,
}

struct Vacancy {
    id: String,
    name: String,
    city: String,
    manager_id: String,
    seq: u64,
}

struct Negotiation {
    id: String,
    vacancy_id: String,
    resume_id: String,
    chat_id: String,
    state: String,
    read: bool,
    created: u64,
    updated: u64,
}

struct Message {
    id: String,
    text: String,
    role: &'static str,
    seq: u64,
}

#[derive(Default)]
struct Chat {
    messages: Vec<Message>,
    keys: HashMap<String, String>,
}

struct Subscription {
    id: String,
    user: String,
    url: String,
    actions: Vec<String>,
}

struct Sim {
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    expires_in: u64,
    users: Vec<User>,
    authorizing: String,
    deny_next: bool,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    vacancies: Vec<Vacancy>,
    negotiations: Vec<Negotiation>,
    resumes: HashMap<String, Applicant>,
    chats: HashMap<String, Chat>,
    subscriptions: Vec<Subscription>,
    events: HashMap<String, (String, Value, String)>,
    deliveries: Vec<Delivery>,
    rate_limit: Option<(u32, u64)>,
    fail: Option<(u32, u16)>,
    token_requests: u64,
    api_requests: u64,
    seq: u64,
    webhook_base_delay: Duration,
    webhook_attempts: u32,
    drop_webhooks: bool,
}

impl Sim {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn user(&self, id: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.id == id)
            .expect("a known user")
    }

    fn sees_vacancy(&self, user: &str, vacancy_id: &str) -> bool {
        let u = self.user(user);
        self.vacancies
            .iter()
            .any(|v| v.id == vacancy_id && (u.admin || v.manager_id == u.manager_id))
    }
}

/// A timestamp in HeadHunter's format, one second per simulated event.
fn stamp(seq: u64) -> String {
    let s = 9 * 3600 + seq;
    format!(
        "2026-01-15T{:02}:{:02}:{:02}+0300",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}

fn random_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn errors(status: StatusCode, error_type: &str, value: Option<&str>) -> Response {
    let mut e = json!({"type": error_type});
    if let Some(v) = value {
        e["value"] = json!(v);
    }
    (status, Json(json!({"errors": [e]}))).into_response()
}

fn token_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The in-process HeadHunter.
#[derive(Clone)]
pub struct HhSimulator {
    state: Arc<Mutex<Sim>>,
    http: reqwest::Client,
    pub addr: SocketAddr,
}

impl HhSimulator {
    /// Serves on `listener` until the process ends, for an application registered with
    /// `client_id`, `client_secret` and `redirect_uri`.
    pub async fn start(
        listener: tokio::net::TcpListener,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
    ) -> HhSimulator {
        let addr = listener.local_addr().expect("bound");
        let user = |id: &str, manager_id: &str, first: &str, last: &str, admin: bool| User {
            id: id.into(),
            manager_id: manager_id.into(),
            first_name: first.into(),
            last_name: last.into(),
            email: format!("{id}@romashka.example"),
            admin,
            password_invalidated: false,
        };
        let sim = HhSimulator {
            state: Arc::new(Mutex::new(Sim {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                redirect_uri: redirect_uri.into(),
                expires_in: 1_209_600,
                users: vec![
                    user(ADMIN_USER, ADMIN_MANAGER, "Ольга", "Админова", true),
                    user(MANAGER_USER, MANAGER_MANAGER, "Павел", "Менеджеров", false),
                ],
                authorizing: ADMIN_USER.into(),
                deny_next: false,
                codes: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                vacancies: Vec::new(),
                negotiations: Vec::new(),
                resumes: HashMap::new(),
                chats: HashMap::new(),
                subscriptions: Vec::new(),
                events: HashMap::new(),
                deliveries: Vec::new(),
                rate_limit: None,
                fail: None,
                token_requests: 0,
                api_requests: 0,
                seq: 0,
                webhook_base_delay: Duration::from_secs(5),
                webhook_attempts: 6,
                drop_webhooks: false,
            })),
            http: crate::http_client(Duration::from_secs(2)),
            addr,
        };
        let app = Router::new()
            .route("/oauth/authorize", get(authorize))
            .route("/token", axum::routing::post(token).delete(revoke))
            .route("/me", get(me))
            .route("/manager_accounts/mine", get(manager_accounts))
            .route("/employers/{eid}/managers/{mid}", get(manager))
            .route("/employers/{eid}/vacancies/active", get(active_vacancies))
            .route("/negotiations", get(collections))
            .route("/negotiations/{key}", get(negotiation_or_collection))
            .route("/negotiations/{state}/{nid}", put(change_state))
            .route("/resumes/{id}", get(resume))
            .route("/resumes/{id}/download.pdf", get(resume_pdf))
            .route(
                "/common/chats/{chat_id}/messages",
                get(chat_messages).post(send_chat_message),
            )
            .route(
                "/webhook/subscriptions",
                get(list_subscriptions).post(create_subscription),
            )
            .route(
                "/webhook/subscriptions/{id}",
                put(update_subscription).delete(delete_subscription),
            )
            .layer(middleware::from_fn_with_state(sim.clone(), gate))
            .with_state(sim.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        sim
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Sim) -> T) -> T {
        f(&mut self.state.lock().expect("not poisoned"))
    }

    // ---- controls ---------------------------------------------------------------------

    /// Who the authorize page logs in and approves next (`ADMIN_USER` or `MANAGER_USER`).
    pub fn authorize_as(&self, user: &str) {
        self.with(|s| s.authorizing = user.to_string());
    }

    /// The next authorization is refused by the employer (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.with(|s| s.deny_next = true);
    }

    /// `expires_in` of tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.with(|s| s.expires_in = secs);
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        self.with(|s| {
            let past = Instant::now() - Duration::from_millis(1);
            for a in s.access.values_mut() {
                a.expires_at = past;
            }
        });
    }

    /// The user changed the password: their tokens are deactivated.
    pub fn change_password(&self, user: &str) {
        self.with(|s| {
            for a in s.access.values_mut().filter(|a| a.user == user) {
                a.dead = Some("token deactivated");
            }
            for r in s.refresh.values_mut().filter(|r| r.user == user) {
                r.dead = Some("token deactivated");
            }
        });
    }

    /// The user's password is out of date: the token endpoint answers `password
    /// invalidated` until they log in again.
    pub fn invalidate_password(&self, user: &str) {
        self.with(|s| {
            if let Some(u) = s.users.iter_mut().find(|u| u.id == user) {
                u.password_invalidated = true;
            }
        });
    }

    /// Adds an active vacancy managed by `manager_id`; returns its id.
    pub fn add_vacancy(&self, name: &str, city: &str, manager_id: &str) -> String {
        self.with(|s| {
            let seq = s.next();
            let id = format!("{}", 90_000_000 + seq);
            s.vacancies.push(Vacancy {
                id: id.clone(),
                name: name.into(),
                city: city.into(),
                manager_id: manager_id.into(),
                seq,
            });
            id
        })
    }

    /// An applicant responds to a vacancy: a negotiation in `response`, a resume, a chat
    /// with the applicant's cover note, and a `NEW_NEGOTIATION_VACANCY` event.
    pub fn add_response(&self, vacancy_id: &str, applicant: Applicant) -> NewResponse {
        let (created, event) = self.with(|s| {
            let seq = s.next();
            let negotiation_id = format!("{}", 3_000_000 + seq);
            let resume_id = format!("{:016x}{:08x}", 0x5eed_0000_u64 + seq, seq * 7919);
            let chat_id = format!("{}", 5_000_000 + seq);
            s.resumes.insert(resume_id.clone(), applicant);
            let mut chat = Chat::default();
            chat.messages.push(Message {
                id: format!("{}", 8_000_000 + seq),
                text: "Здравствуйте! Откликаюсь на вакансию.".into(),
                role: "APPLICANT",
                seq,
            });
            s.chats.insert(chat_id.clone(), chat);
            s.negotiations.push(Negotiation {
                id: negotiation_id.clone(),
                vacancy_id: vacancy_id.into(),
                resume_id: resume_id.clone(),
                chat_id: chat_id.clone(),
                state: "response".into(),
                read: false,
                created: seq,
                updated: seq,
            });
            let payload = json!({
                "topic_id": negotiation_id, "resume_id": resume_id, "vacancy_id": vacancy_id,
                "employer_id": EMPLOYER_ID, "chat_id": chat_id, "negotiation_date": stamp(seq),
            });
            (
                NewResponse {
                    negotiation_id,
                    resume_id,
                    chat_id,
                },
                (vacancy_id.to_string(), payload),
            )
        });
        self.emit("NEW_NEGOTIATION_VACANCY", &event.0, event.1);
        created
    }

    /// The employer moves a negotiation on the site (not through the API).
    pub fn set_state_on_board(&self, negotiation_id: &str, state: &str) {
        let event = self.with(|s| {
            let seq = s.next();
            let n = s.negotiations.iter_mut().find(|n| n.id == negotiation_id)?;
            let from = std::mem::replace(&mut n.state, state.to_string());
            n.updated = seq;
            Some((
                n.vacancy_id.clone(),
                json!({
                    "topic_id": n.id, "vacancy_id": n.vacancy_id, "resume_id": n.resume_id,
                    "from_state": from, "to_state": state, "employer_manager_id": ADMIN_MANAGER,
                    "transferred_at": stamp(seq),
                }),
            ))
        });
        if let Some((vacancy, payload)) = event {
            self.emit("NEGOTIATION_EMPLOYER_STATE_CHANGE", &vacancy, payload);
        }
    }

    /// The employer state of a negotiation.
    pub fn negotiation_state(&self, negotiation_id: &str) -> Option<String> {
        self.with(|s| {
            s.negotiations
                .iter()
                .find(|n| n.id == negotiation_id)
                .map(|n| n.state.clone())
        })
    }

    /// The applicant writes in the chat (a `CHAT_MESSAGE_CREATED` event follows).
    pub fn applicant_writes(&self, chat_id: &str, text: &str) -> Option<String> {
        let event = self.with(|s| {
            let seq = s.next();
            let vacancy = s
                .negotiations
                .iter()
                .find(|n| n.chat_id == chat_id)?
                .vacancy_id
                .clone();
            let chat = s.chats.get_mut(chat_id)?;
            let id = format!("{}", 8_000_000 + seq);
            chat.messages.push(Message {
                id: id.clone(),
                text: text.into(),
                role: "APPLICANT",
                seq,
            });
            Some((id, vacancy, seq))
        });
        let (id, vacancy, seq) = event?;
        self.emit(
            "CHAT_MESSAGE_CREATED",
            &vacancy,
            json!({"chat_id": chat_id, "message_id": id, "message_type": "SIMPLE",
                   "sender_participant_id": "applicant", "creation_time": stamp(seq), "role": "APPLICANT"}),
        );
        Some(id)
    }

    /// (role, text) of a chat's messages, oldest first.
    pub fn chat(&self, chat_id: &str) -> Vec<(String, String)> {
        self.with(|s| {
            s.chats
                .get(chat_id)
                .map(|c| {
                    c.messages
                        .iter()
                        .map(|m| (m.role.to_string(), m.text.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// The next `n` API or token requests are answered 429 with `Retry-After`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        self.with(|s| s.rate_limit = Some((n, retry_after_secs)));
    }

    /// The next `n` API or token requests fail with `status` and a body that is not JSON.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.with(|s| s.fail = Some((n, status)));
    }

    /// Webhook retries: the first retry after `base`, doubling, `attempts` in all.
    pub fn set_webhook_retry(&self, base: Duration, attempts: u32) {
        self.with(|s| {
            s.webhook_base_delay = base;
            s.webhook_attempts = attempts.max(1);
        });
    }

    /// Events are recorded but not delivered (a lost webhook; polling must recover it).
    pub fn drop_webhooks(&self, drop: bool) {
        self.with(|s| s.drop_webhooks = drop);
    }

    /// Delivers an event again with the same id (HeadHunter delivers at least once).
    pub fn redeliver(&self, event_id: &str) {
        let found = self.with(|s| s.events.get(event_id).cloned());
        if let Some((action_type, body, url)) = found {
            self.spawn_delivery(event_id.to_string(), action_type, body, url);
        }
    }

    /// Every delivery attempt so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with(|s| s.deliveries.clone())
    }

    /// Requests to the token endpoint so far.
    pub fn token_requests(&self) -> u64 {
        self.with(|s| s.token_requests)
    }

    /// API requests so far (the token endpoint and the authorize page excluded).
    pub fn api_requests(&self) -> u64 {
        self.with(|s| s.api_requests)
    }

    // ---- webhooks ---------------------------------------------------------------------

    fn emit(&self, action_type: &str, vacancy_id: &str, payload: Value) {
        let targets: Vec<(String, Value, String)> = self.with(|s| {
            let subs: Vec<(String, String, String)> = s
                .subscriptions
                .iter()
                .filter(|sub| sub.actions.iter().any(|a| a == action_type))
                .map(|sub| (sub.id.clone(), sub.user.clone(), sub.url.clone()))
                .collect();
            let mut out = Vec::new();
            for (sub_id, user, url) in subs {
                if !s.sees_vacancy(&user, vacancy_id) {
                    continue;
                }
                let event_id = random_id();
                let body = json!({
                    "id": event_id, "subscription_id": sub_id, "action_type": action_type,
                    "user_id": user, "payload": payload,
                });
                s.events.insert(
                    event_id.clone(),
                    (action_type.to_string(), body.clone(), url.clone()),
                );
                if !s.drop_webhooks {
                    out.push((event_id, body, url));
                }
            }
            out
        });
        for (event_id, body, url) in targets {
            self.spawn_delivery(event_id, action_type.to_string(), body, url);
        }
    }

    fn spawn_delivery(&self, event_id: String, action_type: String, body: Value, url: String) {
        let sim = self.clone();
        tokio::spawn(async move {
            let (base, attempts) = sim.with(|s| (s.webhook_base_delay, s.webhook_attempts));
            for attempt in 1..=attempts {
                let status = match sim.http.post(&url).json(&body).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                sim.with(|s| {
                    s.deliveries.push(Delivery {
                        event_id: event_id.clone(),
                        action_type: action_type.clone(),
                        attempt,
                        status,
                    })
                });
                // 409: the receiver already has this event.
                if (200..300).contains(&status) || status == 409 {
                    return;
                }
                if attempt < attempts {
                    tokio::time::sleep(base * 2u32.saturating_pow(attempt - 1)).await;
                }
            }
        });
    }
}

// ---- the gate: User-Agent, injected failures, counters ----------------------------------

async fn gate(State(sim): State<HhSimulator>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path == "/oauth/authorize" {
        return next.run(request).await;
    }
    let ua = request
        .headers()
        .get("hh-user-agent")
        .or_else(|| request.headers().get(header::USER_AGENT))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_string();
    if ua.is_empty() {
        return errors(StatusCode::BAD_REQUEST, "bad_user_agent", Some("unset"));
    }
    let injected = sim.with(|s| {
        if path == "/token" {
            s.token_requests += 1;
        } else {
            s.api_requests += 1;
        }
        if let Some((n, after)) = s.rate_limit {
            s.rate_limit = (n > 1).then_some((n - 1, after));
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, after.to_string())],
                    Json(json!({"errors": [{"type": "too_many_requests"}]})),
                )
                    .into_response(),
            );
        }
        if let Some((n, status)) = s.fail {
            s.fail = (n > 1).then_some((n - 1, status));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Some((status, "<html><body>upstream failed</body></html>").into_response());
        }
        None
    });
    match injected {
        Some(r) => r,
        None => next.run(request).await,
    }
}

/// The user of the request's bearer token, or HeadHunter's `oauth` error.
fn authed(s: &Sim, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let oauth = |value: &str| errors(StatusCode::FORBIDDEN, "oauth", Some(value));
    let Some(a) = s.access.get(token) else {
        return Err(Box::new(oauth("bad_authorization")));
    };
    if a.dead.is_some() {
        return Err(Box::new(oauth("token_revoked")));
    }
    if Instant::now() >= a.expires_at {
        return Err(Box::new(oauth("token_expired")));
    }
    Ok(a.user.clone())
}

// ---- OAuth ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(State(sim): State<HhSimulator>, Query(q): Query<AuthorizeQuery>) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    if q.client_id.as_deref() != Some(s.client_id.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let redirect = q
        .redirect_uri
        .clone()
        .unwrap_or_else(|| s.redirect_uri.clone());
    if redirect != s.redirect_uri {
        return (StatusCode::BAD_REQUEST, "bad redirect url").into_response();
    }
    if q.response_type.as_deref() != Some("code") {
        return (StatusCode::BAD_REQUEST, "response_type must be code").into_response();
    }
    if q.code_challenge.is_some() && q.code_challenge_method.as_deref() != Some("S256") {
        return (StatusCode::BAD_REQUEST, "only S256 is supported").into_response();
    }
    let mut target = url::Url::parse(&redirect).expect("a registered URL");
    if std::mem::take(&mut s.deny_next) {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied");
    } else {
        let code = random_id();
        let user = s.authorizing.clone();
        s.codes.insert(
            code.clone(),
            Code {
                user,
                redirect_uri: redirect,
                challenge: q.code_challenge.clone(),
                used: false,
            },
        );
        target.query_pairs_mut().append_pair("code", &code);
    }
    if let Some(state) = &q.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_uri: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
}

fn issue(s: &mut Sim, user: &str) -> Value {
    let access = format!("{}{}", random_id(), random_id());
    let refresh = format!("{}{}", random_id(), random_id());
    s.access.insert(
        access.clone(),
        Access {
            user: user.into(),
            expires_at: Instant::now() + Duration::from_secs(s.expires_in),
            dead: None,
        },
    );
    s.refresh.insert(
        refresh.clone(),
        Refresh {
            user: user.into(),
            access: access.clone(),
            used: false,
            dead: None,
        },
    );
    json!({"access_token": access, "token_type": "bearer", "expires_in": s.expires_in, "refresh_token": refresh})
}

async fn token(State(sim): State<HhSimulator>, Form(f): Form<TokenForm>) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    match f.grant_type.as_deref() {
        Some("authorization_code") => {
            if f.client_id.as_deref() != Some(s.client_id.as_str())
                || f.client_secret.as_deref() != Some(s.client_secret.as_str())
            {
                return token_error("invalid_client", "client_id or client_secret not found");
            }
            let Some(code) = f.code.as_deref().and_then(|c| s.codes.get_mut(c)) else {
                return token_error("invalid_request", "code not found");
            };
            if code.used {
                return token_error("invalid_grant", "code has already been used");
            }
            if f.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
                return token_error("invalid_request", "bad redirect url");
            }
            if let Some(challenge) = &code.challenge {
                let ok = f
                    .code_verifier
                    .as_deref()
                    .is_some_and(|v| &pkce_challenge(v) == challenge);
                if !ok {
                    return token_error("invalid_grant", "bad code_verifier");
                }
            }
            code.used = true;
            let user = code.user.clone();
            if s.user(&user).password_invalidated {
                return token_error("invalid_request", "password invalidated");
            }
            Json(issue(&mut s, &user)).into_response()
        }
        Some("refresh_token") => {
            let Some(rt) = f.refresh_token.filter(|t| !t.is_empty()) else {
                return token_error("invalid_request", "token is empty");
            };
            let Some(r) = s.refresh.get(&rt) else {
                return token_error("invalid_request", "token not found");
            };
            if let Some(dead) = r.dead {
                return token_error("invalid_grant", dead);
            }
            if r.used {
                return token_error("invalid_grant", "token has already been refreshed");
            }
            let user = r.user.clone();
            if s.user(&user).password_invalidated {
                return token_error("invalid_request", "password invalidated");
            }
            let access_alive = s
                .access
                .get(&r.access)
                .is_some_and(|a| Instant::now() < a.expires_at);
            if access_alive {
                return token_error("invalid_grant", "token not expired");
            }
            let old_access = r.access.clone();
            s.refresh.get_mut(&rt).expect("present").used = true;
            if let Some(a) = s.access.get_mut(&old_access) {
                a.dead = Some("token was revoked");
            }
            Json(issue(&mut s, &user)).into_response()
        }
        _ => token_error("unsupported_grant_type", "unsupported grant_type"),
    }
}

async fn revoke(State(sim): State<HhSimulator>, headers: HeaderMap) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    if let Err(r) = authed(&s, &headers) {
        return *r;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    if let Some(a) = s.access.get_mut(&token) {
        a.dead = Some("token was revoked");
    }
    for r in s.refresh.values_mut().filter(|r| r.access == token) {
        r.dead = Some("token was revoked");
    }
    StatusCode::NO_CONTENT.into_response()
}

// ---- who ----------------------------------------------------------------------------------

async fn me(State(sim): State<HhSimulator>, headers: HeaderMap) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let u = s.user(&user);
    Json(json!({
        "id": u.id, "first_name": u.first_name, "last_name": u.last_name, "middle_name": null,
        "email": u.email, "is_admin": false, "is_applicant": false, "is_employer": true,
        "is_application": false,
        "employer": {"id": EMPLOYER_ID, "name": EMPLOYER_NAME, "manager_id": u.manager_id},
    }))
    .into_response()
}

async fn manager(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path((eid, mid)): Path<(String, String)>,
) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    if let Err(r) = authed(&s, &headers) {
        return *r;
    }
    let Some(u) = s.users.iter().find(|u| u.manager_id == mid) else {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    };
    if eid != EMPLOYER_ID {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    }
    let kind = if u.admin {
        json!({"id": "mcp", "name": "Главный контактный менеджер"})
    } else {
        json!({"id": "manager", "name": "Менеджер"})
    };
    Json(
        json!({"id": u.manager_id, "first_name": u.first_name, "last_name": u.last_name,
                "email": u.email, "type": kind}),
    )
    .into_response()
}

async fn manager_accounts(State(sim): State<HhSimulator>, headers: HeaderMap) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let u = s.user(&user);
    Json(json!({
        "primary_account_id": u.manager_id,
        "items": [{"id": u.manager_id, "name": format!("{} {}", u.last_name, u.first_name),
                   "is_primary": true, "employer": {"id": EMPLOYER_ID, "name": EMPLOYER_NAME}}],
    }))
    .into_response()
}

// ---- vacancies and negotiations -------------------------------------------------------------

#[derive(Deserialize)]
struct Paging {
    page: Option<u32>,
    per_page: Option<u32>,
    manager_id: Option<String>,
    vacancy_id: Option<String>,
    host: Option<String>,
}

fn paged(total: usize, p: &Paging) -> Result<(usize, usize, u32, u32), Box<Response>> {
    let per_page = p.per_page.unwrap_or(20);
    if per_page == 0 || per_page > 100 {
        return Err(Box::new(errors(
            StatusCode::BAD_REQUEST,
            "bad_argument",
            Some("per_page"),
        )));
    }
    let page = p.page.unwrap_or(0);
    let start = (page as usize).saturating_mul(per_page as usize).min(total);
    let end = (start + per_page as usize).min(total);
    Ok((start, end, page, per_page))
}

fn page_json(items: Vec<Value>, total: usize, page: u32, per_page: u32) -> Value {
    json!({"found": total, "page": page, "per_page": per_page,
           "pages": total.div_ceil(per_page as usize), "items": items})
}

fn site_host(p: &Paging) -> String {
    p.host.clone().unwrap_or_else(|| "hh.ru".into())
}

async fn active_vacancies(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(eid): Path<String>,
    Query(p): Query<Paging>,
) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if eid != EMPLOYER_ID {
        return errors(StatusCode::FORBIDDEN, "forbidden", None);
    }
    let u = s.user(&user);
    let base = sim.base_url();
    let host = site_host(&p);
    let visible: Vec<&Vacancy> = s
        .vacancies
        .iter()
        .filter(|v| u.admin || v.manager_id == u.manager_id)
        .filter(|v| p.manager_id.as_deref().is_none_or(|m| v.manager_id == m))
        .collect();
    let (start, end, page, per_page) = match paged(visible.len(), &p) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let items = visible[start..end]
        .iter()
        .map(|v| {
            let ours: Vec<&Negotiation> =
                s.negotiations.iter().filter(|n| n.vacancy_id == v.id).collect();
            json!({
                "id": v.id, "name": v.name, "area": {"id": "16", "name": v.city},
                "url": format!("{base}/vacancies/{}", v.id),
                "alternate_url": format!("https://{host}/vacancy/{}", v.id),
                "created_at": stamp(v.seq), "published_at": stamp(v.seq),
                "manager": {"id": v.manager_id},
                "counters": {"responses": ours.len(), "unread_responses": ours.iter().filter(|n| !n.read).count()},
            })
        })
        .collect();
    Json(page_json(items, visible.len(), page, per_page)).into_response()
}

async fn collections(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Query(p): Query<Paging>,
) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let Some(vacancy_id) = p.vacancy_id.as_deref() else {
        return errors(StatusCode::BAD_REQUEST, "bad_argument", Some("vacancy_id"));
    };
    if !s.sees_vacancy(&user, vacancy_id) {
        return errors(
            StatusCode::BAD_REQUEST,
            "negotiations",
            Some("vacancy_not_found"),
        );
    }
    let base = sim.base_url();
    let collections: Vec<Value> = STATES
        .iter()
        .map(|(id, name, _)| {
            let ours = s
                .negotiations
                .iter()
                .filter(|n| n.vacancy_id == vacancy_id && n.state == *id);
            let (total, unread) = ours.fold((0, 0), |(t, u), n| (t + 1, u + usize::from(!n.read)));
            json!({"id": id, "name": name,
                   "url": format!("{base}/negotiations/{id}?vacancy_id={vacancy_id}"),
                   "counters": {"total": total, "unread": unread}, "sub_collections": []})
        })
        .collect();
    let states: Vec<Value> = STATES
        .iter()
        .map(|(id, name, _)| json!({"id": id, "name": name}))
        .collect();
    Json(json!({"collections": collections, "employer_states": states})).into_response()
}

fn negotiation_json(s: &Sim, base: &str, n: &Negotiation) -> Value {
    let state_name = |id: &str| {
        STATES
            .iter()
            .find(|x| x.0 == id)
            .map(|x| x.1)
            .unwrap_or(id)
            .to_string()
    };
    let vacancy = s.vacancies.iter().find(|v| v.id == n.vacancy_id);
    let applicant = s.resumes.get(&n.resume_id);
    let names_hidden = applicant.is_some_and(|a| a.hidden.iter().any(|h| h == "names_and_photo"));
    let actions: Vec<Value> = STATES
        .iter()
        .filter(|(id, _, _)| *id != n.state && *id != "response")
        .map(|(id, name, needs_message)| {
            json!({"id": id, "name": name, "enabled": true, "method": "PUT",
                   "url": format!("{base}/negotiations/{id}/{}", n.id),
                   "resulting_employer_state": {"id": id, "name": name},
                   "arguments": [{"id": "message", "required": needs_message, "required_arguments": []}]})
        })
        .collect();
    json!({
        "id": n.id,
        "state": {"id": if n.state == "response" { "response" } else { "invitation" },
                  "name": if n.state == "response" { "Отклик" } else { "Приглашение" }},
        "employer_state": {"id": n.state, "name": state_name(&n.state)},
        "created_at": stamp(n.created), "updated_at": stamp(n.updated),
        "has_updates": !n.read, "chat_id": n.chat_id.parse::<u64>().ok(),
        "resume": {"id": n.resume_id, "url": format!("{base}/resumes/{}", n.resume_id),
                   "title": applicant.map(|a| a.title.clone()),
                   "first_name": if names_hidden { None } else { applicant.map(|a| a.first_name.clone()) },
                   "last_name": if names_hidden { None } else { applicant.map(|a| a.last_name.clone()) }},
        "vacancy": {"id": n.vacancy_id, "name": vacancy.map(|v| v.name.clone()),
                    "url": format!("{base}/vacancies/{}", n.vacancy_id)},
        "actions": actions,
        "messages_url": format!("{base}/negotiations/{}/messages", n.id),
    })
}

async fn negotiation_or_collection(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(p): Query<Paging>,
) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let base = sim.base_url();
    if key.bytes().all(|b| b.is_ascii_digit()) {
        return match s
            .negotiations
            .iter()
            .find(|n| n.id == key && s.sees_vacancy(&user, &n.vacancy_id))
        {
            Some(n) => Json(negotiation_json(&s, &base, n)).into_response(),
            None => errors(StatusCode::NOT_FOUND, "not_found", None),
        };
    }
    if !STATES.iter().any(|x| x.0 == key) {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    }
    let Some(vacancy_id) = p.vacancy_id.as_deref() else {
        return errors(StatusCode::BAD_REQUEST, "bad_argument", Some("vacancy_id"));
    };
    if !s.sees_vacancy(&user, vacancy_id) {
        return errors(
            StatusCode::BAD_REQUEST,
            "negotiations",
            Some("vacancy_not_found"),
        );
    }
    let ours: Vec<&Negotiation> = s
        .negotiations
        .iter()
        .filter(|n| n.vacancy_id == vacancy_id && n.state == key)
        .collect();
    let (start, end, page, per_page) = match paged(ours.len(), &p) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let items = ours[start..end]
        .iter()
        .map(|n| negotiation_json(&s, &base, n))
        .collect();
    Json(page_json(items, ours.len(), page, per_page)).into_response()
}

#[derive(Deserialize)]
struct ActionForm {
    message: Option<String>,
}

async fn change_state(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path((state, nid)): Path<(String, String)>,
    Query(q): Query<ActionForm>,
    body: axum::body::Bytes,
) -> Response {
    let form_message = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "message")
        .map(|(_, v)| v.into_owned());
    let message = form_message.or(q.message).filter(|m| !m.trim().is_empty());
    let event = {
        let mut s = sim.state.lock().expect("not poisoned");
        let user = match authed(&s, &headers) {
            Ok(u) => u,
            Err(r) => return *r,
        };
        let Some(target) = STATES.iter().find(|x| x.0 == state) else {
            return errors(StatusCode::NOT_FOUND, "not_found", None);
        };
        let manager_id = s.user(&user).manager_id.clone();
        let seq = s.next();
        let visible = s
            .negotiations
            .iter()
            .find(|n| n.id == nid)
            .is_some_and(|n| s.sees_vacancy(&user, &n.vacancy_id));
        if !visible {
            return errors(StatusCode::NOT_FOUND, "not_found", None);
        }
        let n = s
            .negotiations
            .iter_mut()
            .find(|n| n.id == nid)
            .expect("present");
        if n.state == state || state == "response" {
            return errors(StatusCode::FORBIDDEN, "negotiations", Some("wrong_state"));
        }
        if target.2 && message.is_none() {
            return errors(StatusCode::FORBIDDEN, "negotiations", Some("empty_message"));
        }
        let from = std::mem::replace(&mut n.state, state.clone());
        n.updated = seq;
        n.read = true;
        let (vacancy_id, resume_id, chat_id) =
            (n.vacancy_id.clone(), n.resume_id.clone(), n.chat_id.clone());
        if let Some(text) = &message {
            if let Some(chat) = s.chats.get_mut(&chat_id) {
                chat.messages.push(Message {
                    id: format!("{}", 8_000_000 + seq),
                    text: text.clone(),
                    role: "EMPLOYER",
                    seq,
                });
            }
        }
        (
            vacancy_id.clone(),
            json!({"topic_id": nid, "vacancy_id": vacancy_id, "resume_id": resume_id,
                   "from_state": from, "to_state": state, "employer_manager_id": manager_id,
                   "transferred_at": stamp(seq)}),
        )
    };
    sim.emit("NEGOTIATION_EMPLOYER_STATE_CHANGE", &event.0, event.1);
    StatusCode::NO_CONTENT.into_response()
}

// ---- resumes ------------------------------------------------------------------------------

fn resume_visible(s: &Sim, user: &str, resume_id: &str) -> bool {
    s.negotiations
        .iter()
        .any(|n| n.resume_id == resume_id && s.sees_vacancy(user, &n.vacancy_id))
}

async fn resume(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Paging>,
) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if !resume_visible(&s, &user, &id) {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    }
    // Opening the resume marks its responses as seen.
    for n in s.negotiations.iter_mut().filter(|n| n.resume_id == id) {
        n.read = true;
    }
    let a = s.resumes.get(&id).expect("a resume of a negotiation");
    let hidden = |f: &str| a.hidden.iter().any(|h| h == f);
    let base = sim.base_url();
    let host = site_host(&p);
    let names = !hidden("names_and_photo");
    let mut contact = Vec::new();
    if let Some(phone) = &a.phone {
        contact.push(
            json!({"type": {"id": "cell", "name": "Мобильный телефон"}, "preferred": true,
            "value": if hidden("phones") { Value::Null } else { json!({"formatted": phone}) }}),
        );
    }
    if let Some(email) = &a.email {
        contact.push(
            json!({"type": {"id": "email", "name": "Эл. почта"}, "preferred": false,
            "value": if hidden("email") { Value::Null } else { json!(email) }}),
        );
    }
    let hidden_fields: Vec<Value> = a
        .hidden
        .iter()
        .map(|h| json!({"id": h, "name": h}))
        .collect();
    Json(json!({
        "id": id, "title": a.title,
        "first_name": names.then(|| a.first_name.clone()),
        "last_name": names.then(|| a.last_name.clone()),
        "middle_name": if names { a.middle_name.clone() } else { None },
        "photo": null,
        "area": {"id": "16", "name": a.city},
        "contact": contact,
        "hidden_fields": hidden_fields,
        "alternate_url": format!("https://{host}/resume/{id}"),
        "created_at": stamp(1), "updated_at": stamp(2),
        "negotiations_history": {"url": format!("{base}/resumes/{id}/negotiations_history")},
        "download": {"pdf": {"url": format!("{base}/resumes/{id}/download.pdf?type=pdf")}},
    }))
    .into_response()
}

async fn resume_pdf(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if !resume_visible(&s, &user, &id) {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    }
    let a = &s.resumes[&id];
    let body = format!(
        "%PDF-1.4\n% Resume {id}: {}\n%%EOF\n",
        a.title.replace(['\n', '\r'], " ")
    );
    (
        [(header::CONTENT_TYPE, "application/pdf")],
        body.into_bytes(),
    )
        .into_response()
}

// ---- chats --------------------------------------------------------------------------------

fn chat_visible(s: &Sim, user: &str, chat_id: &str) -> bool {
    s.negotiations
        .iter()
        .any(|n| n.chat_id == chat_id && s.sees_vacancy(user, &n.vacancy_id))
}

fn message_json(chat_id: &str, m: &Message) -> Value {
    json!({"id": m.id, "chat_id": chat_id, "text": m.text, "creation_time": stamp(m.seq),
           "role": m.role, "message_type": "SIMPLE",
           "sender_participant_id": m.role.to_ascii_lowercase()})
}

async fn chat_messages(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(chat_id): Path<String>,
    Query(p): Query<Paging>,
) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if !chat_visible(&s, &user, &chat_id) {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    }
    let chat = &s.chats[&chat_id];
    let (start, end, page, per_page) = match paged(chat.messages.len(), &p) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let items = chat.messages[start..end]
        .iter()
        .map(|m| message_json(&chat_id, m))
        .collect();
    Json(page_json(items, chat.messages.len(), page, per_page)).into_response()
}

#[derive(Deserialize)]
struct NewMessage {
    text: Option<String>,
    idempotency_key: Option<String>,
}

async fn send_chat_message(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(chat_id): Path<String>,
    Json(body): Json<NewMessage>,
) -> Response {
    let (answer, event) = {
        let mut s = sim.state.lock().expect("not poisoned");
        let user = match authed(&s, &headers) {
            Ok(u) => u,
            Err(r) => return *r,
        };
        if !chat_visible(&s, &user, &chat_id) {
            return errors(StatusCode::NOT_FOUND, "not_found", None);
        }
        let text = body.text.unwrap_or_default();
        if text.trim().is_empty() {
            return errors(
                StatusCode::FORBIDDEN,
                "negotiations",
                Some("message_cannot_be_empty"),
            );
        }
        let seq = s.next();
        let vacancy = s
            .negotiations
            .iter()
            .find(|n| n.chat_id == chat_id)
            .map(|n| n.vacancy_id.clone())
            .unwrap_or_default();
        let chat = s.chats.get_mut(&chat_id).expect("visible chat");
        if let Some(existing) = body.idempotency_key.as_ref().and_then(|k| chat.keys.get(k)) {
            let m = chat
                .messages
                .iter()
                .find(|m| &m.id == existing)
                .expect("kept");
            return (StatusCode::OK, Json(message_json(&chat_id, m))).into_response();
        }
        let in_a_row = chat
            .messages
            .iter()
            .rev()
            .take_while(|m| m.role == "EMPLOYER")
            .count();
        if in_a_row >= IN_A_ROW_LIMIT {
            return errors(
                StatusCode::FORBIDDEN,
                "negotiations",
                Some("in_a_row_limit"),
            );
        }
        let id = format!("{}", 8_000_000 + seq);
        let m = Message {
            id: id.clone(),
            text,
            role: "EMPLOYER",
            seq,
        };
        let answer = message_json(&chat_id, &m);
        chat.messages.push(m);
        if let Some(k) = body.idempotency_key {
            chat.keys.insert(k, id.clone());
        }
        (
            answer,
            (
                vacancy,
                json!({"chat_id": chat_id, "message_id": id, "message_type": "SIMPLE",
                       "sender_participant_id": "employer", "creation_time": stamp(seq), "role": "EMPLOYER"}),
            ),
        )
    };
    sim.emit("CHAT_MESSAGE_CREATED", &event.0, event.1);
    (StatusCode::CREATED, Json(answer)).into_response()
}

// ---- webhook subscriptions -------------------------------------------------------------------

#[derive(Deserialize)]
struct SubscriptionBody {
    url: String,
    #[serde(default)]
    actions: Vec<Value>,
}

fn action_types(actions: &[Value]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| a["type"].as_str().or(a.as_str()).map(str::to_string))
        .collect()
}

fn valid_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

async fn list_subscriptions(State(sim): State<HhSimulator>, headers: HeaderMap) -> Response {
    let s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let items: Vec<Value> = s
        .subscriptions
        .iter()
        .filter(|x| x.user == user)
        .map(|x| {
            json!({"id": x.id, "url": x.url,
                   "actions": x.actions.iter().map(|a| json!({"type": a})).collect::<Vec<_>>()})
        })
        .collect();
    Json(json!({"items": items})).into_response()
}

async fn create_subscription(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Json(body): Json<SubscriptionBody>,
) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if !valid_url(&body.url) {
        return errors(StatusCode::BAD_REQUEST, "bad_argument", Some("url"));
    }
    let seq = s.next();
    let id = format!("{}", 600 + seq);
    s.subscriptions.push(Subscription {
        id: id.clone(),
        user,
        url: body.url,
        actions: action_types(&body.actions),
    });
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn update_subscription(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<SubscriptionBody>,
) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if !valid_url(&body.url) {
        return errors(StatusCode::BAD_REQUEST, "bad_argument", Some("url"));
    }
    match s
        .subscriptions
        .iter_mut()
        .find(|x| x.id == id && x.user == user)
    {
        Some(sub) => {
            sub.url = body.url;
            sub.actions = action_types(&body.actions);
            StatusCode::NO_CONTENT.into_response()
        }
        None => errors(StatusCode::NOT_FOUND, "not_found", None),
    }
}

async fn delete_subscription(
    State(sim): State<HhSimulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut s = sim.state.lock().expect("not poisoned");
    let user = match authed(&s, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let before = s.subscriptions.len();
    s.subscriptions.retain(|x| !(x.id == id && x.user == user));
    if s.subscriptions.len() == before {
        return errors(StatusCode::NOT_FOUND, "not_found", None);
    }
    StatusCode::NO_CONTENT.into_response()
}
