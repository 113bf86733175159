//! The per-tenant event log. Every state change a client must see is appended here inside
//! the transaction that makes the change; a reconnecting client replays what it missed.
//!
//! Positions are gap-free and commit in order within a tenant: the counter row in
//! `tenant_positions` is incremented first thing in the writing transaction and stays
//! locked until it commits (on SQLite the database write lock does the same).

use serde_json::value::RawValue;
use sqlx::{Any, FromRow, Transaction};

use super::{now_ms, StoreResult, TenantDb};

/// Who may see an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every staff member of the tenant.
    Tenant,
    /// The members of a staff chat room.
    Room(String),
    /// One user.
    User(String),
}

impl Audience {
    pub fn as_db(&self) -> String {
        match self {
            Audience::Tenant => "tenant".into(),
            Audience::Room(id) => format!("room:{id}"),
            Audience::User(id) => format!("user:{id}"),
        }
    }

    pub fn from_db(s: &str) -> Audience {
        if let Some(id) = s.strip_prefix("room:") {
            Audience::Room(id.into())
        } else if let Some(id) = s.strip_prefix("user:") {
            Audience::User(id.into())
        } else {
            Audience::Tenant
        }
    }
}

/// An event as stored and replayed.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: i64,
    pub kind: String,
    pub audience: Audience,
    /// The event's data, a JSON document.
    pub payload: Box<RawValue>,
    pub created_at: i64,
}

#[derive(FromRow)]
struct EventRow {
    position: i64,
    kind: String,
    audience: String,
    payload: String,
    created_at: i64,
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> Self {
        StoredEvent {
            position: r.position,
            kind: r.kind,
            audience: Audience::from_db(&r.audience),
            payload: RawValue::from_string(r.payload)
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON")),
            created_at: r.created_at,
        }
    }
}

/// Where a client's replay starts from.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayStart {
    /// Replay events after this position.
    From(i64),
    /// The position is older than what is retained, or unknown here: start afresh.
    Resync { current: i64 },
}

/// The first statement of every transaction that appends events: takes the tenant's next
/// position and, with it, the tenant's write lock until commit.
pub(crate) async fn next_position(
    tx: &mut Transaction<'static, Any>,
    tenant_id: &str,
) -> StoreResult<i64> {
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE tenant_positions SET position = position + 1 WHERE tenant_id = $1 RETURNING position",
    )
    .bind(tenant_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(p) = updated {
        return Ok(p);
    }
    let inserted: i64 = sqlx::query_scalar(
        "INSERT INTO tenant_positions (tenant_id, position) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET position = tenant_positions.position + 1 \
         RETURNING position",
    )
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(inserted)
}

pub(crate) async fn insert_event(
    tx: &mut Transaction<'static, Any>,
    tenant_id: &str,
    position: i64,
    kind: &str,
    audience: &Audience,
    payload: &str,
) -> StoreResult<i64> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO events (tenant_id, position, kind, audience, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(position)
    .bind(kind)
    .bind(audience.as_db())
    .bind(payload)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(now)
}

/// Appends an event inside `tx`. `first` holds the position the transaction began with;
/// the first event takes it, later events of the same transaction take further positions.
pub(crate) async fn push_event(
    tx: &mut Transaction<'static, Any>,
    tenant_id: &str,
    first: &mut Option<i64>,
    kind: &str,
    audience: Audience,
    payload: String,
    out: &mut Vec<StoredEvent>,
) -> StoreResult<i64> {
    let position = match first.take() {
        Some(p) => p,
        None => next_position(tx, tenant_id).await?,
    };
    let created_at = insert_event(tx, tenant_id, position, kind, &audience, &payload).await?;
    out.push(StoredEvent {
        position,
        kind: kind.into(),
        audience,
        payload: serde_json::value::RawValue::from_string(payload).expect("payload is JSON"),
        created_at,
    });
    Ok(position)
}

impl TenantDb {
    /// Begins a transaction that will append events; returns it with the next position.
    pub(crate) async fn begin_with_position(
        &self,
    ) -> StoreResult<(Transaction<'static, Any>, i64, super::WriteGate)> {
        let (mut tx, gate) = self.begin_write().await?;
        let position = next_position(&mut tx, &self.tenant_id).await?;
        Ok((tx, position, gate))
    }

    /// The last position handed out in this tenant (0 before the first event).
    pub async fn current_position(&self) -> StoreResult<i64> {
        let p: Option<i64> =
            sqlx::query_scalar("SELECT position FROM tenant_positions WHERE tenant_id = $1")
                .bind(&self.tenant_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(p.unwrap_or(0))
    }

    /// Decides whether a client that last saw `since` can replay.
    pub async fn replay_start(&self, since: i64) -> StoreResult<ReplayStart> {
        let current = self.current_position().await?;
        if since < 0 || since > current {
            return Ok(ReplayStart::Resync { current });
        }
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT MIN(position) FROM events WHERE tenant_id = $1")
                .bind(&self.tenant_id)
                .fetch_one(self.pool())
                .await?;
        let first_retained = oldest.unwrap_or(current + 1);
        if since + 1 < first_retained {
            return Ok(ReplayStart::Resync { current });
        }
        Ok(ReplayStart::From(since))
    }

    /// Events after `since` that `user_id` may see, in order, at most `limit`.
    pub async fn events_for_user(
        &self,
        user_id: &str,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT position, kind, audience, payload, created_at FROM events \
             WHERE tenant_id = $1 AND position > $2 AND (audience = 'tenant' OR audience = $3 \
               OR audience IN (SELECT 'room:' || room_id FROM room_members WHERE tenant_id = $1 AND user_id = $4)) \
             ORDER BY position LIMIT $5",
        )
        .bind(&self.tenant_id)
        .bind(since)
        .bind(format!("user:{user_id}"))
        .bind(user_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Events in `(after, upto]` whatever their audience (for a node filling a gap in its
    /// live stream).
    pub async fn events_between(&self, after: i64, upto: i64) -> StoreResult<Vec<StoredEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT position, kind, audience, payload, created_at FROM events \
             WHERE tenant_id = $1 AND position > $2 AND position <= $3 ORDER BY position",
        )
        .bind(&self.tenant_id)
        .bind(after)
        .bind(upto)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl super::Db {
    /// Drops events older than `before_ms` in every tenant; clients that were away longer
    /// get a resync.
    pub async fn prune_events(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM events WHERE created_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
