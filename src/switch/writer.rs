//! The ingest writer: inbound messages that arrive together are stored in one transaction
//! (one commit, one fsync, the tenant's position lock taken once), then answered and
//! published. A batch that fails is retried message by message, so one bad message fails
//! alone. One writer on SQLite (it has one writer anyway); several on PostgreSQL, each
//! tenant always on the same one (its messages stay in order).

use std::hash::{Hash, Hasher};

use tokio::sync::{mpsc, oneshot};

use crate::store::{
    Attachment, ChannelAccount, Db, IdentityKey, Inbound, Ingested, StoreError, StoreResult,
};

/// The most messages in one transaction.
const MAX_BATCH: usize = 128;

/// An inbound message with everything owned, on its way to the writer.
pub(crate) struct Job {
    pub account: ChannelAccount,
    pub external_id: String,
    pub sender: Vec<IdentityKey>,
    pub sender_name: Option<String>,
    pub remote_address: Option<String>,
    pub refs: Vec<String>,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub display_text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub vacancy: Option<String>,
    pub auto_submitted: bool,
    pub assign_to: Option<String>,
    pub at: i64,
}

impl Job {
    fn inbound(&self) -> Inbound<'_> {
        Inbound {
            account: &self.account,
            external_id: &self.external_id,
            sender: &self.sender,
            sender_name: self.sender_name.as_deref(),
            remote_address: self.remote_address.as_deref(),
            refs: &self.refs,
            subject: self.subject.as_deref(),
            text: &self.text,
            html: self.html.as_deref(),
            display_text: self.display_text.as_deref(),
            attachments: &self.attachments,
            vacancy: self.vacancy.as_deref(),
            auto_submitted: self.auto_submitted,
            assign_to: self.assign_to.as_deref(),
            at: self.at,
        }
    }
}

/// A job, when it was queued, and where its answer goes.
type Request = (
    Job,
    std::time::Instant,
    oneshot::Sender<StoreResult<Ingested>>,
);

#[derive(Clone)]
pub(crate) struct Writers {
    shards: Vec<mpsc::Sender<Request>>,
}

impl Writers {
    pub fn start(db: Db) -> Writers {
        let n = match db.backend() {
            crate::store::Backend::Sqlite => 1,
            crate::store::Backend::Postgres => 4,
        };
        let shards = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::channel::<Request>(4096);
                tokio::spawn(run(db.clone(), rx));
                tx
            })
            .collect();
        Writers { shards }
    }

    /// Stores a message; answers once it is committed.
    pub async fn ingest(&self, job: Job) -> StoreResult<Ingested> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        job.account.tenant_id.hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % self.shards.len()];
        let (reply, answer) = oneshot::channel();
        shard
            .send((job, std::time::Instant::now(), reply))
            .await
            .map_err(|_| StoreError::Conflict("ingest writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Conflict("ingest writer stopped".into()))?
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Request>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut batcher = crate::batching::Batcher::new(db.backend(), MAX_BATCH);
    while batcher.fill(&mut rx, &mut batch).await {
        metrics::histogram!("ingest_batch_size").record(batch.len() as f64);
        let started = std::time::Instant::now();
        let waited = metrics::histogram!("ingest_wait_seconds");
        for (_, queued_at, _) in &batch {
            waited.record(started.duration_since(*queued_at).as_secs_f64());
        }
        let stored = store_batch(&db, &batch).await;
        metrics::histogram!("ingest_batch_seconds").record(started.elapsed().as_secs_f64());
        batcher.stored();
        match stored {
            Ok(results) => {
                for ((_, _, reply), result) in batch.drain(..).zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                // One of them (or the database) failed: each on its own, so only the bad
                // one fails.
                tracing::warn!(error = %e, size = batch.len(), "ingest batch failed; storing its messages one by one");
                for (job, _, reply) in batch.drain(..) {
                    let result = db
                        .for_tenant(&job.account.tenant_id)
                        .ingest(job.inbound())
                        .await;
                    let _ = reply.send(result);
                }
            }
        }
    }
}

async fn store_batch(db: &Db, batch: &[Request]) -> StoreResult<Vec<Ingested>> {
    let (mut tx, _gate) = db.begin_write().await?;
    let jobs: Vec<_> = batch.iter().map(|(job, _, _)| job.inbound()).collect();
    let out = db.ingest_batch(&mut tx, &jobs).await?;
    tx.commit().await?;
    Ok(out)
}
