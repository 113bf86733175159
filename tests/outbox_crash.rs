//! A SIGKILL between the provider accepting replies and Jobers recording it: after a
//! restart exactly what was queued is delivered — every reply once (the provider drops
//! the repeats by their idempotency key), none lost.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fresh_database_url;
use jobers_channels::webhook::{Behaviour, Simulator};
use serde_json::{json, Value};

struct Server {
    child: Child,
    url: String,
}

fn jobers(dir: &std::path::Path, db: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobers"));
    cmd.args(args)
        .env_remove("JOBERS_TEST_DATABASE_URL")
        .env("JOBERS_DATABASE_URL", db)
        .env("JOBERS_DATA_DIR", dir)
        .env("JOBERS_LISTEN", "127.0.0.1:0")
        .env("JOBERS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("JOBERS_AUTH__ARGON2_ITERATIONS", "1")
        .env("JOBERS_SWITCH__SEND_TIMEOUT_SECS", "1")
        .env("JOBERS_LOG_FORMAT", "json");
    cmd
}

#[allow(clippy::zombie_processes)] // killed and waited for by the test
fn serve(dir: &std::path::Path, db: &str) -> Server {
    let mut child = jobers(dir, db, &["serve"])
        .stdout(Stdio::null())
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
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" {
                    return Server {
                        child,
                        url: v["url"].as_str().unwrap().to_string(),
                    };
                }
            }
        }
    }
    let _ = child.kill();
    panic!("server did not start");
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_sigkill_between_send_and_record_delivers_every_queued_reply_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(dir.path()).await;
    let out = jobers(
        dir.path(),
        &db,
        &["admin", "create-tenant", "--slug", "acme", "--name", "Acme"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = jobers(
        dir.path(),
        &db,
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
    )
    .env("JOBERS_ADMIN_PASSWORD", "correct horse battery staple")
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(listener, None).await;
    let mut server = serve(dir.path(), &db);
    let http = reqwest::Client::new();
    let tokens: Value = http
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&json!({"tenant": "acme", "email": "boss@acme.test", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    let account: Value = http
        .post(format!("{}/api/v1/channel-accounts", server.url))
        .bearer_auth(&token)
        .json(
            &json!({"kind": "sms", "provider": "webhook", "name": "SMS", "address": "+70000000000",
                      "settings": {"url": sim.url()}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channel = account["account"]["id"].as_str().unwrap().to_string();
    let secret = account["secret"].as_str().unwrap().to_string();
    let body = serde_json::to_vec(
        &json!({"id": "in-1", "from": {"phone": "+79161234567"}, "text": "Здравствуйте"}),
    )
    .unwrap();
    let ingested: Value = jobers_channels::webhook::post_signed(
        &http,
        &format!("{}/api/v1/hooks/{channel}/inbound", server.url),
        &secret,
        &body,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let thread = ingested["thread_id"].as_str().unwrap().to_string();

    // The provider takes the replies but its answers never reach Jobers.
    sim.set_behaviour(Behaviour {
        fail_next: None,
        hold: true,
    });
    let mut queued = Vec::new();
    for i in 0..3 {
        let m: Value = http
            .post(format!("{}/api/v1/threads/{thread}/messages", server.url))
            .bearer_auth(&token)
            .json(&json!({"text": format!("Ответ {i}"), "signature": "none"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(m["delivery_state"], "queued", "{m}");
        queued.push(m["id"].as_str().unwrap().to_string());
    }
    until("the provider holds all three", || async {
        sim.received().len() == 3
    })
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    sim.release();
    sim.set_behaviour(Behaviour::default());

    // Restart: the entries' leases run out and they are sent again; the provider sees
    // the same keys and keeps one copy of each.
    let mut server = serve(dir.path(), &db);
    let tokens: Value = http
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&json!({"tenant": "acme", "email": "boss@acme.test", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    until("all three recorded as sent", || async {
        let list: Value = http
            .get(format!("{}/api/v1/threads/{thread}/messages", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "out" && m["delivery_state"] == "sent")
            .count()
            == 3
    })
    .await;
    let received = sim.received();
    let mut keys: Vec<String> = received.iter().map(|r| r.idempotency_key.clone()).collect();
    keys.sort();
    let mut expected = queued.clone();
    expected.sort();
    assert_eq!(keys, expected, "exactly the queued replies, each once");
    assert!(
        received.iter().all(|r| r.attempts == 2),
        "each was sent again after the restart: {received:?}"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
