//! Two `jobers serve` processes on one PostgreSQL and one Redis (real servers, started by
//! the test command): messages and presence cross nodes, and a node killed with SIGKILL
//! takes its users offline on the other node by itself.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::ws::WsClient;
use common::*;
use jobers::config::Secret;
use jobers::store::{Db, Role};
use serde_json::{json, Value};
use sqlx::Executor;

fn required(var: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{var} must name a running server (the test command starts one)"))
}

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // the Node owns the child and kills and waits for it on drop
fn start_node(name: &str, database_url: &str, redis_url: &str, dir: &std::path::Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jobers"))
        .arg("serve")
        .env_remove("JOBERS_TEST_DATABASE_URL")
        .env("JOBERS_DATABASE_URL", database_url)
        .env("JOBERS_REDIS_URL", redis_url)
        .env("JOBERS_NODE_ID", name)
        .env("JOBERS_DATA_DIR", dir.join(name))
        .env("JOBERS_LISTEN", "127.0.0.1:0")
        .env("JOBERS_LOG_FORMAT", "json")
        .env("JOBERS_AUTH__TOKEN_SECRET", TEST_TOKEN_SECRET)
        .env("JOBERS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("JOBERS_AUTH__ARGON2_ITERATIONS", "1")
        .env("JOBERS_REALTIME__OFFLINE_GRACE_SECS", "1")
        .env("JOBERS_REALTIME__PRESENCE_FLUSH_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jobers starts");
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
        if let Ok(Some(status)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(200));
            seen.extend(rx.try_iter());
            panic!("node {name} exited with {status}: {seen:?}");
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" {
                    // Keep draining the log so the node never blocks on a full pipe.
                    std::thread::spawn(move || for _ in rx {});
                    return Node {
                        child,
                        base: v["url"].as_str().unwrap().to_string(),
                    };
                }
            }
            seen.push(line);
        }
    }
    panic!("node {name} did not start: {seen:?}");
}

async fn login(base: &str, email: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"tenant": "acme", "email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {r}"))
        .to_string()
}

#[tokio::test]
async fn two_nodes_share_messages_and_presence_and_a_killed_node_goes_offline() {
    let server = required("JOBERS_TEST_POSTGRES_URL");
    let redis_url = required("JOBERS_TEST_REDIS_URL");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("c_{}", uuid::Uuid::now_v7().simple());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let database_url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);

    // Seed: a tenant with two recruiters.
    let db = Db::connect(&Secret::new(database_url.clone()), 2)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let tenant = db.create_tenant("acme", "Acme").await.unwrap();
    let hasher = jobers::auth::PasswordHasher::new(1024, 1).unwrap();
    let mut ids = Vec::new();
    for email in ["olga@acme.test", "ivan@acme.test"] {
        let u = db
            .for_tenant(&tenant.id)
            .create_user(jobers::store::NewUser {
                email: email.into(),
                name: email.into(),
                role: Role::Recruiter,
                department_id: None,
                phone: None,
                title: None,
                password_hash: hasher.hash(PASSWORD).await.unwrap(),
            })
            .await
            .unwrap();
        ids.push(u.id);
    }
    db.close().await;
    let (olga_id, ivan_id) = (ids[0].clone(), ids[1].clone());

    let a = start_node("node-a", &database_url, &redis_url, dir.path());
    let b = start_node("node-b", &database_url, &redis_url, dir.path());
    let olga = login(&a.base, "olga@acme.test").await;
    let ivan = login(&b.base, "ivan@acme.test").await;
    let room: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/rooms", a.base))
        .bearer_auth(&olga)
        .json(&json!({"name": "Cross-node", "member_ids": [ivan_id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room_id = room["id"].as_str().unwrap();

    let mut on_a = WsClient::connect(&a.base, &olga, None).await;
    on_a.next_of("live", None).await;
    let mut on_b = WsClient::connect(&b.base, &ivan, None).await;
    on_b.next_of("live", None).await;

    // A message sent on node A reaches the member connected to node B.
    on_a.send(json!({"type": "send", "room_id": room_id, "body": "через узлы", "client_message_id": "x1"})).await;
    let ack = on_a.next_of("ack", None).await;
    let event = on_b.next_of("event", Some("room.message")).await;
    assert_eq!(event["data"]["body"], "через узлы");
    assert_eq!(event["position"], ack["position"]);

    // Presence set on B is seen on A.
    on_a.wait_presence(&ivan_id, "online").await;
    on_b.send(json!({"type": "presence", "status": "busy", "text": "звонок"}))
        .await;
    let busy = on_a.wait_presence(&ivan_id, "busy").await;
    assert_eq!(busy["text"], "звонок");
    // And the other way round.
    on_b.wait_presence(&olga_id, "online").await;

    // Node B dies without a word: its users turn offline on A by themselves.
    let mut b = b;
    b.child.kill().expect("SIGKILL node B");
    b.child.wait().unwrap();
    let killed = Instant::now();
    on_a.wait_presence(&ivan_id, "offline").await;
    let took = killed.elapsed();
    // Documented in docs/operations.md: within 10 s (report TTL 6 s, refresh 2 s, grace).
    assert!(took <= Duration::from_secs(10), "offline after {took:?}");
    eprintln!("node B's user went offline on node A {took:?} after SIGKILL");

    // Node A still serves, and Ivan can continue on A, catching up from his position.
    let ivan_on_a = login(&a.base, "ivan@acme.test").await;
    let (_c, frames) =
        WsClient::resume(&a.base, &ivan_on_a, event["position"].as_i64().unwrap() - 1).await;
    assert!(frames.iter().any(|f| f["data"]["body"] == "через узлы"));
    drop(a);
}
