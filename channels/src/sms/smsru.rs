//! SMS.ru: sending (`/sms/send?api_id&to&msg&json=1`) and status polling
//! (`/sms/status?api_id&sms_id&json=1`). SMS.ru has no inbound messages for ordinary
//! accounts; delivery is learnt by polling.
//!
//! Account settings: `{"base_url": "https://sms.ru"}` (optional); the secret is the api_id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{classify_transport, Accepted, AccountConfig, ErrorClass, OutboundMessage, SendError};

fn base(account: &AccountConfig) -> String {
    account
        .settings
        .get("base_url")
        .and_then(|v| v.as_str())
        .unwrap_or("https://sms.ru")
        .trim_end_matches('/')
        .to_string()
}

/// SMS.ru wants numbers without the plus.
fn number(to: &str) -> String {
    to.trim_start_matches('+').to_string()
}

/// SMS.ru status codes → a delivery state (`None`: still on its way).
pub fn delivery_state(code: i64) -> Option<(&'static str, Option<&'static str>)> {
    match code {
        100 | 101 => None,
        102 => Some(("sent", None)),
        103 => Some(("delivered", None)),
        110 => Some(("read", None)),
        104 => Some(("failed", Some("expired: the phone was unreachable"))),
        105 => Some(("failed", Some("deleted by the operator"))),
        106 => Some(("failed", Some("failed at the phone"))),
        107 => Some(("failed", Some("unknown reason"))),
        108 => Some(("failed", Some("rejected"))),
        150 => Some(("failed", Some("no route to this number"))),
        _ => None,
    }
}

fn account_error(code: i64, text: &str) -> SendError {
    let message = format!("SMS.ru error {code}: {text}");
    match code {
        200 | 300 | 301 | 302 => SendError::Auth { message },
        // No money, daily limit, the service is busy: the account cannot send for now.
        201 | 220 | 230 | 231 | 232 => SendError::Retryable {
            class: ErrorClass::NoOutbound,
            message,
        },
        500 | 901 => SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message,
        },
        _ => SendError::Permanent { reason: message },
    }
}

#[derive(Debug, Deserialize)]
struct SendAnswer {
    status: Option<String>,
    status_code: Option<i64>,
    status_text: Option<String>,
    #[serde(default)]
    sms: HashMap<String, PerNumber>,
}

#[derive(Debug, Deserialize)]
struct PerNumber {
    status_code: Option<i64>,
    status_text: Option<String>,
    sms_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SmsRuAdapter {
    client: reqwest::Client,
}

impl SmsRuAdapter {
    pub fn new(timeout: Duration) -> Self {
        SmsRuAdapter {
            client: crate::http_client(timeout),
        }
    }

    pub async fn send(
        &self,
        account: &AccountConfig,
        message: &OutboundMessage,
    ) -> Result<Accepted, SendError> {
        let Some(api_id) = account.secret.as_deref() else {
            return Err(SendError::Auth {
                message: "the account needs an api_id".into(),
            });
        };
        let to = number(&message.to);
        let mut form = vec![
            ("api_id", api_id),
            ("to", to.as_str()),
            ("msg", message.text.as_str()),
            ("json", "1"),
        ];
        if !account.address.is_empty() && !account.address.starts_with('+') {
            // An alphanumeric sender name registered with SMS.ru.
            form.push(("from", account.address.as_str()));
        }
        let response = self
            .client
            .post(format!("{}/sms/send", base(account)))
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| classify_transport(&e))?;
        if status >= 500 {
            return Err(crate::classify_status(status, &text));
        }
        let answer: SendAnswer = serde_json::from_str(&text).map_err(|_| SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("SMS.ru answered something that is not its JSON ({status})"),
        })?;
        if answer.status.as_deref() != Some("OK") {
            return Err(account_error(
                answer.status_code.unwrap_or(0),
                answer.status_text.as_deref().unwrap_or(""),
            ));
        }
        let per = answer.sms.get(&to).ok_or_else(|| SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: "SMS.ru did not report on the number".into(),
        })?;
        match per.status_code {
            Some(100) => Ok(Accepted {
                provider_message_id: per.sms_id.clone(),
            }),
            code => Err(SendError::Permanent {
                reason: format!(
                    "SMS.ru refused the number ({}): {}",
                    code.unwrap_or(0),
                    per.status_text.as_deref().unwrap_or("")
                ),
            }),
        }
    }

    /// Status codes of sent messages by their SMS.ru ids.
    pub async fn statuses(
        &self,
        account: &AccountConfig,
        ids: &[String],
    ) -> Result<HashMap<String, i64>, SendError> {
        let Some(api_id) = account.secret.as_deref() else {
            return Err(SendError::Auth {
                message: "the account needs an api_id".into(),
            });
        };
        let joined = ids.join(",");
        let response = self
            .client
            .post(format!("{}/sms/status", base(account)))
            .form(&[
                ("api_id", api_id),
                ("sms_id", joined.as_str()),
                ("json", "1"),
            ])
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let text = response.text().await.map_err(|e| classify_transport(&e))?;
        let v: Value = serde_json::from_str(&text).map_err(|_| SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: "SMS.ru answered something that is not its JSON".into(),
        })?;
        if v["status"] != "OK" {
            return Err(account_error(
                v["status_code"].as_i64().unwrap_or(0),
                v["status_text"].as_str().unwrap_or(""),
            ));
        }
        let mut out = HashMap::new();
        if let Some(sms) = v["sms"].as_object() {
            for (id, s) in sms {
                if let Some(code) = s["status_code"].as_i64() {
                    out.insert(id.clone(), code);
                }
            }
        }
        Ok(out)
    }
}

struct SimState {
    api_id: String,
    /// id → (number, text, status code)
    messages: Vec<(String, String, String, i64)>,
    /// What the next send's number gets (none: 100 accepted).
    refuse_next: Option<i64>,
}

/// A simulator of SMS.ru's send and status methods: messages move from 100 (queued) to
/// 102 (sent) to 103 (delivered) on each status request.
#[derive(Clone)]
pub struct SmsRuSimulator {
    state: Arc<Mutex<SimState>>,
    faults: Arc<Mutex<std::collections::VecDeque<super::Fault>>>,
    pub addr: SocketAddr,
}

#[derive(Debug, Deserialize)]
struct Params {
    api_id: Option<String>,
    to: Option<String>,
    msg: Option<String>,
    sms_id: Option<String>,
}

impl SmsRuSimulator {
    pub async fn start(listener: tokio::net::TcpListener, api_id: &str) -> SmsRuSimulator {
        let addr = listener.local_addr().expect("bound");
        let sim = SmsRuSimulator {
            state: Arc::new(Mutex::new(SimState {
                api_id: api_id.into(),
                messages: Vec::new(),
                refuse_next: None,
            })),
            faults: Arc::default(),
            addr,
        };
        let app = Router::new()
            .route("/sms/send", get(send).post(send_form))
            .route("/sms/status", get(status).post(status_form))
            .with_state(sim.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        sim
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (id, number, text, status code) of every accepted message.
    pub fn messages(&self) -> Vec<(String, String, String, i64)> {
        self.state.lock().expect("not poisoned").messages.clone()
    }

    /// Failures to play on the next sends, in order.
    pub fn fail_next(&self, faults: &[super::Fault]) {
        self.faults
            .lock()
            .expect("not poisoned")
            .extend(faults.iter().copied());
    }

    /// The next send is refused for its number with this status code (e.g. 207).
    pub fn refuse_next(&self, code: i64) {
        self.state.lock().expect("not poisoned").refuse_next = Some(code);
    }
}

async fn send_form(
    state: State<SmsRuSimulator>,
    axum::Form(p): axum::Form<Params>,
) -> axum::response::Response {
    send(state, Query(p)).await
}

async fn send(
    State(sim): State<SmsRuSimulator>,
    Query(p): Query<Params>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(answer) = super::play_fault(&sim.faults).await {
        return answer.into_response();
    }
    send_accepted(&sim, p).into_response()
}

fn send_accepted(sim: &SmsRuSimulator, p: Params) -> axum::Json<Value> {
    let mut st = sim.state.lock().expect("not poisoned");
    if p.api_id.as_deref() != Some(st.api_id.as_str()) {
        return axum::Json(
            json!({"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"}),
        );
    }
    let to = p.to.unwrap_or_default();
    let text = p.msg.unwrap_or_default();
    if let Some(code) = st.refuse_next.take() {
        return axum::Json(json!({"status": "OK", "status_code": 100, "sms": {
            to.clone(): {"status": "ERROR", "status_code": code, "status_text": "Неправильно указан номер телефона получателя"}
        }, "balance": 100.0}));
    }
    let id = format!("{}-{}", 202600 + st.messages.len(), st.messages.len() + 1);
    st.messages.push((id.clone(), to.clone(), text, 100));
    axum::Json(json!({"status": "OK", "status_code": 100, "sms": {
        to: {"status": "OK", "status_code": 100, "sms_id": id}
    }, "balance": 99.5}))
}

async fn status_form(
    state: State<SmsRuSimulator>,
    axum::Form(p): axum::Form<Params>,
) -> axum::Json<Value> {
    status(state, Query(p)).await
}

async fn status(State(sim): State<SmsRuSimulator>, Query(p): Query<Params>) -> axum::Json<Value> {
    let mut st = sim.state.lock().expect("not poisoned");
    if p.api_id.as_deref() != Some(st.api_id.as_str()) {
        return axum::Json(
            json!({"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"}),
        );
    }
    let mut out = serde_json::Map::new();
    for id in p.sms_id.unwrap_or_default().split(',') {
        match st.messages.iter_mut().find(|m| m.0 == id) {
            Some(m) => {
                m.3 = match m.3 {
                    100 => 102,
                    102 => 103,
                    other => other,
                };
                out.insert(
                    id.into(),
                    json!({"status": "OK", "status_code": m.3, "status_text": ""}),
                );
            }
            None => {
                out.insert(id.into(), json!({"status": "ERROR", "status_code": -1, "status_text": "Сообщение не найдено"}));
            }
        }
    }
    axum::Json(json!({"status": "OK", "status_code": 100, "sms": out, "balance": 99.5}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_states_and_errors() {
        assert_eq!(delivery_state(100), None);
        assert_eq!(delivery_state(103), Some(("delivered", None)));
        assert_eq!(delivery_state(104).map(|s| s.0), Some("failed"));
        assert!(matches!(account_error(200, "x"), SendError::Auth { .. }));
        assert!(matches!(
            account_error(201, "x"),
            SendError::Retryable {
                class: ErrorClass::NoOutbound,
                ..
            }
        ));
        assert!(matches!(
            account_error(207, "x"),
            SendError::Permanent { .. }
        ));
    }
}
