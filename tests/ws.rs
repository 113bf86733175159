//! The WebSocket protocol: hello, live events, resume, limits, bad input, revocation.

mod common;

use std::time::Duration;

use common::ws::{connect_raw, WsClient};
use common::*;
use futures::SinkExt;
use jobers::store::Role;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

struct Team {
    app: TestApp,
    ws: Workspace,
    olga: (jobers::store::User, String),
    ivan: (jobers::store::User, String),
    petr: (jobers::store::User, String),
    room: String,
}

/// A tenant with three recruiters; Olga and Ivan share a room, Petr is not in it.
async fn team_with(adjust: impl FnOnce(&mut jobers::config::Config)) -> Team {
    let app = spawn_app_with(adjust).await;
    let ws = app.workspace("acme").await;
    let mut people = Vec::new();
    for name in ["olga", "ivan", "petr"] {
        let u = app
            .create_user(&ws.tenant, &format!("{name}@acme.test"), Role::Recruiter)
            .await;
        let t = app.login("acme", &u.email, PASSWORD).await;
        people.push((u, t["access_token"].as_str().unwrap().to_string()));
    }
    let petr = people.pop().unwrap();
    let ivan = people.pop().unwrap();
    let olga = people.pop().unwrap();
    let room: Value = app
        .post_json(
            "/api/v1/rooms",
            Some(&olga.1),
            json!({"name": "Hiring", "member_ids": [ivan.0.id]}),
        )
        .await
        .json()
        .await
        .unwrap();
    Team {
        room: room["id"].as_str().unwrap().to_string(),
        app,
        ws,
        olga,
        ivan,
        petr,
    }
}

async fn team() -> Team {
    team_with(|_| {}).await
}

/// Olga connected, then Ivan; returns both once Olga sees Ivan online.
async fn olga_sees_ivan_arrive(t: &Team) -> (WsClient, WsClient) {
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    olga.next_of("live", None).await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    ivan.next_of("live", None).await;
    olga.wait_presence(&t.ivan.0.id, "online").await;
    (olga, ivan)
}

fn send_frame(room: &str, body: &str, cmid: &str) -> Value {
    json!({"type": "send", "room_id": room, "body": body, "client_message_id": cmid, "ref": cmid})
}

#[tokio::test]
async fn hello_gets_a_welcome_with_position_and_presence_then_live() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    assert_eq!(c.welcome["v"], 1);
    assert_eq!(c.welcome["user_id"], t.olga.0.id.as_str());
    assert!(
        c.welcome["position"].as_i64().unwrap() >= 1,
        "the room's creation is an event"
    );
    let snapshot = c.snapshot().await;
    assert!(
        snapshot
            .iter()
            .any(|p| p["user_id"] == t.olga.0.id.as_str() && p["status"] == "online"),
        "{snapshot:?}"
    );
    let live = c.next().await;
    assert_eq!(live["type"], "live");
    assert_eq!(live["position"], c.welcome["position"]);
}

#[tokio::test]
async fn a_message_reaches_room_members_live_and_no_one_else() {
    let t = team().await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let mut petr = WsClient::connect(&t.app.base, &t.petr.1, None).await;
    for c in [&mut olga, &mut ivan, &mut petr] {
        c.next_of("live", None).await;
    }
    olga.send(send_frame(&t.room, "Привет, Иван!", "c-1")).await;
    let ack = olga.next_of("ack", None).await;
    assert_eq!(ack["ref"], "c-1");
    assert_eq!(ack["duplicate"], false);
    let position = ack["position"].as_i64().unwrap();
    let event = ivan.next_of("event", Some("room.message")).await;
    assert_eq!(event["position"], position);
    assert_eq!(event["data"]["body"], "Привет, Иван!");
    assert_eq!(event["data"]["author_id"], t.olga.0.id.as_str());
    assert_eq!(event["data"]["id"], ack["message_id"]);
    // The sender's own other tabs see it too.
    let own = olga.next_of("event", Some("room.message")).await;
    assert_eq!(own["position"], position);
    petr.quiet("event", Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_repeated_client_message_id_is_acknowledged_again_and_stored_once() {
    let t = team().await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    olga.next_of("live", None).await;
    olga.send(send_frame(&t.room, "once", "same-id")).await;
    let first = olga.next_of("ack", None).await;
    olga.send(send_frame(&t.room, "once", "same-id")).await;
    let second = olga.next_of("ack", None).await;
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["message_id"], first["message_id"]);
    assert_eq!(second["position"], first["position"]);
    // Over REST too.
    let r = t
        .app
        .post_json(
            &format!("/api/v1/rooms/{}/messages", t.room),
            Some(&t.olga.1),
            json!({"body": "once", "client_message_id": "same-id"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let messages: Value = t
        .app
        .get(&format!("/api/v1/rooms/{}/messages", t.room), &t.olga.1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages.as_array().unwrap().len(), 1, "{messages}");
    // Both sends over the socket were timed (the REST one is not a frame).
    let metrics = t.app.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "ws_send_seconds_count 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_client_that_resumes_gets_exactly_what_it_missed_in_order() {
    let t = team().await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let live = ivan.next_of("live", None).await;
    let since = live["position"].as_i64().unwrap();
    drop(ivan);
    // Meanwhile: three messages in Ivan's room, one in a room he is not in.
    let other: Value = t
        .app
        .post_json(
            "/api/v1/rooms",
            Some(&t.olga.1),
            json!({"name": "Secret", "member_ids": [t.petr.0.id]}),
        )
        .await
        .json()
        .await
        .unwrap();
    for i in 0..3 {
        t.app
            .post_json(
                &format!("/api/v1/rooms/{}/messages", t.room),
                Some(&t.olga.1),
                json!({"body": format!("m{i}")}),
            )
            .await;
    }
    t.app
        .post_json(
            &format!("/api/v1/rooms/{}/messages", other["id"].as_str().unwrap()),
            Some(&t.olga.1),
            json!({"body": "not for ivan"}),
        )
        .await;
    let (_ivan, frames) = WsClient::resume(&t.app.base, &t.ivan.1, since).await;
    let events: Vec<&Value> = frames.iter().filter(|f| f["type"] == "event").collect();
    let bodies: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2"]);
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(!serde_json::to_string(&frames)
        .unwrap()
        .contains("not for ivan"));
    let live = frames.last().unwrap();
    assert_eq!(live["type"], "live");
    assert!(live["position"].as_i64().unwrap() >= *positions.last().unwrap());
}

#[tokio::test]
async fn resuming_while_messages_flow_loses_and_repeats_nothing() {
    let t = team().await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let since = ivan.next_of("live", None).await["position"]
        .as_i64()
        .unwrap();
    drop(ivan);
    let app_base = t.app.base.clone();
    let writer = {
        let client = t.app.client.clone();
        let url = t.app.url(&format!("/api/v1/rooms/{}/messages", t.room));
        let token = t.olga.1.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"body": format!("n{i}")}))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (mut ivan, frames) = WsClient::resume(&app_base, &t.ivan.1, since).await;
    writer.await.unwrap();
    let mut bodies: Vec<String> = frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|e| e["data"]["body"].as_str().unwrap().to_string())
        .collect();
    while bodies.len() < 60 {
        let e = ivan.next_of("event", Some("room.message")).await;
        bodies.push(e["data"]["body"].as_str().unwrap().to_string());
    }
    let expected: Vec<String> = (0..60).map(|i| format!("n{i}")).collect();
    assert_eq!(bodies, expected);
    ivan.quiet("event", Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_position_too_old_or_unknown_gets_an_explicit_resync() {
    let t = team().await;
    t.app
        .post_json(
            &format!("/api/v1/rooms/{}/messages", t.room),
            Some(&t.olga.1),
            json!({"body": "x"}),
        )
        .await;
    // A position from the future (another database): resync.
    let (_c, frames) = WsClient::resume(&t.app.base, &t.ivan.1, 1_000_000).await;
    assert_eq!(frames[0]["type"], "resync", "{frames:?}");
    // Pruned history: resync.
    t.app.db.prune_events(i64::MAX).await.unwrap();
    let (_c, frames) = WsClient::resume(&t.app.base, &t.ivan.1, 0).await;
    assert_eq!(frames[0]["type"], "resync", "{frames:?}");
    let current = frames[0]["position"].as_i64().unwrap();
    assert_eq!(frames.last().unwrap()["position"], current);
}

#[tokio::test]
async fn pruning_drops_the_events_older_than_the_cutoff_and_keeps_the_newer() {
    let t = team().await;
    let tdb = t.app.db.for_tenant(&t.ws.tenant.id);
    let older = tdb.events_between(0, i64::MAX).await.unwrap();
    assert!(!older.is_empty(), "the team's setup made events");
    let cutoff = older.iter().map(|e| e.created_at).max().unwrap() + 1;
    while jobers::store::now_ms() <= cutoff {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let r = t
        .app
        .post_json(
            &format!("/api/v1/rooms/{}/messages", t.room),
            Some(&t.olga.1),
            json!({"body": "after the cutoff"}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let newer: Vec<i64> = tdb
        .events_between(0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.created_at >= cutoff)
        .map(|e| e.position)
        .collect();
    assert!(!newer.is_empty());
    let dropped = t.app.db.prune_events(cutoff).await.unwrap();
    assert_eq!(
        dropped as usize,
        older.len(),
        "every older event, nothing else"
    );
    let left: Vec<i64> = tdb
        .events_between(0, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(left, newer);
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_error_frames_and_the_connection_lives() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    c.stream
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    let e = c.next_of("error", None).await;
    assert_eq!(e["code"], "malformed_frame");
    c.send(json!({"type": "teleport"})).await;
    assert_eq!(c.next_of("error", None).await["code"], "malformed_frame");
    c.send(json!({"type": "send", "room_id": t.room})).await;
    assert_eq!(c.next_of("error", None).await["code"], "malformed_frame");
    c.stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(c.next_of("error", None).await["code"], "unsupported_frame");
    // Domain errors carry the API's codes and the ref.
    c.send(json!({"type": "send", "room_id": "no-such-room", "body": "x", "client_message_id": "k", "ref": "r9"})).await;
    let e = c.next_of("error", None).await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("not_found"), Some("r9"))
    );
    c.send(json!({"type": "send", "room_id": t.room, "body": "   ", "client_message_id": "k2"}))
        .await;
    assert_eq!(c.next_of("error", None).await["code"], "empty_message");
    c.send(json!({"type": "ping", "ref": "p"})).await;
    assert_eq!(c.next_of("pong", None).await["ref"], "p");
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    let body = "x".repeat(70 * 1024);
    c.stream
        .send(Message::Text(
            send_frame(&t.room, &body, "big").to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(c.closed().await, 1009);
    let messages: Value = t
        .app
        .get(&format!("/api/v1/rooms/{}/messages", t.room), &t.olga.1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages, json!([]));
}

#[tokio::test]
async fn bad_hellos_are_closed_with_their_codes() {
    let t = team_with(|c| c.realtime.hello_timeout_secs = 1).await;
    // Expired token.
    let me: Value = t
        .app
        .get("/api/v1/me", &t.olga.1)
        .await
        .json()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = json!({"sub": t.olga.0.id, "tid": t.ws.tenant.id, "sid": me["session_id"], "iat": now - 1000, "exp": now - 10, "typ": "access"});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_TOKEN_SECRET.as_bytes()),
    )
    .unwrap();
    for (hello, code) in [
        (json!({"type": "hello", "v": 1, "token": expired}), 4002),
        (json!({"type": "hello", "v": 1, "token": "garbage"}), 4001),
        (json!({"type": "ping"}), 4001),
        (json!({"type": "hello", "v": 2, "token": t.olga.1}), 4001),
    ] {
        let mut s = connect_raw(&t.app.base).await;
        s.send(Message::Text(hello.to_string().into()))
            .await
            .unwrap();
        let mut c = WsClient::raw(s);
        assert_eq!(c.closed().await, code, "{hello}");
    }
    // Silence.
    let s = connect_raw(&t.app.base).await;
    let mut c = WsClient::raw(s);
    assert_eq!(c.closed().await, 4011);
}

#[tokio::test]
async fn logging_out_closes_that_sessions_sockets_at_once() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    let other = t.app.login("acme", &t.olga.0.email, PASSWORD).await;
    let mut c2 =
        WsClient::connect(&t.app.base, other["access_token"].as_str().unwrap(), None).await;
    c2.next_of("live", None).await;
    let r = t
        .app
        .post_json("/api/v1/auth/logout", Some(&t.olga.1), json!({}))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(c.closed().await, 4003);
    // The other session's socket stays.
    c2.send(json!({"type": "ping", "ref": "still"})).await;
    assert_eq!(c2.next_of("pong", None).await["ref"], "still");
}

#[tokio::test]
async fn deactivating_a_user_closes_their_sockets_with_4004() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    c.next_of("live", None).await;
    let r = t
        .app
        .post_json(
            &format!("/api/v1/users/{}/deactivate", t.ivan.0.id),
            Some(&t.ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(c.closed().await, 4004);
}

#[tokio::test]
async fn reusing_a_refresh_token_closes_the_sockets_of_that_session() {
    let t = team().await;
    let tokens = t.app.login("acme", &t.olga.0.email, PASSWORD).await;
    let mut c =
        WsClient::connect(&t.app.base, tokens["access_token"].as_str().unwrap(), None).await;
    c.next_of("live", None).await;
    let old = tokens["refresh_token"].clone();
    t.app
        .post_json("/api/v1/auth/refresh", None, json!({"refresh_token": old}))
        .await;
    t.app
        .post_json("/api/v1/auth/refresh", None, json!({"refresh_token": old}))
        .await;
    assert_eq!(c.closed().await, 4003);
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_catches_up_by_resuming() {
    let t = team_with(|c| c.realtime.outgoing_queue = 8).await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let since = ivan.next_of("live", None).await["position"]
        .as_i64()
        .unwrap();
    // Ivan stops reading; Olga sends far more than his socket buffers and queue hold.
    let body = "ы".repeat(4_000);
    let mut last_position = 0;
    for i in 0..600 {
        let r: Value = t
            .app
            .post_json(
                &format!("/api/v1/rooms/{}/messages", t.room),
                Some(&t.olga.1),
                json!({"body": format!("{i} {body}")}),
            )
            .await
            .json()
            .await
            .unwrap();
        last_position = r["message"]["position"].as_i64().unwrap();
    }
    // Reading now, Ivan finds some messages, then the close.
    let mut seen = Vec::new();
    let code = loop {
        match tokio::time::timeout(
            Duration::from_secs(15),
            futures::StreamExt::next(&mut ivan.stream),
        )
        .await
        .unwrap()
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "event" {
                    seen.push(v["position"].as_i64().unwrap());
                }
            }
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => continue,
            other => panic!("unexpected end: {other:?}"),
        }
    };
    assert_eq!(code, 4008);
    assert!(seen.len() < 600, "the queue is bounded: got {}", seen.len());
    // Resuming from the last position seen delivers the rest, without gaps.
    let resume_from = seen.last().copied().unwrap_or(since);
    let (_c, frames) = WsClient::resume(&t.app.base, &t.ivan.1, resume_from).await;
    let mut positions: Vec<i64> = seen.clone();
    positions.extend(
        frames
            .iter()
            .filter(|f| f["type"] == "event")
            .map(|f| f["position"].as_i64().unwrap()),
    );
    assert_eq!(positions.len(), 600, "every message exactly once");
    assert_eq!(*positions.last().unwrap(), last_position);
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn flooding_frames_is_rate_limited() {
    let t = team_with(|c| c.realtime.frames_per_second = 5).await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    for i in 0..30 {
        c.send(json!({"type": "ping", "ref": i.to_string()})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..30 {
        let f = c.next().await;
        match f["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if f["code"] == "rate_limited" => limited += 1,
            _ => {}
        }
    }
    assert!(limited >= 15, "{pongs} pongs, {limited} limited");
    assert!((10..=15).contains(&pongs), "the burst passes: {pongs}");
}

#[tokio::test]
async fn typing_reaches_the_other_members_only() {
    let t = team().await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let mut petr = WsClient::connect(&t.app.base, &t.petr.1, None).await;
    for c in [&mut olga, &mut ivan, &mut petr] {
        c.next_of("live", None).await;
    }
    olga.send(json!({"type": "typing", "room_id": t.room}))
        .await;
    let typing = ivan.next_of("typing", None).await;
    assert_eq!(typing["user_id"], t.olga.0.id.as_str());
    assert_eq!(typing["room_id"], t.room.as_str());
    olga.quiet("typing", Duration::from_millis(200)).await;
    petr.quiet("typing", Duration::from_millis(100)).await;
    // Typing is never replayed.
    let (_c, frames) = WsClient::resume(&t.app.base, &t.ivan.1, 0).await;
    assert!(frames.iter().all(|f| f["type"] != "typing"));
}

#[tokio::test]
async fn typing_in_an_applicant_thread_reaches_the_other_staff() {
    let t = team().await;
    let ch = t
        .app
        .channel(&t.ws, "sms", "http://127.0.0.1:9/unused", json!({}))
        .await;
    let thread = t
        .app
        .inbound_ok(
            &ch,
            json!({"id": "e1", "from": {"phone": "+375291112233"}, "text": "Добрый день"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let mut petr = WsClient::connect(&t.app.base, &t.petr.1, None).await;
    for c in [&mut olga, &mut ivan, &mut petr] {
        c.next_of("live", None).await;
    }
    olga.send(json!({"type": "typing", "thread_id": thread}))
        .await;
    for c in [&mut ivan, &mut petr] {
        let typing = c.next_of("typing", None).await;
        assert_eq!(typing["thread_id"], thread.as_str());
        assert_eq!(typing["user_id"], t.olga.0.id.as_str());
        assert!(typing.get("room_id").is_none(), "{typing}");
    }
    olga.quiet("typing", Duration::from_millis(200)).await;
    // A thread of another tenant (or none) is not found; both or neither is malformed.
    let other = t.app.workspace("elsewhere").await;
    let ch2 = t
        .app
        .channel(&other, "sms", "http://127.0.0.1:9/unused", json!({}))
        .await;
    let foreign = t
        .app
        .inbound_ok(
            &ch2,
            json!({"id": "e2", "from": {"phone": "+375291112234"}, "text": "Здравствуйте"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    olga.send(json!({"type": "typing", "thread_id": foreign, "ref": "f"}))
        .await;
    let e = olga.next_of("error", None).await;
    assert_eq!(e["code"], "not_found", "{e}");
    olga.send(json!({"type": "typing", "thread_id": thread, "room_id": t.room, "ref": "b"}))
        .await;
    let e = olga.next_of("error", None).await;
    assert_eq!(e["code"], "malformed_frame", "{e}");
    olga.send(json!({"type": "typing", "ref": "n"})).await;
    let e = olga.next_of("error", None).await;
    assert_eq!(e["code"], "malformed_frame", "{e}");
    ivan.quiet("typing", Duration::from_millis(200)).await;
}

#[tokio::test]
async fn read_receipts_and_unread_counters() {
    let t = team().await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    olga.next_of("live", None).await;
    let mut last = String::new();
    for i in 0..3 {
        let r: Value = t
            .app
            .post_json(
                &format!("/api/v1/rooms/{}/messages", t.room),
                Some(&t.olga.1),
                json!({"body": format!("r{i}")}),
            )
            .await
            .json()
            .await
            .unwrap();
        last = r["message"]["id"].as_str().unwrap().to_string();
    }
    let rooms: Value = t
        .app
        .get("/api/v1/rooms", &t.ivan.1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rooms[0]["unread"], 3);
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    ivan.next_of("live", None).await;
    ivan.send(json!({"type": "read", "room_id": t.room, "message_id": last, "ref": "rd"}))
        .await;
    assert_eq!(ivan.next_of("ack", None).await["ref"], "rd");
    let receipt = olga.next_of("event", Some("room.read")).await;
    assert_eq!(receipt["data"]["user_id"], t.ivan.0.id.as_str());
    assert_eq!(receipt["data"]["message_id"], last.as_str());
    let rooms: Value = t
        .app
        .get("/api/v1/rooms", &t.ivan.1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rooms[0]["unread"], 0);
}

#[tokio::test]
async fn mentions_notify_the_mentioned_member() {
    let t = team().await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    ivan.next_of("live", None).await;
    t.app
        .post_json(
            &format!("/api/v1/rooms/{}/messages", t.room),
            Some(&t.olga.1),
            json!({"body": "@Иван посмотри кандидата", "mentions": [t.ivan.0.id, t.petr.0.id]}),
        )
        .await;
    let mention = ivan.next_of("event", Some("mention")).await;
    assert_eq!(mention["data"]["author_id"], t.olga.0.id.as_str());
    assert!(mention["data"]["excerpt"]
        .as_str()
        .unwrap()
        .contains("посмотри"));
    // Petr is not in the room: not mentioned.
    let (_c, frames) = WsClient::resume(&t.app.base, &t.petr.1, 0).await;
    assert!(frames.iter().all(|f| f["kind"] != "mention"));
}

#[tokio::test]
async fn editing_and_deleting_own_messages_but_not_others() {
    let t = team().await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    ivan.next_of("live", None).await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    olga.next_of("live", None).await;
    olga.send(send_frame(&t.room, "typo", "e1")).await;
    let id = olga.next_of("ack", None).await["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    olga.send(json!({"type": "edit", "message_id": id, "body": "fixed", "ref": "ed"}))
        .await;
    assert_eq!(olga.next_of("ack", None).await["ref"], "ed");
    let edited = ivan.next_of("event", Some("room.message_edited")).await;
    assert_eq!(edited["data"]["body"], "fixed");
    assert!(edited["data"]["edited_at"].is_string());
    ivan.send(json!({"type": "delete", "message_id": id, "ref": "no"}))
        .await;
    assert_eq!(ivan.next_of("error", None).await["code"], "not_found");
    olga.send(json!({"type": "delete", "message_id": id})).await;
    let deleted = ivan.next_of("event", Some("room.message_deleted")).await;
    assert_eq!(
        (
            deleted["data"]["deleted"].as_bool(),
            deleted["data"]["body"].as_str()
        ),
        (Some(true), Some(""))
    );
}

#[tokio::test]
async fn too_many_connections_of_one_user_close_the_oldest() {
    let t = team_with(|c| c.realtime.max_connections_per_user = 2).await;
    let mut first = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    first.next_of("live", None).await;
    let mut second = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    second.next_of("live", None).await;
    let mut third = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    third.next_of("live", None).await;
    assert_eq!(first.closed().await, 4009);
    // The evicted connection leaves the counts too.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while t.app.hub.connection_count() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "count stuck at {}",
            t.app.hub.connection_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.send(json!({"type": "ping", "ref": "2"})).await;
    assert_eq!(second.next_of("pong", None).await["ref"], "2");
}

#[tokio::test]
async fn a_full_node_refuses_new_connections_with_503() {
    let t = team_with(|c| c.realtime.max_connections = 1).await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    let url = format!("{}/ws", t.app.base.replacen("http", "ws", 1));
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
}

#[tokio::test]
async fn presence_is_live_with_a_snapshot_on_connect() {
    let t = team_with(|c| {
        c.realtime.offline_grace_secs = 1;
        c.realtime.presence_flush_ms = 50;
    })
    .await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    olga.next_of("live", None).await;
    // Ivan connects: Olga sees him online, and his snapshot shows Olga online.
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    let snapshot = ivan.snapshot().await;
    let olga_entry = snapshot
        .iter()
        .find(|p| p["user_id"] == t.olga.0.id.as_str())
        .expect("olga in snapshot");
    assert_eq!(olga_entry["status"], "online");
    olga.wait_presence(&t.ivan.0.id, "online").await;
    // Ivan chooses busy with a text: Olga sees it live.
    ivan.send(
        json!({"type": "presence", "status": "busy", "text": "На собеседовании", "ref": "p"}),
    )
    .await;
    let busy = olga.wait_presence(&t.ivan.0.id, "busy").await;
    assert_eq!(busy["text"], "На собеседовании");
    // Ivan leaves: offline after the grace period.
    drop(ivan);
    let started = std::time::Instant::now();
    let off = olga.wait_presence(&t.ivan.0.id, "offline").await;
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "not before the grace period"
    );
    assert_eq!(
        off["text"], "На собеседовании",
        "the custom text stays visible"
    );
    let list: Value = t
        .app
        .get("/api/v1/presence", &t.olga.1)
        .await
        .json()
        .await
        .unwrap();
    let ivan_now = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == t.ivan.0.id.as_str())
        .unwrap();
    assert_eq!(ivan_now["status"], "offline");
}

#[tokio::test]
async fn a_busy_writer_does_not_flood_the_tenant_with_presence() {
    // With 16 s to away, activity alone is news again only after 4 s.
    let t = team_with(|c| {
        c.realtime.idle_away_secs = 16;
        c.realtime.presence_flush_ms = 50;
    })
    .await;
    let (mut olga, mut ivan) = olga_sees_ivan_arrive(&t).await;
    // Let the arrival's frames pass, then Ivan writes ten times over a second and a half:
    // several recomputations (every 500 ms at least), his status the same throughout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    while tokio::time::timeout(Duration::from_millis(50), olga.next())
        .await
        .is_ok()
    {}
    let started = tokio::time::Instant::now();
    let mut presence_frames = 0;
    let mut messages = 0;
    for i in 0..10 {
        ivan.send(send_frame(&t.room, &format!("m{i}"), &format!("busy-{i}")))
            .await;
        let until = tokio::time::Instant::now() + Duration::from_millis(150);
        while let Ok(f) = tokio::time::timeout_at(until, olga.next()).await {
            match f["type"].as_str() {
                Some("presence") => presence_frames += 1,
                Some("event") if f["kind"] == "room.message" => messages += 1,
                _ => {}
            }
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(messages, 10, "every message arrived");
    assert_eq!(
        presence_frames, 0,
        "an active user who stays online is not re-sent for each activity"
    );
    // Four seconds after his arrival his last activity is news again.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    ivan.send(send_frame(&t.room, "later", "busy-later")).await;
    let p = olga.next_of("presence", None).await;
    let entry = &p["users"][0];
    assert_eq!(entry["user_id"], t.ivan.0.id.as_str());
    assert_eq!(entry["status"], "online");
}

#[tokio::test]
async fn timers_change_presence_by_themselves() {
    let t = team_with(|c| {
        c.realtime.idle_away_secs = 1;
        c.realtime.presence_flush_ms = 50;
    })
    .await;
    let (mut olga, mut ivan) = olga_sees_ivan_arrive(&t).await;
    // Nobody does anything: Ivan turns away after a second of idleness.
    let started = std::time::Instant::now();
    olga.wait_presence(&t.ivan.0.id, "away").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    // He writes: online again.
    ivan.send(send_frame(&t.room, "back", "back-1")).await;
    olga.wait_presence(&t.ivan.0.id, "online").await;
    // Busy until a second from now: busy, then automatic again (away: idle by then).
    let until = chrono::Utc::now().timestamp_millis() + 1_000;
    ivan.send(json!({"type": "presence", "status": "busy", "until": until, "ref": "b"}))
        .await;
    olga.wait_presence(&t.ivan.0.id, "busy").await;
    let after_busy = loop {
        let f = olga.next().await;
        if f["type"] != "presence" {
            continue;
        }
        if let Some(p) = f["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user_id"] == t.ivan.0.id.as_str())
        {
            break p.clone();
        }
    };
    assert_ne!(after_busy["status"], "busy");
    assert!(chrono::Utc::now().timestamp_millis() >= until - 100);
}

#[tokio::test]
async fn shutdown_tells_clients_to_go_away() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    let Team { app, .. } = t;
    let stop = tokio::spawn(app.stop());
    assert_eq!(c.closed().await, 1001);
    stop.await.unwrap();
}

#[tokio::test]
async fn a_snapshot_lists_everyone_already_online() {
    let t = team_with(|c| c.realtime.presence_flush_ms = 50).await;
    let mut olga = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    olga.next_of("live", None).await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    ivan.next_of("live", None).await;
    // Whether or not a flush happened in between, Petr's snapshot and the presence frames
    // after it show both, and himself.
    for wait in [0u64, 200] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let mut petr = WsClient::connect(&t.app.base, &t.petr.1, None).await;
        let mut view: std::collections::HashMap<String, Value> = petr
            .snapshot()
            .await
            .into_iter()
            .map(|p| {
                (
                    p["user_id"].as_str().unwrap().to_string(),
                    p["status"].clone(),
                )
            })
            .collect();
        let everyone = [&t.olga.0.id, &t.ivan.0.id, &t.petr.0.id];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while everyone
            .iter()
            .any(|id| view.get(id.as_str()) != Some(&json!("online")))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "after {wait} ms: {view:?}"
            );
            let f = petr.next_of("presence", None).await;
            for p in f["users"].as_array().unwrap() {
                view.insert(
                    p["user_id"].as_str().unwrap().to_string(),
                    p["status"].clone(),
                );
            }
        }
        drop(petr);
    }
}

#[tokio::test]
async fn a_removed_member_gets_nothing_said_after_the_removal() {
    let t = team().await;
    let mut ivan = WsClient::connect(&t.app.base, &t.ivan.1, None).await;
    ivan.next_of("live", None).await;
    let room = t.room.clone();
    // Removal and a message right after it, as close together as the API allows.
    let r = t
        .app
        .post_json(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&t.olga.1),
            json!({"remove": [t.ivan.0.id]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    t.app
        .post_json(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&t.olga.1),
            json!({"body": "после удаления"}),
        )
        .await;
    let removed = ivan.next_of("event", Some("room.removed")).await;
    assert_eq!(removed["data"]["room_id"], room.as_str());
    ivan.quiet("event", Duration::from_millis(500)).await;
    // Added back: he gets what is said from then on.
    t.app
        .post_json(
            &format!("/api/v1/rooms/{room}/members"),
            Some(&t.olga.1),
            json!({"add": [t.ivan.0.id]}),
        )
        .await;
    t.app
        .post_json(
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&t.olga.1),
            json!({"body": "снова с нами"}),
        )
        .await;
    let back = ivan.next_of("event", Some("room.message")).await;
    assert_eq!(back["data"]["body"], "снова с нами");
}

/// Opens `/ws` by hand (no WebSocket library), checking the handshake's answer.
async fn raw_upgrade(base: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "the answer ends");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap().to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455's example key and answer.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    s
}

/// The next server frame: its first byte and its payload.
async fn raw_frame(s: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => usize::from(s.read_u16().await.unwrap()),
        127 => s.read_u64().await.unwrap() as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    (h[0], payload)
}

/// Reads server frames until a close; returns its code.
async fn raw_close_code(s: &mut tokio::net::TcpStream) -> u16 {
    let read = async {
        loop {
            let (first, payload) = raw_frame(s).await;
            if first & 0x0f == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a close within 10 s")
}

#[tokio::test]
async fn frames_that_break_the_websocket_protocol_are_closed_with_its_codes() {
    use tokio::io::AsyncWriteExt;
    let t = team().await;
    // Unmasked: a client must mask its frames.
    let mut s = raw_upgrade(&t.app.base).await;
    s.write_all(&[0x81, 2, b'h', b'i']).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, 1002);
    // Reserved bits without an extension.
    let mut s = raw_upgrade(&t.app.base).await;
    s.write_all(&[0xC1, 0x80, 0, 0, 0, 0]).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, 1002);
    // Text that is not UTF-8 (mask of zeros: the bytes as they are).
    let mut s = raw_upgrade(&t.app.base).await;
    s.write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut s).await, 1007);
    // A frame announcing more than the limit is refused before its payload is sent.
    let mut s = raw_upgrade(&t.app.base).await;
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 40).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    s.write_all(&frame).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, 1009);
    // A hello split over fragments, with a ping between them, is read whole.
    let mut s = raw_upgrade(&t.app.base).await;
    let hello = json!({"type": "hello", "v": 1, "token": t.olga.1}).to_string();
    let (a, b) = hello.as_bytes().split_at(10);
    let masked = |first: u8, payload: &[u8]| {
        let mut f = vec![first, 0x80 | 126];
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    };
    s.write_all(&masked(0x01, a)).await.unwrap();
    s.write_all(&[0x89, 0x83, 0, 0, 0, 0, b'a', b'b', b'c'])
        .await
        .unwrap();
    s.write_all(&masked(0x80, b)).await.unwrap();
    let mut seen = Vec::new();
    let got_welcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (first, payload) = raw_frame(&mut s).await;
            let welcome = first == 0x81 && payload.starts_with(br#"{"type":"welcome""#);
            seen.push((first, payload));
            if welcome {
                return;
            }
        }
    })
    .await;
    assert!(got_welcome.is_ok(), "{seen:?}");
    assert_eq!(
        seen[0],
        (0x8A, b"abc".to_vec()),
        "the ping is answered first"
    );
}

#[tokio::test]
async fn a_clients_ping_is_answered_with_its_payload() {
    let t = team().await;
    let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
    c.next_of("live", None).await;
    c.stream
        .send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match futures::StreamExt::next(&mut c.stream).await {
                Some(Ok(Message::Pong(p))) => return p,
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a pong");
    assert_eq!(&pong[..], b"still there?");
}

#[tokio::test]
async fn plain_http_to_the_websocket_endpoint_is_refused_clearly() {
    let t = team().await;
    let http = reqwest::Client::new();
    let url = format!("{}/ws", t.app.base);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "websocket_required", "{body}");
    let r = http
        .get(&url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 426);
    assert_eq!(r.headers()["sec-websocket-version"], "13");
    let r = http
        .get(&url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no key");
}

#[tokio::test]
async fn connections_made_together_are_not_pinged_together() {
    // Twelve sockets opened at once, as after a node's restart. With one phase for all,
    // every period would ping them within a few milliseconds of each other; each takes
    // its first ping after a random part of the period instead.
    let t = team_with(|c| c.realtime.heartbeat_secs = 2).await;
    let opened = std::time::Instant::now();
    let mut first_pings = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..12 {
        let mut c = WsClient::connect(&t.app.base, &t.olga.1, None).await;
        waits.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match futures::StreamExt::next(&mut c.stream).await {
                        Some(Ok(Message::Ping(_))) => return std::time::Instant::now(),
                        Some(Ok(_)) => continue,
                        other => panic!("socket ended: {other:?}"),
                    }
                }
            })
            .await
            .expect("a ping within the period (2 s) and then some")
        }));
    }
    let connected = opened.elapsed();
    for w in waits {
        first_pings.push(w.await.unwrap().duration_since(opened));
    }
    first_pings.sort();
    let spread = first_pings[first_pings.len() - 1] - first_pings[0];
    assert!(
        first_pings[first_pings.len() - 1] <= connected + Duration::from_millis(2_500),
        "every first ping within the period: {first_pings:?}"
    );
    // Uniform over 2 s, twelve phases all within 400 ms of each other: about 1 in 10^7.
    assert!(
        spread > Duration::from_millis(400),
        "first pings spread over the period, not together: {first_pings:?} (connected in {connected:?})"
    );
}
