//! The `jobers` binary as an operator uses it: admin commands, serve, demo, migrate, and a
//! graceful stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

struct Env {
    dir: tempfile::TempDir,
    database_url: String,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    Env { dir, database_url }
}

fn jobers(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobers"));
    cmd.args(args)
        .env_remove("JOBERS_TEST_DATABASE_URL")
        .env("JOBERS_DATABASE_URL", &env.database_url)
        .env("JOBERS_DATA_DIR", env.dir.path())
        .env("JOBERS_LISTEN", "127.0.0.1:0")
        .env("JOBERS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("JOBERS_AUTH__ARGON2_ITERATIONS", "1");
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("jobers runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts `jobers <args>` with JSON logs and waits for its "listening" line.
fn start_server(env: &Env, args: &[&str]) -> (Child, String, Vec<String>) {
    start_server_with(env, args, &[])
}

#[allow(clippy::zombie_processes)] // the caller stops and waits for the child
fn start_server_with(
    env: &Env,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (Child, String, Vec<String>) {
    let mut child = jobers(env, args)
        .envs(vars.iter().copied())
        .env("JOBERS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" {
                    return (child, v["url"].as_str().unwrap().to_string(), seen);
                }
            }
            seen.push(line);
        }
    }
    let _ = child.kill();
    panic!("server did not start: {seen:?}");
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn admin_creates_a_tenant_and_a_user_who_logs_in_to_the_served_app() {
    let env = env().await;
    let out = run_ok(&mut jobers(
        &env,
        &[
            "admin",
            "create-tenant",
            "--slug",
            "Acme",
            "--name",
            "Acme Ltd",
        ],
    ));
    assert!(out.contains("created tenant acme"), "{out}");
    let out = run_ok(&mut jobers(
        &env,
        &[
            "admin",
            "create-user",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.test",
            "--name",
            "Boss",
            "--role",
            "admin",
        ],
    ));
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed")
        .to_string();
    // Duplicate tenant: a clear error, non-zero exit.
    let dup = jobers(
        &env,
        &[
            "admin",
            "create-tenant",
            "--slug",
            "acme",
            "--name",
            "Again",
        ],
    )
    .output()
    .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));

    let (mut child, url, _) = start_server(&env, &["serve"]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"tenant": "acme", "email": "boss@acme.test", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "graceful stop exits 0, got {status}");

    // reset-password with a given password ends sessions and the new one works.
    run_ok(&mut jobers(
        &env,
        &[
            "admin",
            "reset-password",
            "--tenant",
            "acme",
            "--email",
            "boss@acme.test",
            "--password",
            "a new admin password",
        ],
    ));
    let (mut child, url, _) = start_server(&env, &["serve"]);
    let r = client.post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"tenant": "acme", "email": "boss@acme.test", "password": "a new admin password"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let env = env().await;
    run_ok(&mut jobers(
        &env,
        &["admin", "create-tenant", "--slug", "acme", "--name", "Acme"],
    ));
    // Expensive hashing makes a login take about a second: stop the server during one.
    let (mut child, url, _) = start_server_with(
        &env,
        &["serve"],
        &[
            ("JOBERS_AUTH__ARGON2_MEMORY_KIB", "65536"),
            ("JOBERS_AUTH__ARGON2_ITERATIONS", "6"),
        ],
    );
    let client = reqwest::Client::new();
    let pending = tokio::spawn({
        let url = url.clone();
        async move {
            client
                .post(format!("{url}/api/v1/auth/login"))
                .json(
                    &json!({"tenant": "acme", "email": "x@acme.test", "password": "some password"}),
                )
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    sigterm(&child);
    let response = pending
        .await
        .unwrap()
        .expect("the in-flight request got its answer");
    assert_eq!(response.status(), 401);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
    // After the stop, nothing accepts connections.
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
}

#[tokio::test]
#[allow(clippy::zombie_processes)] // stopped with SIGTERM and waited for below
async fn demo_seeds_a_company_and_prints_the_logins() {
    let env = env().await;
    let mut child = jobers(&env, &["demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut url = None;
    let mut banner = String::new();
    while let Some(Ok(line)) = lines.next() {
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.trim().strip_prefix("Jobers demo is running at ") {
            url = Some(rest.to_string());
        }
        if line.contains("Stop with Ctrl-C") {
            break;
        }
    }
    let url = url.expect("banner has the URL");
    for login in jobers::demo::DEMO_USERS {
        assert!(banner.contains(login.email), "{banner}");
    }
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"tenant": "demo", "email": "olga@demo.jobers.local", "password": jobers::demo::DEMO_PASSWORD}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
    // Running the demo again keeps the data and does not duplicate it.
    let (mut child, url, _) = start_server(&env, &["demo"]);
    let tokens: Value = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"tenant": "demo", "email": "admin@demo.jobers.local", "password": jobers::demo::DEMO_PASSWORD}))
        .send().await.unwrap().json().await.unwrap();
    let users: Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/users"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        users.as_array().unwrap().len(),
        jobers::demo::DEMO_USERS.len()
    );
    // The demo board (a HeadHunter simulator, connected): its responses are applications
    // with threads — once, also after the restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let applications = loop {
        let apps: Value = reqwest::Client::new()
            .get(format!("{url}/api/v1/applications"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if apps.as_array().is_some_and(|a| a.len() >= 3) {
            break apps;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no board applications: {apps}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(applications.as_array().unwrap().len(), 3, "{applications}");
    assert!(applications
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["source"] == "hh" && a["thread_id"].is_string()));
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[tokio::test]
async fn migrate_applies_migrations_and_bad_configuration_is_refused() {
    let env = env().await;
    let out = run_ok(&mut jobers(&env, &["migrate"]));
    assert!(out.contains("migrations applied"));
    let bad = jobers(&env, &["migrate"])
        .env("JOBERS_LISTN", "x")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("listn"));
    let bad = jobers(&env, &["migrate"])
        .env("JOBERS_DATABASE_URL", "mysql://x")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unsupported database url"));
}
