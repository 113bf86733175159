//! Typed configuration: built-in defaults, then an optional TOML file, then `JOBERS_*`
//! environment variables (nested keys with `__`, e.g. `JOBERS_AUTH__ACCESS_TOKEN_TTL_SECS`).
//! Every setting is listed in `docs/configuration.md`. Secrets are wrapped in [`Secret`] so
//! that `Debug` and logs never print them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The wrapped value; call sites that use it say so explicitly.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP and WebSocket server binds to.
    pub listen: SocketAddr,
    /// Where the embedded database, blobs and the generated token key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means SQLite at `<data_dir>/jobers.db`.
    pub database_url: Option<Secret<String>>,
    /// Upper bound of the database connection pool.
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info,jobers=debug`.
    pub log_filter: String,
    /// `redis://…`: share events and presence with other nodes. Empty: this node is alone.
    pub redis_url: Option<Secret<String>>,
    /// 64 hex digits: the key sealing provider credentials at rest (every node of a cluster
    /// needs the same). Empty: generated once as `<data_dir>/secrets.key`.
    pub secrets_key: Option<Secret<String>>,
    /// This node's name in presence records; empty: the process id and a random suffix.
    pub node_id: Option<String>,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    pub realtime: RealtimeConfig,
    pub switch: SwitchConfig,
}

/// Ingest, routing and the outbox.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// How often the router looks at waiting threads and at assignees who are away.
    pub routing_tick_ms: u64,
    /// Outbox workers on this node (sends in flight at once).
    pub outbox_workers: usize,
    /// Attempts before a retryable failure becomes a permanent one.
    pub outbox_max_attempts: i64,
    /// The first retry waits this long; each next one twice as long (with jitter).
    pub outbox_backoff_ms: i64,
    /// The longest wait between two attempts.
    pub outbox_max_backoff_ms: i64,
    /// A provider call that takes longer fails (and is retried).
    pub send_timeout_secs: u64,
    /// Largest inbound attachment; larger ones are dropped with a note in the message.
    pub max_attachment_bytes: usize,
    /// Largest inbound text or HTML body (characters); the rest is cut.
    pub max_inbound_chars: usize,
    /// How often delivery is asked of providers that only answer when asked (SMS.ru).
    pub status_poll_secs: u64,
    /// The longest a mailbox reader waits for new mail (IMAP IDLE, or the poll interval on
    /// servers without IDLE) before reading again.
    pub mail_wait_secs: u64,
    /// How often a job-board account is read in full (the backstop for missed webhooks),
    /// in milliseconds.
    #[serde(default = "default_board_poll_ms")]
    pub board_poll_ms: u64,
    /// Responses read per board request (HeadHunter serves at most 100).
    #[serde(default = "default_board_page_size")]
    pub board_page_size: u64,
    /// How long a node's claim to read an account's provider (a board's full pass, a
    /// mailbox, SMS delivery reports) lasts unless renewed, in milliseconds. The holder
    /// renews it every third of this; when a node dies, another takes over after at most
    /// this long.
    #[serde(default = "default_sync_lease_ms")]
    pub sync_lease_ms: u64,
}

fn default_sync_lease_ms() -> u64 {
    15_000
}

fn default_board_poll_ms() -> u64 {
    60_000
}

fn default_board_page_size() -> u64 {
    100
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeConfig {
    /// Largest WebSocket frame a client may send.
    pub max_frame_bytes: usize,
    /// Connections this node accepts; past it, new ones are refused with 503. Bounded by
    /// the process's open-file limit.
    pub max_connections: usize,
    /// Connections of one user (tabs, devices) at once; the oldest is closed past it.
    pub max_connections_per_user: usize,
    /// Frames per second a connection may send (sustained), with bursts of twice that.
    pub frames_per_second: u32,
    /// Frames queued for a connection before it counts as too slow and is disconnected
    /// (it resumes from its position); bounds the hub's memory per client.
    pub outgoing_queue: usize,
    /// Time a new connection has to say `hello`.
    pub hello_timeout_secs: u64,
    /// Interval of server pings; a connection silent for three intervals is dropped.
    pub heartbeat_secs: u64,
    /// Without activity for this long, an online user shows as away.
    pub idle_away_secs: u64,
    /// After a user's last connection closes, they show as offline after this long (a page
    /// reload does not flicker them offline).
    pub offline_grace_secs: u64,
    /// Presence changes are gathered for this long and sent as one frame.
    pub presence_flush_ms: u64,
    /// Events older than this are pruned; a client away longer gets `resync`.
    pub event_retention_secs: u64,
    /// Most events replayed on resume; a client further behind gets `resync`.
    pub max_replay_events: i64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Key that signs access tokens (HS256). When empty, a random key is generated once and
    /// kept in `<data_dir>/token.key`; several nodes must share one key, so set it there.
    pub token_secret: Option<Secret<String>>,
    /// Lifetime of an access token. Short, because it is the one sent with every request.
    pub access_token_ttl_secs: u64,
    /// A session ends when its refresh token has not been used for this long.
    pub refresh_token_ttl_secs: u64,
    /// Argon2id memory cost in KiB (OWASP's minimum recommendation is 19 MiB).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Failed logins for one account within `lockout_window_secs` that lock it for the rest
    /// of that window.
    pub max_failures_per_account: u32,
    /// Failed logins from one source address within the window that block that source.
    pub max_failures_per_source: u32,
    pub lockout_window_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The URL providers reach this hub at (webhook signatures are checked against it, and
    /// delivery-report URLs are built from it), e.g. `https://jobers.example.com`. Empty:
    /// `http://` and the address the server is bound to.
    pub public_url: Option<String>,
    /// Largest accepted request body for JSON endpoints.
    pub max_body_bytes: usize,
    /// Largest file accepted by the upload endpoint.
    pub max_upload_bytes: usize,
    /// Origins allowed to call the API from another site. Empty: same origin only.
    pub cors_allowed_origins: Vec<String>,
    /// A request that takes longer than this is abandoned and answered with 503
    /// `request_timeout`.
    pub request_timeout_secs: u64,
    /// Directory with the built web client, served at `/`. Empty: `web-client/dist` when
    /// it exists.
    pub web_root: Option<PathBuf>,
    /// Whether the refresh cookie is marked `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Take the client address from the last `X-Forwarded-For` hop (set when a reverse
    /// proxy such as nginx is in front; never when clients connect directly).
    pub trust_forwarded_for: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_max_connections: 16,
            log_format: LogFormat::Human,
            log_filter: "info".into(),
            redis_url: None,
            node_id: None,
            secrets_key: None,
            realtime: RealtimeConfig {
                max_frame_bytes: 64 * 1024,
                max_connections: 19_000,
                max_connections_per_user: 16,
                frames_per_second: 20,
                outgoing_queue: 1024,
                hello_timeout_secs: 10,
                heartbeat_secs: 20,
                idle_away_secs: 300,
                offline_grace_secs: 30,
                presence_flush_ms: 250,
                event_retention_secs: 7 * 24 * 3600,
                max_replay_events: 10_000,
            },
            auth: AuthConfig {
                token_secret: None,
                access_token_ttl_secs: 15 * 60,
                refresh_token_ttl_secs: 30 * 24 * 3600,
                argon2_memory_kib: 19 * 1024,
                argon2_iterations: 2,
                max_failures_per_account: 5,
                max_failures_per_source: 30,
                lockout_window_secs: 15 * 60,
            },
            switch: SwitchConfig {
                routing_tick_ms: 500,
                outbox_workers: 4,
                outbox_max_attempts: 8,
                outbox_backoff_ms: 1_000,
                outbox_max_backoff_ms: 5 * 60 * 1000,
                send_timeout_secs: 15,
                max_attachment_bytes: 10 * 1024 * 1024,
                max_inbound_chars: 100_000,
                status_poll_secs: 30,
                mail_wait_secs: 25,
                board_poll_ms: default_board_poll_ms(),
                board_page_size: default_board_page_size(),
                sync_lease_ms: default_sync_lease_ms(),
            },
            http: HttpConfig {
                max_body_bytes: 1024 * 1024,
                max_upload_bytes: 20 * 1024 * 1024,
                cors_allowed_origins: Vec::new(),
                request_timeout_secs: 30,
                web_root: None,
                public_url: None,
                secure_cookies: false,
                trust_forwarded_for: false,
            },
        }
    }
}

/// `JOBERS_*` variables read by the command line, not by the configuration.
const CLI_ONLY_VARS: &[&str] = &["config", "admin_password"];

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Config {
    /// Defaults, then `file` (when given), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::figment(file, Env::prefixed("JOBERS_").split("__"))
    }

    fn figment(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(env.filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                !CLI_ONLY_VARS.contains(&key.as_str()) && !key.starts_with("test_")
            }))
            .extract()
            .map_err(|e| ConfigError(Box::new(e)))
    }

    /// The database URL in force: the configured one or the embedded SQLite file.
    pub fn effective_database_url(&self) -> Secret<String> {
        match &self.database_url {
            Some(url) if !url.expose().is_empty() => url.clone(),
            _ => Secret::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("jobers.db").display()
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut config = Config {
            database_url: Some(Secret::new("postgres://u:hunter2@db/jobers".into())),
            ..Default::default()
        };
        config.auth.token_secret = Some(Secret::new("very-secret-key".into()));
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("very-secret-key"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "jobers.toml",
                "listen = \"127.0.0.1:9000\"\nlog_filter = \"debug\"\n[auth]\naccess_token_ttl_secs = 60\n",
            )?;
            jail.set_env("JOBERS_LISTEN", "127.0.0.1:9100");
            jail.set_env("JOBERS_AUTH__MAX_FAILURES_PER_ACCOUNT", "3");
            jail.set_env("JOBERS_DATABASE_URL", "postgres://localhost/x");
            // Variables of the command line and of the test harness are not settings.
            jail.set_env("JOBERS_CONFIG", "elsewhere.toml");
            jail.set_env("JOBERS_ADMIN_PASSWORD", "secret secret");
            jail.set_env("JOBERS_TEST_REDIS_URL", "redis://x");
            let config = Config::load(Some(Path::new("jobers.toml"))).expect("loads");
            assert_eq!(config.listen.port(), 9100);
            assert_eq!(config.log_filter, "debug");
            assert_eq!(config.auth.access_token_ttl_secs, 60);
            assert_eq!(config.auth.max_failures_per_account, 3);
            assert_eq!(config.auth.refresh_token_ttl_secs, 30 * 24 * 3600);
            assert_eq!(
                config.effective_database_url().expose(),
                "postgres://localhost/x"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_settings_are_an_error_not_ignored() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("jobers.toml", "listn = \"127.0.0.1:9000\"\n")?;
            let err = Config::load(Some(Path::new("jobers.toml"))).unwrap_err();
            assert!(err.to_string().contains("listn"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn default_database_is_sqlite_under_the_data_dir() {
        let config = Config::default();
        let url = config.effective_database_url();
        assert!(url.expose().starts_with("sqlite://"));
        assert!(url.expose().contains("jobers.db"));
    }
}
