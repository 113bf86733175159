//! SQLite's write-ahead log (WAL) kept short (decisions 19 and 29): every
//! [`CHECKPOINT_EVERY`] a passive checkpoint copies the log back into the database file and
//! the hub syncs that file; once the log is long, it is started over in the writers' turn.
//!
//! The passive checkpoints and the syncs run on a connection and an operating-system
//! thread of their own (the copier), at a lower CPU priority than the rest of the hub. The
//! hub usually has one core; a checkpoint copying a few thousand pages is tens of
//! milliseconds of work, and at the same priority it took the core from the message writer
//! and the sockets' runtime in turns, holding every send that long (in `direct` with a
//! history of a million messages, 100 ms windows where half the messages took over 40 ms).
//! At a lower priority it runs on what they leave.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyPool, Executor};
use tokio::sync::oneshot;

use super::{StoreError, StoreResult, SQLITE_BUSY_TIMEOUT};

/// At most this many passes catch up before the writers' turn to start the log over.
const RESTART_CATCH_UP_PASSES: usize = 6;

/// A catch-up pass this short left little for the writers' turn (see
/// [`Checkpointer::checkpoint`]).
const RESTART_CATCH_UP_SHORT: Duration = Duration::from_millis(5);

/// Tries (1 ms apart) to start the log over in one writers' turn before leaving it to the
/// next checkpoint.
const RESTART_TRIES: usize = 3;

/// How often the WAL is copied back into the database file. Each pass syncs the log, then
/// the database file; the longer between passes, the more each sync has to write, and the
/// more frames pile up to copy and sync before a start-over. Once a second, under 5,000
/// messages/s, the start-over's turn held writers 10–50 ms; every 250 ms, mostly under 5.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL frames (pages) after which the log is started over (65,536 pages of 4 KiB: 256 MiB).
/// Each start-over holds writers while the last frames are copied and synced (the log is
/// caught up and the database file synced first, outside their turn): 3–10 ms. At 256 MiB
/// that happens half as often as at 128 MiB (5 start-overs in a `direct` run instead of
/// 10–11). A longer log makes every read slower (pages are looked up in the log's index):
/// at 1 GiB the message writer's batches slowed late in a heavy run until sends queued for
/// half a second (`direct` p99 450–880 ms in half the runs).
pub(super) const RESTART_WAL_AFTER_FRAMES: i64 = 65_536;

/// The copier's nice value: ten steps below the hub's other threads, a tenth of their share
/// of a core when all want it.
const COPIER_NICE: i32 = 10;

/// What the background checkpoint of an SQLite database works with.
#[derive(Clone)]
pub(super) struct Checkpointer {
    /// Readers' pool: it tells whether the database is closed, and checkpoints an
    /// in-memory database (which has no file for a copier).
    pool: AnyPool,
    /// The writers' connection, used in their turn to start the log over.
    writer: AnyPool,
    gate: Arc<tokio::sync::Mutex<()>>,
    /// The copier of a database in a file.
    copier: Option<Copier>,
}

/// What one checkpoint did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Checkpointed {
    /// The checkpoint copied frames and the hub synced the database file.
    pub synced: bool,
    /// The log was started over.
    pub restarted: bool,
}

/// One passive pass as the copier made it.
#[derive(Debug)]
struct Pass {
    /// Frames in the log.
    frames: i64,
    /// Whether the database file was synced.
    synced: bool,
}

/// Copies the WAL back into the database file, without blocking writers (PASSIVE), until
/// the pool is closed.
pub(super) async fn checkpoint_in_background(ckpt: Checkpointer) {
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

impl Checkpointer {
    /// For the database at `file` (`None`: in memory), whose pools are open.
    pub(super) fn new(
        pool: AnyPool,
        writer: AnyPool,
        gate: Arc<tokio::sync::Mutex<()>>,
        file: Option<&Path>,
    ) -> StoreResult<Self> {
        let copier = file.map(Copier::start).transpose()?;
        Ok(Self {
            pool,
            writer,
            gate,
            copier,
        })
    }

    fn closed(&self) -> bool {
        self.pool.is_closed() || self.writer.is_closed()
    }

    /// A passive pass: copies what it can of the log without waiting for anyone, then,
    /// when it copied anything, syncs the database file (see [`Copier`]).
    async fn passive(&self) -> StoreResult<Pass> {
        match &self.copier {
            Some(copier) => copier.pass().await,
            None => {
                let (_busy, frames, _copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(Pass {
                    frames,
                    synced: false,
                })
            }
        }
    }

    /// One checkpoint. Under steady reads and writes the log is never found unused at the
    /// moment a writer could start it over, and grows without end (appending is dearer
    /// than rewriting, and the file takes the disk). Past `restart_after` frames, a
    /// checkpoint in the writers' turn copies the rest and, once no reader is on the log (a
    /// few milliseconds at most, or it is left to the next pass), lets the next write start
    /// it over.
    pub(super) async fn checkpoint(&self, restart_after: i64) -> StoreResult<Checkpointed> {
        let pass = self.passive().await?;
        let mut done = Checkpointed {
            synced: pass.synced,
            restarted: false,
        };
        if pass.frames < restart_after {
            return Ok(done);
        }
        // Catch up outside the writers' turn first (writers go on meanwhile), so that in
        // their turn little is left to copy and sync. What a pass leaves behind is what
        // was written while it ran (its syncs, mostly), so passes follow one another until
        // one is short: then the turn has only a few milliseconds of sends to copy and
        // sync. Judged by the frames a pass left, the turn found 3,000 frames written
        // during the last pass's syncs and took 13–28 ms.
        for _ in 0..RESTART_CATCH_UP_PASSES {
            let started = Instant::now();
            done.synced |= self.passive().await?.synced;
            if started.elapsed() < RESTART_CATCH_UP_SHORT {
                break;
            }
        }
        // In the writers' turn, without SQLite's own wait for readers: its busy handler
        // sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, up to the busy timeout (10 s),
        // and every send would wait with it behind one long read. A few tries 1 ms apart
        // instead; when a reader is still in the way, the writers go on and the next pass
        // tries again.
        let _turn = self.gate.lock().await;
        let started = Instant::now();
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

/// The copier: an operating-system thread at a lower priority ([`COPIER_NICE`]) with a
/// connection of its own, which makes the passive passes and syncs the database file
/// after each that copied frames.
///
/// SQLite syncs the database file after a checkpoint only when its copy reached the end of
/// the log with no frame added meanwhile: under steady writes, almost never before the
/// writers' turn at a start-over, whose sync then wrote every page copied since the last
/// one (about 3 s of sends) with every writer waiting, 12–33 ms and growing over a run.
/// Synced here, the turn has only its own few pages left to write. Syncing more often than
/// SQLite would is always safe: the file may hold any copied page at any time.
#[derive(Clone)]
struct Copier {
    passes: std::sync::mpsc::Sender<oneshot::Sender<StoreResult<Pass>>>,
    /// The thread's id, to read its priority back in tests.
    #[cfg_attr(not(test), allow(dead_code))]
    tid: i32,
}

impl Copier {
    /// Opens the connection and the file on a new thread; fails when either cannot be.
    fn start(path: &Path) -> StoreResult<Self> {
        let (passes, jobs) = std::sync::mpsc::channel();
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let path: PathBuf = path.to_owned();
        std::thread::Builder::new()
            .name("sqlite-copier".into())
            .spawn(move || copy_passes(&path, &jobs, &ready))
            .map_err(|e| StoreError::Database(e.into()))?;
        let tid = started
            .recv()
            .map_err(|_| copier_error("the copier thread ended at its start"))??;
        Ok(Self { passes, tid })
    }

    async fn pass(&self) -> StoreResult<Pass> {
        let (reply, answer) = oneshot::channel();
        self.passes
            .send(reply)
            .map_err(|_| copier_error("the copier thread ended"))?;
        answer
            .await
            .map_err(|_| copier_error("the copier thread ended"))?
    }
}

fn copier_error(message: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(message.to_string())))
}

/// The copier thread: lowers its priority, opens its connection and the file, says so on
/// `ready`, then makes a pass for each request until every sender is gone. The file (a
/// read-only descriptor of the database, for `fdatasync`) is closed when the thread ends,
/// after the pools: closing any descriptor of a file drops every POSIX lock the process
/// holds on it, SQLite's own included.
fn copy_passes(
    path: &Path,
    jobs: &std::sync::mpsc::Receiver<oneshot::Sender<StoreResult<Pass>>>,
    ready: &std::sync::mpsc::SyncSender<StoreResult<i32>>,
) {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    // On Linux a thread's nice value is its own (this one starts with its spawner's), and
    // raising it needs no privilege. Should it fail, the copier runs at the hub's priority,
    // as checkpoints did before.
    // SAFETY: getpriority and setpriority only read their integer arguments.
    let lowered = unsafe {
        let base = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(
            libc::PRIO_PROCESS,
            tid as libc::id_t,
            (base + COPIER_NICE).min(19),
        )
    };
    if lowered != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the checkpoint thread's priority");
    }
    let opened = (|| {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| copier_error(&format!("opening {}: {e}", path.display())))?;
        let file = std::fs::File::open(path).map_err(|e| StoreError::Database(e.into()))?;
        StoreResult::Ok((conn, file))
    })();
    let (conn, file) = match opened {
        Ok(opened) => {
            let _ = ready.send(Ok(tid));
            opened
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // The log's frames and how many of them were copied, as the last pass found them: a
    // change means this pass copied frames (or the log was started over since, after a
    // copy). An idle database is not synced again.
    let mut last = (0i64, 0i64);
    for reply in jobs {
        let pass = (|| {
            let (_busy, frames, copied): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| copier_error(&format!("checkpoint: {e}")))?;
            let copied_some = copied > 0 && last != (frames, copied);
            last = (frames, copied);
            if copied_some {
                let started = Instant::now();
                file.sync_data()
                    .map_err(|e| StoreError::Database(e.into()))?;
                metrics::histogram!("sqlite_db_sync_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            StoreResult::Ok(Pass {
                frames,
                synced: copied_some,
            })
        })();
        let _ = reply.send(pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::store::{new_id, Db};

    /// A checkpointer of `db` like its background task's, with a copier of its own (what
    /// its passes found kept apart from the task's).
    fn checkpointer(db: &Db, file: Option<&Path>) -> Checkpointer {
        Checkpointer::new(
            db.pool.clone(),
            db.writer.clone(),
            db.write_gate.clone().expect("sqlite has a gate"),
            file,
        )
        .unwrap()
    }

    fn database(dir: &Path) -> Secret<String> {
        Secret::new(format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
    }

    #[tokio::test]
    async fn a_long_wal_is_started_over_once_a_long_reader_is_done() {
        let dir = std::env::temp_dir().join(format!("jobers-wal-{}", new_id()));
        let db = Db::connect(&database(&dir), 2).await.unwrap();
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
        let started = Instant::now();
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

    #[tokio::test]
    async fn a_checkpoint_that_copies_frames_syncs_the_database_file_outside_the_writers_turn() {
        let dir = std::env::temp_dir().join(format!("jobers-wal-{}", new_id()));
        let db = Db::connect(&database(&dir), 2).await.unwrap();
        let ckpt = checkpointer(&db, Some(&dir.join("t.db")));
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
        // An in-memory database has no file (and no copier); its checkpoints still run.
        let memory = Db::connect(&Secret::new("sqlite::memory:".into()), 1)
            .await
            .unwrap();
        let in_memory = checkpointer(&memory, None);
        assert!(in_memory.copier.is_none());
        assert_eq!(
            in_memory.checkpoint(i64::MAX).await.unwrap(),
            Checkpointed::default()
        );
        memory.close().await;
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_copier_runs_at_a_lower_priority_than_the_hub() {
        let dir = std::env::temp_dir().join(format!("jobers-wal-{}", new_id()));
        let db = Db::connect(&database(&dir), 2).await.unwrap();
        let ckpt = checkpointer(&db, Some(&dir.join("t.db")));
        let copier = ckpt.copier.clone().expect("a file has a copier");
        let nice_of = |tid: i32| {
            // SAFETY: clearing errno and reading a priority touch no memory of ours.
            unsafe {
                *libc::__errno_location() = 0;
                libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t)
            }
        };
        // SAFETY: gettid takes no arguments and cannot fail.
        let own = nice_of(unsafe { libc::syscall(libc::SYS_gettid) } as i32);
        assert_eq!(nice_of(copier.tid), (own + COPIER_NICE).min(19));
        assert!(
            own < 19,
            "the test itself runs at the lowest priority: nothing to compare"
        );
        // And it works: a pass answers.
        ckpt.checkpoint(i64::MAX).await.unwrap();
        // A file it cannot open fails at once, not at the first pass.
        assert!(Copier::start(&dir.join("missing").join("t.db")).is_err());
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
