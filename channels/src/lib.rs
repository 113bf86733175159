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
    /// Email: the applicant's name, the thread's reply token, the Message-ID answered and
    /// the thread's Message-IDs (oldest first).
    pub to_name: Option<String>,
    pub reply_token: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
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
    Email,
}

impl Adapter {
    /// The adapter for an account's provider, or `None` when unknown.
    pub fn for_account(account: &AccountConfig, timeout: Duration) -> Option<Adapter> {
        match account.provider.as_str() {
            "webhook" => Some(Adapter::Webhook(webhook::WebhookAdapter::new(timeout))),
            "kannel" => Some(Adapter::Kannel(sms::kannel::KannelAdapter::new(timeout))),
            "twilio" => Some(Adapter::Twilio(sms::twilio::TwilioAdapter::new(timeout))),
            "smsru" => Some(Adapter::SmsRu(sms::smsru::SmsRuAdapter::new(timeout))),
            "email" => Some(Adapter::Email),
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
            Adapter::Email => {
                let mailbox = mailbox_of(account).map_err(|m| SendError::Auth { message: m })?;
                let sent = email::send(
                    &mailbox,
                    &email::OutboundEmail {
                        id: message.idempotency_key.clone(),
                        to: message.to.clone(),
                        to_name: message.to_name.clone(),
                        subject: message.subject.clone().unwrap_or_default(),
                        text: message.text.clone(),
                        html: None,
                        signature: None,
                        attachments: message.attachments.clone(),
                        reply_token: message.reply_token.clone(),
                        in_reply_to: message.in_reply_to.clone(),
                        references: message.references.clone(),
                        auto_generated: false,
                    },
                )
                .await?;
                Ok(Accepted {
                    provider_message_id: Some(sent.message_id),
                })
            }
        }
    }
}

/// The providers an account may name.
pub const PROVIDERS: &[&str] = &["webhook", "kannel", "twilio", "smsru", "email"];

/// The passwords of a mailbox, kept as the account's secret (sealed by the hub).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailboxPasswords {
    pub smtp_password: String,
    pub imap_password: String,
}

/// Splits mailbox settings into what is stored openly and the passwords.
pub fn split_mailbox(
    mut settings: email::MailboxSettings,
) -> (serde_json::Value, MailboxPasswords) {
    let passwords = MailboxPasswords {
        smtp_password: std::mem::take(&mut settings.smtp.password),
        imap_password: std::mem::take(&mut settings.imap.password),
    };
    (
        serde_json::to_value(&settings).expect("serialisable"),
        passwords,
    )
}

/// The mailbox of an email account: its settings with the passwords from its secret.
pub fn mailbox_of(account: &AccountConfig) -> Result<email::MailboxSettings, String> {
    let mut mailbox: email::MailboxSettings = serde_json::from_value(account.settings.clone())
        .map_err(|e| format!("the mailbox settings are incomplete: {e}"))?;
    let passwords: MailboxPasswords = account
        .secret
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| "the mailbox passwords are missing".to_string())?;
    mailbox.smtp.password = passwords.smtp_password;
    mailbox.imap.password = passwords.imap_password;
    Ok(mailbox)
}

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
