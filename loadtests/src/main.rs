//! `jobers-load`: drives a real hub over loopback and reports what it measured.
//!
//! Each scenario seeds a fresh database, starts `jobers serve` (pinned to CPU 0 when
//! `--pin`, the generator then runs on CPU 1), drives it with WebSocket clients spread
//! over 127.0.0.x source addresses, stops by itself, prints its figures and writes
//! `reports/<scenario>.json` and `.md`. `smoke` runs every scenario at a small size and
//! checks correctness only: that is what the test suite runs.

mod client;
mod hub;
mod reclaim;
mod report;
mod scenarios;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "jobers-load", about = "Load scenarios for the Jobers hub")]
pub struct Cli {
    /// `sqlite` (a fresh file) or the URL of a PostgreSQL server (a fresh database on it).
    #[arg(long, global = true, default_value = "sqlite")]
    pub database: String,
    /// The PostgreSQL server for `cluster` (default: `--database` when it is one).
    #[arg(long, global = true, env = "JOBERS_TEST_POSTGRES_URL")]
    pub cluster_database: Option<String>,
    /// Redis URL, for `cluster`.
    #[arg(long, global = true, env = "JOBERS_TEST_REDIS_URL")]
    pub redis: Option<String>,
    /// Pin the hub to CPU 0 and the generator to CPU 1.
    #[arg(long, global = true)]
    pub pin: bool,
    /// Drop the page cache before each run's database is made (needs root): runs then
    /// start from the same memory, whatever earlier runs left cached.
    #[arg(long, global = true)]
    pub drop_caches: bool,
    /// Pause the kernel's proactive reclaim (DAMON) and free page reporting, where they run,
    /// for the run and resume them after (needs root): reclaim evicts pages the hub is using,
    /// and reported pages wait for the host when the run takes them (free memory is touched
    /// before each run's database is made).
    #[arg(long, global = true)]
    pub pause_reclaim: bool,
    /// Before the first run on PostgreSQL, bring the server to the state of one in
    /// service, which reuses its WAL files (needs a superuser; sets `min_wal_size` and `max_wal_size`).
    #[arg(long, global = true)]
    pub reuse_wal: bool,
    /// The `jobers` binary (default: next to this one).
    #[arg(long, global = true)]
    pub bin: Option<PathBuf>,
    /// Extra settings for the hub processes, `KEY=VALUE` (e.g.
    /// `JOBERS_REALTIME__OUTGOING_QUEUE=256`); repeatable.
    #[arg(long = "hub-env", global = true)]
    pub hub_env: Vec<String>,
    /// Users per tenant in `idle` and `connect` (presence snapshots grow with it).
    #[arg(long, global = true, default_value_t = 500)]
    pub per_tenant: usize,
    /// Where reports go.
    #[arg(long, global = true, default_value = "loadtests/reports")]
    pub out: PathBuf,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Subcommand, Clone)]
pub enum Scenario {
    /// Hold N authenticated idle connections; hub memory per connection.
    Idle {
        #[arg(long, default_value_t = 18_000)]
        conns: usize,
    },
    /// N clients connect, authenticate and get their snapshot; connections per second.
    Connect {
        #[arg(long, default_value_t = 18_000)]
        conns: usize,
        #[arg(long, default_value_t = 1_000)]
        in_flight: usize,
    },
    /// A room of N members, 100-byte messages, rate stepped up to saturation.
    Fanout {
        #[arg(long, default_value_t = 1_000)]
        members: usize,
        /// Messages per second of each step.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "100,200,300,500,700,1000"
        )]
        rates: Vec<u32>,
        #[arg(long, default_value_t = 5)]
        step_secs: u64,
    },
    /// N connected in pairs; direct messages at a total rate; each durable before ack.
    Direct {
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        #[arg(long, default_value_t = 5_000)]
        rate: u32,
        #[arg(long, default_value_t = 15)]
        secs: u64,
        /// Seconds of sending at the same rate before the measured ones (not measured):
        /// the hub's caches and database connections warm, as in service.
        #[arg(long, default_value_t = 2)]
        warm_up: u64,
        /// Earlier messages in each room before the run (the tables of a service in use).
        #[arg(long, default_value_t = 200)]
        history: usize,
    },
    /// Users of many tenants connect at a rate; time until every presence view is complete.
    Presence {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 20)]
        tenants: usize,
        #[arg(long, default_value_t = 2_000)]
        rate: u32,
    },
    /// Clients drop and resume while messages flow: gaps, duplicates, catch-up time.
    Resume {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 200)]
        rate: u32,
    },
    /// Fanout with members split across two nodes over Redis, against one node.
    Cluster {
        #[arg(long, default_value_t = 1_000)]
        members: usize,
        #[arg(long, default_value_t = 100)]
        rate: u32,
        #[arg(long, default_value_t = 8)]
        secs: u64,
        /// Rounds of one node then two, each with fresh hubs and a fresh database; the
        /// latencies of all rounds of each setup are pooled.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Inbound messages through the signed webhook into recruiters' sockets.
    Inbound {
        #[arg(long, default_value_t = 20)]
        recruiters: usize,
        #[arg(long, default_value_t = 5_000)]
        applicants: usize,
        #[arg(long, default_value_t = 2_000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// Every scenario at a small size, checking correctness (for the test suite).
    Smoke,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    client::raise_fd_limit();
    // Pin before the runtime starts, so that every worker thread inherits it.
    if cli.pin {
        hub::pin_self(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ok = runtime.block_on(async {
        let ok = scenarios::run(&cli).await;
        // A run's PostgreSQL databases go when it ends, however it ends.
        hub::drop_databases().await;
        ok
    })?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
