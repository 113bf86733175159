//! Login sessions ("token families") and their rotating refresh tokens.
//!
//! A session is created at login with its first refresh token. Every refresh marks the
//! presented token used and issues the next one in the same transaction. A token presented
//! a second time means it was copied: the whole session is revoked, so the thief's newer
//! token dies with it.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::sends::{padded, pieces, select_by_keys};
use super::{now_ms, to_time, Db, StoreError, StoreResult, TenantDb};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub user_agent: Option<String>,
    /// Network address the session was started from.
    pub source: Option<String>,
    /// True for the session that made this request.
    pub current: bool,
}

#[derive(FromRow)]
struct SessionRow {
    id: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    user_agent: Option<String>,
    source: Option<String>,
}

/// The state an access token's session must be in for the token to be honoured.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    pub user_id: String,
    pub role: String,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub deactivated_at: Option<i64>,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// Rotated: the session and user the new token belongs to.
    Rotated { session_id: String, user_id: String },
    /// The token was already used: the session has now been revoked.
    Reused { session_id: String, user_id: String },
    /// Unknown token, or its session is revoked, expired or its user deactivated.
    Invalid,
}

#[derive(FromRow)]
struct TokenRow {
    session_id: String,
    used_at: Option<i64>,
    user_id: String,
    revoked_at: Option<i64>,
    expires_at: i64,
    deactivated_at: Option<i64>,
}

impl Db {
    /// The sessions behind several access tokens, by `(tenant, session id)`: one read per
    /// 64 (the connects and requests that arrive together). Keys without a session are
    /// left out. Each key names its tenant: a session is found only in its own.
    pub async fn session_records(
        &self,
        keys: &[(&str, &str)],
    ) -> StoreResult<std::collections::HashMap<(String, String), SessionRecord>> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<i64>,
            i64,
            Option<i64>,
        );
        let mut out = std::collections::HashMap::new();
        for piece in pieces(keys) {
            let terms = padded(piece);
            let sql = select_by_keys(
                self.backend(),
                "s.tenant_id, s.id, s.user_id, u.role, s.revoked_at, s.expires_at, u.deactivated_at",
                "sessions s JOIN users u ON u.id = s.user_id",
                &["s.tenant_id", "s.id"],
                terms.len(),
            );
            let mut q = sqlx::query_as::<_, Row>(&sql);
            for (tenant, session) in &terms {
                q = q.bind(*tenant).bind(*session);
            }
            for (tenant, id, user_id, role, revoked_at, expires_at, deactivated_at) in
                q.fetch_all(&self.pool).await?
            {
                let record = SessionRecord {
                    user_id,
                    role,
                    revoked_at,
                    expires_at,
                    deactivated_at,
                };
                out.insert((tenant, id), record);
            }
        }
        Ok(out)
    }
}

impl TenantDb {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_session(
        &self,
        session_id: &str,
        user_id: &str,
        refresh_hash: &str,
        ttl_ms: i64,
        user_agent: Option<&str>,
        source: Option<&str>,
    ) -> StoreResult<()> {
        let now = now_ms();
        let (mut tx, _gate) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_used_at, expires_at, \
             user_agent, source) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(session_id)
        .bind(&self.tenant_id)
        .bind(user_id)
        .bind(now)
        .bind(now + ttl_ms)
        .bind(user_agent)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, issued_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(refresh_hash)
        .bind(&self.tenant_id)
        .bind(session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses the refresh token with hash `presented` once and stores `next` in its place.
    pub async fn rotate_refresh_token(
        &self,
        presented: &str,
        next: &str,
        ttl_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        let now = now_ms();
        let (mut tx, _gate) = self.begin_write().await?;
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT t.session_id, t.used_at, s.user_id, s.revoked_at, s.expires_at, u.deactivated_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             JOIN users u ON u.id = s.user_id \
             WHERE t.tenant_id = $1 AND t.token_hash = $2",
        )
        .bind(&self.tenant_id)
        .bind(presented)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        if row.revoked_at.is_some() || row.expires_at <= now || row.deactivated_at.is_some() {
            return Ok(RefreshOutcome::Invalid);
        }
        // The conditional update is the single point of truth: of two concurrent uses of
        // one token exactly one sees `used_at IS NULL`; the other is reuse.
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $3 WHERE tenant_id = $1 AND token_hash = $2 \
             AND used_at IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(presented)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if row.used_at.is_some() || claimed.rows_affected() == 0 {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = 'refresh_token_reused' \
                 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            )
            .bind(&self.tenant_id)
            .bind(&row.session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused {
                session_id: row.session_id,
                user_id: row.user_id,
            });
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, issued_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(next)
        .bind(&self.tenant_id)
        .bind(&row.session_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE sessions SET last_used_at = $3, expires_at = $4 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(&row.session_id)
        .bind(now)
        .bind(now + ttl_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated {
            session_id: row.session_id,
            user_id: row.user_id,
        })
    }

    /// The session behind an access token, with its user's current role and state.
    pub async fn session_record(&self, session_id: &str) -> StoreResult<SessionRecord> {
        let row: SessionRecord = sqlx::query_as(
            "SELECT s.user_id, u.role, s.revoked_at, s.expires_at, u.deactivated_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.tenant_id = $1 AND s.id = $2",
        )
        .bind(&self.tenant_id)
        .bind(session_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row)
    }

    /// The user's sessions that still work, newest first.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        current: &str,
    ) -> StoreResult<Vec<SessionInfo>> {
        let rows: Vec<SessionRow> = sqlx::query_as(
            "SELECT id, created_at, last_used_at, expires_at, user_agent, source FROM sessions \
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3 \
             ORDER BY created_at DESC",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                current: r.id == current,
                id: r.id,
                created_at: to_time(r.created_at),
                last_used_at: to_time(r.last_used_at),
                expires_at: to_time(r.expires_at),
                user_agent: r.user_agent,
                source: r.source,
            })
            .collect())
    }

    /// Revokes one session of `user_id`.
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
        reason: &str,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $4, revoked_reason = $5 \
             WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .bind(session_id)
        .bind(now_ms())
        .bind(reason)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Revokes every session of `user_id`; returns how many.
    pub async fn revoke_all_sessions(&self, user_id: &str, reason: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .bind(now_ms())
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Revokes the session that issued the refresh token with this hash; returns its id.
    pub async fn revoke_session_by_refresh(&self, token_hash: &str) -> StoreResult<Option<String>> {
        let session: Option<String> = sqlx::query_scalar(
            "SELECT session_id FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2",
        )
        .bind(&self.tenant_id)
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(session) = session else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = 'logout' \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(&self.tenant_id)
        .bind(&session)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(Some(session))
    }
}
