//! Channel accounts (SMS numbers, mailboxes, board accounts, webhooks) with their health
//! (R-OPS-2), routing queues with their members, and reply templates and signatures.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::events::{push_event, Audience, StoredEvent};
use super::rooms::to_json;
use super::{new_id, now_ms, to_time, Db, StoreError, StoreResult, TenantDb};

/// How long a hook's copy of an account is used (see [`Db::hook_account`]).
pub const HOOK_ACCOUNT_TTL: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelAccount {
    pub id: String,
    /// `sms`, `email`, `board` or `chat`.
    pub kind: String,
    /// The adapter: `webhook`, `demo`, …
    pub provider: String,
    pub name: String,
    /// The sender the applicant sees: a phone number, an email address, …
    pub address: String,
    /// A personal sender (a recruiter's own mailbox): only this user sends from it.
    pub owner_user_id: Option<String>,
    /// Provider settings (no secrets).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// New threads from this account wait in this queue.
    pub queue_id: Option<String>,
    pub enabled: bool,
    /// `ok`, `degraded`, `needs_relogin` or `down`.
    pub health: String,
    /// `auth_failure`, `no_network`, `no_inbound`, `no_outbound` or `service_unreachable`.
    pub health_class: Option<String>,
    pub last_error: Option<String>,
    pub health_since: chrono::DateTime<chrono::Utc>,
    pub next_retry_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_inbound_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_outbound_at: Option<chrono::DateTime<chrono::Utc>>,
    pub inbound_expected_within_s: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub tenant_id: String,
    #[serde(skip)]
    pub secret: Option<String>,
    /// Where the account's reader stopped (JSON), e.g. an IMAP cursor.
    #[serde(skip)]
    pub sync_state: Option<String>,
}

const ACCOUNT_COLUMNS: &str =
    "id, tenant_id, kind, provider, name, address, owner_user_id, settings, \
    secret, queue_id, enabled, health, health_class, last_error, health_since, next_retry_at, \
    last_inbound_at, last_outbound_at, inbound_expected_within_s, created_at, updated_at, sync_state";

#[derive(FromRow)]
struct AccountRow {
    id: String,
    tenant_id: String,
    kind: String,
    provider: String,
    name: String,
    address: String,
    owner_user_id: Option<String>,
    settings: String,
    secret: Option<String>,
    queue_id: Option<String>,
    enabled: i64,
    health: String,
    health_class: Option<String>,
    last_error: Option<String>,
    health_since: i64,
    next_retry_at: Option<i64>,
    last_inbound_at: Option<i64>,
    last_outbound_at: Option<i64>,
    inbound_expected_within_s: Option<i64>,
    created_at: i64,
    updated_at: i64,
    sync_state: Option<String>,
}

impl From<AccountRow> for ChannelAccount {
    fn from(r: AccountRow) -> Self {
        ChannelAccount {
            id: r.id,
            tenant_id: r.tenant_id,
            kind: r.kind,
            provider: r.provider,
            name: r.name,
            address: r.address,
            owner_user_id: r.owner_user_id,
            settings: serde_json::from_str(&r.settings).unwrap_or(serde_json::Value::Null),
            // Sealed at rest; a value this node cannot open is as good as none.
            secret: r.secret.as_deref().and_then(crate::secrets::open),
            queue_id: r.queue_id,
            enabled: r.enabled != 0,
            health: r.health,
            health_class: r.health_class,
            last_error: r.last_error,
            health_since: to_time(r.health_since),
            next_retry_at: r.next_retry_at.map(to_time),
            last_inbound_at: r.last_inbound_at.map(to_time),
            last_outbound_at: r.last_outbound_at.map(to_time),
            inbound_expected_within_s: r.inbound_expected_within_s,
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
            sync_state: r.sync_state,
        }
    }
}

pub struct NewChannelAccount<'a> {
    pub kind: &'a str,
    pub provider: &'a str,
    pub name: &'a str,
    pub address: &'a str,
    pub owner_user_id: Option<&'a str>,
    pub settings: &'a serde_json::Value,
    pub secret: Option<&'a str>,
    pub queue_id: Option<&'a str>,
    pub inbound_expected_within_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAccountPatch {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    pub queue_id: Option<Option<String>>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    pub inbound_expected_within_s: Option<Option<i64>>,
}

/// A change of an account's health, as the adapters and sweeps report it.
#[derive(Debug, Clone)]
pub struct HealthReport<'a> {
    pub health: &'a str,
    pub class: Option<&'a str>,
    pub error: Option<&'a str>,
    pub next_retry_at: Option<i64>,
}

impl HealthReport<'static> {
    /// Working: no error, nothing to retry.
    pub const OK: HealthReport<'static> = HealthReport {
        health: "ok",
        class: None,
        error: None,
        next_retry_at: None,
    };
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queue {
    pub id: String,
    pub name: String,
    pub department_id: Option<String>,
    pub vacancy: Option<String>,
    /// `manual`, `round_robin` or `least_busy`.
    pub strategy: String,
    pub away_limit_s: Option<i64>,
    pub response_limit_s: Option<i64>,
    pub members: Vec<QueueMember>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, FromRow)]
pub struct QueueMember {
    pub user_id: String,
    /// The most open threads this recruiter holds.
    pub capacity: i64,
}

#[derive(FromRow)]
struct QueueRow {
    id: String,
    name: String,
    department_id: Option<String>,
    vacancy: Option<String>,
    strategy: String,
    away_limit_s: Option<i64>,
    response_limit_s: Option<i64>,
    created_at: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    pub name: String,
    pub department_id: Option<String>,
    pub vacancy: Option<String>,
    pub strategy: String,
    pub away_limit_s: Option<i64>,
    pub response_limit_s: Option<i64>,
    #[serde(default)]
    pub members: Vec<QueueMember>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Template {
    pub id: String,
    /// `template` or `signature`.
    pub kind: String,
    /// Set for a personal template; none for the company's.
    pub owner_user_id: Option<String>,
    pub name: String,
    /// Text with variables: `{{applicant.name}}`, `{{vacancy}}`, `{{user.name}}`, …
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(FromRow)]
struct TemplateRow {
    id: String,
    kind: String,
    owner_user_id: Option<String>,
    name: String,
    body: String,
    created_at: i64,
    updated_at: i64,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Self {
        Template {
            id: r.id,
            kind: r.kind,
            owner_user_id: r.owner_user_id,
            name: r.name,
            body: r.body,
            created_at: to_time(r.created_at),
            updated_at: to_time(r.updated_at),
        }
    }
}

impl Db {
    /// An account by id, whatever its tenant (webhooks find their tenant this way; the
    /// caller verifies the request with the account's secret before trusting it).
    pub async fn channel_account_any_tenant(&self, id: &str) -> StoreResult<ChannelAccount> {
        let row: AccountRow = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    /// The account a provider's hook names, kept for [`HOOK_ACCOUNT_TTL`]: a busy hook
    /// (thousands of requests a second) reads it once a moment instead of on every
    /// request. A change made on this node is seen at once (the copy is dropped); one made
    /// on another node within the TTL.
    pub async fn hook_account(&self, id: &str) -> StoreResult<ChannelAccount> {
        let now = std::time::Instant::now();
        if let Some((at, a)) = self.hook_accounts.lock().expect("not poisoned").get(id) {
            if now.duration_since(*at) < HOOK_ACCOUNT_TTL {
                return Ok(a.clone());
            }
        }
        let a = self.channel_account_any_tenant(id).await?;
        let mut cache = self.hook_accounts.lock().expect("not poisoned");
        if cache.len() >= 10_000 {
            cache.retain(|_, (at, _)| now.duration_since(*at) < HOOK_ACCOUNT_TTL);
        }
        cache.insert(id.to_string(), (now, a.clone()));
        Ok(a)
    }

    /// Drops the hooks' copy of an account (it changed).
    pub(super) fn forget_hook_account(&self, id: &str) {
        self.hook_accounts.lock().expect("not poisoned").remove(id);
    }

    /// Every enabled account (for sweeps).
    pub async fn all_channel_accounts(&self) -> StoreResult<Vec<ChannelAccount>> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE enabled = 1"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

impl TenantDb {
    pub async fn create_channel_account(
        &self,
        a: NewChannelAccount<'_>,
    ) -> StoreResult<ChannelAccount> {
        let (mut tx, _gate) = self.begin_write().await?;
        if let Some(q) = a.queue_id {
            self.require_queue(&mut tx, q).await?;
        }
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO channel_accounts (id, tenant_id, kind, provider, name, address, owner_user_id, settings, \
             secret, queue_id, inbound_expected_within_s, health_since, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(a.kind)
        .bind(a.provider)
        .bind(a.name)
        .bind(a.address)
        .bind(a.owner_user_id)
        .bind(a.settings.to_string())
        .bind(a.secret.map(crate::secrets::seal))
        .bind(a.queue_id)
        .bind(a.inbound_expected_within_s)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::UnknownReference("user"),
            other => other,
        })?;
        tx.commit().await?;
        self.channel_account(&id).await
    }

    pub async fn channel_account(&self, id: &str) -> StoreResult<ChannelAccount> {
        let row: AccountRow = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn channel_accounts(&self) -> StoreResult<Vec<ChannelAccount>> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 ORDER BY kind, name, id"
        ))
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn update_channel_account(
        &self,
        id: &str,
        p: &ChannelAccountPatch,
    ) -> StoreResult<ChannelAccount> {
        let current = self.channel_account(id).await?;
        let (mut tx, _gate) = self.begin_write().await?;
        let queue = p.queue_id.clone().unwrap_or(current.queue_id);
        if let Some(q) = &queue {
            self.require_queue(&mut tx, q).await?;
        }
        sqlx::query(
            "UPDATE channel_accounts SET name = $3, settings = $4, queue_id = $5, enabled = $6, \
             inbound_expected_within_s = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(p.name.as_deref().unwrap_or(&current.name))
        .bind(p.settings.as_ref().unwrap_or(&current.settings).to_string())
        .bind(queue)
        .bind(i64::from(p.enabled.unwrap_or(current.enabled)))
        .bind(
            p.inbound_expected_within_s
                .unwrap_or(current.inbound_expected_within_s),
        )
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.db.forget_hook_account(id);
        self.channel_account(id).await
    }

    /// Records an account's health; announces it (event `channel.health`) when it changed.
    pub async fn set_channel_health(
        &self,
        id: &str,
        report: &HealthReport<'_>,
    ) -> StoreResult<Option<(ChannelAccount, Vec<StoredEvent>)>> {
        let current = self.channel_account(id).await?;
        let now = now_ms();
        let same = current.health == report.health
            && current.health_class.as_deref() == report.class
            && current.last_error.as_deref() == report.error.or(current.last_error.as_deref())
            && current.next_retry_at.map(|t| t.timestamp_millis()) == report.next_retry_at;
        if same {
            return Ok(None);
        }
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        sqlx::query(
            "UPDATE channel_accounts SET health = $3, health_class = $4, \
             last_error = COALESCE($5, last_error), \
             health_since = CASE WHEN health = $3 THEN health_since ELSE $6 END, next_retry_at = $7, \
             updated_at = $6 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(report.health)
        .bind(report.class)
        .bind(report.error)
        .bind(now)
        .bind(report.next_retry_at)
        .execute(&mut *tx)
        .await?;
        let row: AccountRow = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM channel_accounts WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let account: ChannelAccount = row.into();
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "channel.health",
            Audience::Tenant,
            to_json(&account),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(Some((account, events)))
    }

    pub async fn set_channel_secret(&self, id: &str, secret: &str) -> StoreResult<ChannelAccount> {
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE channel_accounts SET secret = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(crate::secrets::seal(secret))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        self.db.forget_hook_account(id);
        self.channel_account(id).await
    }

    /// Records where the account's reader stopped (after what it read is stored).
    pub async fn set_sync_state(&self, id: &str, state: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query("UPDATE channel_accounts SET sync_state = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(id)
            .bind(state)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn note_outbound_success(&self, id: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "UPDATE channel_accounts SET last_outbound_at = $3 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn require_queue(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
    ) -> StoreResult<()> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM queues WHERE tenant_id = $1 AND id = $2")
                .bind(&self.tenant_id)
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        found
            .map(|_| ())
            .ok_or(StoreError::UnknownReference("queue"))
    }

    // ----- queues -----

    pub async fn queues(&self) -> StoreResult<Vec<Queue>> {
        let rows: Vec<QueueRow> = sqlx::query_as(
            "SELECT id, name, department_id, vacancy, strategy, away_limit_s, response_limit_s, created_at \
             FROM queues WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(&self.tenant_id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.queue_with_members(r).await?);
        }
        Ok(out)
    }

    async fn queue_with_members(&self, r: QueueRow) -> StoreResult<Queue> {
        let members: Vec<QueueMember> = sqlx::query_as(
            "SELECT user_id, capacity FROM queue_members WHERE tenant_id = $1 AND queue_id = $2 \
             ORDER BY joined_at, user_id",
        )
        .bind(&self.tenant_id)
        .bind(&r.id)
        .fetch_all(self.pool())
        .await?;
        Ok(Queue {
            id: r.id,
            name: r.name,
            department_id: r.department_id,
            vacancy: r.vacancy,
            strategy: r.strategy,
            away_limit_s: r.away_limit_s,
            response_limit_s: r.response_limit_s,
            members,
            created_at: to_time(r.created_at),
        })
    }

    pub async fn queue(&self, id: &str) -> StoreResult<Queue> {
        let r: QueueRow = sqlx::query_as(
            "SELECT id, name, department_id, vacancy, strategy, away_limit_s, response_limit_s, created_at \
             FROM queues WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        self.queue_with_members(r).await
    }

    /// Creates (`id` none) or replaces a queue with its members.
    pub async fn save_queue(&self, id: Option<&str>, q: &QueueInput) -> StoreResult<Queue> {
        let (mut tx, _gate) = self.begin_write().await?;
        let now = now_ms();
        if let Some(d) = &q.department_id {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM departments WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(d)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Err(StoreError::UnknownReference("department"));
            }
        }
        for m in &q.members {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND deactivated_at IS NULL",
            )
            .bind(&self.tenant_id)
            .bind(&m.user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::UnknownReference("user"));
            }
        }
        let id = match id {
            Some(id) => {
                let done = sqlx::query(
                    "UPDATE queues SET name = $3, department_id = $4, vacancy = $5, strategy = $6, \
                     away_limit_s = $7, response_limit_s = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(id)
                .bind(&q.name)
                .bind(&q.department_id)
                .bind(&q.vacancy)
                .bind(&q.strategy)
                .bind(q.away_limit_s)
                .bind(q.response_limit_s)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                id.to_string()
            }
            None => {
                let id = new_id();
                sqlx::query(
                    "INSERT INTO queues (id, tenant_id, name, department_id, vacancy, strategy, away_limit_s, \
                     response_limit_s, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(&id)
                .bind(&self.tenant_id)
                .bind(&q.name)
                .bind(&q.department_id)
                .bind(&q.vacancy)
                .bind(&q.strategy)
                .bind(q.away_limit_s)
                .bind(q.response_limit_s)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict("queue_exists".into()),
                    other => other,
                })?;
                id
            }
        };
        sqlx::query("DELETE FROM queue_members WHERE tenant_id = $1 AND queue_id = $2")
            .bind(&self.tenant_id)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for (i, m) in q.members.iter().enumerate() {
            sqlx::query(
                "INSERT INTO queue_members (tenant_id, queue_id, user_id, capacity, joined_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (queue_id, user_id) DO UPDATE SET capacity = excluded.capacity",
            )
            .bind(&self.tenant_id)
            .bind(&id)
            .bind(&m.user_id)
            .bind(m.capacity)
            .bind(now + i as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.queue(&id).await
    }

    pub async fn delete_queue(&self, id: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM queues WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    // ----- templates and signatures -----

    /// The company's templates and the user's own.
    pub async fn templates(&self, user_id: &str) -> StoreResult<Vec<Template>> {
        let rows: Vec<TemplateRow> = sqlx::query_as(
            "SELECT id, kind, owner_user_id, name, body, created_at, updated_at FROM templates \
             WHERE tenant_id = $1 AND (owner_user_id IS NULL OR owner_user_id = $2) ORDER BY kind, name, id",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// A template the user may use (the company's or their own).
    pub async fn template(&self, id: &str, user_id: &str) -> StoreResult<Template> {
        let row: TemplateRow = sqlx::query_as(
            "SELECT id, kind, owner_user_id, name, body, created_at, updated_at FROM templates \
             WHERE tenant_id = $1 AND id = $2 AND (owner_user_id IS NULL OR owner_user_id = $3)",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.into())
    }

    pub async fn create_template(
        &self,
        owner: Option<&str>,
        kind: &str,
        name: &str,
        body: &str,
    ) -> StoreResult<Template> {
        let (mut tx, _gate) = self.begin_write().await?;
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO templates (id, tenant_id, owner_user_id, kind, name, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(owner)
        .bind(kind)
        .bind(name)
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.template(&id, owner.unwrap_or("")).await
    }

    pub async fn update_template(
        &self,
        id: &str,
        name: Option<&str>,
        body: Option<&str>,
    ) -> StoreResult<Template> {
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE templates SET name = COALESCE($3, name), body = COALESCE($4, body), updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .bind(name)
        .bind(body)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let row: TemplateRow = sqlx::query_as(
            "SELECT id, kind, owner_user_id, name, body, created_at, updated_at FROM templates \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// The owner of a template (`None`: the company's); NotFound outside the tenant.
    pub async fn template_owner(&self, id: &str) -> StoreResult<Option<String>> {
        let owner: Option<Option<String>> = sqlx::query_scalar(
            "SELECT owner_user_id FROM templates WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        owner.ok_or(StoreError::NotFound)
    }

    pub async fn delete_template(&self, id: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM templates WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The company's signature (a template of kind `signature` without owner), if any.
    pub async fn company_signature(&self) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT body FROM templates WHERE tenant_id = $1 AND kind = 'signature' AND owner_user_id IS NULL \
             ORDER BY created_at LIMIT 1",
        )
        .bind(&self.tenant_id)
        .fetch_optional(self.pool())
        .await?)
    }
}

impl Db {
    /// Gives up every lease `holder` has (a node that stops).
    pub async fn release_leases_of(&self, holder: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query("DELETE FROM sync_leases WHERE holder = $1")
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Leases: which node reads an account's provider (see the `sync_leases` migration).
impl TenantDb {
    /// Takes the lease `name` for `holder` until `ttl_ms` from now, or renews it when
    /// `holder` has it; true when `holder` has it now. A lease another node holds is taken
    /// only once it has run out; one of another tenant, never.
    pub async fn take_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let now = now_ms();
        let (mut tx, _gate) = self.begin_write().await?;
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO sync_leases (name, tenant_id, holder, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE sync_leases.tenant_id = excluded.tenant_id \
               AND (sync_leases.holder = excluded.holder OR sync_leases.expires_at <= $5) \
             RETURNING holder",
        )
        .bind(name)
        .bind(&self.tenant_id)
        .bind(holder)
        .bind(now + ttl_ms.max(1))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(held.is_some())
    }

    /// Gives the lease up, when `holder` has it (another node may take it at once).
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query("DELETE FROM sync_leases WHERE tenant_id = $1 AND name = $2 AND holder = $3")
            .bind(&self.tenant_id)
            .bind(name)
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who holds the lease `name` now (an expired lease has no holder).
    pub async fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT holder FROM sync_leases WHERE tenant_id = $1 AND name = $2 AND expires_at > $3",
        )
        .bind(&self.tenant_id)
        .bind(name)
        .bind(now_ms())
        .fetch_optional(&self.db.pool)
        .await?)
    }
}
