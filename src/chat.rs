//! Staff chat and statuses as one service used by both the REST API and WebSocket frames:
//! validate, store (with events) and publish to the hub.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Hub;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{
    Audience, Backend, BatchedSend, ChosenStatus, NewRoomMessage, RoomChange, Sent, StoreError,
};

/// Longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest custom status text.
pub const MAX_STATUS_CHARS: usize = 100;

/// Sends waiting for the message writer before a sender waits for room (back-pressure).
const WRITER_QUEUE: usize = 8_192;
/// Most sends committed in one transaction.
const WRITER_BATCH: usize = 256;

/// A send waiting for the message writer.
struct Job {
    tenant_id: String,
    room_id: String,
    author: String,
    body: String,
    client_message_id: Option<String>,
    mentions: Vec<String>,
    attachments: Vec<String>,
    reply: oneshot::Sender<Result<Sent, StoreError>>,
    queued_at: std::time::Instant,
}

#[derive(Clone)]
pub struct Chat {
    hub: Hub,
    /// Message writers; a tenant's sends always go to the same one (its order is kept).
    writers: Arc<Vec<mpsc::Sender<Job>>>,
    /// Which writer serves each tenant.
    assigned: Arc<Assignments>,
}

/// Tenants' writers: a tenant gets the next writer in turn when it first sends, and keeps
/// it, so tenants spread evenly over the writers. A hash of the tenant id spreads them by
/// chance: 20 tenants over four writers put 7 or more on one of them three times in four
/// (the ids are new in each `direct` run), and the busiest writer sets the latency.
#[derive(Default)]
struct Assignments {
    writers: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Assignments {
    /// The writer (of `count`) that serves `tenant_id`.
    fn writer_of(&self, tenant_id: &str, count: usize) -> usize {
        if count <= 1 {
            // One writer (SQLite): nothing to remember, no lock on every send.
            return 0;
        }
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&w) = writers.get(tenant_id) {
            return w;
        }
        let w = writers.len() % count;
        writers.insert(tenant_id.to_string(), w);
        w
    }
}

impl Chat {
    /// Starts the message writers: one on SQLite (one writer at a time anyway), several on
    /// PostgreSQL (tenants spread over them).
    pub fn new(hub: Hub) -> Self {
        let count = match hub.db().backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        let writers = (0..count)
            .map(|_| {
                let (tx, rx) = mpsc::channel(WRITER_QUEUE);
                tokio::spawn(write_messages(hub.clone(), rx));
                tx
            })
            .collect();
        Self {
            hub,
            writers: Arc::new(writers),
            assigned: Arc::default(),
        }
    }

    pub async fn send(
        &self,
        who: &Principal,
        room_id: &str,
        body: &str,
        client_message_id: Option<&str>,
        mentions: &[String],
        attachments: &[String],
    ) -> ApiResult<Sent> {
        let body = body.trim();
        // Ids are UUIDs made by the server, and no text may hold NUL (PostgreSQL refuses it):
        // anything else is turned away here, before it can reach a shared batch.
        if uuid::Uuid::parse_str(room_id).is_err() {
            return Err(ApiError::NotFound);
        }
        if attachments
            .iter()
            .any(|id| uuid::Uuid::parse_str(id).is_err())
        {
            return Err(StoreError::UnknownReference("upload").into());
        }
        // A mention that is not a member is dropped; one that is not even an id, too.
        let mentions: Vec<String> = mentions
            .iter()
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .cloned()
            .collect();
        let mentions = mentions.as_slice();
        if body.contains('\0') || client_message_id.is_some_and(|c| c.contains('\0')) {
            return Err(ApiError::unprocessable(
                "invalid_text",
                "text must not contain NUL characters",
            ));
        }
        if body.is_empty() && attachments.is_empty() {
            return Err(ApiError::unprocessable(
                "empty_message",
                "a message needs text or an attachment",
            ));
        }
        if body.chars().count() > MAX_MESSAGE_CHARS {
            return Err(ApiError::unprocessable(
                "message_too_long",
                format!("a message has at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(ApiError::unprocessable(
                "too_many_attachments",
                format!("at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        if client_message_id.is_some_and(|c| c.is_empty() || c.len() > 100) {
            return Err(ApiError::unprocessable(
                "invalid_client_message_id",
                "client_message_id must be 1 to 100 characters",
            ));
        }
        // Durable before anyone hears of it: the writer commits sends in batches (one commit
        // for many), then the events go out.
        let (reply, answer) = oneshot::channel();
        let job = Job {
            tenant_id: who.tenant_id().to_string(),
            room_id: room_id.to_string(),
            author: who.user_id().to_string(),
            body: body.to_string(),
            client_message_id: client_message_id.map(Into::into),
            mentions: mentions.to_vec(),
            attachments: attachments.to_vec(),
            reply,
            queued_at: std::time::Instant::now(),
        };
        let shard = self.assigned.writer_of(who.tenant_id(), self.writers.len());
        self.writers[shard]
            .send(job)
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the message writer stopped")))?;
        let sent = answer.await.map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("the message writer dropped a send"))
        })??;

        Ok(sent)
    }

    /// Edits (`Some`) or deletes (`None`) one's own message.
    pub async fn edit(
        &self,
        who: &Principal,
        room_id: Option<&str>,
        message_id: &str,
        body: Option<&str>,
    ) -> ApiResult<Sent> {
        if let Some(b) = body {
            if b.trim().is_empty() {
                return Err(ApiError::unprocessable(
                    "empty_message",
                    "use delete to remove a message",
                ));
            }
            if b.chars().count() > MAX_MESSAGE_CHARS {
                return Err(ApiError::unprocessable(
                    "message_too_long",
                    format!("a message has at most {MAX_MESSAGE_CHARS} characters"),
                ));
            }
        }
        let db = self.hub.db().for_principal(who);
        let sent = db
            .change_room_message(room_id, message_id, who.user_id(), body.map(str::trim))
            .await?;
        self.publish(who, sent.events.clone());
        Ok(sent)
    }

    pub async fn typing(&self, who: &Principal, room_id: &str) -> ApiResult<()> {
        let members = self.hub.room_members(who.tenant_id(), room_id).await;
        if !members.iter().any(|m| m == who.user_id()) {
            return Err(ApiError::NotFound);
        }
        let frame =
            serde_json::json!({"type": "typing", "room_id": room_id, "user_id": who.user_id()})
                .to_string();
        self.hub
            .publish_ephemeral(who.tenant_id(), Some(members), Some(who.user_id()), frame)
            .await;
        Ok(())
    }

    /// A staff member types in an applicant's thread: the tenant's other staff see it.
    pub async fn typing_in_thread(&self, who: &Principal, thread_id: &str) -> ApiResult<()> {
        if uuid::Uuid::parse_str(thread_id).is_err() {
            return Err(ApiError::NotFound);
        }
        let thread = self.hub.db().for_principal(who).thread(thread_id).await?;
        let frame =
            serde_json::json!({"type": "typing", "thread_id": thread.id, "user_id": who.user_id()})
                .to_string();
        self.hub
            .publish_ephemeral(who.tenant_id(), None, Some(who.user_id()), frame)
            .await;
        Ok(())
    }

    pub async fn mark_read(
        &self,
        who: &Principal,
        room_id: &str,
        message_id: &str,
    ) -> ApiResult<()> {
        let db = self.hub.db().for_principal(who);
        let events = db
            .mark_room_read(room_id, who.user_id(), message_id)
            .await?;
        self.publish(who, events);
        Ok(())
    }

    pub async fn publish_change(&self, who: &Principal, change: &RoomChange) {
        self.publish(who, change.events.clone());
    }

    /// Publishes committed events in a task of their own, so that they go out even when
    /// the request that made them is dropped (a timeout, a closed socket).
    fn publish(&self, who: &Principal, events: Vec<crate::store::StoredEvent>) {
        if events.is_empty() {
            return;
        }
        let hub = self.hub.clone();
        let tenant = who.tenant_id().to_string();
        tokio::spawn(async move { hub.publish_events(&tenant, &events).await });
    }

    /// Sets the caller's chosen status (`None`: automatic), with a text and an end time.
    pub async fn set_status(
        &self,
        who: &Principal,
        status: Option<&str>,
        text: Option<&str>,
        until: Option<i64>,
    ) -> ApiResult<()> {
        if let Some(s) = status {
            if !matches!(s, "online" | "away" | "busy") {
                return Err(ApiError::unprocessable(
                    "invalid_status",
                    "status is online, away, busy or null",
                ));
            }
        }
        if text.is_some_and(|t| t.chars().count() > MAX_STATUS_CHARS) {
            return Err(ApiError::unprocessable(
                "status_text_too_long",
                format!("at most {MAX_STATUS_CHARS} characters"),
            ));
        }
        let db = self.hub.db().for_principal(who);
        let mut chosen = db.chosen_status(who.user_id()).await?;
        chosen.status = status.map(Into::into);
        chosen.text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        chosen.until = until;
        db.save_chosen_status(&chosen).await?;
        self.hub
            .status_changed(who.tenant_id(), who.user_id())
            .await;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the caller's out-of-office period.
    pub async fn set_out_of_office(
        &self,
        who: &Principal,
        period: Option<(i64, Option<i64>, Option<String>)>,
    ) -> ApiResult<ChosenStatus> {
        let db = self.hub.db().for_principal(who);
        let mut chosen = db.chosen_status(who.user_id()).await?;
        match period {
            Some((from, until, text)) => {
                if until.is_some_and(|u| u <= from) {
                    return Err(ApiError::unprocessable(
                        "invalid_period",
                        "the period must end after it starts",
                    ));
                }
                chosen.ooo_from = Some(from);
                chosen.ooo_until = until;
                chosen.ooo_text = text;
            }
            None => {
                chosen.ooo_from = None;
                chosen.ooo_until = None;
                chosen.ooo_text = None;
            }
        }
        db.save_chosen_status(&chosen).await?;
        self.hub
            .status_changed(who.tenant_id(), who.user_id())
            .await;
        Ok(chosen)
    }
}

/// The message writer: takes the sends waiting (up to a batch; on SQLite, while busy, a
/// moment more: see [`crate::batching`]), stores them in one transaction, answers each.
/// With one send waiting it is one transaction per send; under load, one commit serves
/// hundreds.
async fn write_messages(hub: Hub, mut jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(WRITER_BATCH);
    let mut batcher = crate::batching::Batcher::new(hub.db().backend(), WRITER_BATCH);
    while batcher.fill(&mut jobs, &mut batch).await {
        // One lock order for every writer (PostgreSQL locks each tenant's position row).
        batch.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        metrics::histogram!("chat_write_batch_size").record(batch.len() as f64);
        let started = std::time::Instant::now();
        let waited = metrics::histogram!("chat_write_wait_seconds");
        for job in &batch {
            waited.record(started.duration_since(job.queued_at).as_secs_f64());
        }
        let stored = store_batch(&hub, &batch).await;
        metrics::histogram!("chat_write_batch_seconds").record(started.elapsed().as_secs_f64());
        batcher.stored();
        match stored {
            Ok(outcomes) => answer(&hub, batch.drain(..).zip(outcomes)),
            // One send's failure must not fail its neighbours: each is tried on its own.
            Err(e) if batch.len() > 1 => {
                tracing::warn!(error = %e, size = batch.len(), "a batch of messages failed; storing them one by one");
                for job in batch.drain(..) {
                    let outcome = match store_batch(&hub, std::slice::from_ref(&job)).await {
                        Ok(mut o) => o.pop().unwrap_or(Err(StoreError::NotFound)),
                        Err(e) => Err(e),
                    };
                    answer(&hub, std::iter::once((job, outcome)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "storing a message failed");
                for job in batch.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(StoreError::Database(sqlx::Error::Protocol(
                            e.to_string(),
                        ))));
                }
            }
        }
    }
}

async fn store_batch(
    hub: &Hub,
    batch: &[Job],
) -> Result<Vec<Result<Sent, StoreError>>, StoreError> {
    let sends: Vec<BatchedSend<'_>> = batch
        .iter()
        .map(|j| BatchedSend {
            tenant_id: &j.tenant_id,
            room_id: &j.room_id,
            author: &j.author,
            message: NewRoomMessage {
                body: &j.body,
                client_message_id: j.client_message_id.as_deref(),
                mentions: &j.mentions,
                attachments: &j.attachments,
            },
        })
        .collect();
    hub.db().send_room_messages(&sends).await
}

/// Publishes what was stored — here, not in the sender's request, which may be gone by
/// now (a timeout, a closed socket): a committed message always goes out — then answers.
/// In a task of its own, so the writer goes on with the next batch (with Redis, a publish
/// is a network round trip).
fn answer(hub: &Hub, done: impl Iterator<Item = (Job, Result<Sent, StoreError>)>) {
    let done: Vec<(Job, Result<Sent, StoreError>)> = done.collect();
    let hub = hub.clone();
    tokio::spawn(async move {
        // The rooms' members, where not known yet, in one read for the batch.
        let rooms: Vec<(&str, &str)> = done
            .iter()
            .filter_map(|(job, outcome)| Some((job, outcome.as_ref().ok()?)))
            .flat_map(|(job, sent)| {
                sent.events.iter().filter_map(|e| match &e.audience {
                    Audience::Room(room) => Some((job.tenant_id.as_str(), room.as_str())),
                    _ => None,
                })
            })
            .collect();
        hub.warm_room_members(&rooms).await;
        for (job, outcome) in done {
            if let Ok(sent) = &outcome {
                hub.publish_events(&job.tenant_id, &sent.events).await;
            }
            let _ = job.reply.send(outcome);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::Assignments;

    #[test]
    fn tenants_take_the_writers_in_turn_and_keep_theirs() {
        let a = Assignments::default();
        let tenants: Vec<String> = (0..20).map(|i| format!("tenant-{i}")).collect();
        let first: Vec<usize> = tenants.iter().map(|t| a.writer_of(t, 4)).collect();
        let mut load = [0; 4];
        for &w in &first {
            load[w] += 1;
        }
        assert_eq!(load, [5, 5, 5, 5], "evenly: {first:?}");
        // Asked again, in another order, each tenant keeps its writer (its order is kept).
        for (t, &w) in tenants.iter().zip(&first).rev() {
            assert_eq!(a.writer_of(t, 4), w);
        }
        assert_eq!(a.writer_of("solo", 1), 0);
    }
}
