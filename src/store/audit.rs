//! The audit log: who did what, when, from where. Append-only; admins read it.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::{IntoParams, ToSchema};

use super::{new_id, now_ms, to_time, Db, StoreResult, TenantDb};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_user_id: Option<String>,
    /// What happened, e.g. `login`, `login_failed`, `refresh_token_reused`, `role_changed`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub source: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(FromRow)]
struct AuditRow {
    id: String,
    at: i64,
    actor_user_id: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    source: Option<String>,
    details: String,
}

#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry<'a> {
    pub actor_user_id: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub source: Option<&'a str>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries with this action.
    pub action: Option<String>,
    /// Only entries made by this user.
    pub actor_user_id: Option<String>,
    /// Entries older than this entry id (cursor from the previous page).
    pub before: Option<String>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
}

impl TenantDb {
    pub async fn audit(&self, entry: NewAuditEntry<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, tenant_id, at, actor_user_id, action, target_type, \
             target_id, source, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(&self.tenant_id)
        .bind(now_ms())
        .bind(entry.actor_user_id)
        .bind(entry.action)
        .bind(entry.target_type)
        .bind(entry.target_id)
        .bind(entry.source)
        .bind(entry.details.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Newest first, paged by id cursor.
    pub async fn audit_entries(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = q.limit.unwrap_or(100).clamp(1, 500);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor_user_id, action, target_type, target_id, source, details \
             FROM audit_log WHERE tenant_id = $1 AND ($2 IS NULL OR action = $2) \
             AND ($3 IS NULL OR actor_user_id = $3) AND ($4 IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(&self.tenant_id)
        .bind(q.action.as_deref())
        .bind(q.actor_user_id.as_deref())
        .bind(q.before.as_deref())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: to_time(r.at),
                actor_user_id: r.actor_user_id,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                source: r.source,
                details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }
}

impl Db {
    /// Records a failed login under `keys` (account and source).
    pub async fn record_login_failure(&self, keys: &[&str]) -> StoreResult<()> {
        let now = now_ms();
        for key in keys {
            sqlx::query("INSERT INTO login_failures (id, key, at) VALUES ($1, $2, $3)")
                .bind(new_id())
                .bind(*key)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Times (ms) of failures under `key` since `since_ms`, oldest first.
    pub async fn login_failures_since(&self, key: &str, since_ms: i64) -> StoreResult<Vec<i64>> {
        let times: Vec<i64> = sqlx::query_scalar(
            "SELECT at FROM login_failures WHERE key = $1 AND at >= $2 ORDER BY at",
        )
        .bind(key)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(times)
    }

    /// Forgets failures under `key` (after a successful login) and prunes old rows.
    pub async fn clear_login_failures(&self, key: &str, older_than_ms: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1 OR at < $2")
            .bind(key)
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
