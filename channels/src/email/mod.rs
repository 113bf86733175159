//! The email channel family: SMTP sending (lettre), IMAP reading (async-imap, IDLE where the
//! server has it), MIME parsing into [`InboundEmail`] (mail-parser) with threading inputs,
//! auto-reply and bounce (DSN) detection, and display trimming of quoted replies.
//!
//! Like every adapter this module does I/O and format conversion only: the hub stores the
//! [`MailboxSettings`], the IMAP [`ImapCursor`] and the messages. Message-IDs are handled
//! without angle brackets everywhere (`abc@jobers.example`), as mail-parser gives them.
//!
//! Every network step (connect, TLS, greeting, login, each command) has a timeout of
//! [`MailboxSettings::timeout_secs`].

mod imap;
mod parse;
mod send;
mod trim;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use imap::{fetch_since, wait_for_change, Change, FetchError, ImapCursor, FETCH_BATCH};
pub use parse::{parse_email, Bounce, InboundAttachment, InboundEmail};
pub use send::{message_id_for, send, OutboundEmail, SentEmail};
pub use trim::{trim_quoted, Trimmed};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (SMTP 465, IMAP 993).
    Tls,
    /// Plain connection upgraded with STARTTLS, which must succeed (SMTP 587, IMAP 143).
    Starttls,
    /// No encryption at all: only for servers on loopback (tests, a local relay).
    Plain,
}

/// Where and how to send.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: String,
}

/// Where and how to read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: String,
    /// The folder read for answers.
    #[serde(default = "default_folder")]
    pub folder: String,
}

fn default_folder() -> String {
    "INBOX".to_string()
}

fn default_timeout_secs() -> u64 {
    30
}

/// One mailbox of a tenant (the corporate address or a staff member's own): what the hub
/// stores for an email channel account (passwords encrypted at rest by the hub).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxSettings {
    pub smtp: SmtpSettings,
    pub imap: ImapSettings,
    /// The sender address (`hr@company.example`); its domain names our Message-IDs.
    pub address: String,
    /// The sender name the applicant sees.
    pub display_name: String,
    /// When set, replies are asked to `reply+<token>@<reply_domain>` (a domain whose
    /// `reply+…` mail reaches a mailbox Jobers reads).
    #[serde(default)]
    pub reply_domain: Option<String>,
    /// The timeout of every network step.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl MailboxSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// The domain of [`MailboxSettings::address`] (what our Message-IDs end with).
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .filter(|d| !d.is_empty())
            .unwrap_or("jobers.invalid")
    }
}

// Passwords never reach logs.
impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("folder", &self.folder)
            .finish()
    }
}

impl fmt::Debug for MailboxSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxSettings")
            .field("smtp", &self.smtp)
            .field("imap", &self.imap)
            .field("address", &self.address)
            .field("display_name", &self.display_name)
            .field("reply_domain", &self.reply_domain)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// The reply address that carries a thread token: `reply+<token>@<domain>`.
pub fn reply_address(token: &str, reply_domain: &str) -> String {
    format!("reply+{token}@{reply_domain}")
}

/// The token of a `reply+<token>@…` address (any domain), if it is one.
pub fn reply_token_of(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    let prefix = local.get(..6)?;
    if !prefix.eq_ignore_ascii_case("reply+") {
        return None;
    }
    let token = &local[6..];
    (!token.is_empty() && is_token(token)).then(|| token.to_string())
}

/// Characters allowed in reply tokens and in our Message-ID local parts.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// A Message-ID without surrounding whitespace and angle brackets.
pub fn bare_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_tokens_are_read_from_addresses() {
        assert_eq!(
            reply_token_of("reply+t0k-1@reply.jobers.example").as_deref(),
            Some("t0k-1")
        );
        assert_eq!(
            reply_token_of("Reply+ABC@x.example").as_deref(),
            Some("ABC")
        );
        assert_eq!(reply_token_of("reply@x.example"), None);
        assert_eq!(reply_token_of("reply+@x.example"), None);
        assert_eq!(reply_token_of("anna@x.example"), None);
        assert_eq!(reply_token_of("reply+a b@x.example"), None);
        assert_eq!(reply_token_of("reply+abc@"), None);
        assert_eq!(
            reply_address("abc", "reply.jobers.example"),
            "reply+abc@reply.jobers.example"
        );
    }

    #[test]
    fn settings_round_trip_and_hide_passwords() {
        let json = serde_json::json!({
            "smtp": {"host": "smtp.example", "port": 587, "security": "starttls",
                     "username": "hr@example", "password": "p1"},
            "imap": {"host": "imap.example", "port": 993, "security": "tls",
                     "username": "hr@example", "password": "p2"},
            "address": "hr@company.example", "display_name": "HR"
        });
        let s: MailboxSettings = serde_json::from_value(json).unwrap();
        assert_eq!(s.imap.folder, "INBOX");
        assert_eq!(s.timeout_secs, 30);
        assert_eq!(s.reply_domain, None);
        assert_eq!(s.smtp.security, Security::Starttls);
        assert_eq!(s.domain(), "company.example");
        let debug = format!("{s:?}");
        assert!(!debug.contains("p1") && !debug.contains("p2"), "{debug}");
        let back: MailboxSettings =
            serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(bare_message_id(" <a@b> "), "a@b");
    }
}
