//! Mailbox readers: one task per email channel account reads new mail over IMAP (IDLE where
//! the server has it, polling otherwise), hands each message to ingest, and records the
//! IMAP cursor only after the messages read are stored — a restart neither loses nor
//! duplicates mail (a message read twice is dropped by its Message-ID).
//!
//! Threading, in this order: the reply token of a `reply+<token>@…` recipient, then
//! In-Reply-To / References against the Message-IDs Jobers sent, then the sender's address.
//! Bounces mark the original reply failed; auto-replies are stored and flagged.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use jobers_channels::email::{self, Change, ImapCursor, InboundEmail};
use jobers_channels::webhook::{InboundPayload, Sender};
use jobers_channels::{mailbox_of, ErrorClass, OutboundAttachment};

use super::lease::{retry_after, Lease};
use super::outbox::account_config;
use super::Switch;
use crate::store::{ChannelAccount, HealthReport};

/// How long one IDLE (or, without IDLE, one poll interval) lasts.
const WAIT: Duration = Duration::from_secs(25);
/// The wait after a failure before trying again.
const RETRY: Duration = Duration::from_secs(15);

/// Keeps one reader per enabled email account running.
pub(super) async fn supervise(switch: Switch) {
    let mut readers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        match switch.db().all_channel_accounts().await {
            Ok(accounts) => {
                readers.retain(|_, h| !h.is_finished());
                for a in accounts.into_iter().filter(|a| a.provider == "email") {
                    if !readers.contains_key(&a.id) {
                        let s = switch.clone();
                        let id = a.id.clone();
                        readers.insert(id, tokio::spawn(read_mailbox(s, a)));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "mailboxes: listing accounts failed"),
        }
        if switch.pause(Duration::from_secs(2)).await {
            super::end_all(&mut readers).await;
            return;
        }
    }
}

/// Reads one mailbox until its account is switched off or removed.
async fn read_mailbox(switch: Switch, account: ChannelAccount) {
    let tdb = switch.db().for_tenant(&account.tenant_id);
    let mut wait = WAIT.min(Duration::from_secs(switch.config().mail_wait_secs.max(1)));
    // One node at a time reads the mailbox: the one holding its lease.
    let mut lease: Option<Lease> = None;
    loop {
        // Settings may change while the reader runs: read them every round.
        let account = match tdb.channel_account(&account.id).await {
            Ok(a) if a.enabled && a.provider == "email" => a,
            _ => return,
        };
        let name = || format!("mailbox:{}", account.id);
        if !Lease::hold(&mut lease, &switch, &account.tenant_id, name).await {
            tokio::time::sleep(retry_after(&switch)).await;
            continue;
        }
        let mailbox = match mailbox_of(&account_config(&account)) {
            Ok(m) => m,
            Err(e) => {
                report(
                    &switch,
                    &account,
                    "needs_relogin",
                    ErrorClass::AuthFailure,
                    &e,
                )
                .await;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let cursor: Option<ImapCursor> = account
            .sync_state
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok());
        match email::fetch_since(&mailbox, cursor).await {
            Ok((mails, next)) => {
                let mut stored_all = true;
                for mail in mails {
                    if let Err(e) = take(&switch, &account, mail).await {
                        tracing::warn!(error = %e, account = %account.id, "mailbox: storing a message failed");
                        stored_all = false;
                        break;
                    }
                }
                if stored_all && Some(next) != cursor {
                    if let Err(e) = tdb
                        .set_sync_state(&account.id, &serde_json::to_string(&next).expect("json"))
                        .await
                    {
                        tracing::warn!(error = %e, "mailbox: recording the cursor failed");
                    }
                }
                if account.health != "ok" && account.health_class.as_deref() != Some("no_outbound")
                {
                    super::outbox::health(
                        &switch,
                        &account.tenant_id,
                        &account.id,
                        HealthReport::OK,
                    )
                    .await;
                }
                if !stored_all {
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
                wait = WAIT.min(Duration::from_secs(switch.config().mail_wait_secs.max(1)));
                match email::wait_for_change(&mailbox, Some(next), wait).await {
                    Ok(Change::Changed) | Ok(Change::Timeout) => {}
                    Err(_) => tokio::time::sleep(wait).await,
                }
            }
            Err(e) => {
                let health = match &e {
                    email::FetchError::Auth { .. } => "needs_relogin",
                    email::FetchError::Mailbox { .. } => "degraded",
                    email::FetchError::Retryable { class, .. }
                        if *class == ErrorClass::NoNetwork =>
                    {
                        "down"
                    }
                    email::FetchError::Retryable { .. } => "degraded",
                };
                report(&switch, &account, health, e.class(), &e.to_string()).await;
                tokio::time::sleep(RETRY.min(wait * 2)).await;
            }
        }
    }
}

async fn report(
    switch: &Switch,
    account: &ChannelAccount,
    health: &str,
    class: ErrorClass,
    error: &str,
) {
    super::outbox::health(
        switch,
        &account.tenant_id,
        &account.id,
        HealthReport {
            health,
            class: Some(class.as_str()),
            error: Some(error),
            next_retry_at: Some(crate::store::now_ms() + RETRY.as_millis() as i64),
        },
    )
    .await;
}

/// The hub's message id inside one of our Message-IDs (`<id>@domain`).
fn our_message_id(message_id: &str) -> Option<String> {
    let bare = email::bare_message_id(message_id);
    let (local, _) = bare.split_once('@')?;
    uuid::Uuid::parse_str(local).ok().map(|_| local.to_string())
}

/// Stores one message: a bounce fails the reply it names; everything else is ingested.
async fn take(switch: &Switch, account: &ChannelAccount, mail: InboundEmail) -> anyhow::Result<()> {
    let tdb = switch.db().for_tenant(&account.tenant_id);
    if let Some(bounce) = &mail.bounce {
        if bounce.action.eq_ignore_ascii_case("failed") || bounce.action.is_empty() {
            if let Some(ours) = bounce
                .original_message_id
                .as_deref()
                .and_then(our_message_id)
            {
                let reason = format!(
                    "bounced{}: {}",
                    bounce
                        .status
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default(),
                    bounce.reason
                );
                match tdb
                    .delivery_report(&account.id, Some(&ours), None, "failed", Some(&reason))
                    .await
                {
                    Ok(Some((_, events))) => {
                        switch.publish_events(&account.tenant_id, &events).await
                    }
                    Ok(None) | Err(crate::store::StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(());
            }
        }
    }
    if mail.from_address.trim().is_empty() {
        return Ok(());
    }
    let mut refs: Vec<String> = mail
        .reply_tokens
        .iter()
        .map(|t| format!("reply:{t}"))
        .collect();
    for id in mail.in_reply_to.iter().chain(mail.references.iter().rev()) {
        refs.push(format!("msgid:{}", email::bare_message_id(id)));
    }
    let trimmed = email::trim_quoted(&mail.text, mail.html.as_deref());
    let display = trimmed
        .had_quote
        .then(|| trimmed.text_without_quote.clone());
    let external_id = if mail.message_id.trim().is_empty() {
        // No Message-ID: the folder position stands in (it is unique per UIDVALIDITY).
        format!("imap-uid:{}", mail.imap_uid.unwrap_or(0))
    } else {
        email::bare_message_id(&mail.message_id)
    };
    let payload = InboundPayload {
        id: external_id,
        from: Sender {
            name: mail.from_name.clone(),
            email: Some(mail.from_address.clone()),
            ..Default::default()
        },
        text: mail.text.clone(),
        html: mail.html.clone(),
        subject: Some(mail.subject.clone()).filter(|s| !s.is_empty()),
        refs,
        vacancy: None,
        attachments: mail
            .attachments
            .iter()
            .map(|a| OutboundAttachment {
                file_name: a.file_name.clone(),
                content_type: a.content_type.clone(),
                data_base64: base64::engine::general_purpose::STANDARD.encode(&a.data),
            })
            .collect(),
        auto_submitted: mail.auto_submitted,
    };
    match switch
        .ingest_with(
            account,
            payload,
            super::IngestOptions {
                display_text: display,
                assign_to: None,
            },
        )
        .await
    {
        Ok(_) => Ok(()),
        // A message Jobers cannot take (no usable sender address) is skipped, not retried.
        Err(crate::error::ApiError::Unprocessable { code, message }) => {
            tracing::warn!(code, message, account = %account.id, "mailbox: a message was skipped");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}
