//! The outbox (R-HUB-4): replies waiting to be sent. A reply and its entry are written in
//! one transaction (`threads.rs`); workers on any node take due entries with a lease, so
//! an entry held by a worker that died is taken again when its lease runs out.

use sqlx::FromRow;

use super::events::{push_event, Audience, StoredEvent};
use super::rooms::to_json;
use super::threads::ThreadMessage;
use super::{now_ms, Db, StoreError, StoreResult, TenantDb};

/// One entry taken by a worker.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxJob {
    pub id: String,
    pub tenant_id: String,
    pub message_id: String,
    pub channel_account_id: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// Delivery states in the order they happen; a report never moves a message backwards.
fn rank(state: &str) -> i32 {
    match state {
        "queued" => 0,
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        _ => -1,
    }
}

impl Db {
    /// Takes up to `limit` due entries for `lease_ms`.
    pub async fn claim_outbox(&self, lease_ms: i64, limit: i64) -> StoreResult<Vec<OutboxJob>> {
        let now = now_ms();
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let (mut tx, _gate) = self.begin_write().await?;
        let mut jobs = Vec::with_capacity(candidates.len());
        for id in candidates {
            // Conditional: another node may have taken it meanwhile.
            let job: Option<OutboxJob> = sqlx::query_as(
                "UPDATE outbox SET locked_until = $2, attempts = attempts + 1, updated_at = $3 \
                 WHERE id = $1 AND state = 'pending' AND (locked_until IS NULL OR locked_until < $3) \
                 RETURNING id, tenant_id, message_id, channel_account_id, attempts",
            )
            .bind(&id)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            jobs.extend(job);
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// When the next entry falls due (ms), for a worker deciding how long to sleep.
    pub async fn next_outbox_due(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at \
             THEN locked_until ELSE next_attempt_at END) FROM outbox WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

impl TenantDb {
    /// Sets a message's delivery state (and reason) and announces it.
    async fn set_delivery(
        &self,
        message_id: &str,
        state: &str,
        reason: Option<&str>,
        provider_id: Option<&str>,
        outbox: Option<(&str, &str, Option<&str>, Option<i64>)>,
    ) -> StoreResult<(ThreadMessage, Vec<StoredEvent>)> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let now = now_ms();
        // Decided under the tenant's lock: a report that arrived meanwhile is not undone.
        let current: Option<String> = sqlx::query_scalar(
            "SELECT delivery_state FROM thread_messages WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        let current = current.unwrap_or_else(|| "queued".into());
        let backwards = match state {
            // Retry (failed → queued) is the one deliberate step back.
            "queued" => current != "failed" && current != "queued",
            "failed" => rank(&current) >= rank("delivered"),
            s => rank(s) < rank(&current) && current != "failed",
        };
        let state = if backwards { current.as_str() } else { state };
        let reason = if backwards { None } else { reason };
        if let Some((outbox_id, outbox_state, error, next_at)) = outbox {
            sqlx::query(
                "UPDATE outbox SET state = $3, last_error = $4, next_attempt_at = COALESCE($5, next_attempt_at), \
                 attempts = CASE WHEN $3 = 'pending' THEN 0 ELSE attempts END, \
                 locked_until = NULL, updated_at = $6 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&self.tenant_id)
            .bind(outbox_id)
            .bind(outbox_state)
            .bind(error)
            .bind(next_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE thread_messages SET delivery_state = $3, \
             failure_reason = CASE WHEN $3 = delivery_state AND $4 IS NULL THEN failure_reason ELSE $4 END, \
             provider_message_id = COALESCE($5, provider_message_id), updated_at = $6 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(message_id)
        .bind(state)
        .bind(reason)
        .bind(provider_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let message = self.message_in(&mut tx, message_id).await?;
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "thread.message_updated",
            Audience::Tenant,
            to_json(&message),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok((message, events))
    }

    /// The provider accepted the message.
    pub async fn outbox_sent(
        &self,
        job: &OutboxJob,
        provider_id: Option<&str>,
    ) -> StoreResult<(ThreadMessage, Vec<StoredEvent>)> {
        // A delivery report may have come first: `set_delivery` keeps the later state.
        self.set_delivery(
            &job.message_id,
            "sent",
            None,
            provider_id,
            Some((&job.id, "done", None, None)),
        )
        .await
    }

    /// A retryable failure: the entry waits until `next_at`. The message stays queued; the
    /// reason is kept on the entry (and shown with the message).
    pub async fn outbox_retry(
        &self,
        job: &OutboxJob,
        error: &str,
        next_at: i64,
    ) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "UPDATE outbox SET last_error = $3, next_attempt_at = $4, locked_until = NULL, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 AND state = 'pending' AND attempts = $6",
        )
        .bind(&self.tenant_id)
        .bind(&job.id)
        .bind(error)
        .bind(next_at)
        .bind(now_ms())
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Holds a taken entry longer (a send that may take longer than the default lease).
    pub async fn extend_outbox_lease(&self, job: &OutboxJob, ms: i64) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "UPDATE outbox SET locked_until = $3 WHERE tenant_id = $1 AND id = $2 AND attempts = $4 AND state = 'pending'",
        )
        .bind(&self.tenant_id)
        .bind(&job.id)
        .bind(now_ms() + ms)
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A permanent failure (or retries exhausted): the message fails with the reason.
    pub async fn outbox_failed(
        &self,
        job: &OutboxJob,
        reason: &str,
    ) -> StoreResult<(ThreadMessage, Vec<StoredEvent>)> {
        self.set_delivery(
            &job.message_id,
            "failed",
            Some(reason),
            None,
            Some((&job.id, "failed", Some(reason), None)),
        )
        .await
    }

    /// "Retry" on a failed message: the same entry is sent again (the provider sees the
    /// same idempotency key).
    pub async fn retry_message(
        &self,
        message_id: &str,
    ) -> StoreResult<(ThreadMessage, Vec<StoredEvent>)> {
        let m = self.thread_message(message_id).await?;
        if m.delivery_state.as_deref() != Some("failed") {
            return Err(StoreError::Conflict("message_not_failed".into()));
        }
        let outbox_id: String =
            sqlx::query_scalar("SELECT id FROM outbox WHERE tenant_id = $1 AND message_id = $2")
                .bind(&self.tenant_id)
                .bind(message_id)
                .fetch_one(self.pool())
                .await?;
        // The entry goes back to pending with the message's state, in one transaction.
        self.set_delivery(
            message_id,
            "queued",
            None,
            None,
            Some((&outbox_id, "pending", None, Some(now_ms()))),
        )
        .await
    }

    /// A delivery report from the provider (by our message id or the provider's).
    /// Returns `None` when the report changes nothing (old, repeated or out of order).
    pub async fn delivery_report(
        &self,
        account_id: &str,
        message_id: Option<&str>,
        provider_id: Option<&str>,
        state: &str,
        reason: Option<&str>,
    ) -> StoreResult<Option<(ThreadMessage, Vec<StoredEvent>)>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM thread_messages WHERE tenant_id = $1 AND channel_account_id = $2 AND direction = 'out' \
             AND (id = $3 OR ($4 IS NOT NULL AND provider_message_id = $4)) LIMIT 1",
        )
        .bind(&self.tenant_id)
        .bind(account_id)
        .bind(message_id.unwrap_or(""))
        .bind(provider_id)
        .fetch_optional(self.pool())
        .await?;
        let id = id.ok_or(StoreError::NotFound)?;
        let current = self.thread_message(&id).await?;
        let now_state = current.delivery_state.as_deref().unwrap_or("queued");
        let moves = match state {
            "failed" => rank(now_state) < rank("delivered") && now_state != "failed",
            s => rank(s) > rank(now_state),
        };
        if !moves {
            return Ok(None);
        }
        Ok(Some(
            self.set_delivery(&id, state, reason, provider_id, None)
                .await?,
        ))
    }

    /// Provider ids of replies through `account_id` still on their way (sent, not yet
    /// delivered or failed, in the last two days), oldest first, for providers that are
    /// asked about delivery. Delivered ones are not asked again, so they never crowd out
    /// newer ones.
    pub async fn awaiting_delivery(
        &self,
        account_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT provider_message_id FROM thread_messages WHERE tenant_id = $1 AND channel_account_id = $2 \
             AND direction = 'out' AND delivery_state = 'sent' AND provider_message_id IS NOT NULL \
             AND updated_at > $3 ORDER BY updated_at LIMIT $4",
        )
        .bind(&self.tenant_id)
        .bind(account_id)
        .bind(now_ms() - 48 * 3600 * 1000)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The outbox entry of a message: attempts and last error (shown while retrying).
    pub async fn outbox_state(
        &self,
        message_id: &str,
    ) -> StoreResult<Option<(String, i64, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT state, attempts, last_error FROM outbox WHERE tenant_id = $1 AND message_id = $2",
        )
        .bind(&self.tenant_id)
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?)
    }
}
