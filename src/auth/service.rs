//! Login, refresh, logout and access-token checks: the rules of R-AUTH in one place.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::password::PasswordHasher;
use super::tokens::{self, AccessClaims, TokenError, TokenKeys};
use super::Principal;
use crate::config::AuthConfig;
use crate::error::{ApiError, ApiResult};
use crate::realtime::protocol::close;
use crate::realtime::Hub;
use crate::store::{
    new_id, now_ms, Db, NewAuditEntry, RefreshOutcome, Role, SessionRecord, StoreError,
    StoreResult, TenantDb, User,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The company's short name (tenant slug).
    #[schema(example = "demo")]
    pub tenant: String,
    #[schema(example = "admin@demo.jobers.local")]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; works once. Also set as the `jobers_refresh` HttpOnly cookie.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: User,
}

/// Where a request came from, for the audit log and per-source throttling.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct AuthService {
    db: Db,
    hub: Hub,
    keys: TokenKeys,
    hasher: PasswordHasher,
    config: Arc<AuthConfig>,
    sessions: SessionLookups,
}

/// Most sessions read together.
const LOOKUPS_PER_READ: usize = 64;

struct Lookup {
    tenant: String,
    session: String,
    reply: tokio::sync::oneshot::Sender<StoreResult<SessionRecord>>,
}

/// Session lookups for access tokens, read in batches: the tokens presented while one read
/// is under way are read together in the next, so a storm of connects (or requests) costs
/// a read per batch, not one per token. A lookup alone is read at once.
#[derive(Clone)]
struct SessionLookups {
    tx: tokio::sync::mpsc::UnboundedSender<Lookup>,
    db: Db,
    /// Reads made (the tests check that lookups were read together).
    #[cfg_attr(not(test), allow(dead_code))]
    reads: Arc<std::sync::atomic::AtomicU64>,
}

impl SessionLookups {
    /// Starts the reading task (it ends when the last handle is dropped).
    fn start(db: Db) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Lookup>();
        let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (task_db, task_reads) = (db.clone(), reads.clone());
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < LOOKUPS_PER_READ {
                    match rx.try_recv() {
                        Ok(l) => batch.push(l),
                        Err(_) => break,
                    }
                }
                task_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                metrics::histogram!("session_lookups_per_read").record(batch.len() as f64);
                let keys: Vec<(&str, &str)> = batch
                    .iter()
                    .map(|l| (l.tenant.as_str(), l.session.as_str()))
                    .collect();
                match task_db.session_records(&keys).await {
                    Ok(found) => {
                        // (The same token may be in the batch more than once.)
                        for l in batch {
                            let record = found
                                .get(&(l.tenant, l.session))
                                .cloned()
                                .ok_or(StoreError::NotFound);
                            let _ = l.reply.send(record);
                        }
                    }
                    Err(e) => {
                        // Each on its own, so each gets its own answer.
                        tracing::warn!(error = %e, "reading sessions together failed");
                        for l in batch {
                            let record = task_db
                                .for_tenant(&l.tenant)
                                .session_record(&l.session)
                                .await;
                            let _ = l.reply.send(record);
                        }
                    }
                }
            }
        });
        Self { tx, db, reads }
    }

    async fn get(&self, tenant: &str, session: &str) -> StoreResult<SessionRecord> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let lookup = Lookup {
            tenant: tenant.to_string(),
            session: session.to_string(),
            reply,
        };
        if self.tx.send(lookup).is_ok() {
            if let Ok(record) = answer.await {
                return record;
            }
        }
        // The reading task is gone (the runtime is shutting down): read directly.
        self.db.for_tenant(tenant).session_record(session).await
    }
}

impl AuthService {
    pub fn new(db: Db, hub: Hub, secret: &[u8], config: AuthConfig) -> anyhow::Result<Self> {
        Ok(Self {
            sessions: SessionLookups::start(db.clone()),
            hub,
            hasher: PasswordHasher::new(config.argon2_memory_kib, config.argon2_iterations)?,
            db,
            keys: TokenKeys::new(secret),
            config: Arc::new(config),
        })
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Seconds until the oldest failure that makes `key` locked leaves the window, or
    /// `None` when `key` has fewer than `max` failures in the window.
    async fn locked_for(&self, key: &str, max: u32) -> ApiResult<Option<u64>> {
        let window_ms = (self.config.lockout_window_secs * 1000) as i64;
        let now = now_ms();
        let failures = self.db.login_failures_since(key, now - window_ms).await?;
        if max == 0 || failures.len() < max as usize {
            return Ok(None);
        }
        let unlock_at = failures[failures.len() - max as usize] + window_ms;
        Ok(Some(((unlock_at - now).max(1000) as u64).div_ceil(1000)))
    }

    fn too_many(retry_after_secs: u64) -> ApiError {
        ApiError::TooManyRequests {
            code: "too_many_attempts",
            message: format!(
                "too many failed logins; try again in {} minute(s)",
                retry_after_secs.div_ceil(60)
            ),
            retry_after_secs,
        }
    }

    fn bad_credentials() -> ApiError {
        ApiError::unauthorized("invalid_credentials", "wrong company, email or password")
    }

    #[tracing::instrument(skip_all, fields(tenant = %req.tenant))]
    pub async fn login(&self, req: &LoginRequest, client: &ClientInfo) -> ApiResult<TokenPair> {
        let source_key = format!("src:{}", client.source.as_deref().unwrap_or("unknown"));
        if let Some(secs) = self
            .locked_for(&source_key, self.config.max_failures_per_source)
            .await?
        {
            return Err(Self::too_many(secs));
        }
        let tenant = match self.db.tenant_by_slug(req.tenant.trim()).await {
            Ok(t) => t,
            Err(StoreError::NotFound) => {
                self.hasher.verify(&req.password, None).await;
                self.db.record_login_failure(&[&source_key]).await?;
                return Err(Self::bad_credentials());
            }
            Err(e) => return Err(e.into()),
        };
        let tdb = self.db.for_tenant(&tenant.id);
        let email = crate::store::normalize_email(&req.email);
        let account_key = format!("acct:{}:{}", tenant.id, email);
        if let Some(secs) = self
            .locked_for(&account_key, self.config.max_failures_per_account)
            .await?
        {
            return Err(Self::too_many(secs));
        }
        let creds = match tdb.credentials_by_email(&email).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = self
            .hasher
            .verify(
                &req.password,
                creds.as_ref().map(|c| c.password_hash.as_str()),
            )
            .await;
        let Some(creds) = creds.filter(|_| ok) else {
            self.db
                .record_login_failure(&[&account_key, &source_key])
                .await?;
            tdb.audit(NewAuditEntry {
                action: "login_failed",
                source: client.source.as_deref(),
                details: json!({ "email": email }),
                ..Default::default()
            })
            .await?;
            if let Some(secs) = self
                .locked_for(&account_key, self.config.max_failures_per_account)
                .await?
            {
                tdb.audit(NewAuditEntry {
                    action: "account_locked",
                    source: client.source.as_deref(),
                    details: json!({ "email": email, "retry_after_secs": secs }),
                    ..Default::default()
                })
                .await?;
            }
            return Err(Self::bad_credentials());
        };
        if creds.deactivated_at.is_some() {
            return Err(ApiError::unauthorized(
                "account_deactivated",
                "this account has been deactivated",
            ));
        }
        let window_ms = (self.config.lockout_window_secs * 1000) as i64;
        self.db
            .clear_login_failures(&account_key, now_ms() - window_ms)
            .await?;
        let session_id = new_id();
        let refresh = tokens::new_refresh_token(&tenant.id);
        tdb.create_session(
            &session_id,
            &creds.id,
            &tokens::hash_refresh_token(&refresh),
            self.refresh_ttl_ms(),
            client.user_agent.as_deref(),
            client.source.as_deref(),
        )
        .await?;
        tdb.audit(NewAuditEntry {
            actor_user_id: Some(&creds.id),
            action: "login",
            target_type: Some("session"),
            target_id: Some(&session_id),
            source: client.source.as_deref(),
            details: json!({ "user_agent": client.user_agent }),
        })
        .await?;
        self.token_pair(&tdb, &creds.id, &session_id, refresh).await
    }

    fn refresh_ttl_ms(&self) -> i64 {
        (self.config.refresh_token_ttl_secs * 1000) as i64
    }

    async fn token_pair(
        &self,
        tdb: &TenantDb,
        user_id: &str,
        session_id: &str,
        refresh_token: String,
    ) -> ApiResult<TokenPair> {
        let now = chrono::Utc::now().timestamp() as u64;
        let claims = AccessClaims {
            sub: user_id.to_string(),
            tid: tdb.tenant_id().to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + self.config.access_token_ttl_secs,
            typ: "access".into(),
        };
        Ok(TokenPair {
            access_token: self.keys.issue(&claims)?,
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl_secs,
            refresh_token,
            refresh_expires_in: self.config.refresh_token_ttl_secs,
            user: tdb.user(user_id).await?,
        })
    }

    /// Rotates a refresh token. A token presented twice revokes its whole session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, presented: &str, client: &ClientInfo) -> ApiResult<TokenPair> {
        let invalid = || {
            ApiError::unauthorized(
                "invalid_refresh_token",
                "the refresh token is not valid; log in again",
            )
        };
        let tenant_id = tokens::refresh_token_tenant(presented).ok_or_else(invalid)?;
        let tdb = self.db.for_tenant(tenant_id);
        let next = tokens::new_refresh_token(tenant_id);
        let outcome = match tdb
            .rotate_refresh_token(
                &tokens::hash_refresh_token(presented),
                &tokens::hash_refresh_token(&next),
                self.refresh_ttl_ms(),
            )
            .await
        {
            Ok(o) => o,
            // An unknown tenant id in a forged token: same answer as any unknown token.
            Err(StoreError::NotFound) => RefreshOutcome::Invalid,
            Err(e) => return Err(e.into()),
        };
        match outcome {
            RefreshOutcome::Rotated {
                session_id,
                user_id,
            } => self.token_pair(&tdb, &user_id, &session_id, next).await,
            RefreshOutcome::Reused {
                session_id,
                user_id,
            } => {
                tdb.audit(NewAuditEntry {
                    actor_user_id: Some(&user_id),
                    action: "refresh_token_reused",
                    target_type: Some("session"),
                    target_id: Some(&session_id),
                    source: client.source.as_deref(),
                    details: json!({ "session_revoked": true }),
                })
                .await?;
                tracing::warn!(session = %session_id, "refresh token reuse: session revoked");
                self.hub
                    .kick_session(
                        tenant_id,
                        &session_id,
                        close::SESSION_REVOKED,
                        "session_revoked",
                    )
                    .await;
                Err(ApiError::unauthorized(
                    "refresh_token_reused",
                    "this refresh token was already used; the session has been ended for safety",
                ))
            }
            RefreshOutcome::Invalid => Err(invalid()),
        }
    }

    /// Checks an access token and that its session and user are still live right now.
    pub async fn authenticate(&self, access_token: &str) -> ApiResult<Principal> {
        let claims = self.keys.verify(access_token).map_err(|e| match e {
            TokenError::Expired => {
                ApiError::unauthorized("token_expired", "the access token has expired; refresh it")
            }
            TokenError::Invalid => {
                ApiError::unauthorized("invalid_token", "the access token is not valid")
            }
        })?;
        let record = match self.sessions.get(&claims.tid, &claims.sid).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "the access token is not valid",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        if record.user_id != claims.sub {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "the access token is not valid",
            ));
        }
        if record.deactivated_at.is_some() {
            return Err(ApiError::unauthorized(
                "account_deactivated",
                "this account has been deactivated",
            ));
        }
        if record.revoked_at.is_some() || record.expires_at <= now_ms() {
            return Err(ApiError::unauthorized(
                "session_revoked",
                "this session has ended; log in again",
            ));
        }
        Ok(Principal {
            tenant_id: claims.tid,
            user_id: claims.sub,
            session_id: claims.sid,
            role: Role::parse(&record.role).unwrap_or(Role::Recruiter),
        })
    }

    /// Revokes the session a refresh token belongs to (logout with the cookie only).
    pub async fn logout_by_refresh(&self, presented: &str) -> ApiResult<()> {
        let Some(tenant_id) = tokens::refresh_token_tenant(presented) else {
            return Ok(());
        };
        let tdb = self.db.for_tenant(tenant_id);
        if let Some(session) = tdb
            .revoke_session_by_refresh(&tokens::hash_refresh_token(presented))
            .await?
        {
            self.hub
                .kick_session(
                    tenant_id,
                    &session,
                    close::SESSION_REVOKED,
                    "session_revoked",
                )
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::store::NewUser;

    async fn user(db: &Db, tenant: &str, email: &str) -> User {
        db.for_tenant(tenant)
            .create_user(NewUser {
                email: email.into(),
                name: email.into(),
                role: Role::Recruiter,
                department_id: None,
                phone: None,
                title: None,
                password_hash: "not used".into(),
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn tokens_presented_together_are_read_together_and_each_answered_as_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = Secret::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ));
        let db = Db::connect(&url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let a = db.create_tenant("a", "A").await.unwrap();
        let b = db.create_tenant("b", "B").await.unwrap();
        let olga = user(&db, &a.id, "olga@a.test").await;
        let ivan = user(&db, &b.id, "ivan@b.test").await;
        let mut keys: Vec<(String, String)> = Vec::new();
        for i in 0..6 {
            let (tenant, who) = if i % 2 == 0 { (&a, &olga) } else { (&b, &ivan) };
            let sid = format!("session-{i}");
            db.for_tenant(&tenant.id)
                .create_session(&sid, &who.id, &format!("hash-{i}"), 60_000, None, None)
                .await
                .unwrap();
            keys.push((tenant.id.clone(), sid));
        }
        db.for_tenant(&a.id)
            .revoke_session(&olga.id, "session-2", "logout")
            .await
            .unwrap();
        // Another tenant's session under this tenant, a session that does not exist, and
        // one token presented twice.
        keys.push((a.id.clone(), "session-1".into()));
        keys.push((b.id.clone(), "no-such-session".into()));
        keys.push(keys[0].clone());

        let lookups = SessionLookups::start(db.clone());
        // All asked before the reading task runs (one thread): one read answers them.
        let answers =
            futures_util::future::join_all(keys.iter().map(|(t, s)| lookups.get(t, s))).await;
        assert_eq!(lookups.reads.load(std::sync::atomic::Ordering::Relaxed), 1);
        for ((tenant, session), answer) in keys.iter().zip(answers) {
            let alone = db.for_tenant(tenant).session_record(session).await;
            match (answer, alone) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(
                        (got.user_id, got.role, got.revoked_at, got.expires_at),
                        (want.user_id, want.role, want.revoked_at, want.expires_at),
                        "{session}"
                    );
                }
                (Err(StoreError::NotFound), Err(StoreError::NotFound)) => {}
                (got, want) => panic!("{tenant}/{session}: {got:?} against {want:?}"),
            }
        }
        let revoked = lookups.get(&a.id, "session-2").await.unwrap();
        assert!(
            revoked.revoked_at.is_some(),
            "a revoked session reads as revoked"
        );
        assert!(matches!(
            lookups.get(&a.id, "session-1").await,
            Err(StoreError::NotFound)
        ));
        db.close().await;
    }
}
