//! Jobers: the hub of a realtime omnichannel hiring workspace.
//!
//! [`App::build`] wires configuration, the store, the authorization service and the HTTP
//! surface around an already-bound listener, so that `main`, the integration tests and the
//! load tests all run the same server (tests on port 0).

pub mod auth;
pub(crate) mod batching;
pub mod blobs;
pub mod chat;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod http;
pub mod identity;
pub mod realtime;
pub mod secrets;
pub mod store;
pub mod switch;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::AuthService;
use crate::blobs::Blobs;
use crate::chat::Chat;
use crate::config::Config;
use crate::http::AppState;
use crate::realtime::Hub;
use crate::store::Db;

/// Bytes of a generated access-token signing key.
const GENERATED_KEY_BYTES: usize = 32;

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
}

impl App {
    /// Connects and migrates the database and builds the router. Nothing is served until
    /// [`App::run`].
    pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<App> {
        let db = Db::connect(
            &config.effective_database_url(),
            config.database_max_connections,
        )
        .await
        .context("connecting to the database")?;
        db.migrate().await.context("applying migrations")?;
        let secret = token_secret(&config)?;
        secrets::init(&secrets_key(&config)?)?;
        let hub = Hub::start(db.clone(), &config)
            .await
            .context("starting the hub")?;
        let auth = AuthService::new(db.clone(), hub.clone(), &secret, config.auth.clone())?;
        let blobs = Blobs::local(config.data_dir.join("blobs"));
        let public_url = public_url(&config, &listener);
        let switch = switch::Switch::start(
            db.clone(),
            hub.clone(),
            blobs.clone(),
            config.switch.clone(),
            switch::Clock::default(),
            public_url,
        );
        let chat = Chat::new(hub.clone());
        telemetry::spawn_lag_probe();
        let state = AppState {
            switch,
            blobs,
            ws: Arc::new(realtime::connection::Context {
                hub: hub.clone(),
                auth: auth.clone(),
                chat: chat.clone(),
            }),
            chat,
            hub,
            config: Arc::new(config),
            db,
            auth,
            metrics: telemetry::metrics_handle(),
        };
        Ok(App {
            router: http::router(state.clone()),
            listener,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    pub fn auth(&self) -> &AuthService {
        &self.state.auth
    }

    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    pub fn switch(&self) -> &switch::Switch {
        &self.state.switch
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish and closes the database pool.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let db = self.state.db.clone();
        let hub = self.state.hub.clone();
        let switch = self.state.switch.clone();
        let shutdown = async move {
            shutdown.await;
            // WebSocket connections are long-lived: tell them to go (to another node).
            hub.close_all();
        };
        axum::serve(
            tuned(self.listener),
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving")?;
        // Another node takes over this one's boards and mailboxes at once.
        switch.stop().await;
        db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Every accepted connection sends what it is given at once (`TCP_NODELAY`). With Nagle's
/// algorithm on, a frame written while the previous one is not yet acknowledged waits for
/// that acknowledgement, which a client delays by up to 40 ms: a realtime event would often
/// arrive 40 ms late. Writes are gathered in the hub instead (docs/protocol.md, "Frames
/// written together").
fn tuned(listener: TcpListener) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    })
}

/// The key that seals provider credentials at rest: configured, else generated once in
/// the data directory.
fn secrets_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = &config.secrets_key {
        let bytes = hex::decode(key.expose().trim()).context("secrets_key must be hex")?;
        anyhow::ensure!(
            bytes.len() == 32,
            "secrets_key must be 32 bytes (64 hex digits)"
        );
        return Ok(bytes);
    }
    let key = read_or_create_key(&config.data_dir.join("secrets.key"))?;
    Ok(key[..32].to_vec())
}

/// Where providers reach this hub: the configured URL, else the bound address.
fn public_url(config: &Config, listener: &TcpListener) -> String {
    if let Some(url) = config.http.public_url.as_deref().filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_string();
    }
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The configured signing key, or one generated once and kept in the data directory.
fn token_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.auth.token_secret {
        let bytes = secret.expose().as_bytes().to_vec();
        anyhow::ensure!(
            bytes.len() >= 32,
            "auth.token_secret must be at least 32 bytes long"
        );
        return Ok(bytes);
    }
    let path = config.data_dir.join("token.key");
    read_or_create_key(&path)
}

fn read_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let key =
            hex::decode(text.trim()).with_context(|| format!("reading {}", path.display()))?;
        // A truncated file (a crash while it was written) must not become a weak key.
        anyhow::ensure!(
            key.len() >= GENERATED_KEY_BYTES,
            "{} holds a key shorter than {GENERATED_KEY_BYTES} bytes; delete it to make a new one",
            path.display()
        );
        return Ok(key);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut key = vec![0u8; GENERATED_KEY_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(hex::encode(&key).as_bytes())?;
    }
    Ok(key)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; draining");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acknowledgements() {
        use axum::serve::Listener;
        let mut listener = tuned(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, from) = listener.accept().await;
        assert_eq!(from, client.local_addr().unwrap());
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY on the hub's side");
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _c = tokio::net::TcpStream::connect(plain.local_addr().unwrap())
            .await
            .unwrap();
        let (untuned, _) = plain.accept().await.unwrap();
        assert!(
            !untuned.nodelay().unwrap(),
            "the default this guards against (Nagle on)"
        );
    }

    #[test]
    fn a_generated_key_is_kept_and_a_truncated_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("jobers-key-{}", uuid::Uuid::now_v7()));
        let path = dir.join("token.key");
        let first = read_or_create_key(&path).unwrap();
        assert_eq!(first.len(), GENERATED_KEY_BYTES);
        assert_eq!(
            read_or_create_key(&path).unwrap(),
            first,
            "the same key on the next start"
        );
        std::fs::write(&path, "").unwrap();
        assert!(
            read_or_create_key(&path).is_err(),
            "an empty key file is not a key"
        );
        std::fs::write(&path, "abcd").unwrap();
        assert!(
            read_or_create_key(&path).is_err(),
            "a short key is not a key"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
