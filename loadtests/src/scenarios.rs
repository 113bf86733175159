//! The scenarios. Each returns its report; `smoke` checks correctness at a small size.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, now_nanos, position_of, stamp_of, stamped_body, Ws};
use crate::hub::{self, HubProcess, Tenant};
use crate::report::{CpuMeter, Report};
use crate::{Cli, Scenario};

/// Quiet time after clients connect, before measuring: the hub is still telling everyone
/// who arrived (presence), which is not what the message scenarios measure.
const SETTLE: Duration = Duration::from_secs(5);
/// Where a warm-up message's send time is: such messages are timed apart from the
/// measured ones (`receive` keeps them in a histogram of their own).
const WARM_UP_STAMP: &str = "\"body\":\"w=";

/// With `LOADTEST_TRACE=FILE`, `direct` writes the send time and latency (nanoseconds) of
/// every measured message, a line each: when in a run the slow ones were.
static TRACE: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());
/// Whether [`TRACE`] is kept.
static TRACE_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Above this generator CPU use (in cores) the generator may be the bottleneck.
const GENERATOR_SATURATED: f64 = 0.9;

struct Env {
    bin: PathBuf,
    hub_env: Vec<(String, String)>,
    per_tenant: usize,
    database: String,
    cluster_database: Option<String>,
    redis: Option<String>,
    pin: bool,
    drop_caches: bool,
    /// Touch free memory before each run's database is made (free page reporting is
    /// paused: see [`crate::reclaim`]).
    back_memory: bool,
    reuse_wal: bool,
    dir: PathBuf,
}

impl Env {
    /// With `--drop-caches`, before a run's database is made: writes the dirty pages out
    /// and drops the page cache, so that every run starts from the same memory. On these
    /// virtual machines a page cache grown over earlier runs made later ones many times
    /// slower (`direct` p99 370–490 ms, then 30–38 ms right after dropping it).
    fn settle_memory(&self) -> anyhow::Result<()> {
        if self.drop_caches {
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            std::fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| {
                anyhow::anyhow!("--drop-caches needs root (/proc/sys/vm/drop_caches: {e})")
            })?;
        }
        if self.back_memory {
            crate::reclaim::back_memory();
        }
        Ok(())
    }

    fn core(&self, n: usize) -> Option<usize> {
        self.pin.then_some(n)
    }

    async fn start(
        &self,
        tenants: usize,
        users: usize,
    ) -> anyhow::Result<(HubProcess, Vec<Tenant>, String)> {
        if self.reuse_wal {
            hub::reuse_wal_files(&self.database).await?;
        }
        self.settle_memory()?;
        let dir = self.dir.join(uuid::Uuid::now_v7().simple().to_string());
        std::fs::create_dir_all(&dir)?;
        let db = hub::fresh_database(&self.database, &dir).await?;
        let seeded = hub::seed(&db, tenants, users).await?;
        let hub = HubProcess::start(&self.bin, &db, None, &dir, self.core(0), &self.hub_env)?;
        Ok((hub, seeded, db))
    }
}

pub async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let bin = cli.bin.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .parent()
            .expect("a directory")
            .join("jobers")
    });
    anyhow::ensure!(
        bin.exists(),
        "no jobers binary at {} (build it, or pass --bin)",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("jobers-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cluster_database = cli
        .cluster_database
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| {
            cli.database
                .starts_with("postgres")
                .then(|| cli.database.clone())
        });
    let hub_env = cli
        .hub_env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let mut env = Env {
        bin,
        hub_env,
        per_tenant: cli.per_tenant,
        cluster_database,
        database: cli.database.clone(),
        redis: cli.redis.clone(),
        pin: cli.pin,
        drop_caches: cli.drop_caches,
        back_memory: false,
        reuse_wal: cli.reuse_wal,
        dir: dir.clone(),
    };
    let result = match cli.scenario.clone() {
        Scenario::Smoke => smoke(&env).await,
        s => {
            let (paused, reclaim) = crate::reclaim::prepare(cli.pause_reclaim)?;
            env.back_memory = paused.as_ref().is_some_and(|p| p.reporting_paused());
            let mut report = one(&env, s).await?;
            drop(paused);
            for note in &reclaim {
                report.note(note);
            }
            if env.drop_caches {
                report.note("The page cache was dropped before each run's database was made (--drop-caches).");
            }
            let on_postgres = env.database.starts_with("postgres")
                || matches!(cli.scenario, Scenario::Cluster { .. });
            if env.reuse_wal && on_postgres {
                report.note("PostgreSQL reused its WAL files, as a server in service does (--reuse-wal: min_wal_size 1GB, max_wal_size 4GB, 512 MB of WAL written and checkpointed before the first run).");
            }
            report.print();
            report.write(&cli.out)?;
            Ok(true)
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn one(env: &Env, s: Scenario) -> anyhow::Result<Report> {
    match s {
        Scenario::Idle { conns } => idle(env, conns).await,
        Scenario::Connect { conns, in_flight } => connect(env, conns, in_flight).await,
        Scenario::Fanout {
            members,
            rates,
            step_secs,
        } => fanout(env, members, &rates, step_secs).await,
        Scenario::Direct {
            conns,
            rate,
            secs,
            warm_up,
            history,
        } => {
            let run = DirectRun {
                conns,
                rate,
                secs,
                warm_up,
                history,
            };
            direct(env, run).await
        }
        Scenario::Presence {
            users,
            tenants,
            rate,
        } => presence(env, users, tenants, rate).await,
        Scenario::Resume { clients, rate } => resume(env, clients, rate).await,
        Scenario::Cluster {
            members,
            rate,
            secs,
            rounds,
        } => cluster(env, members, rate, secs, rounds).await,
        Scenario::Inbound {
            recruiters,
            applicants,
            rate,
            secs,
        } => inbound(env, recruiters, applicants, rate, secs).await,
        Scenario::Smoke => unreachable!(),
    }
}

/// Every scenario at test size; correctness checks only. Prints `N passed, M failed`.
async fn smoke(env: &Env) -> anyhow::Result<bool> {
    let mut checks: Vec<(&str, anyhow::Result<Vec<String>>)> = Vec::new();
    let check = |r: anyhow::Result<Report>, f: &dyn Fn(&Report) -> Vec<String>| r.map(|r| f(&r));
    let r = idle(env, 200).await;
    checks.push(("idle", check(r, &|r| expect(r, "connections held", 200.0))));
    let r = connect(env, 200, 50).await;
    checks.push(("connect", check(r, &|r| expect(r, "connections", 200.0))));
    let r = fanout(env, 50, &[20, 40], 2).await;
    checks.push(("fanout", check(r, &|r| expect(r, "lost deliveries", 0.0))));
    let r = direct(
        env,
        DirectRun {
            conns: 200,
            rate: 100,
            secs: 3,
            warm_up: 1,
            history: 5,
        },
    )
    .await;
    checks.push(("direct", check(r, &|r| expect(r, "lost messages", 0.0))));
    let r = presence(env, 200, 4, 200).await;
    checks.push((
        "presence",
        check(r, &|r| expect(r, "incomplete views", 0.0)),
    ));
    let r = resume(env, 200, 40).await;
    checks.push((
        "resume",
        check(r, &|r| {
            let mut p = expect(r, "gaps", 0.0);
            p.extend(expect(r, "duplicates", 0.0));
            p
        }),
    ));
    let r = inbound(env, 4, 50, 100, 3).await;
    checks.push((
        "inbound",
        check(r, &|r| {
            let mut p = expect(r, "lost deliveries", 0.0);
            p.extend(expect(r, "refused or failed posts", 0.0));
            p
        }),
    ));
    if env.redis.is_some() && env.cluster_database.is_some() {
        let r = cluster(env, 40, 20, 3, 1).await;
        checks.push((
            "cluster",
            check(r, &|r| expect(r, "lost deliveries (two nodes)", 0.0)),
        ));
    } else {
        checks.push((
            "cluster",
            Err(anyhow::anyhow!(
                "cluster needs --cluster-database postgres://… and --redis"
            )),
        ));
    }
    let mut passed = 0;
    let mut failed = 0;
    for (name, outcome) in checks {
        match outcome {
            Ok(problems) if problems.is_empty() => {
                passed += 1;
                println!("smoke {name}: ok");
            }
            Ok(problems) => {
                failed += 1;
                println!("smoke {name}: FAILED: {}", problems.join("; "));
            }
            Err(e) => {
                failed += 1;
                println!("smoke {name}: FAILED: {e:#}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn expect(r: &Report, figure: &str, value: f64) -> Vec<String> {
    match r.figures.get(figure) {
        Some(f) if (f.value - value).abs() < 1e-9 => Vec::new(),
        Some(f) => vec![format!("{figure} = {} (expected {value})", f.value)],
        None => vec![format!("{figure} missing")],
    }
}

/// Records the CPU use of a measured run; over several runs (rounds), the busiest.
/// Records the span's CPU in `report` (the busiest span of a scenario counts); returns the
/// hub cores of this span.
fn finish(report: &mut Report, meter: &CpuMeter) -> f64 {
    let (hub, own) = meter.stop();
    report.hub_cpu_cores = report.hub_cpu_cores.max((hub * 100.0).round() / 100.0);
    report.generator_cpu_cores = report
        .generator_cpu_cores
        .max((own * 100.0).round() / 100.0);
    report.generator_saturated |= own >= GENERATOR_SATURATED;
    hub
}

/// With `LOADTEST_HUB_METRICS` set, prints the hub's `/metrics` lines that start with one
/// of the prefixes given there (comma-separated), for looking into a run.
async fn dump_hub_metrics(addr: SocketAddr) {
    let Ok(prefixes) = std::env::var("LOADTEST_HUB_METRICS") else {
        return;
    };
    let Ok(resp) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return;
    };
    let text = resp.text().await.unwrap_or_default();
    for line in text.lines() {
        if prefixes.split(',').any(|p| line.starts_with(p)) {
            eprintln!("hub metric: {line}");
        }
    }
}

/// The kernel's count of handshakes dropped because a listener's accept queue was full
/// (`TcpExt: ListenOverflows`); each costs its client a one-second SYN retransmission.
fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000_000.0
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 120_000_000_000, 3).expect("valid bounds")
}

/// Connects `users` with at most `in_flight` handshakes at once; returns sockets in order.
async fn connect_all(
    addr: SocketAddr,
    users: &[(usize, String)],
    in_flight: usize,
    lat: Option<&mut Histogram<u64>>,
) -> anyhow::Result<Vec<(Ws, Vec<Value>)>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    let mut tasks = Vec::with_capacity(users.len());
    for (n, token) in users {
        let permit = sem.clone().acquire_owned().await?;
        let token = token.clone();
        let n = *n;
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = client::connect(addr, n, &token, None).await;
            drop(permit);
            r.map(|c| (c, started.elapsed()))
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    let mut lat = lat;
    for t in tasks {
        let (c, took) = t.await??;
        if let Some(h) = lat.as_deref_mut() {
            let _ = h.record(took.as_nanos() as u64);
        }
        out.push(c);
    }
    Ok(out)
}

/// The users of the `presence_snapshot` frames among the frames of a handshake.
/// `(user_id, status)` of every entry of the snapshot frames among `frames`.
fn snapshot_users(frames: &[Value]) -> impl Iterator<Item = (&str, &str)> {
    frames
        .iter()
        .filter(|f| f["type"] == "presence_snapshot")
        .flat_map(|f| client::presence_entries(f["raw"].as_str().unwrap_or_default()))
}

/// Where in the send period each sender sends, given each sender's tenant: the slots
/// cycle through the tenants (the first sender of each, then the second of each, …), as
/// independent people's messages arrive. Senders in tenant order spread evenly instead
/// put one tenant's 250 senders into the same 50 ms of every second: each tenant sent in
/// bursts of the full rate, all into its one message writer, and the other writers idled.
fn send_slots(tenant_of: &[usize]) -> Vec<usize> {
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut order: Vec<(usize, usize, usize)> = tenant_of
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let rank = seen.entry(t).or_default();
            *rank += 1;
            (*rank, t, i)
        })
        .collect();
    order.sort_unstable();
    let mut slots = vec![0; tenant_of.len()];
    for (slot, (_, _, i)) in order.into_iter().enumerate() {
        slots[i] = slot;
    }
    slots
}

fn tenants_for(users: usize, per_tenant: usize) -> (usize, usize) {
    let per = per_tenant.min(users).max(1);
    (users.div_ceil(per), per)
}

fn tokens(tenants: &[Tenant], limit: usize) -> Vec<(usize, String)> {
    tenants
        .iter()
        .flat_map(|t| t.users.iter())
        .take(limit)
        .map(|u| u.token.clone())
        .enumerate()
        .collect()
}

/// Keeps reading a socket (presence frames keep coming) until told to stop.
fn drain(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    frames: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Ws> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(_)) => { frames.fetch_add(1, Ordering::Relaxed); }
                    _ => return ws,
                },
                _ = stop.changed() => return ws,
            }
        }
    })
}

async fn idle(env: &Env, conns: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("idle");
    report.param("connections", conns);
    let (tenants, per) = tenants_for(conns, env.per_tenant);
    report.param("tenants", tenants);
    report.param("hub settings", &env.hub_env);
    let (hub, seeded, _db) = env.start(tenants, per).await?;
    let users = tokens(&seeded, conns);
    // One connection first, so the baseline includes a warmed-up runtime.
    let mut first = connect_all(hub.addr, &users[..1], 1, None).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = hub.rss_kib();
    let meter = CpuMeter::start(&[hub.pid]);
    let rest = connect_all(hub.addr, &users[1..], 500, None).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let frames = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for (ws, _) in rest.into_iter().chain(first.drain(..)) {
        readers.push(drain(ws, stop_rx.clone(), frames.clone()));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = hub.rss_kib();
    tokio::time::sleep(Duration::from_secs(if conns > 1000 { 10 } else { 1 })).await;
    let held = hub.rss_kib();
    finish(&mut report, &meter);
    let per_conn = (after.saturating_sub(before)) as f64 / (conns.max(2) - 1) as f64;
    report.figure("connections held", readers.len() as f64, "connections", "");
    report.figure("hub RSS before", before as f64 / 1024.0, "MiB", "");
    report.figure(
        "hub RSS with all connected",
        after as f64 / 1024.0,
        "MiB",
        "",
    );
    report.figure("hub RSS after holding", held as f64 / 1024.0, "MiB", "");
    report.figure("RSS growth per connection", per_conn, "KiB", "<= 6");
    let _ = stop_tx.send(true);
    for r in readers {
        let _ = r.await;
    }
    hub.stop();
    Ok(report)
}

async fn connect(env: &Env, conns: usize, in_flight: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("connect");
    report.param("connections", conns);
    report.param("in_flight", in_flight);
    let (tenants, per) = tenants_for(conns, 500);
    report.param("tenants", tenants);
    let (hub, seeded, _db) = env.start(tenants, per).await?;
    let users = tokens(&seeded, conns);
    let meter = CpuMeter::start(&[hub.pid]);
    let overflows_before = listen_overflows();
    let started = Instant::now();
    let mut lat = histogram();
    let all = connect_all(hub.addr, &users, in_flight, Some(&mut lat)).await?;
    let took = started.elapsed().as_secs_f64();
    finish(&mut report, &meter);
    if let (Some(before), Some(after)) = (overflows_before, listen_overflows()) {
        report.figure(
            "handshakes dropped by a full accept queue (machine-wide)",
            after.saturating_sub(before) as f64,
            "handshakes",
            "",
        );
    }
    let rate = all.len() as f64 / took;
    report.figure("connections", all.len() as f64, "connections", "");
    report.figure("connect rate", rate, "connections/s", ">= 5000");
    report.figure(
        "connect rate per hub core",
        rate / report.hub_cpu_cores.max(0.01),
        "connections/s per busy core",
        "",
    );
    report.figure("connect+hello+welcome p50", ms(&lat, 0.5), "ms", "");
    report.figure("connect+hello+welcome p99", ms(&lat, 0.99), "ms", "");
    let snapshot_sizes: usize = all.iter().map(|(_, f)| snapshot_users(f).count()).sum();
    report.figure(
        "mean presence snapshot size",
        snapshot_sizes as f64 / all.len().max(1) as f64,
        "users",
        "",
    );
    drop(all);
    hub.stop();
    Ok(report)
}

/// Receivers of a room: count `room.message` events and record latency per step.
/// Per step: a latency histogram and a delivery count.
type StepFigures = (Vec<Histogram<u64>>, Vec<u64>);

struct Receivers {
    tasks: Vec<tokio::task::JoinHandle<StepFigures>>,
    step: watch::Sender<usize>,
    stop: watch::Sender<bool>,
    delivered: Arc<AtomicU64>,
}

fn receive(sockets: Vec<Ws>, steps: usize) -> Receivers {
    let (step, step_rx) = watch::channel(0usize);
    let (stop, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let tasks = sockets
        .into_iter()
        .map(|mut ws| {
            let step_rx = step_rx.clone();
            let mut stop_rx = stop_rx.clone();
            let delivered = delivered.clone();
            tokio::spawn(async move {
                // One histogram per step, and one more for warm-up messages (`w=` stamps).
                let steps = steps.max(1);
                let mut hists: Vec<Histogram<u64>> = (0..=steps).map(|_| histogram()).collect();
                let mut counts = vec![0u64; steps + 1];
                loop {
                    tokio::select! {
                        m = ws.next() => match m {
                            Some(Ok(Message::Text(t))) => {
                                if let Some(sent) = stamp_of(&t) {
                                    if TRACE_ON.load(Ordering::Relaxed) {
                                        TRACE.lock().unwrap().push((sent, now_nanos().saturating_sub(sent)));
                                    }
                                    let s = (*step_rx.borrow()).min(steps - 1);
                                    let _ = hists[s].record(now_nanos().saturating_sub(sent).max(1000));
                                    counts[s] += 1;
                                    delivered.fetch_add(1, Ordering::Relaxed);
                                } else if let Some(sent) = client::stamp_in(&t, WARM_UP_STAMP) {
                                    let _ = hists[steps].record(now_nanos().saturating_sub(sent).max(1000));
                                    counts[steps] += 1;
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                        _ = stop_rx.changed() => break,
                    }
                }
                (hists, counts)
            })
        })
        .collect();
    Receivers {
        tasks,
        step,
        stop,
        delivered,
    }
}

/// Splits a sender socket: the sink to send, a task draining what comes back.
fn sender(
    ws: Ws,
) -> (
    futures_util::stream::SplitSink<Ws, Message>,
    tokio::task::JoinHandle<()>,
) {
    let (sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    (sink, reader)
}

async fn send_at_sink(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    room: &str,
    rate: u32,
    secs: f64,
    tag: &str,
) -> anyhow::Result<u64> {
    let tick = Duration::from_millis(5);
    let per_tick = rate as f64 * tick.as_secs_f64();
    let mut due = 0.0;
    let mut sent = 0u64;
    let started = Instant::now();
    let mut interval = tokio::time::interval(tick);
    while started.elapsed().as_secs_f64() < secs {
        interval.tick().await;
        due += per_tick;
        while due >= 1.0 {
            due -= 1.0;
            sent += 1;
            let frame = json!({"type": "send", "room_id": room, "body": stamped_body(100), "client_message_id": format!("{tag}-{sent}")});
            sink.feed(Message::Text(frame.to_string().into())).await?;
        }
        sink.flush().await?;
    }
    Ok(sent)
}

async fn fanout(
    env: &Env,
    members: usize,
    rates: &[u32],
    step_secs: u64,
) -> anyhow::Result<Report> {
    let mut report = Report::new("fanout");
    report.param("members", members);
    report.param("rates (messages/s)", rates);
    report.param("step_secs", step_secs);
    report.param("message bytes", 100);
    report.param(
        "database",
        if env.database == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        },
    );
    let (hub, seeded, db) = env.start(1, members + 1).await?;
    let ids: Vec<String> = seeded[0].users.iter().map(|u| u.id.clone()).collect();
    let room = hub::room(&db, &seeded[0].id, &ids).await?;
    let users = tokens(&seeded, members + 1);
    let mut sockets: Vec<Ws> = connect_all(hub.addr, &users, 500, None)
        .await?
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let send_ws = sockets.remove(0);
    let receivers = receive(sockets, rates.len());
    let (mut sink, reader) = sender(send_ws);
    tokio::time::sleep(SETTLE).await;
    let meter = CpuMeter::start(&[hub.pid]);
    let mut offered = Vec::new();
    let mut step_secs_real = Vec::new();
    for (i, rate) in rates.iter().enumerate() {
        let _ = receivers.step.send(i);
        let started = Instant::now();
        let sent =
            send_at_sink(&mut sink, &room, *rate, step_secs as f64, &format!("s{i}")).await?;
        step_secs_real.push(started.elapsed().as_secs_f64());
        offered.push(sent * members as u64);
    }
    // Let the last deliveries arrive.
    let expected: u64 = offered.iter().sum();
    let wait = Instant::now();
    while receivers.delivered.load(Ordering::Relaxed) < expected
        && wait.elapsed() < Duration::from_secs(15)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    finish(&mut report, &meter);
    let _ = receivers.stop.send(true);
    let mut merged: Vec<Histogram<u64>> = (0..rates.len()).map(|_| histogram()).collect();
    let mut counts = vec![0u64; rates.len()];
    for t in receivers.tasks {
        let (h, c) = t.await?;
        for i in 0..rates.len() {
            merged[i].add(&h[i]).ok();
            counts[i] += c[i];
        }
    }
    let delivered: u64 = counts.iter().sum();
    report.figure(
        "lost deliveries",
        expected.saturating_sub(delivered) as f64,
        "deliveries",
        "<= 0",
    );
    let mut best: Option<(f64, f64)> = None;
    for (i, rate) in rates.iter().enumerate() {
        let per_sec = counts[i] as f64 / step_secs_real[i];
        let p50 = ms(&merged[i], 0.5);
        let p99 = ms(&merged[i], 0.99);
        report.figure(
            &format!("step {rate}/s: deliveries/s"),
            per_sec,
            "deliveries/s",
            "",
        );
        report.figure(&format!("step {rate}/s: p50"), p50, "ms", "");
        report.figure(&format!("step {rate}/s: p99"), p99, "ms", "");
        let kept_up = counts[i] as f64 >= offered[i] as f64 * 0.9;
        if p99 <= 50.0 && kept_up && best.is_none_or(|(b, _)| per_sec > b) {
            best = Some((per_sec, p99));
        }
    }
    let (best_rate, best_p99) = best.unwrap_or((0.0, 0.0));
    report.figure(
        "deliveries/s with p99 <= 50 ms",
        best_rate,
        "deliveries/s",
        ">= 500000",
    );
    report.figure("p99 at that rate", best_p99, "ms", "<= 50");
    drop(sink);
    reader.abort();
    hub.stop();
    Ok(report)
}

/// What one `direct` run does.
struct DirectRun {
    conns: usize,
    rate: u32,
    secs: u64,
    /// Seconds sent before the measured ones, not measured.
    warm_up: u64,
    /// Earlier messages in each room.
    history: usize,
}

async fn direct(env: &Env, run: DirectRun) -> anyhow::Result<Report> {
    let DirectRun {
        conns,
        rate,
        secs,
        warm_up,
        history,
    } = run;
    let mut report = Report::new(if env.database == "sqlite" {
        "direct-sqlite"
    } else {
        "direct-postgres"
    });
    report.param("connections", conns);
    report.param("rate (messages/s)", rate);
    report.param("secs", secs);
    report.param("warm-up at the same rate, not measured (s)", warm_up);
    report.param("earlier messages per room", history);
    report.param(
        "database",
        if env.database == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        },
    );
    let (tenants, per) = tenants_for(conns, 500);
    let (hub, seeded, db) = env.start(tenants, per).await?;
    // Pairs in each tenant share a direct room, which has a history.
    let sdb = jobers::store::Db::connect(&jobers::config::Secret::new(db.clone()), 4).await?;
    let mut pairs = Vec::new();
    let seeding = Instant::now();
    for (n, t) in seeded.iter().enumerate() {
        let tdb = sdb.for_tenant(&t.id);
        let mut rooms = Vec::new();
        for pair in t.users.chunks(2) {
            if let [a, b] = pair {
                let room = tdb.open_direct_room(&a.id, &b.id).await?.room.id;
                pairs.push((a.token.clone(), b.token.clone(), room.clone(), n));
                rooms.push((room, a.id.clone(), b.id.clone()));
            }
        }
        hub::seed_history(&db, n, &t.id, &rooms, history).await?;
    }
    sdb.close().await;
    hub::settle_after_bulk_write(&db).await?;
    eprintln!(
        "direct: {} rooms with {history} earlier messages each in {:.1} s",
        pairs.len(),
        seeding.elapsed().as_secs_f64()
    );
    let pairs_n = pairs.len();
    let slots = send_slots(&pairs.iter().map(|p| p.3).collect::<Vec<_>>());
    let senders: Vec<(usize, String)> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (2 * i, p.0.clone()))
        .collect();
    let receivers_t: Vec<(usize, String)> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (2 * i + 1, p.1.clone()))
        .collect();
    let recv_socks: Vec<Ws> = connect_all(hub.addr, &receivers_t, 500, None)
        .await?
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let send_socks: Vec<Ws> = connect_all(hub.addr, &senders, 500, None)
        .await?
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    // Step 0: the first measured second; step 1: the rest. The target is on the whole
    // measured run; the rest is shown beside it.
    TRACE_ON.store(std::env::var("LOADTEST_TRACE").is_ok(), Ordering::Relaxed);
    let receivers = receive(recv_socks, 2);
    // Let the presence of 10,000 arrivals settle before sending.
    tokio::time::sleep(SETTLE).await;
    let per_sender = rate as f64 / pairs_n as f64;
    let acks = Arc::new(std::sync::Mutex::new(histogram()));
    let sent_total = Arc::new(AtomicU64::new(0));
    let warm = Duration::from_secs(warm_up);
    // Every sender is set up (its socket split, its reader started) before the first
    // sends: setting up 5,000 of them while the first ones already send held the
    // generator's core, and their acks were read late.
    let ready = Arc::new(tokio::sync::Barrier::new(pairs_n + 1));
    let mut tasks = Vec::new();
    for (i, ws) in send_socks.into_iter().enumerate() {
        let room = pairs[i].2.clone();
        let slot = slots[i];
        let acks = acks.clone();
        let sent_total = sent_total.clone();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let pending: Arc<std::sync::Mutex<HashMap<String, u64>>> = Default::default();
            let pending_r = pending.clone();
            let acks_r = acks.clone();
            let reader = tokio::spawn(async move {
                let mut local = histogram();
                while let Some(Ok(Message::Text(t))) = stream.next().await {
                    if t.contains("\"type\":\"ack\"") {
                        let v: Value = serde_json::from_str(&t).unwrap_or_default();
                        if let Some(sent) = v["client_message_id"].as_str().and_then(|c| pending_r.lock().unwrap().remove(c)) {
                            let _ = local.record(now_nanos().saturating_sub(sent).max(1000));
                        }
                    }
                }
                acks_r.lock().unwrap().add(&local).ok();
            });
            ready.wait().await;
            // Spread senders evenly over the period, the tenants interleaved.
            let period = Duration::from_secs_f64(1.0 / per_sender.max(0.001));
            tokio::time::sleep(period.mul_f64(slot as f64 / pairs_n as f64)).await;
            let started = Instant::now();
            let mut n = 0u64;
            let mut interval = tokio::time::interval(period);
            while started.elapsed() < warm + Duration::from_secs(secs) {
                interval.tick().await;
                n += 1;
                // Warm-up messages are stamped apart and neither counted nor awaited.
                let measured = started.elapsed() >= warm;
                let (cmid, body) = if measured {
                    let cmid = format!("d{i}-{n}");
                    pending.lock().unwrap().insert(cmid.clone(), now_nanos());
                    (cmid, stamped_body(100))
                } else {
                    (format!("w{i}-{n}"), format!("w{}", &stamped_body(100)[1..]))
                };
                let frame = json!({"type": "send", "room_id": room, "body": body, "client_message_id": cmid});
                if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                    break;
                }
                if measured {
                    sent_total.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = sink.close().await;
            let _ = reader.await;
        }));
    }
    ready.wait().await;
    tokio::time::sleep(warm).await;
    let meter = CpuMeter::start(&[hub.pid]);
    let step = receivers.step.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = step.send(1);
    });
    for t in tasks {
        t.await?;
    }
    let expected = sent_total.load(Ordering::Relaxed);
    let wait = Instant::now();
    while receivers.delivered.load(Ordering::Relaxed) < expected
        && wait.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dump_hub_metrics(hub.addr).await;
    finish(&mut report, &meter);
    let _ = receivers.stop.send(true);
    let mut lat = histogram();
    let mut after_first = histogram();
    let mut warming = histogram();
    let mut delivered = 0;
    for t in receivers.tasks {
        let (h, c) = t.await?;
        lat.add(&h[0]).ok();
        lat.add(&h[1]).ok();
        after_first.add(&h[1]).ok();
        warming.add(&h[2]).ok();
        delivered += c[0] + c[1];
    }
    if let Ok(path) = std::env::var("LOADTEST_TRACE") {
        let t = TRACE.lock().unwrap();
        let text: String = t.iter().map(|(s, l)| format!("{s} {l}\n")).collect();
        std::fs::write(path, text)?;
    }
    let acks = acks.lock().unwrap().clone();
    report.figure("messages sent", expected as f64, "messages", "");
    report.figure(
        "achieved rate",
        expected as f64 / secs as f64,
        "messages/s",
        &format!(">= {}", (rate as f64 * 0.95).floor()),
    );
    report.figure(
        "lost messages",
        expected.saturating_sub(delivered) as f64,
        "messages",
        "<= 0",
    );
    report.figure("send→receive p50", ms(&lat, 0.5), "ms", "");
    report.figure("send→receive p99", ms(&lat, 0.99), "ms", "<= 10");
    report.figure(
        "send→receive p99 after the first second",
        ms(&after_first, 0.99),
        "ms",
        "",
    );
    report.figure("send→ack (durable) p99", ms(&acks, 0.99), "ms", "");
    if warm_up > 0 {
        report.figure(
            "send→receive p99 of the warm-up (a hub just started)",
            ms(&warming, 0.99),
            "ms",
            "",
        );
    }
    hub.stop();
    Ok(report)
}

/// A client's presence view in `presence`: who of the tenant's users is online, and how
/// many are not (yet). Users are looked up once by id and kept as flags, so a frame costs
/// one lookup per entry (the generator must not be the bottleneck).
struct View<'a> {
    index: &'a HashMap<String, usize>,
    online: Vec<bool>,
    missing: usize,
}

impl<'a> View<'a> {
    fn new(index: &'a HashMap<String, usize>) -> Self {
        View {
            index,
            online: vec![false; index.len()],
            missing: index.len(),
        }
    }

    fn apply(&mut self, id: &str, status: &str) {
        let Some(&i) = self.index.get(id) else {
            return;
        };
        let on = status == "online";
        if on != self.online[i] {
            self.online[i] = on;
            if on {
                self.missing -= 1;
            } else {
                self.missing += 1;
            }
        }
    }
}

async fn presence(env: &Env, users: usize, tenants: usize, rate: u32) -> anyhow::Result<Report> {
    let mut report = Report::new("presence");
    report.param("users", users);
    report.param("tenants", tenants);
    report.param("connect rate", rate);
    let per = users / tenants.max(1);
    let (hub, seeded, _db) = env.start(tenants, per).await?;
    let meter = CpuMeter::start(&[hub.pid]);
    let complete_at: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; tenants * per]));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut n = 0usize;
    let all_ids: Vec<HashMap<String, usize>> = seeded
        .iter()
        .map(|t| {
            t.users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.id.clone(), i))
                .collect()
        })
        .collect();
    let all_ids = Arc::new(all_ids);
    // Interleave tenants, as real arrivals would.
    let order: Vec<(usize, usize)> = (0..per)
        .flat_map(|u| (0..tenants).map(move |t| (t, u)))
        .collect();
    for (t, u) in order {
        let due = started + period.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let token = seeded[t].users[u].token.clone();
        let addr = hub.addr;
        let idx = n;
        let complete_at = complete_at.clone();
        let mut stop_rx = stop_rx.clone();
        let all_ids = all_ids.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, frames) = client::connect(addr, idx, &token, None).await?;
            // The view: who is online, and how many of the tenant's users are not (yet).
            let mut view = View::new(&all_ids[t]);
            for (id, status) in snapshot_users(&frames) {
                view.apply(id, status);
            }
            let mut done = false;
            loop {
                if !done && view.missing == 0 {
                    complete_at.lock().unwrap()[idx] = Some(Instant::now());
                    done = true;
                }
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(txt))) => {
                            if txt.starts_with("{\"type\":\"presence\"") {
                                for (id, status) in client::presence_entries(&txt) {
                                    view.apply(id, status);
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stop_rx.changed() => break,
                }
            }
            anyhow::Ok(ws)
        }));
        n += 1;
    }
    let last_connect = Instant::now();
    let connect_secs = started.elapsed().as_secs_f64();
    // Wait for every view to complete (or 30 s).
    loop {
        let incomplete = complete_at
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.is_none())
            .count();
        if incomplete == 0 || last_connect.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    finish(&mut report, &meter);
    let times = complete_at.lock().unwrap().clone();
    let incomplete = times.iter().filter(|c| c.is_none()).count();
    let worst = times
        .iter()
        .flatten()
        .map(|t| t.saturating_duration_since(last_connect).as_secs_f64())
        .fold(0.0, f64::max);
    report.figure(
        "achieved connect rate",
        n as f64 / connect_secs,
        "connections/s",
        &format!(">= {}", rate as f64 * 0.95),
    );
    report.figure("incomplete views", incomplete as f64, "clients", "<= 0");
    report.figure(
        "all views complete after last connect",
        worst * 1000.0,
        "ms",
        "<= 1000",
    );
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    hub.stop();
    Ok(report)
}

async fn resume(env: &Env, clients: usize, rate: u32) -> anyhow::Result<Report> {
    let mut report = Report::new("resume");
    report.param("clients", clients);
    report.param("message rate", rate);
    let (tenants, per) = tenants_for(clients, 500);
    let room_size = 50.min(per);
    report.param("tenants", tenants);
    report.param("room size", room_size);
    let (hub, seeded, db) = env.start(tenants, per).await?;
    // Rooms of `room_size`; the first member of each room sends.
    let mut rooms: Vec<(String, Vec<usize>)> = Vec::new(); // room id, indexes into `flat`
    let flat: Vec<&hub::User> = seeded.iter().flat_map(|t| t.users.iter()).collect();
    let mut offset = 0;
    for t in &seeded {
        for chunk in t.users.chunks(room_size) {
            let ids: Vec<String> = chunk.iter().map(|u| u.id.clone()).collect();
            if ids.len() < 2 {
                offset += chunk.len();
                continue;
            }
            let room = hub::room(&db, &t.id, &ids).await?;
            rooms.push((room, (offset..offset + chunk.len()).collect()));
            offset += chunk.len();
        }
    }
    let room_of: HashMap<usize, String> = rooms
        .iter()
        .flat_map(|(r, m)| m.iter().map(move |i| (*i, r.clone())))
        .collect();
    let senders: HashSet<usize> = rooms.iter().map(|(_, m)| m[0]).collect();
    let sent_positions: Arc<std::sync::Mutex<HashMap<String, Vec<i64>>>> = Default::default();
    // Receivers: every client that is not a sender.
    let receiver_idx: Vec<usize> = (0..flat.len()).filter(|i| !senders.contains(i)).collect();
    let receiver_tokens: Vec<(usize, String)> = receiver_idx
        .iter()
        .map(|&i| (i, flat[i].token.clone()))
        .collect();
    let first = connect_all(hub.addr, &receiver_tokens, 500, None).await?;
    let start_positions: Vec<i64> = first
        .iter()
        .map(|(_, f)| f.last().and_then(|l| l["position"].as_i64()).unwrap_or(0))
        .collect();
    let meter = CpuMeter::start(&[hub.pid]);
    // Senders run for the whole scenario.
    let (stop_send_tx, stop_send_rx) = watch::channel(false);
    let per_room = rate as f64 / rooms.len().max(1) as f64;
    let mut send_tasks = Vec::new();
    for (room, members) in &rooms {
        let token = flat[members[0]].token.clone();
        let room = room.clone();
        let addr = hub.addr;
        let idx = members[0];
        let sent_positions = sent_positions.clone();
        let mut stop = stop_send_rx.clone();
        send_tasks.push(tokio::spawn(async move {
            let (ws, _) = client::connect(addr, idx, &token, None).await?;
            let (mut sink, mut stream) = ws.split();
            let room_r = room.clone();
            let reader = tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(Ok(Message::Text(t))) = stream.next().await {
                    if t.contains("\"type\":\"ack\"") {
                        if let Some(p) = position_of(&t) {
                            mine.push(p);
                        }
                    }
                }
                sent_positions.lock().unwrap().insert(room_r, mine);
            });
            let period = Duration::from_secs_f64(1.0 / per_room.max(0.01));
            let mut interval = tokio::time::interval(period);
            let mut n = 0;
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        n += 1;
                        let frame = json!({"type": "send", "room_id": room, "body": stamped_body(60), "client_message_id": format!("r-{idx}-{n}")});
                        if sink.send(Message::Text(frame.to_string().into())).await.is_err() { break; }
                    }
                    _ = stop.changed() => break,
                }
            }
            // Let the last acks arrive, then close.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let _ = sink.close().await;
            let _ = reader.await;
            anyhow::Ok(())
        }));
    }
    // Phase 1: receive while connected.
    let received: Arc<Vec<std::sync::Mutex<Vec<i64>>>> = Arc::new(
        (0..receiver_idx.len())
            .map(|_| std::sync::Mutex::new(Vec::new()))
            .collect(),
    );
    let last_pos: Arc<Vec<AtomicU64>> = Arc::new(
        start_positions
            .iter()
            .map(|p| AtomicU64::new(*p as u64))
            .collect(),
    );
    let (drop_tx, drop_rx) = watch::channel(false);
    let mut phase1 = Vec::new();
    for (k, (ws, _)) in first.into_iter().enumerate() {
        let received = received.clone();
        let last_pos = last_pos.clone();
        let mut drop_rx = drop_rx.clone();
        phase1.push(tokio::spawn(async move {
            let mut ws = ws;
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            if t.contains("\"kind\":\"room.message\"") {
                                if let Some(p) = position_of(&t) {
                                    received[k].lock().unwrap().push(p);
                                    last_pos[k].store(p as u64, Ordering::Relaxed);
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = drop_rx.changed() => break,
                }
            }
            // Dropped without a goodbye, like a lost network.
            drop(ws);
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = drop_tx.send(true);
    for t in phase1 {
        t.await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Phase 2: everyone resumes from their last position while messages keep flowing.
    let resume_started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(tokio::sync::Semaphore::new(500));
    let mut phase2 = Vec::new();
    for (k, &i) in receiver_idx.iter().enumerate() {
        let token = flat[i].token.clone();
        let addr = hub.addr;
        let received = received.clone();
        let since = last_pos[k].load(Ordering::Relaxed) as i64;
        let mut stop_rx = stop_rx.clone();
        let permit = sem.clone().acquire_owned().await?;
        phase2.push(tokio::spawn(async move {
            let (mut ws, frames) = client::connect(addr, i, &token, Some(since)).await?;
            drop(permit);
            for f in &frames {
                if f["kind"] == "room.message" {
                    received[k]
                        .lock()
                        .unwrap()
                        .push(f["position"].as_i64().unwrap_or(0));
                }
            }
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            if t.contains("\"kind\":\"room.message\"") {
                                if let Some(p) = position_of(&t) {
                                    received[k].lock().unwrap().push(p);
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stop_rx.changed() => break,
                }
            }
            anyhow::Ok(())
        }));
    }
    let all_resumed = resume_started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_send_tx.send(true);
    for t in send_tasks {
        t.await??;
    }
    // Wait until every receiver has every message of its room (or 10 s after the stop).
    let sent = sent_positions.lock().unwrap().clone();
    let expected_for = |k: usize| -> Vec<i64> {
        let room = &room_of[&receiver_idx[k]];
        sent.get(room)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|p| *p > start_positions[k])
                    .collect()
            })
            .unwrap_or_default()
    };
    let stop_sending = Instant::now();
    let mut missing_total;
    loop {
        missing_total = 0;
        for k in 0..receiver_idx.len() {
            let got: HashSet<i64> = received[k].lock().unwrap().iter().copied().collect();
            missing_total += expected_for(k).iter().filter(|p| !got.contains(p)).count();
        }
        if missing_total == 0 || stop_sending.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up_after = resume_started.elapsed();
    finish(&mut report, &meter);
    let _ = stop_tx.send(true);
    let mut failed_resumes = 0;
    for t in phase2 {
        if t.await.map(|r| r.is_err()).unwrap_or(true) {
            failed_resumes += 1;
        }
    }
    let mut duplicates = 0usize;
    for k in 0..receiver_idx.len() {
        let list = received[k].lock().unwrap();
        let unique: HashSet<i64> = list.iter().copied().collect();
        duplicates += list.len() - unique.len();
    }
    let total_expected: usize = (0..receiver_idx.len()).map(|k| expected_for(k).len()).sum();
    report.figure(
        "messages sent",
        sent.values().map(|v| v.len()).sum::<usize>() as f64,
        "messages",
        "",
    );
    report.figure(
        "deliveries expected",
        total_expected as f64,
        "deliveries",
        "",
    );
    report.figure("failed resumes", failed_resumes as f64, "clients", "<= 0");
    report.figure("gaps", missing_total as f64, "deliveries", "<= 0");
    report.figure("duplicates", duplicates as f64, "deliveries", "<= 0");
    report.figure(
        "all reconnected after",
        all_resumed.as_secs_f64() * 1000.0,
        "ms",
        "",
    );
    report.figure(
        "all caught up after",
        caught_up_after.as_secs_f64(),
        "s",
        "<= 10",
    );
    hub.stop();
    Ok(report)
}

/// `fanout` over one node and over two (members split between them, events crossing Redis),
/// in `rounds` rounds of one then two so that a disturbance of the machine falls on both
/// alike; the latencies of each setup are pooled over its rounds.
async fn cluster(
    env: &Env,
    members: usize,
    rate: u32,
    secs: u64,
    rounds: usize,
) -> anyhow::Result<Report> {
    let mut report = Report::new("cluster");
    report.param("members", members);
    report.param("rate (messages/s)", rate);
    report.param("secs", secs);
    report.param("rounds", rounds);
    let redis = env
        .redis
        .clone()
        .ok_or_else(|| anyhow::anyhow!("cluster needs --redis"))?;
    let database = env
        .cluster_database
        .clone()
        .ok_or_else(|| anyhow::anyhow!("cluster needs --cluster-database postgres://…"))?;
    let rounds = rounds.max(1);
    let mut pooled = [histogram(), histogram()];
    let mut lost = [0u64; 2];
    let mut round_p99: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut round_cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (round, nodes) in (0..rounds).flat_map(|r| [(r, 1usize), (r, 2)]) {
        let dir = env
            .dir
            .join(format!("cluster-{nodes}-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        if env.reuse_wal {
            hub::reuse_wal_files(&database).await?;
        }
        env.settle_memory()?;
        let db = hub::fresh_database(&database, &dir).await?;
        let seeded = hub::seed(&db, 1, members + 1).await?;
        let ids: Vec<String> = seeded[0].users.iter().map(|u| u.id.clone()).collect();
        let room = hub::room(&db, &seeded[0].id, &ids).await?;
        let mut hubs = Vec::new();
        for n in 0..nodes {
            let mut extra = env.hub_env.clone();
            extra.push(("JOBERS_NODE_ID".into(), format!("load-node-{n}")));
            hubs.push(HubProcess::start(
                &env.bin,
                &db,
                Some(&redis),
                &dir.join(format!("n{n}")),
                env.core(0),
                &extra,
            )?);
        }
        hub::checkpoint(&db).await?;
        let users = tokens(&seeded, members + 1);
        // Member k connects to node k % nodes; the sender (0) to node 0.
        let mut sockets = Vec::new();
        for (k, token) in &users {
            let addr = hubs[k % nodes].addr;
            sockets.push(client::connect(addr, *k, token, None).await?.0);
        }
        let send_ws = sockets.remove(0);
        let receivers = receive(sockets, 1);
        let (mut sink, reader) = sender(send_ws);
        tokio::time::sleep(SETTLE).await;
        let pids: Vec<u32> = hubs.iter().map(|h| h.pid).collect();
        let meter = CpuMeter::start(&pids);
        let sent = send_at_sink(&mut sink, &room, rate, secs as f64, "c").await?;
        let expected = sent * members as u64;
        let wait = Instant::now();
        while receivers.delivered.load(Ordering::Relaxed) < expected
            && wait.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let hub_cpu = finish(&mut report, &meter);
        round_cpu[nodes - 1].push(hub_cpu);
        let _ = receivers.stop.send(true);
        let mut lat = histogram();
        let mut delivered = 0;
        for t in receivers.tasks {
            let (h, c) = t.await?;
            lat.add(&h[0]).ok();
            delivered += c[0];
        }
        lost[nodes - 1] += expected.saturating_sub(delivered);
        round_p99[nodes - 1].push(ms(&lat, 0.99));
        pooled[nodes - 1].add(&lat).ok();
        eprintln!(
            "cluster: round {} of {rounds}, {nodes} node(s): p99 {:.2} ms, hubs {hub_cpu:.2} cores",
            round + 1,
            ms(&lat, 0.99)
        );
        drop(sink);
        reader.abort();
        for h in &hubs {
            dump_hub_metrics(h.addr).await;
        }
        for h in hubs {
            h.stop();
        }
    }
    for (i, label) in ["one node", "two nodes"].iter().enumerate() {
        report.figure(
            &format!("lost deliveries ({label})"),
            lost[i] as f64,
            "deliveries",
            "<= 0",
        );
        report.figure(&format!("p50 ({label})"), ms(&pooled[i], 0.5), "ms", "");
        report.figure(&format!("p99 ({label})"), ms(&pooled[i], 0.99), "ms", "");
        let each: Vec<String> = round_p99[i].iter().map(|p| format!("{p:.2}")).collect();
        report.param(&format!("p99 of each round, {label} (ms)"), each.join(", "));
        let cpu: Vec<String> = round_cpu[i].iter().map(|c| format!("{c:.2}")).collect();
        report.param(&format!("hub cores of each round, {label}"), cpu.join(", "));
    }
    report.figure(
        "cross-node p99 / single-node p99",
        ms(&pooled[1], 0.99) / ms(&pooled[0], 0.99).max(0.001),
        "ratio",
        "<= 2",
    );
    report.note("Both hub processes are pinned to the same CPU when --pin is given, so two nodes share one core.");
    report.note("Each p99 pools every round of its setup; the rounds alternate one node and two, each with fresh hubs and database, and start after a PostgreSQL CHECKPOINT (what earlier runs on the server wrote is on disk before the round is measured).");
    Ok(report)
}

/// One message from each of `applicants` applicants (not those of the measured run), 64
/// at a time; every post must succeed.
async fn warm_up_inbound(
    http: &reqwest::Client,
    url: &str,
    applicants: usize,
) -> anyhow::Result<()> {
    use futures_util::stream::StreamExt as _;
    let posts = futures_util::stream::iter(0..applicants)
        .map(|who| {
            let body = serde_json::to_vec(&json!({
                "id": format!("w{who}"),
                "from": {"phone": format!("+7917{who:07}")},
                "text": format!("an earlier message from applicant {who}"),
            }))
            .expect("serialisable");
            async move {
                jobers_channels::webhook::post_signed(http, url, "load-test-webhook-secret", &body)
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(64);
    let failed = posts.filter(|ok| std::future::ready(!ok)).count().await;
    anyhow::ensure!(failed == 0, "{failed} warm-up posts failed");
    Ok(())
}

/// Inbound messages through the signed webhook at `rate`/s from `applicants` senders;
/// `recruiters` staff sockets receive every `thread.message`. Latency: the webhook POST
/// leaving the generator → the event arriving at a recruiter's socket.
async fn inbound(
    env: &Env,
    recruiters: usize,
    applicants: usize,
    rate: u32,
    secs: u64,
) -> anyhow::Result<Report> {
    let mut report = Report::new(if env.database == "sqlite" {
        "inbound-sqlite"
    } else {
        "inbound-postgres"
    });
    report.param("recruiters connected", recruiters);
    report.param("applicants", applicants);
    report.param("rate (messages/s)", rate);
    report.param("secs", secs);
    let (hub, seeded, db) = env.start(1, recruiters).await?;
    let sdb = jobers::store::Db::connect(&jobers::config::Secret::new(db.clone()), 2).await?;
    let secret = "load-test-webhook-secret";
    let account = sdb
        .for_tenant(&seeded[0].id)
        .create_channel_account(jobers::store::NewChannelAccount {
            kind: "sms",
            provider: "webhook",
            name: "load",
            address: "+70000000000",
            owner_user_id: None,
            settings: &json!({"url": "http://127.0.0.1:9/"}),
            secret: Some(secret),
            queue_id: None,
            inbound_expected_within_s: None,
        })
        .await?;
    sdb.close().await;
    let socks: Vec<Ws> = connect_all(hub.addr, &tokens(&seeded, recruiters), 100, None)
        .await?
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let (stop, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for mut ws in socks {
        let mut stop_rx = stop_rx.clone();
        let delivered = delivered.clone();
        readers.push(tokio::spawn(async move {
            let mut h = histogram();
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            if t.contains("\"kind\":\"thread.message\"") {
                                if let Some(sent) = client::stamp_in(&t, "\"text\":\"t=") {
                                    let _ = h.record(now_nanos().saturating_sub(sent).max(1000));
                                    delivered.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stop_rx.changed() => break,
                }
            }
            h
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let url = format!("http://{}/api/v1/hooks/{}/inbound", hub.addr, account.id);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    // The tenant has a history before the measured run: one message from each of as many
    // other applicants, then the statistics autovacuum would have gathered by then.
    // Their texts carry no send stamp: the recruiters' readers neither count nor time them.
    warm_up_inbound(&http, &url, applicants).await?;
    let analyzed = hub::analyze(&db).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    if analyzed {
        report.note(format!(
            "Before the measured run: {applicants} messages from {applicants} other applicants, then ANALYZE (what autovacuum does within a minute of such growth), so plans are made with statistics, as in a database in service."
        ));
    } else {
        report.note(format!(
            "Before the measured run: {applicants} messages from {applicants} other applicants."
        ));
    }
    let meter = CpuMeter::start(&[hub.pid]);
    let acks = Arc::new(std::sync::Mutex::new(histogram()));
    let errors = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    // Many small senders, each at its share of the rate, so slow answers do not stall it.
    let senders = (rate as usize / 10).clamp(1, 400);
    let period = Duration::from_secs_f64(senders as f64 / rate as f64);
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (http, url, acks, errors, sent) = (
            http.clone(),
            url.clone(),
            acks.clone(),
            errors.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(period.mul_f64(s as f64 / senders as f64)).await;
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let started = Instant::now();
            let mut n = 0u64;
            let mut local = histogram();
            let mut inflight = tokio::task::JoinSet::new();
            while started.elapsed() < Duration::from_secs(secs) {
                interval.tick().await;
                n += 1;
                let who = (s as u64 * 7919 + n) % applicants as u64;
                let body = serde_json::to_vec(&json!({
                    "id": format!("m{s}-{n}"),
                    "from": {"phone": format!("+7916{who:07}")},
                    "text": stamped_body(100),
                }))
                .expect("serialisable");
                let (http, url) = (http.clone(), url.clone());
                sent.fetch_add(1, Ordering::Relaxed);
                inflight.spawn(async move {
                    let t0 = Instant::now();
                    let r = jobers_channels::webhook::post_signed(
                        &http,
                        &url,
                        "load-test-webhook-secret",
                        &body,
                    )
                    .await;
                    (
                        r.map(|r| r.status().is_success()).unwrap_or(false),
                        t0.elapsed(),
                    )
                });
                while let Some(Ok((ok, took))) = inflight.try_join_next() {
                    if ok {
                        let _ = local.record(took.as_nanos() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            while let Some(Ok((ok, took))) = inflight.join_next().await {
                if ok {
                    let _ = local.record(took.as_nanos() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            acks.lock().unwrap().add(&local).ok();
        }));
    }
    for t in tasks {
        t.await?;
    }
    let sent = sent.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    let expected = (sent - errors) * recruiters as u64;
    let wait = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected && wait.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dump_hub_metrics(hub.addr).await;
    finish(&mut report, &meter);
    let _ = stop.send(true);
    let mut lat = histogram();
    for r in readers {
        lat.add(&r.await?).ok();
    }
    let acks = acks.lock().unwrap().clone();
    report.figure("messages sent", sent as f64, "messages", "");
    report.figure(
        "achieved rate",
        sent as f64 / secs as f64,
        "messages/s",
        &format!(">= {}", (rate as f64 * 0.95).floor()),
    );
    report.figure("refused or failed posts", errors as f64, "posts", "<= 0");
    report.figure(
        "lost deliveries",
        expected.saturating_sub(delivered.load(Ordering::Relaxed)) as f64,
        "deliveries",
        "<= 0",
    );
    report.figure("webhook→socket p50", ms(&lat, 0.5), "ms", "");
    report.figure("webhook→socket p99", ms(&lat, 0.99), "ms", "<= 20");
    report.figure("webhook answered (durable) p99", ms(&acks, 0.99), "ms", "");
    hub.stop();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::send_slots;

    #[test]
    fn send_slots_interleave_the_tenants() {
        // Two tenants of three senders, then one of one, listed tenant by tenant.
        let slots = send_slots(&[0, 0, 0, 1, 1, 1, 2]);
        assert_eq!(slots, [0, 3, 5, 1, 4, 6, 2]);
        let mut sorted = slots.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>(), "each slot once");
        // Neighbouring slots belong to different tenants while there are several left.
        let tenant_at: Vec<usize> = (0..5)
            .map(|s| [0, 0, 0, 1, 1, 1, 2][slots.iter().position(|&x| x == s).unwrap()])
            .collect();
        assert_eq!(tenant_at, [0, 1, 2, 0, 1]);
    }
}
