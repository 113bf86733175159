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
    // Checkpoints run in the background (see `checkpoint_in_background`), never inside a
    // writer's commit, where their fsyncs would stall every waiting send.
    "PRAGMA wal_autocheckpoint = 0",
    // The log file, once started over, is cut back to this size (bytes): twice the
    // length at which it is started over, so that only a log that grew far past it (a
    // long reader held it) is cut. Cutting it at every start-over cost the first commit
    // after it 13 ms (the truncate) and the next pass its blocks again.
    "PRAGMA journal_size_limit = 536870912",
];

/// At most this many passes catch up before the writers' turn to start the log over.
const RESTART_CATCH_UP_PASSES: usize = 6;

/// A catch-up pass this short left little for the writers' turn (see
/// [`Checkpointer::checkpoint`]).
const RESTART_CATCH_UP_SHORT: Duration = Duration::from_millis(5);

/// Tries (1 ms apart) to start the log over in one writers' turn before leaving it to the
/// next checkpoint.
const RESTART_TRIES: usize = 3;

/// How often the WAL is copied back into the database file (SQLite). Each pass syncs the
/// log, then the database file; the longer between passes, the more each sync has to
/// write, and the more frames pile up behind it to copy and sync in the writers' turn at
/// a start-over. Once a second, under 5,000 messages/s, that turn held writers 10–50 ms;
/// every 250 ms, mostly under 5 ms.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages) after which the log is started over (65,536 pages of 4 KiB: 256 MiB).
/// Each restart holds writers while the last frames are copied and the database file is
/// synced (the log is caught up first, outside their turn): 20–25 ms, whatever the length.
/// At 256 MiB that happens half as often as at 128 MiB (5 start-overs in a `direct` run
/// instead of 10–11; p99 8.7–17.2 ms against 13.5–20.8 ms over six alternating runs, the
/// page cache dropped before each). A longer log makes every read slower (pages are looked
/// up in the log's index): at 1 GiB the message writer's batches slowed late in a heavy run
/// until sends queued for half a second (`direct` p99 450–880 ms in half the runs).
const RESTART_WAL_AFTER_FRAMES: i64 = 65_536;

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
            // The pools made the file; an in-memory database has none to sync.
            let file = match sqlite_file(raw) {
                Some(path) => Some(Arc::new(
                    std::fs::File::open(path).map_err(|e| StoreError::Database(e.into()))?,
                )),
                None => None,
            };
            let checkpointer = Checkpointer {
                pool: pool.clone(),
                writer: writer.clone(),
                gate: gate.clone(),
                file,
                last_pass: Arc::default(),
            };
            tokio::spawn(checkpoint_in_background(checkpointer));
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
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?)
}

/// What the background checkpoint of an SQLite database works with.
#[derive(Clone)]
struct Checkpointer {
    /// Readers' pool: passive checkpoints run on it, outside the writers' turn.
    pool: AnyPool,
    /// The writers' connection, used in their turn to start the log over.
    writer: AnyPool,
    gate: Arc<tokio::sync::Mutex<()>>,
    /// The database file, opened read-only, to sync it outside the writers' turn (see
    /// [`Checkpointer::sync_database_file`]). Kept open for as long as the pools: closing
    /// any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    /// own included, so it is never closed while a connection is open.
    file: Option<Arc<std::fs::File>>,
    /// The log's frames and how many of them were copied, as the last pass found them.
    last_pass: Arc<std::sync::Mutex<(i64, i64)>>,
}

/// Copies the WAL back into the database file, without blocking writers (PASSIVE), until
/// the pool is closed.
async fn checkpoint_in_background(ckpt: Checkpointer) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if ckpt.closed() {
            return;
        }
        if let Err(e) = ckpt.checkpoint(RESTART_WAL_AFTER_FRAMES).await {
            if ckpt.closed() {
                return;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// What one checkpoint did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Checkpointed {
    /// The checkpoint copied frames and the hub synced the database file.
    synced: bool,
    /// The log was started over.
    restarted: bool,
}

impl Checkpointer {
    fn closed(&self) -> bool {
        self.pool.is_closed() || self.writer.is_closed()
    }

    /// A passive checkpoint: copies what it can of the log, without waiting for anyone,
    /// then, when it copied anything, syncs the database file outside the writers' turn.
    /// SQLite syncs the file only when its copy reached the end of the log with no frame
    /// added meanwhile: under steady writes, almost never before the writers' turn at a
    /// start-over, whose sync then wrote every page copied since the last one (about 3 s of
    /// sends) with every writer waiting, 12–33 ms and growing over a run. Synced here, the
    /// turn has only its own few pages left to write. Returns the log's frames, how many
    /// of them are copied, and whether the file was synced.
    async fn passive(&self) -> StoreResult<(i64, i64, bool)> {
        let (_busy, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.pool)
                .await?;
        // What the last pass left: a change means this one copied frames (or the log was
        // started over since, after a copy). An idle database is not synced again.
        let before = std::mem::replace(
            &mut *self.last_pass.lock().expect("not poisoned"),
            (frames, copied),
        );
        let copied_some = copied > 0 && before != (frames, copied);
        if copied_some {
            self.sync_database_file().await?;
        }
        Ok((frames, copied, copied_some && self.file.is_some()))
    }

    /// Syncs the database file (`fdatasync`) on a blocking thread. Syncing more often than
    /// SQLite would is always safe: the file may hold any copied page at any time.
    async fn sync_database_file(&self) -> StoreResult<()> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| StoreError::Database(sqlx::Error::Io(std::io::Error::other(e))))?
            .map_err(|e| StoreError::Database(e.into()))?;
        metrics::histogram!("sqlite_db_sync_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// One checkpoint. Under steady reads and writes the log is never found unused at the
    /// moment a writer could start it over, and grows without end (appending is dearer
    /// than rewriting, and the file takes the disk). Past `restart_after` frames, a
    /// checkpoint in the writers' turn copies the rest and, once no reader is on the log (a
    /// few milliseconds at most, or it is left to the next pass), lets the next write start
    /// it over.
    async fn checkpoint(&self, restart_after: i64) -> StoreResult<Checkpointed> {
        let (frames, _, synced) = self.passive().await?;
        let mut done = Checkpointed {
            synced,
            restarted: false,
        };
        if frames < restart_after {
            return Ok(done);
        }
        // Catch up outside the writers' turn first (writers go on meanwhile), so that in
        // their turn little is left to copy and sync. What a pass leaves behind is what
        // was written while it ran (its syncs, mostly), so passes follow one another until
        // one is short: then the turn has only a few milliseconds of sends to copy and
        // sync. Judged by the frames a pass left, the turn found 3,000 frames written
        // during the last pass's syncs and took 13–28 ms.
        for _ in 0..RESTART_CATCH_UP_PASSES {
            let pass = std::time::Instant::now();
            let (_, _, synced) = self.passive().await?;
            done.synced |= synced;
            if pass.elapsed() < RESTART_CATCH_UP_SHORT {
                break;
            }
        }
        // In the writers' turn, without SQLite's own wait for readers: its busy handler
        // sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, up to the busy timeout (10 s),
        // and every send would wait with it behind one long read. A few tries 1 ms apart
        // instead; when a reader is still in the way, the writers go on and the next pass
        // tries again.
        let _turn = self.gate.lock().await;
        let started = std::time::Instant::now();
        let writer = &self.writer;
        writer.execute("PRAGMA busy_timeout = 0").await?;
        let outcome = restart_without_waiting(writer).await;
        let restored = writer.execute(SQLITE_BUSY_TIMEOUT).await;
        done.restarted = outcome?;
        restored?;
        metrics::histogram!("sqlite_wal_restart_seconds").record(started.elapsed().as_secs_f64());
        if done.restarted {
            metrics::counter!("sqlite_wal_restarts_total").increment(1);
        } else {
            metrics::counter!("sqlite_wal_restarts_deferred_total").increment(1);
        }
        Ok(done)
    }
}

/// A complete checkpoint (a few tries 1 ms apart), then the log started over; whether it was.
async fn restart_without_waiting(writer: &AnyPool) -> StoreResult<bool> {
    for attempt in 0..RESTART_TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(writer)
            .await?;
        if busy == 0 {
            return start_log_over(writer).await;
        }
    }
    Ok(false)
}

/// After a complete checkpoint, the log starts over at the next write if no reader is on it
/// by then. Makes that write now, in the writers' turn: one that changes nothing (the
/// header page's user version set to itself). Returns whether the log did start over.
/// Left to the next send instead, the start-over did not happen in about one run in three
/// of `direct`, and the log went on growing with a checkpoint in the writers' turn every
/// pass.
async fn start_log_over(writer: &AnyPool) -> StoreResult<bool> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(writer)
        .await?;
    writer
        .execute(format!("PRAGMA user_version = {version}").as_str())
        .await?;
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(writer)
        .await?;
    Ok(frames <= 1)
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
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_long_wal_is_started_over_once_a_long_reader_is_done() {
        let dir = std::env::temp_dir().join(format!("jobers-wal-{}", new_id()));
        let url = Secret::new(format!("sqlite://{}?mode=rwc", dir.join("t.db").display()));
        let db = Db::connect(&url, 2).await.unwrap();
        let ckpt = checkpointer(&db, Some(&dir.join("t.db")));
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(&db.writer)
            .await
            .unwrap();
        for i in 0..200 {
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(format!("{i:0>500}"))
                .execute(&db.writer)
                .await
                .unwrap();
        }
        let frames = || async {
            let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            log
        };
        // A reader in the middle of a transaction on the log. The checkpoint does not wait
        // for it (SQLite's busy handler would, up to the busy timeout, with every writer
        // behind it): it gives up within milliseconds and the writers go on.
        let mut reading = db.pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *reading)
            .await
            .unwrap();
        // Below the limit nothing is started over; the log keeps its frames.
        assert!(!ckpt.checkpoint(i64::MAX).await.unwrap().restarted);
        let before = frames().await;
        assert!(before > 100, "the inserts are in the log: {before}");
        let started = std::time::Instant::now();
        assert!(!ckpt.checkpoint(1).await.unwrap().restarted);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "gave up at once: {:?}",
            started.elapsed()
        );
        sqlx::query("INSERT INTO t (v) VALUES ('while reading')")
            .execute(&db.writer)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&db.writer)
            .await
            .unwrap();
        assert_eq!(busy, 10_000, "the writer waits for locks again");
        assert!(
            frames().await > before,
            "appended after the reader's frames"
        );
        reading.commit().await.unwrap();
        // With the reader gone, the next pass starts the log over: the next write goes to
        // its start.
        assert!(ckpt.checkpoint(1).await.unwrap().restarted);
        sqlx::query("INSERT INTO t (v) VALUES ('next')")
            .execute(&db.writer)
            .await
            .unwrap();
        let after = frames().await;
        assert!(after < 10, "the log was started over: {after} frames");
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A checkpointer of `db` like its background task's, with what its passes found kept
    /// apart from the task's.
    fn checkpointer(db: &Db, file: Option<&std::path::Path>) -> Checkpointer {
        Checkpointer {
            pool: db.pool.clone(),
            writer: db.writer.clone(),
            gate: db.write_gate.clone().expect("sqlite has a gate"),
            file: file.map(|f| Arc::new(std::fs::File::open(f).unwrap())),
            last_pass: Arc::default(),
        }
    }

    #[tokio::test]
    async fn a_checkpoint_that_copies_frames_syncs_the_database_file_outside_the_writers_turn() {
        let dir = std::env::temp_dir().join(format!("jobers-wal-{}", new_id()));
        let url = Secret::new(format!("sqlite://{}?mode=rwc", dir.join("t.db").display()));
        let db = Db::connect(&url, 2).await.unwrap();
        let ckpt = checkpointer(&db, Some(&dir.join("t.db")));
        assert!(
            ckpt.file.is_some(),
            "a database in a file has its file to sync"
        );
        let insert = |v: String| {
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(v)
                .execute(&db.writer)
        };
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(&db.writer)
            .await
            .unwrap();
        for i in 0..50 {
            insert(format!("{i:0>500}")).await.unwrap();
        }
        // Copied frames are synced to the file by the hub (SQLite would leave them unsynced
        // whenever a write came in during its copy).
        let first = ckpt.checkpoint(i64::MAX).await.unwrap();
        assert!(first.synced, "{first:?}");
        assert!(!first.restarted);
        // Nothing new: no copy, no sync.
        assert_eq!(
            ckpt.checkpoint(i64::MAX).await.unwrap(),
            Checkpointed::default()
        );
        // A reader on the log as it is now; writes after its frames can't be copied while
        // it reads, so nothing is copied and nothing synced...
        let mut reading = db.pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *reading)
            .await
            .unwrap();
        for i in 0..50 {
            insert(format!("later {i:0>500}")).await.unwrap();
        }
        let held = ckpt.checkpoint(i64::MAX).await.unwrap();
        assert!(!held.restarted);
        assert_eq!(
            ckpt.checkpoint(i64::MAX).await.unwrap(),
            Checkpointed::default()
        );
        // ...until it is done.
        reading.commit().await.unwrap();
        let rest = ckpt.checkpoint(i64::MAX).await.unwrap();
        assert!(rest.synced, "{rest:?}");
        // An in-memory database has no file; its checkpoints still run.
        let memory = Db::connect(&Secret::new("sqlite::memory:".into()), 1)
            .await
            .unwrap();
        let ckpt = checkpointer(&memory, None);
        ckpt.sync_database_file().await.unwrap();
        ckpt.checkpoint(i64::MAX).await.unwrap();
        memory.close().await;
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
