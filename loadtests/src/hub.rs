//! The hub under test: a seeded database and `jobers serve` processes (optionally pinned
//! to one core), and what the clients need to log in (tokens minted for seeded sessions).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobers::config::Secret;
use jobers::store::{Db, NewUser, Role};

/// The signing key shared by the hub processes and the generator.
pub const SECRET: &str = "load-test-signing-key-load-test-signing-key";

pub struct User {
    pub id: String,
    pub token: String,
}

pub struct Tenant {
    pub id: String,
    pub users: Vec<User>,
}

/// The URL of a fresh database: a SQLite file under `dir`, or a new database on a
/// PostgreSQL server.
pub async fn fresh_database(kind: &str, dir: &Path) -> anyhow::Result<String> {
    if kind == "sqlite" {
        return Ok(format!(
            "sqlite://{}?mode=rwc",
            dir.join("load.db").display()
        ));
    }
    use sqlx::{Connection, Executor};
    let name = format!("load_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(kind).await?;
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    let base = kind.rsplit_once('/').map(|(b, _)| b).unwrap_or(kind);
    CREATED
        .lock()
        .expect("database list")
        .push((kind.to_string(), name.clone()));
    Ok(format!("{base}/{name}"))
}

/// On PostgreSQL, gathers the statistics autovacuum would have by now (`ANALYZE`); the
/// hub's cached plans of the analyzed tables are made again. Whether it did.
pub async fn analyze(url: &str) -> anyhow::Result<bool> {
    on_postgres(url, "ANALYZE").await
}

/// Writes PostgreSQL's dirty pages out now (`CHECKPOINT`), so that a checkpoint of what an
/// earlier run wrote does not fall into the measured window; false when `url` is not
/// PostgreSQL.
pub async fn checkpoint(url: &str) -> anyhow::Result<bool> {
    on_postgres(url, "CHECKPOINT").await
}

/// Brings the PostgreSQL server at `url` to the state of one in service, whose WAL files
/// are reused: a fresh server creates and zero-fills each new 16 MiB file while commits
/// wait (40–56 ms at a time under `direct`). Keeps at least 1 GB of them
/// (`min_wal_size`, as operations.md advises for busy servers) and lets 4 GB of WAL come
/// between checkpoints (`max_wal_size`, likewise), writes 512 MB of WAL and
/// checkpoints, so the files written are kept for reuse. Once per run of this program;
/// false when `url` is not PostgreSQL.
pub async fn reuse_wal_files(url: &str) -> anyhow::Result<bool> {
    use sqlx::{Connection, Executor};
    static DONE: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    if !url.starts_with("postgres") {
        return Ok(false);
    }
    let done = DONE
        .get_or_try_init(|| async {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            for statement in [
                "ALTER SYSTEM SET min_wal_size = '1GB'",
                "ALTER SYSTEM SET max_wal_size = '4GB'",
                "SELECT pg_reload_conf()",
                "DROP TABLE IF EXISTS jobers_load_wal",
                "CREATE TABLE jobers_load_wal AS SELECT g, repeat('x', 1000) AS x \
                 FROM generate_series(1, 500000) g",
                "DROP TABLE jobers_load_wal",
                "CHECKPOINT",
                "CHECKPOINT",
            ] {
                conn.execute(statement).await?;
            }
            anyhow::Ok(true)
        })
        .await?;
    Ok(*done)
}

/// Runs `statement` on the database at `url` when it is PostgreSQL; whether it did.
async fn on_postgres(url: &str, statement: &str) -> anyhow::Result<bool> {
    use sqlx::{Connection, Executor};
    if !url.starts_with("postgres") {
        return Ok(false);
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    conn.execute(statement).await?;
    Ok(true)
}

/// The PostgreSQL databases this run created: (server URL, name).
static CREATED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Drops the PostgreSQL databases this run created (their hubs have stopped or are
/// stopped by force), so benchmark runs do not fill the server's disk.
pub async fn drop_databases() {
    use sqlx::{Connection, Executor};
    let created = std::mem::take(&mut *CREATED.lock().expect("database list"));
    for (server, name) in created {
        let dropped = async {
            let mut admin = sqlx::PgConnection::connect(&server).await?;
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await?;
            anyhow::Ok(())
        };
        if let Err(e) = dropped.await {
            eprintln!("could not drop the load database {name}: {e}");
        }
    }
}

/// Seeds `tenants` tenants of `users` recruiters each, with a live session and an access
/// token per user.
pub async fn seed(url: &str, tenants: usize, users: usize) -> anyhow::Result<Vec<Tenant>> {
    let db = Db::connect(&Secret::new(url.to_string()), 8).await?;
    db.migrate().await?;
    let hash = jobers::auth::PasswordHasher::new(1024, 1)?
        .hash("load test password")
        .await?;
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let now = chrono::Utc::now().timestamp() as u64;
    let mut out = Vec::with_capacity(tenants);
    for t in 0..tenants {
        let tenant = db
            .create_tenant(
                &format!(
                    "load{t}-{}",
                    &uuid::Uuid::now_v7().simple().to_string()[20..]
                ),
                "Load",
            )
            .await?;
        let tdb = db.for_tenant(&tenant.id);
        let mut list = Vec::with_capacity(users);
        // Sessions and users are written concurrently in chunks: seeding 18,000 takes seconds.
        for chunk in (0..users).collect::<Vec<_>>().chunks(64) {
            let mut tasks = Vec::new();
            for &u in chunk {
                let tdb = tdb.clone();
                let hash = hash.clone();
                let key = key.clone();
                let tenant_id = tenant.id.clone();
                tasks.push(tokio::spawn(async move {
                    let user = tdb
                        .create_user(NewUser {
                            email: format!("u{u}@load.test"),
                            name: format!("User {u}"),
                            role: Role::Recruiter,
                            department_id: None,
                            phone: None,
                            title: None,
                            password_hash: hash,
                        })
                        .await?;
                    let sid = jobers::store::new_id();
                    tdb.create_session(
                        &sid,
                        &user.id,
                        &uuid::Uuid::now_v7().to_string(),
                        86_400_000,
                        Some("jobers-load"),
                        None,
                    )
                    .await?;
                    let claims = jobers::auth::AccessClaims {
                        sub: user.id.clone(),
                        tid: tenant_id,
                        sid,
                        iat: now,
                        exp: now + 86_400,
                        typ: "access".into(),
                    };
                    let token =
                        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?;
                    anyhow::Ok(User { id: user.id, token })
                }));
            }
            for t in tasks {
                list.push(t.await??);
            }
        }
        out.push(Tenant {
            id: tenant.id,
            users: list,
        });
    }
    db.close().await;
    Ok(out)
}

/// Creates a group room with the given members (the first is the creator).
pub async fn room(url: &str, tenant: &str, members: &[String]) -> anyhow::Result<String> {
    let db = Db::connect(&Secret::new(url.to_string()), 2).await?;
    let change = db
        .for_tenant(tenant)
        .create_group_room(&members[0], "load room", &members[1..])
        .await?;
    db.close().await;
    Ok(change.room.id)
}

/// Direct rooms of one tenant to give a history: (room id, one member, the other).
pub type RoomPair = (String, String, String);

/// Gives each room `per_room` earlier messages, alternating authors, with their events
/// (positions after the tenant's current one), written by SQL in one statement per table
/// and tenant: a history of a million messages through the hub would take minutes. The
/// rows are those the hub writes (a message, its `room.message` event carrying it), with
/// ids that sort before any made now (UUIDv7 of the epoch's start), so new messages go
/// where they would in service: after the history. `t` numbers the tenant (ids are unique
/// across tenants).
pub async fn seed_history(
    url: &str,
    t: usize,
    tenant: &str,
    rooms: &[RoomPair],
    per_room: usize,
) -> anyhow::Result<()> {
    use sqlx::any::AnyPoolOptions;
    use sqlx::Executor;
    if rooms.is_empty() || per_room == 0 {
        return Ok(());
    }
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let mut tx = pool.begin().await?;
    if url.starts_with("sqlite") {
        tx.execute("PRAGMA foreign_keys = ON").await?;
    }
    let (start,): (i64,) =
        sqlx::query_as("SELECT position FROM tenant_positions WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
    let n = per_room as i64;
    let count = n * rooms.len() as i64;
    // A history that ended an hour ago, one message a millisecond before that.
    let first_at = chrono::Utc::now().timestamp_millis() - 3_600_000 - count;
    let values = (0..rooms.len())
        .map(|i| {
            format!(
                "(CAST(${} AS BIGINT), ${}, ${}, ${})",
                4 * i + 6,
                4 * i + 7,
                4 * i + 8,
                4 * i + 9
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    // $1 tenant, $2 messages per room, $3 first position, $4 first time, $5 tenant number.
    let insert = format!(
        "WITH RECURSIVE s (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < CAST($2 AS BIGINT)), \
         r (i, room_id, a, b) AS (VALUES {values}) \
         INSERT INTO room_messages (id, tenant_id, room_id, author_id, body, client_message_id, \
           mentions, attachments, position, created_at) \
         SELECT '00000000-0000-7000-8000-' || (100000000000 + CAST($5 AS BIGINT) * 1000000000 \
             + r.i * CAST($2 AS BIGINT) + s.k), \
           $1, r.room_id, CASE WHEN s.k % 2 = 0 THEN r.a ELSE r.b END, \
           'an earlier message, number ' || s.k || ', of this conversation', NULL, '[]', '[]', \
           CAST($3 AS BIGINT) + r.i * CAST($2 AS BIGINT) + s.k, \
           CAST($4 AS BIGINT) + r.i * CAST($2 AS BIGINT) + s.k \
         FROM r CROSS JOIN s"
    );
    let mut q = sqlx::query(&insert)
        .bind(tenant)
        .bind(n)
        .bind(start)
        .bind(first_at)
        .bind(t as i64);
    for (i, (room, a, b)) in rooms.iter().enumerate() {
        q = q.bind(i as i64).bind(room).bind(a).bind(b);
    }
    q.execute(&mut *tx).await?;
    // Each message's event carries it, as the hub writes it.
    sqlx::query(
        "INSERT INTO events (tenant_id, position, kind, audience, payload, created_at) \
         SELECT tenant_id, position, 'room.message', 'room:' || room_id, \
           '{\"id\":\"' || id || '\",\"room_id\":\"' || room_id || '\",\"author_id\":\"' || author_id \
           || '\",\"body\":\"' || body || '\",\"client_message_id\":null,\"mentions\":[],\"attachments\":[],\"position\":' \
           || position || ',\"created_at\":\"2026-01-01T00:00:00Z\",\"edited_at\":null,\"deleted\":false}', created_at \
         FROM room_messages WHERE tenant_id = $1 AND position > CAST($2 AS BIGINT)",
    )
    .bind(tenant)
    .bind(start)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE tenant_positions SET position = position + CAST($2 AS BIGINT) WHERE tenant_id = $1",
    )
    .bind(tenant)
    .bind(count)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    pool.close().await;
    Ok(())
}

/// After a bulk write (the history), brings the database to the state of one in service:
/// on PostgreSQL `VACUUM ANALYZE`, what autovacuum does to tables after they grew, done
/// before measuring instead of in the middle of it, then a `CHECKPOINT`, so that the
/// gigabyte of pages the history dirtied is not written out (and fsynced) by a checkpoint
/// the history's WAL set off while the hub is measured; on SQLite the log copied into the
/// database file and emptied, as the hub's own checkpoints keep it (a log of a million
/// messages would otherwise be the hub's to copy while it is measured).
pub async fn settle_after_bulk_write(url: &str) -> anyhow::Result<()> {
    use sqlx::Executor;
    if on_postgres(url, "VACUUM ANALYZE").await? {
        on_postgres(url, "CHECKPOINT").await?;
        return Ok(());
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    pool.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    pool.close().await;
    Ok(())
}

pub struct HubProcess {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl HubProcess {
    /// Starts `jobers serve` (pinned to CPU `core` when given) and waits until it listens.
    pub fn start(
        bin: &Path,
        database_url: &str,
        redis_url: Option<&str>,
        data_dir: &Path,
        core: Option<usize>,
        extra: &[(String, String)],
    ) -> anyhow::Result<HubProcess> {
        let mut cmd = match core {
            Some(c) if which("taskset") => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c.to_string()).arg(bin);
                cmd
            }
            _ => Command::new(bin),
        };
        cmd.arg("serve")
            .env("JOBERS_DATABASE_URL", database_url)
            .env("JOBERS_DATA_DIR", data_dir)
            .env("JOBERS_LISTEN", "127.0.0.1:0")
            .env("JOBERS_LOG_FORMAT", "json")
            .env("JOBERS_LOG_FILTER", "warn,jobers::cli=info")
            .env("JOBERS_AUTH__TOKEN_SECRET", SECRET)
            .env("JOBERS_DATABASE_MAX_CONNECTIONS", "16")
            .env("JOBERS_REALTIME__MAX_CONNECTIONS", "19500")
            .env("JOBERS_REALTIME__FRAMES_PER_SECOND", "100000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(r) = redis_url {
            cmd.env("JOBERS_REDIS_URL", r);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!("hub exited with {status}: {seen:?}");
            }
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "listening" {
                        let url = v["url"]
                            .as_str()
                            .unwrap_or_default()
                            .trim_start_matches("http://")
                            .to_string();
                        std::thread::spawn(move || {
                            for line in rx {
                                if line.contains("\"level\":\"ERROR\"")
                                    || line.contains("\"level\":\"WARN\"")
                                {
                                    eprintln!("hub: {line}");
                                }
                            }
                        });
                        let pid = child.id();
                        return Ok(HubProcess {
                            child,
                            addr: url.parse()?,
                            pid,
                        });
                    }
                }
                seen.push(line);
            }
        }
        let _ = child.kill();
        anyhow::bail!("hub did not start: {seen:?}")
    }

    pub fn rss_kib(&self) -> u64 {
        crate::report::rss_kib(self.pid)
    }

    /// SIGTERM, then wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn which(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Pins this process to one CPU.
pub fn pin_self(core: usize) {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
