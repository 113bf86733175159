//! Sending through SMTP (lettre): multipart/alternative text + HTML, attachments, our
//! Message-ID, the reply address carrying the thread token, In-Reply-To / References.

use std::error::Error as _;
use std::io;

use base64::Engine as _;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{bare_message_id, is_token, reply_address, MailboxSettings, Security};
use crate::{ErrorClass, OutboundAttachment, SendError};

/// One email to send.
#[derive(Debug, Clone, Default)]
pub struct OutboundEmail {
    /// The hub's message id: the Message-ID is `<{id}@{domain of the sender}>` and the same
    /// for every attempt. Letters, digits, `-`, `_`, `.`, `=`.
    pub id: String,
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body; when `None`, one is made from the text.
    pub html: Option<String>,
    /// The sender's signature (plain text), appended below `-- ` in both bodies.
    pub signature: Option<String>,
    pub attachments: Vec<OutboundAttachment>,
    /// The thread's reply token: with [`MailboxSettings::reply_domain`] set, Reply-To is
    /// `reply+<token>@<reply_domain>`.
    pub reply_token: Option<String>,
    /// The Message-ID answered (with or without angle brackets).
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first; `in_reply_to` is appended when missing.
    pub references: Vec<String>,
    /// Marks mail not written by a person (bots, automatic notices) with
    /// `Auto-Submitted: auto-generated`, so well-behaved auto-responders stay quiet.
    pub auto_generated: bool,
}

/// The server took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// Without angle brackets: `{id}@{domain}`.
    pub message_id: String,
}

/// The Message-ID (without angle brackets) that `send` gives the message of hub id `id`.
pub fn message_id_for(settings: &MailboxSettings, id: &str) -> String {
    format!("{id}@{}", settings.domain())
}

/// Sends one email. The same `email.id` always yields the same Message-ID, so a resend
/// after an unknown outcome is recognisable by the receiving side.
pub async fn send(
    settings: &MailboxSettings,
    email: &OutboundEmail,
) -> Result<SentEmail, SendError> {
    let message_id = message_id_for(settings, &email.id);
    let message = build(settings, email, &message_id)?;
    let transport = transport(settings)?;
    // lettre applies the timeout to each step; this bounds the whole exchange as well.
    let overall = settings.timeout() * 4;
    match tokio::time::timeout(overall, transport.send(message)).await {
        Ok(Ok(_)) => Ok(SentEmail { message_id }),
        Ok(Err(err)) => Err(classify_smtp_error(&err)),
        Err(_) => Err(SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!(
                "the SMTP server {}:{} did not finish in {} s",
                settings.smtp.host,
                settings.smtp.port,
                overall.as_secs()
            ),
        }),
    }
}

fn permanent(reason: impl Into<String>) -> SendError {
    SendError::Permanent {
        reason: reason.into(),
    }
}

fn build(
    settings: &MailboxSettings,
    email: &OutboundEmail,
    message_id: &str,
) -> Result<Message, SendError> {
    if !is_token(&email.id) {
        return Err(permanent(format!(
            "the message id {:?} cannot be used in a Message-ID",
            email.id
        )));
    }
    let from_addr = settings.address.parse().map_err(|e| {
        permanent(format!(
            "the sender address {:?} is not valid: {e}",
            settings.address
        ))
    })?;
    let to_addr = email
        .to
        .trim()
        .parse()
        .map_err(|e| permanent(format!("the address {:?} is not valid: {e}", email.to)))?;
    let from = Mailbox::new(non_empty(&settings.display_name), from_addr);
    let to = Mailbox::new(email.to_name.as_deref().and_then(non_empty), to_addr);

    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .user_agent("Jobers".to_string());

    if let (Some(token), Some(domain)) = (&email.reply_token, &settings.reply_domain) {
        if !is_token(token) {
            return Err(permanent(format!("the reply token {token:?} is not valid")));
        }
        let reply = reply_address(token, domain)
            .parse()
            .map_err(|e| permanent(format!("the reply address is not valid: {e}")))?;
        builder = builder.reply_to(Mailbox::new(non_empty(&settings.display_name), reply));
    }

    let mut references: Vec<String> = email
        .references
        .iter()
        .map(|r| bare_message_id(r))
        .filter(|r| valid_message_id(r))
        .collect();
    if let Some(parent) = email.in_reply_to.as_deref().map(bare_message_id) {
        if valid_message_id(&parent) {
            builder = builder.in_reply_to(format!("<{parent}>"));
            if !references.contains(&parent) {
                references.push(parent);
            }
        }
    }
    if !references.is_empty() {
        let joined = references
            .iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(" ");
        builder = builder.references(joined);
    }
    if email.auto_generated {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ));
    }

    let (text, html) = bodies(email);
    let alternative = MultiPart::alternative_plain_html(text, html);
    let message = if email.attachments.is_empty() {
        builder.multipart(alternative)
    } else {
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for attachment in &email.attachments {
            mixed = mixed.singlepart(attachment_part(attachment)?);
        }
        builder.multipart(mixed)
    };
    message.map_err(|e| permanent(format!("the message could not be built: {e}")))
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `local@domain` with no spaces or brackets (what may sit between `<` and `>`).
fn valid_message_id(id: &str) -> bool {
    id.contains('@')
        && id.len() <= 998
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
}

fn bodies(email: &OutboundEmail) -> (String, String) {
    let mut text = email.text.clone();
    let mut html = email
        .html
        .clone()
        .unwrap_or_else(|| format!("<div>{}</div>", text_to_html(&email.text)));
    if let Some(signature) = email.signature.as_deref().filter(|s| !s.trim().is_empty()) {
        text = format!("{}\n\n-- \n{}", text.trim_end(), signature.trim_end());
        html = format!(
            "{html}\n<div class=\"jobers-signature\">-- <br>{}</div>",
            text_to_html(signature.trim_end())
        );
    }
    (text, html)
}

/// Escapes text for HTML and keeps its line breaks.
fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn attachment_part(attachment: &OutboundAttachment) -> Result<SinglePart, SendError> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(attachment.data_base64.trim())
        .map_err(|e| {
            permanent(format!(
                "the attachment {:?} is not valid base64: {e}",
                attachment.file_name
            ))
        })?;
    let content_type = ContentType::parse(&attachment.content_type)
        .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("a MIME type"));
    let name = if attachment.file_name.trim().is_empty() {
        "attachment".to_string()
    } else {
        attachment.file_name.clone()
    };
    Ok(Attachment::new(name).body(data, content_type))
}

fn transport(settings: &MailboxSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let smtp = &settings.smtp;
    let tls = match smtp.security {
        Security::Plain => Tls::None,
        Security::Tls | Security::Starttls => {
            let params =
                TlsParameters::new(smtp.host.clone()).map_err(|e| SendError::Retryable {
                    class: ErrorClass::ServiceUnreachable,
                    message: format!("TLS could not be set up for {}: {e}", smtp.host),
                })?;
            if smtp.security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(settings.timeout()));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.clone(),
        ));
    }
    Ok(builder.build())
}

/// SMTP reply codes that refuse the credentials (or demand them).
const AUTH_CODES: &[u16] = &[530, 534, 535, 538];

/// Classifies a failed SMTP exchange: refused credentials need a new login; no connection,
/// timeouts and 4xx are retried; other 5xx refuse this message for good with the server's text.
pub(crate) fn classify_smtp_error(err: &lettre::transport::smtp::Error) -> SendError {
    let text = describe(err);
    if let Some(code) = err.status() {
        let code = u16::from(code);
        if AUTH_CODES.contains(&code) {
            return SendError::Auth {
                message: format!("the SMTP server refused the login: {text}"),
            };
        }
        if (400..500).contains(&code) {
            return SendError::Retryable {
                class: ErrorClass::ServiceUnreachable,
                message: format!("the SMTP server asked to retry later: {text}"),
            };
        }
        return SendError::Permanent {
            reason: format!("the SMTP server refused the message: {text}"),
        };
    }
    if err.is_client() && text.contains("authentication mechanism") {
        return SendError::Auth {
            message: format!("the SMTP server offers no login this client can use: {text}"),
        };
    }
    let io_kind = io_error_kind(err);
    let no_network = text.starts_with("Connection error")
        || matches!(
            io_kind,
            Some(
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::NetworkDown
            )
        );
    if no_network {
        return SendError::Retryable {
            class: ErrorClass::NoNetwork,
            message: format!("could not connect to the SMTP server: {text}"),
        };
    }
    if err.is_timeout() {
        return SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("the SMTP server did not answer in time: {text}"),
        };
    }
    if err.is_tls() {
        return SendError::Retryable {
            class: ErrorClass::ServiceUnreachable,
            message: format!("TLS with the SMTP server failed: {text}"),
        };
    }
    if err.is_client() {
        return SendError::Permanent {
            reason: format!("the message could not be sent: {text}"),
        };
    }
    SendError::Retryable {
        class: ErrorClass::ServiceUnreachable,
        message: format!("the SMTP exchange failed: {text}"),
    }
}

fn describe(err: &lettre::transport::smtp::Error) -> String {
    let text = err.to_string();
    text.chars().take(500).collect()
}

fn io_error_kind(err: &lettre::transport::smtp::Error) -> Option<io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{ImapSettings, SmtpSettings};

    pub(crate) fn settings() -> MailboxSettings {
        MailboxSettings {
            smtp: SmtpSettings {
                host: "127.0.0.1".into(),
                port: 25,
                security: Security::Plain,
                username: String::new(),
                password: String::new(),
            },
            imap: ImapSettings {
                host: "127.0.0.1".into(),
                port: 143,
                security: Security::Plain,
                username: String::new(),
                password: String::new(),
                folder: "INBOX".into(),
            },
            address: "hr@company.example".into(),
            display_name: "Отдел кадров".into(),
            reply_domain: Some("reply.company.example".into()),
            timeout_secs: 5,
        }
    }

    #[test]
    fn message_has_threading_headers_and_parts() {
        let s = settings();
        let email = OutboundEmail {
            id: "0190-abc".into(),
            to: "anna@example.test".into(),
            to_name: Some("Анна Петрова".into()),
            subject: "Приглашение на собеседование".into(),
            text: "Здравствуйте!\nЖдём вас завтра.".into(),
            html: None,
            signature: Some("Мария, HR".into()),
            attachments: vec![OutboundAttachment {
                file_name: "вакансия.pdf".into(),
                content_type: "application/pdf".into(),
                data_base64: base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 x"),
            }],
            reply_token: Some("tok123".into()),
            in_reply_to: Some("<their-1@example.test>".into()),
            references: vec!["first@company.example".into()],
            auto_generated: true,
        };
        let id = message_id_for(&s, &email.id);
        let raw = build(&s, &email, &id).unwrap().formatted();
        let parsed = crate::email::parse_email(&raw);
        assert_eq!(parsed.message_id, "0190-abc@company.example");
        assert_eq!(parsed.in_reply_to.as_deref(), Some("their-1@example.test"));
        assert_eq!(
            parsed.references,
            vec!["first@company.example", "their-1@example.test"]
        );
        assert_eq!(parsed.reply_to, vec!["reply+tok123@reply.company.example"]);
        assert_eq!(parsed.from_name.as_deref(), Some("Отдел кадров"));
        assert_eq!(parsed.subject, "Приглашение на собеседование");
        assert!(
            parsed.text.contains("Ждём вас завтра.\n\n-- \nМария, HR"),
            "{}",
            parsed.text
        );
        let html = parsed.html.unwrap();
        assert!(html.contains("Здравствуйте!<br>"), "{html}");
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].file_name, "вакансия.pdf");
        assert_eq!(parsed.attachments[0].data, b"%PDF-1.4 x");
        assert!(parsed.auto_submitted);
    }

    #[test]
    fn bad_input_is_refused_for_good() {
        let s = settings();
        let mut email = OutboundEmail {
            id: "x y".into(),
            to: "anna@example.test".into(),
            ..Default::default()
        };
        assert!(matches!(
            build(&s, &email, "a@b"),
            Err(SendError::Permanent { .. })
        ));
        email.id = "ok".into();
        email.to = "not an address".into();
        assert!(matches!(
            build(&s, &email, "a@b"),
            Err(SendError::Permanent { .. })
        ));
        email.to = "anna@example.test".into();
        email.attachments.push(OutboundAttachment {
            file_name: "a".into(),
            content_type: "text/plain".into(),
            data_base64: "***".into(),
        });
        assert!(matches!(
            build(&s, &email, "a@b"),
            Err(SendError::Permanent { .. })
        ));
    }

    #[test]
    fn text_becomes_escaped_html() {
        assert_eq!(text_to_html("a<b>&\"\nc"), "a&lt;b&gt;&amp;&quot;<br>\nc");
    }
}
