//! The channel contract: what the hub hands an adapter to send, what an adapter answers,
//! and how failures are classified (retryable or permanent, and which health class they
//! put the account in — the error classes of the support section of the product seed).
//!
//! Adapters do I/O and format conversion only; they never open the database. Each has a
//! simulator of its provider (used by the demo and the tests).

pub mod boards;
pub mod email;
pub mod signing;
pub mod sms;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the hub knows of a channel account that an adapter needs.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub id: String,
    /// `sms`, `email`, `board`, `chat`.
    pub kind: String,
    /// The adapter: `webhook`, …
    pub provider: String,
    /// The sender the applicant sees.
    pub address: String,
    pub settings: serde_json::Value,
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboundAttachment {
    pub file_name: String,
    pub content_type: String,
    /// Base64 (standard alphabet).
    pub data_base64: String,
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// The same for every attempt of this message: providers that support it deduplicate.
    pub idempotency_key: String,
    /// The applicant's address (phone, email, board id).
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub attachments: Vec<OutboundAttachment>,
    /// What ties the answer to the thread (board negotiation id, reply token).
    pub thread_ref: Option<String>,
    /// Where the provider reports delivery of this message (providers that take a URL
    /// per message: Kannel's dlr-url, Twilio's StatusCallback).
    pub status_callback: Option<String>,
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
}

/// Why an account is unhealthy (R-OPS-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    AuthFailure,
    NoNetwork,
    NoInbound,
    NoOutbound,
    ServiceUnreachable,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::AuthFailure => "auth_failure",
            ErrorClass::NoNetwork => "no_network",
            ErrorClass::NoInbound => "no_inbound",
            ErrorClass::NoOutbound => "no_outbound",
            ErrorClass::ServiceUnreachable => "service_unreachable",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// Try again later (timeouts, refused connections, 5xx, 429).
    #[error("{message}")]
    Retryable { class: ErrorClass, message: String },
    /// The provider refused the credentials: the account needs a new login or key.
    #[error("{message}")]
    Auth { message: String },
    /// The provider refused this message for good (bad number, too long, …).
    #[error("{reason}")]
    Permanent { reason: String },
}

/// The adapters. An enum rather than trait objects: the set is known to the hub.
#[derive(Debug, Clone)]
pub enum Adapter {
    Webhook(webhook::WebhookAdapter),
    Kannel(sms::kannel::KannelAdapter),
    Twilio(sms::twilio::TwilioAdapter),
    SmsRu(sms::smsru::SmsRuAdapter),
}

impl Adapter {
    /// The adapter for an account's provider, or `None` when unknown.
    pub fn for_account(account: &AccountConfig, timeout: Duration) -> Option<Adapter> {
        match account.provider.as_str() {
            "webhook" => Some(Adapter::Webhook(webhook::WebhookAdapter::new(timeout))),
            "kannel" => Some(Adapter::Kannel(sms::kannel::KannelAdapter::new(timeout))),
            "twilio" => Some(Adapter::Twilio(sms::twilio::TwilioAdapter::new(timeout))),
            "smsru" => Some(Adapter::SmsRu(sms::smsru::SmsRuAdapter::new(timeout))),
            _ => None,
        }
    }

    pub async fn send(
        &self,
        account: &AccountConfig,
        message: &OutboundMessage,
    ) -> Result<Accepted, SendError> {
        match self {
            Adapter::Webhook(a) => a.send(account, message).await,
            Adapter::Kannel(a) => a.send(account, message).await,
            Adapter::Twilio(a) => {
                a.send(account, message, message.status_callback.as_deref())
                    .await
            }
            Adapter::SmsRu(a) => a.send(account, message).await,
        }
    }
}

/// The providers an account may name.
pub const PROVIDERS: &[&str] = &["webhook", "kannel", "twilio", "smsru"];

/// An HTTP client for provider calls: every call has a timeout, redirects are not followed.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Classifies an HTTP status of a provider's answer.
pub fn classify_status(status: u16, body: &str) -> SendError {
    let snippet: String = body.chars().take(300).collect();
    match status {
        401 | 403 => SendError::Auth {
            message: format!("the provider refused the credentials ({status}): {snippet}"),
        },
        408 | 425 | 429 => SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("the provider asked to retry later ({status})"),
        },
        s if s >= 500 => SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("the provider failed ({status}): {snippet}"),
        },
        _ => SendError::Permanent {
            reason: format!("the provider refused the message ({status}): {snippet}"),
        },
    }
}

/// Classifies a transport error of an HTTP call.
pub fn classify_transport(err: &reqwest::Error) -> SendError {
    let class = if err.is_connect() {
        ErrorClass::NoNetwork
    } else {
        ErrorClass::ServiceUnreachable
    };
    let what = if err.is_timeout() {
        "the provider did not answer in time"
    } else if err.is_connect() {
        "could not connect to the provider"
    } else if err.is_decode() {
        "the provider's answer could not be read"
    } else {
        "the request to the provider failed"
    };
    SendError::Retryable {
        class,
        message: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(classify_status(401, ""), SendError::Auth { .. }));
        assert!(matches!(classify_status(403, ""), SendError::Auth { .. }));
        assert!(matches!(
            classify_status(429, ""),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            classify_status(503, ""),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            classify_status(400, "bad number"),
            SendError::Permanent { reason } if reason.contains("bad number")
        ));
    }
}
