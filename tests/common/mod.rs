//! Test harness: spawns the real app on port 0 with a fresh database.
//!
//! The backend is SQLite in a temporary directory unless `JOBERS_TEST_DATABASE_URL` names a
//! PostgreSQL server (the test command starts one on loopback); then every test gets a new
//! database of its own on that server. Logs are shown only when `TEST_LOG` is set.
#![allow(dead_code)]

pub mod ws;

use std::time::Duration;

use jobers::config::{Config, LogFormat, Secret};
use jobers::store::{Db, NewUser, Role, Tenant, User};
use jobers::App;
use serde_json::{json, Value};
use sqlx::Executor;
use tokio::net::TcpListener;

/// The signing key of every test app, so tests can forge tokens on purpose.
pub const TEST_TOKEN_SECRET: &str = "test-signing-key-test-signing-key-0123456789";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub db: Db,
    pub hub: jobers::realtime::Hub,
    pub switch: jobers::switch::Switch,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    dir: tempfile::TempDir,
}

/// A fresh database URL for one test: SQLite in `dir`, or a new PostgreSQL database.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("JOBERS_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            let name = format!("t_{}", uuid::Uuid::now_v7().simple());
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
                .await
                .expect("the PostgreSQL test server is reachable");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            let (base, _) = server.rsplit_once('/').expect("url has a database part");
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("jobers.db").display()),
    }
}

pub fn test_config(dir: &std::path::Path, database_url: String) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url: Some(Secret::new(database_url)),
        database_max_connections: 8,
        log_format: LogFormat::Human,
        ..Default::default()
    };
    config.auth.token_secret = Some(Secret::new(TEST_TOKEN_SECRET.into()));
    // Cheap hashing keeps tests fast; production parameters are tested in unit tests.
    config.auth.argon2_memory_kib = 1024;
    config.auth.argon2_iterations = 1;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,jobers=debug")
            .try_init();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database_url(dir.path()).await;
    let mut config = test_config(dir.path(), url);
    adjust(&mut config);
    let listener = TcpListener::bind(config.listen).await.expect("bind port 0");
    let app = App::build(config.clone(), listener)
        .await
        .expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let db = app.db().clone();
    let hub = app.hub().clone();
    let switch = app.switch().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        config,
        db,
        hub,
        switch,
        shutdown: Some(tx),
        task: Some(task),
        dir,
    }
}

/// A tenant with one admin, logged in.
pub struct Workspace {
    pub tenant: Tenant,
    pub admin: User,
    pub tokens: Value,
}

impl Workspace {
    pub fn access(&self) -> String {
        self.tokens["access_token"].as_str().unwrap().to_string()
    }
    pub fn refresh(&self) -> String {
        self.tokens["refresh_token"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the node (as `serve` does on SIGTERM). Returns its data directory, which is
    /// deleted when dropped: a node that shares its SQLite file keeps it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        self.dir
    }

    pub async fn create_user(&self, tenant: &Tenant, email: &str, role: Role) -> User {
        let hasher = jobers::auth::PasswordHasher::new(1024, 1).unwrap();
        self.db
            .for_tenant(&tenant.id)
            .create_user(NewUser {
                email: email.into(),
                name: format!("User {email}"),
                role,
                department_id: None,
                phone: None,
                title: None,
                password_hash: hasher.hash(PASSWORD).await.unwrap(),
            })
            .await
            .expect("user created")
    }

    /// Creates tenant `slug` with admin `admin@<slug>.test` and logs the admin in.
    pub async fn workspace(&self, slug: &str) -> Workspace {
        let tenant = self
            .db
            .create_tenant(slug, &format!("Company {slug}"))
            .await
            .unwrap();
        let admin = self
            .create_user(&tenant, &format!("admin@{slug}.test"), Role::Admin)
            .await;
        let tokens = self.login(slug, &admin.email, PASSWORD).await;
        Workspace {
            tenant,
            admin,
            tokens,
        }
    }

    /// Logs in and returns the token pair (panics unless 200).
    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/auth/login",
                None,
                json!({"tenant": tenant, "email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email} failed");
        response.json().await.unwrap()
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }
}

/// A channel account of the generic webhook channel with its signing secret.
pub struct Channel {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    /// The Prometheus text of `/metrics`.
    /// Who holds the lease `name` of the workspace's tenant now (which node reads it).
    pub async fn lease_holder(&self, ws: &Workspace, name: &str) -> Option<String> {
        self.db
            .for_tenant(&ws.tenant.id)
            .lease_holder(name)
            .await
            .expect("lease read")
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Adds a webhook channel account (`kind`: sms, email, board, chat) sending to `url`.
    pub async fn channel(&self, ws: &Workspace, kind: &str, url: &str, extra: Value) -> Channel {
        let mut body = json!({"kind": kind, "provider": "webhook", "name": format!("{kind} line"),
            "address": format!("{kind}-sender"), "settings": {"url": url}});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let r = self
            .post_json("/api/v1/channel-accounts", Some(&ws.access()), body)
            .await;
        assert_eq!(r.status(), 201, "channel account created");
        let v: Value = r.json().await.unwrap();
        Channel {
            id: v["account"]["id"].as_str().unwrap().to_string(),
            secret: v["secret"].as_str().unwrap().to_string(),
        }
    }

    /// Posts a signed inbound message to the channel's webhook.
    pub async fn inbound(&self, channel: &Channel, payload: Value) -> reqwest::Response {
        let body = serde_json::to_vec(&payload).unwrap();
        jobers_channels::webhook::post_signed(
            &self.client,
            &self.url(&format!("/api/v1/hooks/{}/inbound", channel.id)),
            &channel.secret,
            &body,
        )
        .await
        .expect("request sent")
    }

    /// Posts an inbound message and returns the ingest answer (panics unless 200).
    pub async fn inbound_ok(&self, channel: &Channel, payload: Value) -> Value {
        let r = self.inbound(channel, payload).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "ingest failed: {v}");
        v
    }
}

/// The JSON body of a response.
pub async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

/// Polls `f` every 50 ms until it gives `Some`, for at most 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts the exact error JSON and status of a response.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(got, status, "unexpected status; body {body}");
    assert_eq!(body["error"], code, "unexpected code; body {body}");
    let obj = body.as_object().expect("error body is an object");
    assert_eq!(
        obj.len(),
        2,
        "error body has exactly error and message: {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
