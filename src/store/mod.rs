//! The store: one database interface over SQLite (embedded default) and PostgreSQL.
//!
//! Business logic is written once against sqlx's `Any` driver; the SQL is shared (both
//! backends accept `$n` parameters, `RETURNING` and `ON CONFLICT`), only the migrations
//! differ. Values are kept to types both backends read alike: text ids (UUIDv7), 64-bit
//! integer times in Unix milliseconds, nullable timestamps instead of booleans.
//!
//! Tenant isolation lives here, in one place: every tenant-owned table is reached only
//! through [`TenantDb`], whose every query binds its `tenant_id`. A `TenantDb` is made from an
//! authenticated [`crate::auth::Principal`] (which only the auth layer can construct) or,
//! for operator commands, explicitly by tenant id. HTTP handlers never see the pool.

mod ats;
mod audit;
mod channels;
mod checkpoint;
mod contacts;
mod departments;
mod events;
mod ingest;
pub(crate) use ingest::TOUCH_ACCOUNT_EVERY_MS;
mod outbox;
mod rooms;
mod routing;
mod sends;
mod sessions;
mod statuses;
mod tenants;
mod threads;
mod uploads;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use ats::{
    Application, BoardCounters, BoardDifference, BoardMapping, BoardStateRef, BoardVacancyInput,
    NewBoardApplication, OAuthRequest, Pipeline, Stage, Vacancy, DEFAULT_STAGES,
};
pub use audit::{AuditEntry, AuditQuery, NewAuditEntry};
pub use channels::{
    ChannelAccount, ChannelAccountPatch, HealthReport, NewChannelAccount, Queue, QueueInput,
    QueueMember, Template,
};
pub use contacts::{Contact, ContactMerge, Identity, IdentityKey, Resolved};
pub use departments::Department;
pub use events::{Audience, ReplayStart, StoredEvent};
pub use outbox::OutboxJob;
pub use rooms::{
    Attachment, BatchedSend, NewRoomMessage, Room, RoomChange, RoomKind, RoomMessage, Sent,
};
pub use routing::{AssignedThread, MemberLoad, RoutingQueue};
pub use sessions::{RefreshOutcome, SessionInfo, SessionRecord};
pub use statuses::ChosenStatus;
pub use tenants::Tenant;
pub use threads::{
    Inbound, Ingested, NewThreadMessage, Thread, ThreadChange, ThreadFilter, ThreadMessage,
};
pub use uploads::Upload;
pub use users::{normalize_email, Credentials, NewUser, Role, User, UserPatch};

use crate::config::Secret;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long an SQLite statement waits for a lock another connection holds.
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";

/// Set on every SQLite connection.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA foreign_keys = ON",
    SQLITE_BUSY_TIMEOUT,
    "PRAGMA synchronous = NORMAL",
    // Checkpoints run in the background (see `checkpoint`), never inside a
    // writer's commit, where their fsyncs would stall every waiting send.
    "PRAGMA wal_autocheckpoint = 0",
    // The log file, once started over, is cut back to this size (bytes): twice the
    // length at which it is started over, so that only a log that grew far past it (a
    // long reader held it) is cut. Cutting it at every start-over cost the first commit
    // after it 13 ms (the truncate) and the next pass its blocks again.
    "PRAGMA journal_size_limit = 536870912",
];

/// How long a query waits for a pool connection before the request fails with 503-ish
/// `database_unavailable` instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write; the text names what clashed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row (named) does not exist in this tenant.
    #[error("unknown {0}")]
    UnknownReference(&'static str),
    #[error("unsupported database url (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() =>
            {
                // The constraint name (PostgreSQL) and the message (SQLite names the columns).
                StoreError::Conflict(format!(
                    "{} {}",
                    db.constraint().unwrap_or(""),
                    db.message()
                ))
            }
            _ => StoreError::Database(err),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the Unix epoch: the time unit of every stored timestamp.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new time-sortable id (UUIDv7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A `LIKE … ESCAPE '\'` pattern that finds `term` anywhere, in lower case (Unicode-aware),
/// with the pattern's own special characters taken literally; `None` for an empty term.
pub(crate) fn like_pattern(term: &str) -> Option<String> {
    let term = term.trim().to_lowercase();
    (!term.is_empty()).then(|| {
        format!(
            "%{}%",
            term.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    })
}

pub(crate) fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Readiness of the database for `/readyz`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub reachable: bool,
    pub migrations_applied: bool,
    pub pending_migrations: Vec<i64>,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// Write transactions' connections: on SQLite one connection used only by them (behind
    /// `write_gate`), on PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Write transactions queue here, in order, instead of
    /// polling for the file lock (which makes latency spiky) or failing when a reading
    /// transaction cannot upgrade. `None` on PostgreSQL, which locks rows.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Channel accounts as the provider hooks read them (see
    /// [`Db::hook_account`]), for a moment.
    hook_accounts: HookAccounts,
}

/// Channel accounts by id with when they were read.
type HookAccounts =
    Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, ChannelAccount)>>>;

/// Held for the length of a write transaction (see [`Db`]'s `write_gate`).
pub(crate) type WriteGate = Option<tokio::sync::OwnedMutexGuard<()>>;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Db {
    /// Opens a pool. SQLite runs in WAL mode with foreign keys on; the file and its
    /// directory are created when missing.
    pub async fn connect(url: &Secret<String>, max_connections: u32) -> StoreResult<Db> {
        sqlx::any::install_default_drivers();
        let raw = url.expose();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres:") || raw.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        if backend == Backend::Sqlite {
            if let Some(dir) = sqlite_file(raw).and_then(|p| p.parent().map(|d| d.to_owned())) {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(&dir).map_err(|e| StoreError::Database(e.into()))?;
                }
            }
        }
        let options = AnyConnectOptions::from_str(raw)?.disable_statement_logging();
        let pool = open_pool(options.clone(), backend, max_connections.max(1), true).await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL;").await?;
        }
        // SQLite: write transactions take turns at the gate on a connection of their own,
        // so a burst of readers holding the pool never delays a writer.
        let (write_gate, writer) = if backend == Backend::Sqlite {
            let gate = Arc::new(tokio::sync::Mutex::new(()));
            let writer = open_pool(options, backend, 1, false).await?;
            // The pools made the file; an in-memory database has none (and no copier).
            let checkpointer = checkpoint::Checkpointer::new(
                pool.clone(),
                writer.clone(),
                gate.clone(),
                sqlite_file(raw).as_deref(),
            )?;
            tokio::spawn(checkpoint::checkpoint_in_background(checkpointer));
            (Some(gate), writer)
        } else {
            (None, pool.clone())
        };
        Ok(Db {
            pool,
            writer,
            backend,
            write_gate,
            hook_accounts: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        self.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers and every migration this build knows is applied.
    pub async fn readiness(&self) -> Readiness {
        let reachable = sqlx::query("SELECT 1").execute(&self.pool).await.is_ok();
        let applied: Vec<i64> = if reachable {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let pending: Vec<i64> = self
            .migrator()
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect();
        Readiness {
            reachable,
            migrations_applied: reachable && pending.is_empty(),
            pending_migrations: pending,
        }
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Begins a transaction that writes: on SQLite, after its turn at the write gate.
    pub(crate) async fn begin_write(
        &self,
    ) -> StoreResult<(sqlx::Transaction<'static, sqlx::Any>, WriteGate)> {
        let gate = match &self.write_gate {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        };
        let mut tx = self.writer.begin().await?;
        // Every write transaction takes SQLite's write lock first, so one that reads before
        // it writes cannot fail to upgrade when another connection committed meanwhile.
        rooms::take_write_lock(&mut tx, self.backend).await?;
        Ok((tx, gate))
    }

    /// The tenant-scoped view used by request handlers: made from an authenticated
    /// principal, so its tenant is the caller's own.
    pub fn for_principal(&self, principal: &crate::auth::Principal) -> TenantDb {
        TenantDb {
            db: self.clone(),
            tenant_id: principal.tenant_id().to_string(),
        }
    }

    /// The tenant-scoped view for operator commands (`jobers admin`), login and token
    /// refresh, where the tenant is known before any principal exists.
    pub fn for_tenant(&self, tenant_id: &str) -> TenantDb {
        TenantDb {
            db: self.clone(),
            tenant_id: tenant_id.to_string(),
        }
    }
}

/// Set on the SQLite writers' connection: statement journals in memory. A statement that
/// writes several rows (a batch of messages) and may fail halfway (a unique or foreign key
/// check) keeps the pages it changed in a statement journal, to undo just that statement.
/// In a file (SQLite's default past 64 KiB) every batch created, wrote and deleted one:
/// in `direct`, 8% of the message writer's time was spent there, with the kernel zeroing
/// the file's new blocks on top. It holds one batch's changed pages at most.
const SQLITE_WRITER_TEMP_STORE: &str = "PRAGMA temp_store = MEMORY";

/// Page cache of each SQLite reading connection. Readers share the operating system's
/// cache of the file; a pool of 16 with SQLite's default (2 MB each) would hold up to 16
/// private copies of the same hot pages. The writer keeps the default.
const SQLITE_READER_CACHE: &str = "PRAGMA cache_size = -512";

async fn open_pool(
    options: AnyConnectOptions,
    backend: Backend,
    max: u32,
    readers: bool,
) -> StoreResult<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // One statement each (a multi-statement string may stop at the first).
                    // busy_timeout: writers queue for the file lock instead of failing;
                    // synchronous NORMAL: in WAL mode a commit survives a crash of the
                    // process without an fsync per commit.
                    for pragma in SQLITE_PRAGMAS {
                        conn.execute(*pragma).await?;
                    }
                    if readers {
                        conn.execute(SQLITE_READER_CACHE).await?;
                    } else {
                        conn.execute(SQLITE_WRITER_TEMP_STORE).await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Everything one tenant owns. Each query binds `tenant_id`; there is no other way in.
#[derive(Clone, Debug)]
pub struct TenantDb {
    db: Db,
    tenant_id: String,
}

impl TenantDb {
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    fn pool(&self) -> &AnyPool {
        &self.db.pool
    }

    /// Begins a transaction that writes: on SQLite, after its turn at the write gate.
    pub(crate) async fn begin_write(
        &self,
    ) -> StoreResult<(sqlx::Transaction<'static, sqlx::Any>, WriteGate)> {
        self.db.begin_write().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_paired() {
        let names = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS));
        assert!(SQLITE_MIGRATIONS.iter().count() > 0);
    }

    #[tokio::test]
    async fn sqlite_connections_have_foreign_keys_and_normal_sync() {
        let dir = std::env::temp_dir().join(format!("jobers-pragma-{}", new_id()));
        let url = Secret::new(format!("sqlite://{}?mode=rwc", dir.join("t.db").display()));
        let db = Db::connect(&url, 2).await.unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            (fk, sync, mode.as_str()),
            (1, 1, "wal"),
            "foreign keys on, synchronous NORMAL, WAL"
        );
        let cache = |pool| sqlx::query_scalar::<_, i64>("PRAGMA cache_size").fetch_one(pool);
        assert_eq!(
            cache(&db.pool).await.unwrap(),
            -512,
            "readers keep a small cache"
        );
        assert_eq!(
            cache(&db.writer).await.unwrap(),
            -2000,
            "the writer the default"
        );
        let temp = |pool| sqlx::query_scalar::<_, i64>("PRAGMA temp_store").fetch_one(pool);
        assert_eq!(
            temp(&db.writer).await.unwrap(),
            2,
            "the writer keeps statement journals in memory"
        );
        assert_eq!(temp(&db.pool).await.unwrap(), 0, "readers the default");
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn pruning_events_by_age_reads_the_time_index() {
        let dir = std::env::temp_dir().join(format!("jobers-prune-{}", new_id()));
        let url = Secret::new(format!("sqlite://{}?mode=rwc", dir.join("t.db").display()));
        let db = Db::connect(&url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as("EXPLAIN QUERY PLAN DELETE FROM events WHERE created_at < 1")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        let details: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("USING COVERING INDEX events_created")
                    || d.contains("USING INDEX events_created")),
            "{details:?}"
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sqlite_file_is_read_from_the_url() {
        assert_eq!(
            sqlite_file("sqlite://data/jobers.db?mode=rwc"),
            Some("data/jobers.db".into())
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert!(a < b, "{a} !< {b}");
    }
}
