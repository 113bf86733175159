//! The `jobers` command line: `serve`, `migrate`, `demo` and the operator's `admin` tools.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::store::{Db, NewUser, Role, StoreError};
use crate::{auth, demo, telemetry, App};

#[derive(Debug, Parser)]
#[command(
    name = "jobers",
    version,
    about = "Jobers: realtime omnichannel hiring workspace"
)]
pub struct Cli {
    /// TOML configuration file (settings in `JOBERS_*` variables override it).
    #[arg(long, global = true, env = "JOBERS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Run the hub with a demo company and demo staff (created when missing).
    Demo,
    /// Operator tools: tenants, users, passwords.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant (a customer company).
    CreateTenant {
        /// Short name typed at login, e.g. `acme`.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
    /// Create a staff user in a tenant. Without --password, one is generated and printed.
    CreateUser {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role, default_value = "recruiter")]
        role: Role,
        #[arg(long, env = "JOBERS_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Set a user's password and end all their sessions. Without --password, one is
    /// generated and printed.
    ResetPassword {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "JOBERS_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "role must be admin, supervisor or recruiter".into())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init_logs(&config);
    match cli.command {
        Command::Serve => serve(config, false).await,
        Command::Demo => serve(config, true).await,
        Command::Migrate => {
            let db = Db::connect(&config.effective_database_url(), 2).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin(cmd) => admin(config, cmd).await,
    }
}

async fn serve(config: Config, demo_mode: bool) -> anyhow::Result<()> {
    // Every WebSocket is a file descriptor: use all the process may have.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
    let listener = listen(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let app = App::build(config, listener).await?;
    let url = format!("http://{}", app.local_addr());
    if demo_mode {
        let logins = demo::seed(app.db(), app.auth()).await?;
        demo::simulate(&app, &url).await?;
        demo::print_banner(&url, logins);
    }
    tracing::info!(%url, "listening");
    app.run(crate::shutdown_signal()).await
}

/// How many connections may wait for `accept` (the kernel caps it at
/// `net.core.somaxconn`). Standard library and tokio listeners ask for 1,024: a burst of
/// connects larger than that loses handshakes, and each lost one costs its client a
/// one-second SYN retransmission.
pub const LISTEN_BACKLOG: u32 = 16_384;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as the standard
/// library's has, so a restarted node binds while old connections linger).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

fn generated_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

async fn admin(config: Config, cmd: AdminCommand) -> anyhow::Result<()> {
    let db = Db::connect(&config.effective_database_url(), 2).await?;
    db.migrate().await?;
    let hasher =
        auth::PasswordHasher::new(config.auth.argon2_memory_kib, config.auth.argon2_iterations)?;
    match cmd {
        AdminCommand::CreateTenant { slug, name } => {
            let slug = slug.trim().to_lowercase();
            anyhow::ensure!(
                !slug.is_empty()
                    && slug.len() <= 63
                    && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "the slug must be 1-63 latin letters, digits or dashes"
            );
            let tenant = match db.create_tenant(&slug, name.trim()).await {
                Err(StoreError::Conflict(_)) => anyhow::bail!("a tenant with slug {slug} exists"),
                other => other?,
            };
            println!(
                "created tenant {} ({}) id={}",
                tenant.slug, tenant.name, tenant.id
            );
        }
        AdminCommand::CreateUser {
            tenant,
            email,
            name,
            role,
            password,
        } => {
            let tenant = db.tenant_by_slug(&tenant).await.context("no such tenant")?;
            let (password, generated) = password_or_generated(password)?;
            let user = match db
                .for_tenant(&tenant.id)
                .create_user(NewUser {
                    email,
                    name,
                    role,
                    department_id: None,
                    phone: None,
                    title: None,
                    password_hash: hasher.hash(&password).await?,
                })
                .await
            {
                Err(StoreError::Conflict(_)) => anyhow::bail!("a user with this email exists"),
                other => other?,
            };
            println!(
                "created {} {} <{}> in {} id={}",
                user.role.as_str(),
                user.name,
                user.email,
                tenant.slug,
                user.id
            );
            if generated {
                println!("password: {password}");
            }
        }
        AdminCommand::ResetPassword {
            tenant,
            email,
            password,
        } => {
            let tenant = db.tenant_by_slug(&tenant).await.context("no such tenant")?;
            let tdb = db.for_tenant(&tenant.id);
            let creds = tdb
                .credentials_by_email(&email)
                .await
                .context("no such user")?;
            let (password, generated) = password_or_generated(password)?;
            tdb.set_password(&creds.id, &hasher.hash(&password).await?, None)
                .await?;
            println!("password reset for {email}; all sessions ended");
            if generated {
                println!("password: {password}");
            }
        }
    }
    db.close().await;
    Ok(())
}

fn password_or_generated(password: Option<String>) -> anyhow::Result<(String, bool)> {
    match password {
        Some(p) => {
            auth::password::check_policy(&p).map_err(|m| anyhow::anyhow!(m))?;
            Ok((p, false))
        }
        None => Ok((generated_password(), true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects `n` clients at once to `addr`, which nobody accepts on; how many got
    /// through the handshake before the first SYN retransmission (1 s) would be due.
    async fn handshakes_completed(addr: std::net::SocketAddr, n: usize) -> usize {
        let attempts = (0..n).map(|_| {
            tokio::time::timeout(
                std::time::Duration::from_millis(800),
                tokio::net::TcpStream::connect(addr),
            )
        });
        futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(_))))
            .count()
    }

    #[tokio::test]
    async fn a_burst_of_connects_beyond_the_default_backlog_waits_for_accept_instead_of_being_dropped(
    ) {
        const BURST: usize = 2_000;
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .expect("Linux")
            .trim()
            .parse()
            .expect("a number");
        assert!(
            somaxconn >= BURST,
            "net.core.somaxconn ({somaxconn}) caps every backlog below this test's burst"
        );
        let ours = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let completed = handshakes_completed(ours.local_addr().unwrap(), BURST).await;
        assert_eq!(completed, BURST, "every handshake of the burst completes");
        drop(ours);
        // What this guards against: a default listener drops the SYNs past its 1,024.
        let default = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let completed = handshakes_completed(default.local_addr().unwrap(), BURST).await;
        assert!(
            completed < BURST,
            "a default listener lost none of {BURST} handshakes ({completed})"
        );
    }
}
