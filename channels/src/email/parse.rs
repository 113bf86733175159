//! Parsing a received message (mail-parser) into what the hub threads and stores.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{bare_message_id, reply_token_of};

/// One received email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEmail {
    /// Without angle brackets. A message without one gets `<sha256 of the raw
    /// message>@no-message-id.invalid`, the same on every read (the hub deduplicates by it).
    pub message_id: String,
    pub in_reply_to: Option<String>,
    /// Oldest first, without angle brackets.
    pub references: Vec<String>,
    pub from_address: String,
    pub from_name: Option<String>,
    /// To and Cc addresses.
    pub to: Vec<String>,
    /// Reply-To addresses.
    pub reply_to: Vec<String>,
    /// Tokens of every recipient `reply+<token>@…` (To, Cc, Delivered-To, X-Original-To).
    pub reply_tokens: Vec<String>,
    pub subject: String,
    /// The text body (made from the HTML when the message has no text part).
    pub text: String,
    /// The HTML body as received (the hub sanitises it).
    pub html: Option<String>,
    pub attachments: Vec<InboundAttachment>,
    /// Written by a machine: an auto-reply, a bounce, a list or bulk mail. Stored, but must
    /// never trigger bots or auto-replies.
    pub auto_submitted: bool,
    /// A delivery status notification about one of our messages.
    pub bounce: Option<Bounce>,
    /// The `Date` header, seconds since the epoch.
    pub date: Option<i64>,
    /// The IMAP UID it was read under (set by the reader).
    pub imap_uid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAttachment {
    pub file_name: String,
    pub content_type: String,
    pub data: Vec<u8>,
    /// The Content-ID (without angle brackets) an HTML body refers to as `cid:…`.
    pub content_id: Option<String>,
    /// `Content-Disposition: inline` or referred to by Content-ID.
    pub inline: bool,
}

/// What a delivery status notification (RFC 3464) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    /// The Message-ID of our message it is about (from the returned message or headers).
    pub original_message_id: Option<String>,
    /// The recipient that failed (`Final-Recipient`, else `Original-Recipient`).
    pub recipient: Option<String>,
    /// `failed`, `delayed`, `delivered`, `relayed` or `expanded`: only `failed` means the
    /// message will not arrive.
    pub action: String,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The diagnostic (e.g. `550 5.1.1 User unknown`), else the report's human-readable text.
    pub reason: String,
}

impl Bounce {
    pub fn is_failure(&self) -> bool {
        self.action.eq_ignore_ascii_case("failed")
    }
}

/// Parses a raw RFC 5322 message. Never fails: what cannot be read is left empty.
pub fn parse_email(raw: &[u8]) -> InboundEmail {
    match MessageParser::default().parse(raw) {
        Some(message) => from_message(&message, raw),
        None => InboundEmail {
            message_id: synthetic_message_id(raw),
            in_reply_to: None,
            references: Vec::new(),
            from_address: String::new(),
            from_name: None,
            to: Vec::new(),
            reply_to: Vec::new(),
            reply_tokens: Vec::new(),
            subject: String::new(),
            text: String::from_utf8_lossy(raw).into_owned(),
            html: None,
            attachments: Vec::new(),
            auto_submitted: false,
            bounce: None,
            date: None,
            imap_uid: None,
        },
    }
}

fn synthetic_message_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    format!("{}@no-message-id.invalid", hex::encode(&digest[..16]))
}

fn from_message(message: &Message<'_>, raw: &[u8]) -> InboundEmail {
    let message_id = message
        .message_id()
        .map(bare_message_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| synthetic_message_id(raw));
    let references = id_list(message.references());
    let in_reply_to = id_list(message.in_reply_to()).into_iter().next_back();

    let (from_address, from_name) = message
        .from()
        .and_then(|a| a.first())
        .map(|a| {
            (
                a.address().unwrap_or_default().trim().to_string(),
                a.name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
            )
        })
        .unwrap_or_default();

    let mut to = Vec::new();
    for address in [message.to(), message.cc()].into_iter().flatten() {
        push_addresses(&mut to, address);
    }
    let mut reply_to = Vec::new();
    if let Some(address) = message.reply_to() {
        push_addresses(&mut reply_to, address);
    }

    let mut recipients = to.clone();
    if let Some(address) = message.bcc() {
        push_addresses(&mut recipients, address);
    }
    for name in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        for value in message.header_values(name) {
            if let Some(text) = value.as_text() {
                recipients.extend(text.split(',').map(bare_address));
            }
        }
    }
    let mut reply_tokens = Vec::new();
    for r in &recipients {
        if let Some(token) = reply_token_of(r) {
            if !reply_tokens.contains(&token) {
                reply_tokens.push(token);
            }
        }
    }

    let text = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .map(|t| t.replace("\r\n", "\n"))
        .collect::<Vec<_>>()
        .join("\n");
    let html_parts: Vec<String> = message
        .html_bodies()
        .filter_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        })
        .collect();
    let html = (!html_parts.is_empty()).then(|| html_parts.join("\n"));

    let attachments = attachments(message, html.as_deref());
    let bounce = bounce(message);
    let auto_submitted = bounce.is_some() || is_automatic(message, &from_address);

    InboundEmail {
        message_id,
        in_reply_to,
        references,
        from_address,
        from_name,
        to,
        reply_to,
        reply_tokens,
        subject: message.subject().unwrap_or_default().trim().to_string(),
        text,
        html,
        attachments,
        auto_submitted,
        bounce,
        date: message.date().map(|d| d.to_timestamp()),
        imap_uid: None,
    }
}

fn push_addresses(out: &mut Vec<String>, address: &Address<'_>) {
    for a in address.iter() {
        if let Some(addr) = a.address() {
            let addr = addr.trim().to_string();
            if !addr.is_empty() && !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
}

/// `Name <a@b>` or `<a@b>` or `a@b` → `a@b`.
fn bare_address(s: &str) -> String {
    let s = s.trim();
    match (s.rfind('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => s[open + 1..close].trim().to_string(),
        _ => s.to_string(),
    }
}

/// Message-IDs of In-Reply-To / References, however the header was written.
fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    let items: Vec<String> = match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        // mail-parser splits `<a> <b>`; a loose header may still hold several ids.
        for id in item.split(|c: char| c.is_whitespace() || c == ',') {
            let id = bare_message_id(id);
            if !id.is_empty() && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// Auto-replies, list and bulk mail, and mail from the mail system itself (RFC 3834 and the
/// headers Exchange, Gmail and the common auto-responders set).
fn is_automatic(message: &Message<'_>, from: &str) -> bool {
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(v) = header("Auto-Submitted") {
        let kind = v.split(';').next().unwrap_or("").trim();
        if !kind.is_empty() && kind != "no" {
            return true;
        }
    }
    for name in ["Precedence", "X-Precedence"] {
        if let Some(v) = header(name) {
            if matches!(
                v.as_str(),
                "bulk" | "junk" | "list" | "auto_reply" | "auto-reply"
            ) {
                return true;
            }
        }
    }
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Auto-Reply",
    ] {
        if header(name).is_some_and(|v| v != "no" && v != "false") {
            return true;
        }
    }
    if let Some(v) = header("X-Auto-Response-Suppress") {
        // Exchange marks its own automatic mail (out-of-office, notices) with these.
        if v.split(',')
            .any(|p| matches!(p.trim(), "all" | "oof" | "autoreply"))
        {
            return true;
        }
    }
    if header("List-Id").is_some() || header("List-Unsubscribe").is_some() {
        return true;
    }
    if header("Feedback-Type").is_some() {
        return true;
    }
    if let Some(v) = header("Return-Path") {
        if v == "<>" {
            return true;
        }
    }
    let local = from
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(from)
        .to_ascii_lowercase();
    if matches!(local.as_str(), "mailer-daemon" | "postmaster") {
        return true;
    }
    let subject = message.subject().unwrap_or_default().trim().to_lowercase();
    const SUBJECTS: &[&str] = &[
        "auto:",
        "automatic reply:",
        "autoreply:",
        "auto-reply:",
        "out of office",
        "автоответ",
        "автоматический ответ",
    ];
    SUBJECTS.iter().any(|p| subject.starts_with(p))
}

fn attachments(message: &Message<'_>, html: Option<&str>) -> Vec<InboundAttachment> {
    let mut out = Vec::new();
    for (n, part) in message.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_string())
            .to_ascii_lowercase();
        let content_id = part
            .content_id()
            .map(bare_message_id)
            .filter(|c| !c.is_empty());
        let referred = content_id
            .as_deref()
            .is_some_and(|cid| html.is_some_and(|h| h.contains(&format!("cid:{cid}"))));
        let inline = referred
            || part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let file_name = part
            .attachment_name()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_name(n + 1, &content_type));
        out.push(InboundAttachment {
            file_name,
            content_type,
            data: part.contents().to_vec(),
            content_id,
            inline,
        });
    }
    out
}

fn default_name(n: usize, content_type: &str) -> String {
    let ext = match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "message/rfc822" => "eml",
        "text/rfc822-headers" => "txt",
        "message/delivery-status" => "txt",
        _ => "bin",
    };
    format!("attachment-{n}.{ext}")
}

/// A multipart/report; report-type=delivery-status (or global-delivery-status).
fn bounce(message: &Message<'_>) -> Option<Bounce> {
    let ct = message.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("multipart")
        || !ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return None;
    }
    let report_type = ct
        .attribute("report-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if report_type != "delivery-status" && report_type != "global-delivery-status" {
        return None;
    }
    let mut status_text: Option<String> = None;
    let mut human: Option<String> = None;
    let mut original_message_id: Option<String> = None;
    for (i, part) in message.parts.iter().enumerate() {
        if i == 0 {
            continue;
        }
        let (ctype, sub) = part
            .content_type()
            .map(|c| {
                (
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or("").to_ascii_lowercase(),
                )
            })
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        match (ctype.as_str(), sub.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                status_text
                    .get_or_insert_with(|| String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") => {
                if let PartType::Message(inner) = &part.body {
                    if original_message_id.is_none() {
                        original_message_id = inner.message_id().map(bare_message_id);
                    }
                }
            }
            ("text" | "message", "rfc822-headers") if original_message_id.is_none() => {
                let mut headers = part.contents().to_vec();
                headers.extend_from_slice(b"\r\n\r\n");
                original_message_id = MessageParser::default()
                    .parse_headers(&headers)
                    .and_then(|m| m.message_id().map(bare_message_id));
            }
            ("text", "plain") if human.is_none() => {
                human = part.text_contents().map(|t| t.trim().to_string());
            }
            _ => {}
        }
    }
    let fields = status_text.map(|t| dsn_fields(&t)).unwrap_or_default();
    let reason = fields
        .diagnostic
        .clone()
        .or_else(|| {
            human
                .as_deref()
                .map(|h| {
                    h.lines()
                        .filter(|l| !l.trim().is_empty())
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| {
            format!(
                "delivery {} ({})",
                fields.action.as_deref().unwrap_or("failed"),
                fields.status.as_deref().unwrap_or("no status")
            )
        });
    Some(Bounce {
        original_message_id: original_message_id.filter(|id| !id.is_empty()),
        recipient: fields.recipient,
        action: fields.action.unwrap_or_else(|| "failed".to_string()),
        status: fields.status,
        reason: reason.chars().take(1000).collect(),
    })
}

#[derive(Default)]
struct DsnFields {
    recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

/// The first per-recipient block of a message/delivery-status body, preferring a failed one.
fn dsn_fields(text: &str) -> DsnFields {
    // Unfold continuation lines, then split into blocks at blank lines.
    let mut blocks: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !blocks.last().is_some_and(|b| b.is_empty()) {
                blocks.push(Vec::new());
            }
            continue;
        }
        let block = blocks.last_mut().expect("a block");
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let get = |block: &[(String, String)], name: &str| {
        block
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let recipient_blocks: Vec<&Vec<(String, String)>> = blocks
        .iter()
        .filter(|b| get(b, "final-recipient").is_some() || get(b, "action").is_some())
        .collect();
    let Some(block) = recipient_blocks
        .iter()
        .find(|b| get(b, "action").is_some_and(|a| a.eq_ignore_ascii_case("failed")))
        .or(recipient_blocks.first())
    else {
        return DsnFields::default();
    };
    // `rfc822; anna@example.test` → `anna@example.test`; `smtp; 550 …` → `550 …`.
    let after_type = |v: String| match v.split_once(';') {
        Some((_, rest)) => rest.trim().to_string(),
        None => v.trim().to_string(),
    };
    DsnFields {
        recipient: get(block, "final-recipient")
            .or_else(|| get(block, "original-recipient"))
            .map(after_type)
            .map(|r| bare_address(&r)),
        action: get(block, "action").map(|a| a.to_ascii_lowercase()),
        status: get(block, "status").map(|s| s.split_whitespace().next().unwrap_or("").to_string()),
        diagnostic: get(block, "diagnostic-code")
            .map(after_type)
            .filter(|d| !d.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GMAIL_REPLY: &str = "Return-Path: <anna@example.test>\r
Delivered-To: reply+t0k@jobers.test\r
MIME-Version: 1.0\r
Date: Mon, 1 Dec 2025 10:15:00 +0300\r
References: <first@jobers.test> <m-2@jobers.test>\r
In-Reply-To: <m-2@jobers.test>\r
Message-ID: <CAF=abc123@mail.gmail.com>\r
Subject: Re: =?UTF-8?B?0J/RgNC40LPQu9Cw0YjQtdC90LjQtQ==?=\r
From: =?UTF-8?B?0JDQvdC90LA=?= <anna@example.test>\r
To: HR <reply+t0k@jobers.test>\r
Content-Type: multipart/alternative; boundary=\"000000000000abc\"\r
\r
--000000000000abc\r
Content-Type: text/plain; charset=\"UTF-8\"\r
Content-Transfer-Encoding: 8bit\r
\r
Да, приду.\r
\r
On Mon, 1 Dec 2025 at 10:00, HR <hr@jobers.test> wrote:\r
> Ждём вас завтра.\r
\r
--000000000000abc\r
Content-Type: text/html; charset=\"UTF-8\"\r
\r
<div dir=\"ltr\">Да, приду.</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Mon, 1 Dec 2025 at 10:00, HR &lt;hr@jobers.test&gt; wrote:<br></div><blockquote class=\"gmail_quote\">Ждём вас завтра.</blockquote></div>\r
--000000000000abc--\r
";

    #[test]
    fn a_gmail_reply_is_parsed() {
        let e = parse_email(GMAIL_REPLY.as_bytes());
        assert_eq!(e.message_id, "CAF=abc123@mail.gmail.com");
        assert_eq!(e.in_reply_to.as_deref(), Some("m-2@jobers.test"));
        assert_eq!(e.references, vec!["first@jobers.test", "m-2@jobers.test"]);
        assert_eq!(e.from_address, "anna@example.test");
        assert_eq!(e.from_name.as_deref(), Some("Анна"));
        assert_eq!(e.to, vec!["reply+t0k@jobers.test"]);
        assert_eq!(e.reply_tokens, vec!["t0k"]);
        assert_eq!(e.subject, "Re: Приглашение");
        assert!(e.text.starts_with("Да, приду."));
        assert!(e.html.as_deref().unwrap().contains("gmail_quote"));
        assert!(!e.auto_submitted);
        assert!(e.bounce.is_none());
        assert_eq!(e.date, Some(1764573300));
    }

    #[test]
    fn auto_replies_are_flagged() {
        let base = "From: anna@example.test\r\nTo: hr@jobers.test\r\nMessage-ID: <x@y>\r\n";
        for (header, auto) in [
            ("Auto-Submitted: auto-replied\r\n", true),
            ("Auto-Submitted: no\r\n", false),
            ("Precedence: bulk\r\n", true),
            ("Precedence: junk\r\n", true),
            ("Precedence: list\r\n", true),
            ("X-Autoreply: yes\r\n", true),
            ("X-Auto-Response-Suppress: All\r\n", true),
            ("List-Id: <jobs.example.test>\r\n", true),
            ("Return-Path: <>\r\n", true),
            ("Subject: Автоматический ответ: Приглашение\r\n", true),
            ("Subject: Automatic reply: Interview\r\n", true),
            ("Subject: Re: Interview\r\n", false),
        ] {
            let raw = format!("{base}{header}\r\nHello\r\n");
            assert_eq!(parse_email(raw.as_bytes()).auto_submitted, auto, "{header}");
        }
        let raw = "From: MAILER-DAEMON@mx.example.test\r\nSubject: Undelivered\r\n\r\nx\r\n";
        assert!(parse_email(raw.as_bytes()).auto_submitted);
    }

    #[test]
    fn a_message_without_message_id_gets_a_stable_one() {
        let raw = b"From: anna@example.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let a = parse_email(raw);
        assert!(a.message_id.ends_with("@no-message-id.invalid"));
        assert_eq!(a.message_id, parse_email(raw).message_id);
        assert_eq!(a.text.trim(), "body");
    }

    #[test]
    fn a_dsn_with_headers_only_is_read() {
        let raw = "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r
To: hr@jobers.test\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <dsn-1@mx.example.test>\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r
\r
--B\r
Content-Type: text/plain\r
\r
This is the mail system at host mx.example.test.\r
I'm sorry to have to inform you that your message could not be delivered.\r
--B\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.test\r
Arrival-Date: Mon, 1 Dec 2025 10:00:00 +0300\r
\r
Final-Recipient: rfc822; gone@example.test\r
Original-Recipient: rfc822;gone@example.test\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.test>: Recipient address\r
    rejected: User unknown\r
--B\r
Content-Type: text/rfc822-headers\r
\r
From: HR <hr@jobers.test>\r
To: gone@example.test\r
Subject: Interview\r
Message-ID: <m-77@jobers.test>\r
--B--\r
";
        let e = parse_email(raw.as_bytes());
        let b = e.bounce.expect("a bounce");
        assert!(e.auto_submitted);
        assert_eq!(b.original_message_id.as_deref(), Some("m-77@jobers.test"));
        assert_eq!(b.recipient.as_deref(), Some("gone@example.test"));
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert!(b.is_failure());
        assert_eq!(
            b.reason,
            "550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown"
        );
    }

    #[test]
    fn inline_images_keep_their_content_id() {
        let raw = "From: anna@example.test\r
Message-ID: <i@example.test>\r
Content-Type: multipart/related; boundary=\"R\"\r
\r
--R\r
Content-Type: text/html; charset=utf-8\r
\r
<p>Фото: <img src=\"cid:photo1@example.test\"></p>\r
--R\r
Content-Type: image/png\r
Content-Transfer-Encoding: base64\r
Content-ID: <photo1@example.test>\r
\r
iVBORw0KGgo=\r
--R--\r
";
        let e = parse_email(raw.as_bytes());
        assert_eq!(e.attachments.len(), 1);
        let a = &e.attachments[0];
        assert_eq!(a.content_id.as_deref(), Some("photo1@example.test"));
        assert!(a.inline);
        assert_eq!(a.content_type, "image/png");
        assert_eq!(a.data, b"\x89PNG\r\n\x1a\n");
        assert_eq!(a.file_name, "attachment-1.png");
        assert!(e.text.contains("Фото:"), "{}", e.text);
    }
}
