//! The generic webhook channel: any system that can make and take signed HTTPS requests
//! (a chat widget, a messenger bridge, a board Jobers has no connector for yet) becomes a
//! channel. Its API is Jobers' own and is described in `docs/channels.md`:
//!
//! - inbound: the system POSTs [`InboundPayload`] to `/api/v1/hooks/{account_id}/inbound`;
//! - delivery reports: it POSTs [`StatusPayload`] to `/api/v1/hooks/{account_id}/status`;
//! - outbound: Jobers POSTs [`OutboundPayload`] to the account's `settings.url` with an
//!   `Idempotency-Key` (the same on every attempt of one message); a 2xx answer with an
//!   optional `{"id": "…"}` accepts it.
//!
//! Every request both ways is signed (see [`crate::signing`]). [`Simulator`] plays the other
//! side for the demo and the tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::signing::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::{classify_status, classify_transport, Accepted, AccountConfig, OutboundAttachment};
use crate::{OutboundMessage, SendError};

/// The applicant, as the sending system knows them. At least one address is required.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// A HeadHunter applicant id.
    pub hh: Option<String>,
    pub telegram: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InboundPayload {
    /// The sender's id of the message: the same id twice is stored once.
    pub id: String,
    pub from: Sender,
    #[serde(default)]
    pub text: String,
    /// HTML body; sanitised by Jobers before anyone sees it.
    pub html: Option<String>,
    pub subject: Option<String>,
    /// What ties the message to a conversation (a negotiation id, a reply token).
    #[serde(default)]
    pub refs: Vec<String>,
    pub vacancy: Option<String>,
    #[serde(default)]
    pub attachments: Vec<OutboundAttachment>,
    /// An automatic message (out of office, bounce): stored, never answered automatically.
    #[serde(default)]
    pub auto_submitted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusPayload {
    /// Jobers' message id (the `id` of the outbound request).
    pub message_id: Option<String>,
    /// The id the system answered with.
    pub provider_message_id: Option<String>,
    /// `delivered`, `read` or `failed`.
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboundPayload {
    /// Jobers' message id; also the `Idempotency-Key`.
    pub id: String,
    pub from: String,
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub attachments: Vec<OutboundAttachment>,
    pub thread_ref: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AcceptedBody {
    id: Option<String>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct WebhookAdapter {
    client: reqwest::Client,
}

impl WebhookAdapter {
    pub fn new(timeout: Duration) -> Self {
        WebhookAdapter {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn send(
        &self,
        account: &AccountConfig,
        message: &OutboundMessage,
    ) -> Result<Accepted, SendError> {
        let Some(url) = account.settings.get("url").and_then(|u| u.as_str()) else {
            return Err(SendError::Auth {
                message: "the account has no `url` setting".into(),
            });
        };
        let body = serde_json::to_vec(&OutboundPayload {
            id: message.idempotency_key.clone(),
            from: account.address.clone(),
            to: message.to.clone(),
            subject: message.subject.clone(),
            text: message.text.clone(),
            attachments: message.attachments.clone(),
            thread_ref: message.thread_ref.clone(),
        })
        .expect("serialisable");
        let ts = now_secs();
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", &message.idempotency_key)
            .header(TIMESTAMP_HEADER, ts.to_string());
        if let Some(secret) = &account.secret {
            req = req.header(SIGNATURE_HEADER, signing::sign(secret, ts, &body));
        }
        let response = req
            .body(body)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| classify_transport(&e))?;
        if !(200..300).contains(&status) {
            return Err(classify_status(status, &text));
        }
        // A 2xx whose body is not what we expect still accepted the message; keep no id.
        let id = serde_json::from_str::<AcceptedBody>(&text)
            .ok()
            .and_then(|b| b.id)
            .filter(|id| !id.is_empty() && id.len() <= 200);
        Ok(Accepted {
            provider_message_id: id,
        })
    }
}

/// Signs and posts `body` to a hub URL (used by the simulator and by tests).
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::Response> {
    let ts = now_secs();
    client
        .post(url)
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, signing::sign(secret, ts, body))
        .body(body.to_vec())
        .send()
        .await
}

/// A message the simulator received.
#[derive(Debug, Clone)]
pub struct Received {
    pub payload: OutboundPayload,
    pub idempotency_key: String,
    /// How many times this key was posted.
    pub attempts: u32,
    pub provider_id: String,
}

/// What the simulator does with the next requests.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer the next `n` requests with this status (after recording nothing).
    pub fail_next: Option<(u16, u32)>,
    /// Record the message, then hold the answer until [`Simulator::release`].
    pub hold: bool,
}

/// Where the simulated applicants answer and report deliveries (the demo).
#[derive(Debug, Clone)]
pub struct HubLink {
    /// e.g. `http://127.0.0.1:8080`
    pub base: String,
    pub account_id: String,
    pub secret: String,
    /// Report delivered / read after these delays.
    pub delivered_after: Duration,
    pub read_after: Duration,
    /// Answer each message as the applicant after this delay (none: never).
    pub reply_after: Option<Duration>,
}

#[derive(Default)]
struct SimState {
    received: Vec<Received>,
    by_key: HashMap<String, usize>,
    behaviour: Behaviour,
    requests: u64,
    bad_signatures: u64,
}

/// The other side of the webhook channel: records what Jobers sends, deduplicates by
/// `Idempotency-Key` as the contract asks, and can fail, hang or answer as the applicant.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
    release: Arc<Notify>,
    secret: Option<String>,
    link: Arc<Mutex<Option<HubLink>>>,
    pub addr: SocketAddr,
}

impl Simulator {
    /// Serves on `listener` until the process ends. `secret`: the signature every request
    /// must carry (none: unchecked).
    pub async fn start(listener: tokio::net::TcpListener, secret: Option<String>) -> Simulator {
        let addr = listener.local_addr().expect("bound");
        let sim = Simulator {
            state: Arc::new(Mutex::new(SimState::default())),
            release: Arc::new(Notify::new()),
            secret,
            link: Arc::new(Mutex::new(None)),
            addr,
        };
        let app = Router::new()
            .route("/messages", post(receive))
            .route("/health", get(|| async { "ok" }))
            .with_state(sim.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        sim
    }

    /// The URL to put in the account's `settings.url`.
    pub fn url(&self) -> String {
        format!("http://{}/messages", self.addr)
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        self.state.lock().expect("not poisoned").behaviour = b;
    }

    /// Lets held answers go.
    pub fn release(&self) {
        self.state.lock().expect("not poisoned").behaviour.hold = false;
        self.release.notify_waiters();
    }

    pub fn link(&self, link: HubLink) {
        *self.link.lock().expect("not poisoned") = Some(link);
    }

    /// Distinct messages received (by idempotency key), in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("not poisoned").received.clone()
    }

    /// Requests received, repeats included.
    pub fn requests(&self) -> u64 {
        self.state.lock().expect("not poisoned").requests
    }

    pub fn bad_signatures(&self) -> u64 {
        self.state.lock().expect("not poisoned").bad_signatures
    }
}

async fn receive(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secret) = &sim.secret {
        if signing::verify(
            secret,
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            &body,
            now_secs(),
        )
        .is_err()
        {
            sim.state.lock().expect("not poisoned").bad_signatures += 1;
            return (
                StatusCode::UNAUTHORIZED,
                "{\"error\":\"bad signature\"}".into(),
            );
        }
    }
    let Some(key) = header("idempotency-key").map(str::to_string) else {
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"Idempotency-Key required\"}".into(),
        );
    };
    let Ok(payload) = serde_json::from_slice::<OutboundPayload>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "{\"error\":\"malformed body\"}".into(),
        );
    };
    let (id, hold, first) = {
        let mut st = sim.state.lock().expect("not poisoned");
        st.requests += 1;
        if let Some((status, n)) = st.behaviour.fail_next {
            st.behaviour.fail_next = (n > 1).then_some((status, n - 1));
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "{\"error\":\"simulated failure\"}".into(),
            );
        }
        let st = &mut *st;
        let (id, first) = match st.by_key.get(&key) {
            Some(&i) => {
                st.received[i].attempts += 1;
                (st.received[i].provider_id.clone(), false)
            }
            None => {
                let id = format!("sim-{}", st.received.len() + 1);
                let index = st.received.len();
                st.by_key.insert(key.clone(), index);
                st.received.push(Received {
                    payload: payload.clone(),
                    idempotency_key: key.clone(),
                    attempts: 1,
                    provider_id: id.clone(),
                });
                (id, true)
            }
        };
        (id, st.behaviour.hold, first)
    };
    if hold {
        sim.release.notified().await;
    }
    let link = sim.link.lock().expect("not poisoned").clone();
    if let (Some(link), true) = (link, first) {
        tokio::spawn(play_applicant(link, payload, id.clone()));
    }
    (StatusCode::OK, serde_json::json!({ "id": id }).to_string())
}

/// The simulated applicant: the message is delivered, read, and (in the demo) answered.
async fn play_applicant(link: HubLink, payload: OutboundPayload, provider_id: String) {
    let client = reqwest::Client::new();
    let status_url = format!("{}/api/v1/hooks/{}/status", link.base, link.account_id);
    let report = |state: &'static str| StatusPayload {
        message_id: Some(payload.id.clone()),
        provider_message_id: Some(provider_id.clone()),
        state: state.into(),
        reason: None,
    };
    tokio::time::sleep(link.delivered_after).await;
    let body = serde_json::to_vec(&report("delivered")).expect("serialisable");
    let _ = post_signed(&client, &status_url, &link.secret, &body).await;
    tokio::time::sleep(link.read_after.saturating_sub(link.delivered_after)).await;
    let body = serde_json::to_vec(&report("read")).expect("serialisable");
    let _ = post_signed(&client, &status_url, &link.secret, &body).await;
    if let Some(after) = link.reply_after {
        tokio::time::sleep(after).await;
        let answer = InboundPayload {
            id: format!("reply-{}", payload.id),
            from: Sender {
                phone: payload.to.starts_with('+').then(|| payload.to.clone()),
                email: payload.to.contains('@').then(|| payload.to.clone()),
                ..Default::default()
            },
            text: "Спасибо, получил(а). Когда можно подойти на собеседование?".into(),
            html: None,
            subject: None,
            refs: payload.thread_ref.iter().cloned().collect(),
            vacancy: None,
            attachments: Vec::new(),
            auto_submitted: false,
        };
        let url = format!("{}/api/v1/hooks/{}/inbound", link.base, link.account_id);
        let body = serde_json::to_vec(&answer).expect("serialisable");
        let _ = post_signed(&client, &url, &link.secret, &body).await;
    }
}
