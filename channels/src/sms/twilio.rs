//! Twilio-compatible Messages API: sending (`POST /2010-04-01/Accounts/{Sid}/Messages.json`,
//! form-encoded, HTTP basic auth with the account SID and auth token), status callbacks and
//! inbound webhooks (form posts signed with `X-Twilio-Signature`).
//!
//! Account settings: `{"account_sid": "AC…", "base_url": "https://api.twilio.com"}`; the
//! account's secret is the auth token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use crate::{classify_transport, Accepted, AccountConfig, ErrorClass, OutboundMessage, SendError};

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + every parameter sorted by name
/// as name+value; a repeated name's values de-duplicated and sorted)).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut data = url.to_string();
    for k in keys {
        let mut values: Vec<&str> = params
            .iter()
            .filter(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
            .collect();
        values.sort_unstable();
        values.dedup();
        for v in values {
            data.push_str(k);
            data.push_str(v);
        }
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a signature in constant time, over the URL as given and with/without the
/// scheme's default port (Twilio signs the URL it called).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    let mut candidates = vec![url.to_string()];
    if let Some(alt) = toggle_default_port(url) {
        candidates.push(alt);
    }
    candidates.iter().any(|u| {
        let expected = signature(auth_token, u, params);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.trim().as_bytes()).into()
    })
}

fn toggle_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    Some(match host.strip_suffix(port) {
        Some(bare) => format!("{scheme}://{bare}{path}"),
        None if !host.contains(':') => format!("{scheme}://{host}{port}{path}"),
        None => return None,
    })
}

#[derive(Debug, Deserialize)]
struct MessageResource {
    sid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorResource {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TwilioAdapter {
    client: reqwest::Client,
}

impl TwilioAdapter {
    pub fn new(timeout: Duration) -> Self {
        TwilioAdapter {
            client: crate::http_client(timeout),
        }
    }

    pub async fn send(
        &self,
        account: &AccountConfig,
        message: &OutboundMessage,
        status_callback: Option<&str>,
    ) -> Result<Accepted, SendError> {
        let setting = |k: &str| account.settings.get(k).and_then(|v| v.as_str());
        let (Some(sid), Some(token)) = (setting("account_sid"), account.secret.as_deref()) else {
            return Err(SendError::Auth {
                message: "the account needs account_sid and an auth token".into(),
            });
        };
        let base = setting("base_url").unwrap_or("https://api.twilio.com");
        let url = format!(
            "{}/2010-04-01/Accounts/{sid}/Messages.json",
            base.trim_end_matches('/')
        );
        let mut form = vec![
            ("To", message.to.as_str()),
            ("From", account.address.as_str()),
            ("Body", message.text.as_str()),
        ];
        if let Some(cb) = status_callback {
            form.push(("StatusCallback", cb));
        }
        let response = self
            .client
            .post(&url)
            .basic_auth(sid, Some(token))
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| classify_transport(&e))?;
        if (200..300).contains(&status) {
            let sid = serde_json::from_str::<MessageResource>(&text)
                .ok()
                .and_then(|m| m.sid);
            return Ok(Accepted {
                provider_message_id: sid,
            });
        }
        let err = serde_json::from_str::<ErrorResource>(&text).ok();
        let what = err
            .as_ref()
            .map(|e| {
                format!(
                    "Twilio error {}: {}",
                    e.code.unwrap_or(0),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_else(|| format!("Twilio answered {status}"));
        Err(match status {
            401 | 403 => SendError::Auth { message: what },
            429 | 408 => SendError::Retryable {
                class: ErrorClass::ServiceUnreachable,
                message: what,
            },
            s if s >= 500 => SendError::Retryable {
                class: ErrorClass::ServiceUnreachable,
                message: what,
            },
            _ => SendError::Permanent { reason: what },
        })
    }
}

/// Maps a Twilio `MessageStatus` to a Jobers delivery state (`None`: nothing to record).
pub fn delivery_state(status: &str) -> Option<&'static str> {
    match status {
        "sent" => Some("sent"),
        "delivered" => Some("delivered"),
        "read" => Some("read"),
        "undelivered" | "failed" | "canceled" => Some("failed"),
        _ => None,
    }
}

/// A message the simulator accepted.
#[derive(Debug, Clone)]
pub struct SimMessage {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
}

struct SimState {
    account_sid: String,
    auth_token: String,
    messages: Vec<SimMessage>,
    /// Report these statuses to the callback after accepting (e.g. sent, delivered).
    report: Vec<&'static str>,
    /// Answer each message as the applicant through this inbound webhook URL (the demo).
    answer: Option<(String, Duration)>,
}

/// A simulator of Twilio's Messages API for the demo and tests: checks basic auth and the
/// `To` number, answers like Twilio (201 with the message resource, or a Twilio error
/// resource), and posts signed status callbacks.
#[derive(Clone)]
pub struct TwilioSimulator {
    state: Arc<Mutex<SimState>>,
    faults: Arc<Mutex<std::collections::VecDeque<super::Fault>>>,
    pub addr: SocketAddr,
}

impl TwilioSimulator {
    pub async fn start(
        listener: tokio::net::TcpListener,
        account_sid: &str,
        auth_token: &str,
    ) -> TwilioSimulator {
        let addr = listener.local_addr().expect("bound");
        let sim = TwilioSimulator {
            state: Arc::new(Mutex::new(SimState {
                account_sid: account_sid.into(),
                auth_token: auth_token.into(),
                messages: Vec::new(),
                report: vec!["sent", "delivered"],
                answer: None,
            })),
            faults: Arc::default(),
            addr,
        };
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(create_message),
            )
            .with_state(sim.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        sim
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn messages(&self) -> Vec<SimMessage> {
        self.state.lock().expect("not poisoned").messages.clone()
    }

    /// Failures to play on the next sends, in order.
    pub fn fail_next(&self, faults: &[super::Fault]) {
        self.faults
            .lock()
            .expect("not poisoned")
            .extend(faults.iter().copied());
    }

    /// Answers every accepted message as its recipient, `after` later, through the
    /// number's inbound webhook `url` (signed like Twilio's).
    pub fn answer_through(&self, url: &str, after: Duration) {
        self.state.lock().expect("not poisoned").answer = Some((url.to_string(), after));
    }

    /// The statuses reported to the callback after each accepted message.
    pub fn set_report(&self, statuses: Vec<&'static str>) {
        self.state.lock().expect("not poisoned").report = statuses;
    }

    /// Signed form post, as Twilio makes them (inbound messages, status callbacks).
    pub async fn post_signed_form(
        client: &reqwest::Client,
        url: &str,
        auth_token: &str,
        params: &[(String, String)],
    ) -> reqwest::Result<reqwest::Response> {
        client
            .post(url)
            .header(SIGNATURE_HEADER, signature(auth_token, url, params))
            .form(params)
            .send()
            .await
    }
}

fn twilio_error(status: StatusCode, code: i64, message: &str) -> (StatusCode, String) {
    (
        status,
        serde_json::json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()}).to_string(),
    )
}

async fn create_message(
    State(sim): State<TwilioSimulator>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    if let Some(answer) = super::play_fault(&sim.faults).await {
        return answer;
    }
    let (account_sid, token) = {
        let st = sim.state.lock().expect("not poisoned");
        (st.account_sid.clone(), st.auth_token.clone())
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{token}"))
    );
    let auth_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !auth_ok || sid != account_sid {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let to = form.get("To").cloned().unwrap_or_default();
    let valid_to = to.starts_with('+')
        && to.len() >= 8
        && to.len() <= 16
        && to[1..].chars().all(|c| c.is_ascii_digit());
    if !valid_to {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let Some(text) = form.get("Body").filter(|b| !b.is_empty()) else {
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let message = SimMessage {
        sid: format!("SM{}", uuid::Uuid::now_v7().simple()),
        to: to.clone(),
        from: form.get("From").cloned().unwrap_or_default(),
        body: text.clone(),
        status_callback: form.get("StatusCallback").cloned(),
    };
    let (report, answer) = {
        let mut st = sim.state.lock().expect("not poisoned");
        st.messages.push(message.clone());
        (st.report.clone(), st.answer.clone())
    };
    if let Some((url, after)) = answer {
        let (to, from, token, account) = (
            message.to.clone(),
            message.from.clone(),
            token.clone(),
            account_sid.clone(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let params = vec![
                ("AccountSid".to_string(), account),
                (
                    "Body".to_string(),
                    "Спасибо! Подойду, как договорились.".to_string(),
                ),
                ("From".to_string(), to),
                (
                    "MessageSid".to_string(),
                    format!("SM{}", uuid::Uuid::now_v7().simple()),
                ),
                ("NumMedia".to_string(), "0".to_string()),
                ("To".to_string(), from),
            ];
            let _ =
                TwilioSimulator::post_signed_form(&reqwest::Client::new(), &url, &token, &params)
                    .await;
        });
    }
    if let Some(cb) = message.status_callback.clone() {
        let (sid, to, token, account) =
            (message.sid.clone(), to.clone(), token.clone(), account_sid);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for status in report {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let params = vec![
                    ("AccountSid".to_string(), account.clone()),
                    ("MessageSid".to_string(), sid.clone()),
                    ("MessageStatus".to_string(), status.to_string()),
                    ("To".to_string(), to.clone()),
                ];
                let _ = TwilioSimulator::post_signed_form(&client, &cb, &token, &params).await;
            }
        });
    }
    (
        StatusCode::CREATED,
        serde_json::json!({
            "sid": message.sid, "account_sid": sid, "to": message.to, "from": message.from,
            "body": message.body, "status": "queued", "num_segments": "1", "direction": "outbound-api",
            "error_code": null, "error_message": null,
        })
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Vectors computed by Twilio's own Python library (`RequestValidator`, twilio 9.13.0).
    #[test]
    fn signatures_match_twilios_library() {
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &p(&[
                    ("CallSid", "CA1234567890ABCDE"),
                    ("Caller", "+12349013030"),
                    ("Digits", "1234"),
                    ("From", "+12349013030"),
                    ("To", "+18005551212")
                ])
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        let t = "test_auth_token_0123456789abcdef";
        let inbound = p(&[
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("Body", "Привет, мир"),
            ("From", "+79001234567"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("To", "+15005550006"),
        ]);
        assert_eq!(
            signature(t, "https://example.test/webhooks/twilio/sms", &inbound),
            "eMbhSjUDt5AMzAUFGSxAMwPvynY="
        );
        assert_eq!(
            signature(
                t,
                "https://example.test/webhooks/twilio/status?ref=42",
                &p(&[
                    ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
                    ("MessageStatus", "delivered"),
                    ("To", "+79001234567")
                ])
            ),
            "HLJkeRXk70LD70Xf/vZEfYlm2ds="
        );
        assert_eq!(
            signature(
                t,
                "https://example.test/m",
                &p(&[("Body", "b"), ("To", "+2"), ("To", "+1")])
            ),
            "ascFA/w5po94NOmxzy9MHgVuXQo="
        );
        assert!(verify(
            t,
            "https://example.test:443/webhooks/twilio/sms",
            &inbound,
            "eMbhSjUDt5AMzAUFGSxAMwPvynY="
        ));
        let mut tampered = inbound.clone();
        tampered[1].1 = "Привет".into();
        assert!(!verify(
            t,
            "https://example.test/webhooks/twilio/sms",
            &tampered,
            "eMbhSjUDt5AMzAUFGSxAMwPvynY="
        ));
        assert!(!verify(
            t,
            "http://example.test/webhooks/twilio/sms",
            &inbound,
            "eMbhSjUDt5AMzAUFGSxAMwPvynY="
        ));
    }

    #[test]
    fn statuses_map_to_delivery_states() {
        assert_eq!(delivery_state("queued"), None);
        assert_eq!(delivery_state("delivered"), Some("delivered"));
        assert_eq!(delivery_state("undelivered"), Some("failed"));
    }
}
