//! Outbox workers: take due entries (with a lease), send them through the channel adapter,
//! and record the outcome — sent, retry later (exponential backoff with jitter), or failed
//! with the provider's reason — and the account's health (R-OPS-2).
//!
//! The message id is the idempotency key of every attempt, so a send interrupted between
//! the provider's acceptance and our record of it (a crash, a SIGKILL) is sent again after
//! the lease runs out and the provider drops the repeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jobers_channels::{AccountConfig, Adapter, ErrorClass, OutboundAttachment, OutboundMessage};
use jobers_channels::{SendError, PROVIDERS};
use rand::Rng;
use tokio::sync::Semaphore;

use super::lease::Lease;
use super::Switch;
use crate::store::{ChannelAccount, HealthReport, OutboxJob};

/// The wait before attempt `attempts + 1`: base × 2^(attempts−1), capped, with ±20 % jitter.
pub fn backoff_ms(base: i64, max: i64, attempts: i64) -> i64 {
    let exp = base.saturating_mul(1i64 << (attempts - 1).clamp(0, 30));
    let capped = exp.min(max).max(1);
    let jitter = rand::thread_rng().gen_range(-(capped / 5)..=(capped / 5));
    (capped + jitter).max(1)
}

pub(super) fn account_config(a: &ChannelAccount) -> AccountConfig {
    AccountConfig {
        id: a.id.clone(),
        kind: a.kind.clone(),
        provider: a.provider.clone(),
        address: a.address.clone(),
        settings: a.settings.clone(),
        secret: a.secret.clone(),
    }
}

pub(super) async fn run(switch: Switch) {
    let workers = switch.config().outbox_workers.max(1);
    let slots = Arc::new(Semaphore::new(workers));
    // Longer than any send can take (the adapter's timeout bounds it), with room to record it.
    let lease_ms = (switch.config().send_timeout_secs as i64 * 2 + 2) * 1000;
    loop {
        // A free worker first, then entries for the free workers: nothing taken waits for a
        // worker while its lease runs.
        let first = tokio::select! {
            // Stopping: no new entries; the sends under way are recorded before the end.
            _ = switch.stopped() => {
                let _ = slots.acquire_many(workers as u32).await;
                return;
            }
            p = slots.clone().acquire_owned() => p.expect("never closed"),
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let jobs = match switch
            .db()
            .claim_outbox(lease_ms, permits.len() as i64)
            .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: claiming entries failed");
                drop(permits);
                switch.pause(Duration::from_secs(1)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            drop(permits);
            let wait = match switch.db().next_outbox_due().await {
                Ok(Some(due)) => (due - crate::store::now_ms()).clamp(5, 1000),
                _ => 1000,
            };
            tokio::select! {
                _ = switch.outbox_notify().notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                _ = switch.stopped() => {}
            }
            continue;
        }
        for (job, permit) in jobs.into_iter().zip(permits) {
            let switch = switch.clone();
            tokio::spawn(async move {
                if let Err(e) = process(&switch, &job).await {
                    tracing::warn!(error = %e, outbox = %job.id, "outbox: recording an attempt failed");
                }
                drop(permit);
            });
        }
    }
}

async fn process(switch: &Switch, job: &OutboxJob) -> anyhow::Result<()> {
    let tdb = switch.db().for_tenant(&job.tenant_id);
    let account = tdb.channel_account(&job.channel_account_id).await?;
    let message = tdb.thread_message(&job.message_id).await?;
    let permanent = |reason: String| async {
        let reason = reason;
        let (_, events) = tdb.outbox_failed(job, &reason).await?;
        switch.publish_events(&job.tenant_id, &events).await;
        anyhow::Ok(())
    };
    // A job board's chat: through the board's connector, the message id as the key.
    if account.provider == "hh" {
        let result = if account.enabled {
            super::boards::send_chat(
                switch,
                &tdb,
                &account,
                &message.thread_id,
                &message.id,
                &message.text,
            )
            .await
            .map(|id| jobers_channels::Accepted {
                provider_message_id: Some(id),
            })
        } else {
            Err(SendError::Retryable {
                class: ErrorClass::NoOutbound,
                message: "the channel account is switched off".into(),
            })
        };
        return record(switch, &tdb, job, &account, result).await;
    }
    let Some(adapter) = Adapter::for_account(
        &account_config(&account),
        Duration::from_secs(switch.config().send_timeout_secs),
    ) else {
        return permanent(format!(
            "no adapter for provider {} (known: {})",
            account.provider,
            PROVIDERS.join(", ")
        ))
        .await;
    };
    let Some(to) = message.remote_address.clone() else {
        return permanent("the message has no recipient address".into()).await;
    };
    if account.kind == "sms" && tdb.opted_out(&to).await? {
        return permanent("the applicant replied STOP: no more SMS to this number".into()).await;
    }
    if account.provider == "email" {
        // A mail exchange may take up to four times the mailbox's timeout: hold the entry
        // that long (plus room to record it), so no other worker sends it meanwhile.
        let secs = account
            .settings
            .get("timeout_secs")
            .and_then(|v| v.as_i64())
            .unwrap_or(30);
        tdb.extend_outbox_lease(job, (secs * 4 + 10) * 1000).await?;
    }
    let mut attachments = Vec::new();
    for a in &message.attachments {
        match switch.blobs().get(&job.tenant_id, &a.upload_id).await {
            Ok(bytes) => attachments.push(OutboundAttachment {
                file_name: a.file_name.clone(),
                content_type: a.content_type.clone(),
                data_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
            Err(e) => {
                return permanent(format!("attachment {} is missing: {e}", a.file_name)).await
            }
        }
    }
    let mut outbound = OutboundMessage {
        idempotency_key: message.id.clone(),
        to,
        subject: message.subject.clone(),
        text: message.text.clone(),
        attachments,
        thread_ref: Some(format!("thread:{}", message.thread_id)),
        status_callback: switch.status_callback(&account, &message.id),
        to_name: None,
        reply_token: None,
        in_reply_to: None,
        references: Vec::new(),
    };
    if account.kind == "email" {
        let thread = tdb.thread(&message.thread_id).await?;
        let (in_reply_to, references) = tdb.email_context(&message.thread_id).await?;
        outbound.reply_token = Some(tdb.reply_token(&message.thread_id).await?);
        outbound.in_reply_to = in_reply_to;
        outbound.references = references;
        outbound.to_name = thread.contact_name.clone();
        if outbound.subject.is_none() {
            let base = thread.subject.clone().unwrap_or_else(|| "Jobers".into());
            let lower = base.to_lowercase();
            outbound.subject = Some(if lower.starts_with("re:") || lower.starts_with("на:") {
                base
            } else {
                format!("Re: {base}")
            });
        }
    }
    let started = std::time::Instant::now();
    let result = if account.enabled {
        adapter.send(&account_config(&account), &outbound).await
    } else {
        Err(SendError::Retryable {
            class: ErrorClass::NoOutbound,
            message: "the channel account is switched off".into(),
        })
    };
    metrics::histogram!("outbox_send_seconds").record(started.elapsed().as_secs_f64());
    let sent_id = result
        .as_ref()
        .ok()
        .and_then(|a| a.provider_message_id.clone());
    record(switch, &tdb, job, &account, result).await?;
    if account.kind == "email" {
        // Recorded sent first; then an answer naming this Message-ID joins the thread.
        if let Some(id) = sent_id {
            tdb.add_thread_ref(&message.thread_id, &format!("msgid:{id}"))
                .await?;
        }
    }
    Ok(())
}

/// Records the outcome of one attempt: sent, retry later, or failed; and the health.
async fn record(
    switch: &Switch,
    tdb: &crate::store::TenantDb,
    job: &OutboxJob,
    account: &ChannelAccount,
    result: Result<jobers_channels::Accepted, SendError>,
) -> anyhow::Result<()> {
    match result {
        Ok(accepted) => {
            // The account first, so whoever sees the message sent sees the account healthy.
            tdb.note_outbound_success(&account.id).await?;
            health(switch, &job.tenant_id, &account.id, HealthReport::OK).await;
            let (_, events) = tdb
                .outbox_sent(job, accepted.provider_message_id.as_deref())
                .await?;
            switch.publish_events(&job.tenant_id, &events).await;
            metrics::counter!("outbox_sent_total").increment(1);
        }
        Err(SendError::Retryable { class, message }) => {
            let cfg = switch.config();
            if job.attempts >= cfg.outbox_max_attempts {
                let reason = format!("{message} (gave up after {} attempts)", job.attempts);
                let (_, events) = tdb.outbox_failed(job, &reason).await?;
                switch.publish_events(&job.tenant_id, &events).await;
            } else {
                let next = crate::store::now_ms()
                    + backoff_ms(
                        cfg.outbox_backoff_ms,
                        cfg.outbox_max_backoff_ms,
                        job.attempts,
                    );
                tdb.outbox_retry(job, &message, next).await?;
                health(
                    switch,
                    &job.tenant_id,
                    &account.id,
                    HealthReport {
                        health: if class == ErrorClass::NoNetwork {
                            "down"
                        } else {
                            "degraded"
                        },
                        class: Some(class.as_str()),
                        error: Some(&message),
                        next_retry_at: Some(next),
                    },
                )
                .await;
            }
            metrics::counter!("outbox_retries_total").increment(1);
        }
        Err(SendError::Auth { message }) => {
            let (_, events) = tdb.outbox_failed(job, &message).await?;
            switch.publish_events(&job.tenant_id, &events).await;
            health(
                switch,
                &job.tenant_id,
                &account.id,
                HealthReport {
                    health: "needs_relogin",
                    class: Some(ErrorClass::AuthFailure.as_str()),
                    error: Some(&message),
                    next_retry_at: None,
                },
            )
            .await;
        }
        Err(SendError::Permanent { reason }) => {
            let (_, events) = tdb.outbox_failed(job, &reason).await?;
            switch.publish_events(&job.tenant_id, &events).await;
        }
    }
    Ok(())
}

/// Every `switch.status_poll_secs`: asks providers that report delivery only when asked
/// (SMS.ru) about messages still on their way, and marks accounts that expect inbound
/// messages but got none for too long (`no_inbound`).
pub(super) async fn poll_statuses(switch: Switch) {
    let every = Duration::from_secs(switch.config().status_poll_secs.max(1));
    // The SMS.ru accounts whose delivery reports this node asks for (one node per account).
    let mut leases: HashMap<String, Option<Lease>> = HashMap::new();
    loop {
        if switch.pause(every).await {
            return;
        }
        let accounts = match switch.db().all_channel_accounts().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "status poll: listing accounts failed");
                continue;
            }
        };
        let now = crate::store::now_ms();
        for account in &accounts {
            // "No responses arriving": nothing came in for longer than the account expects.
            if let Some(limit) = account.inbound_expected_within_s {
                let last = account
                    .last_inbound_at
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(account.created_at.timestamp_millis());
                // A busy account's `last_inbound_at` may be a few seconds behind.
                let silent = now - last > limit * 1000 + crate::store::TOUCH_ACCOUNT_EVERY_MS;
                if silent && account.health == "ok" {
                    let error = format!("no inbound message for more than {limit} s");
                    health_report(&switch, account, "degraded", ErrorClass::NoInbound, &error)
                        .await;
                }
            }
        }
        leases.retain(|id, _| accounts.iter().any(|a| &a.id == id));
        for account in accounts.iter().filter(|a| a.provider == "smsru") {
            let lease = leases.entry(account.id.clone()).or_default();
            let name = || format!("sms-status:{}", account.id);
            if !Lease::hold(lease, &switch, &account.tenant_id, name).await {
                continue;
            }
            if let Err(e) = poll_smsru(&switch, account).await {
                tracing::warn!(error = %e, account = %account.id, "status poll failed");
            }
        }
    }
}

async fn poll_smsru(switch: &Switch, account: &ChannelAccount) -> anyhow::Result<()> {
    let tdb = switch.db().for_tenant(&account.tenant_id);
    let ids = tdb.awaiting_delivery(&account.id, 100).await?;
    if ids.is_empty() {
        return Ok(());
    }
    let adapter = jobers_channels::sms::smsru::SmsRuAdapter::new(Duration::from_secs(
        switch.config().send_timeout_secs,
    ));
    let statuses = match adapter.statuses(&account_config(account), &ids).await {
        Ok(s) => s,
        Err(e) => {
            let (health, class) = match &e {
                SendError::Auth { .. } => ("needs_relogin", ErrorClass::AuthFailure),
                SendError::Retryable { class, .. } => ("degraded", *class),
                SendError::Permanent { .. } => ("degraded", ErrorClass::ServiceUnreachable),
            };
            health_report(switch, account, health, class, &e.to_string()).await;
            return Ok(());
        }
    };
    for (id, code) in statuses {
        if let Some((state, reason)) = jobers_channels::sms::smsru::delivery_state(code) {
            if let Some((_, events)) = tdb
                .delivery_report(&account.id, None, Some(&id), state, reason)
                .await?
            {
                switch.publish_events(&account.tenant_id, &events).await;
            }
        }
    }
    Ok(())
}

async fn health_report(
    switch: &Switch,
    account: &ChannelAccount,
    health_state: &str,
    class: ErrorClass,
    error: &str,
) {
    health(
        switch,
        &account.tenant_id,
        &account.id,
        HealthReport {
            health: health_state,
            class: Some(class.as_str()),
            error: Some(error),
            next_retry_at: Some(
                crate::store::now_ms() + switch.config().status_poll_secs as i64 * 1000,
            ),
        },
    )
    .await;
}

/// Records an account's health and announces a change.
pub(crate) async fn health(switch: &Switch, tenant: &str, account: &str, report: HealthReport<'_>) {
    match switch
        .db()
        .for_tenant(tenant)
        .set_channel_health(account, &report)
        .await
    {
        Ok(Some((_, events))) => switch.publish_events(tenant, &events).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, account, "recording channel health failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..100 {
            let first = backoff_ms(1000, 60_000, 1);
            assert!((800..=1200).contains(&first), "{first}");
            let third = backoff_ms(1000, 60_000, 3);
            assert!((3200..=4800).contains(&third), "{third}");
            let late = backoff_ms(1000, 60_000, 20);
            assert!((48_000..=72_000).contains(&late), "{late}");
        }
    }
}
