//! The bus between hub nodes. In-process by default: what a node publishes goes straight to
//! its own dispatcher. With Redis, every node publishes to one channel and every node
//! (itself included) receives from it, so a message reaches sessions on all nodes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::presence::NodeReport;

/// Redis channel all nodes share.
pub const CHANNEL: &str = "jobers:bus";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum BusMessage {
    /// A logged event: delivered in position order to the connections that may see it.
    Event {
        tenant: String,
        position: i64,
        /// `tenant`, `room:<id>` or `user:<id>`.
        audience: String,
        /// For room audiences: the members when the event was written (shared, not copied
        /// per event).
        recipients: Option<Arc<Vec<String>>>,
        kind: String,
        frame: String,
    },
    /// Not logged (typing): delivered at once to `recipients` (all of the tenant if none).
    Ephemeral {
        tenant: String,
        recipients: Option<Arc<Vec<String>>>,
        except_user: Option<String>,
        frame: String,
    },
    /// Close connections of a session or of a user (but not of `except_session`).
    Kick {
        tenant: String,
        user: Option<String>,
        session: Option<String>,
        except_session: Option<String>,
        code: u16,
        reason: String,
    },
    /// One node's connections and activity of one tenant's users.
    Presence(NodeReport),
    /// A user's chosen status or out-of-office changed.
    StatusChanged { tenant: String, user: String },
}

#[derive(Clone)]
pub enum Bus {
    Local(mpsc::UnboundedSender<BusMessage>),
    Redis {
        publisher: redis::aio::ConnectionManager,
        local: mpsc::UnboundedSender<BusMessage>,
    },
}

impl Bus {
    pub async fn publish(&self, message: BusMessage) {
        match self {
            Bus::Local(tx) => {
                let _ = tx.send(message);
            }
            Bus::Redis { publisher, local } => {
                let payload = serde_json::to_string(&message).expect("serialisable");
                let mut conn = publisher.clone();
                let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = sent {
                    // Redis is away: this node's own clients still get it; the others catch
                    // up from the event log (resume, gap filling).
                    tracing::warn!(error = %e, "bus publish failed; delivering locally only");
                    metrics::counter!("bus_publish_failures_total").increment(1);
                    let _ = local.send(message);
                }
            }
        }
    }
}

/// Subscribes to the Redis channel and feeds every message to `local`; reconnects with
/// backoff when the connection drops.
pub async fn run_redis_subscriber(client: redis::Client, local: mpsc::UnboundedSender<BusMessage>) {
    use futures_util::StreamExt;
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(CHANNEL).await.is_ok() {
                    delay = std::time::Duration::from_millis(100);
                    let mut stream = pubsub.on_message();
                    while let Some(msg) = stream.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match serde_json::from_str::<BusMessage>(&payload) {
                            Ok(m) => {
                                if local.send(m).is_err() {
                                    return;
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "unreadable bus message"),
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis subscribe failed"),
        }
        if local.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}
