//! Staff chat over REST: rooms, members, history paging, uploads and attachments,
//! statuses, out of office, the directory.

mod common;

use common::ws::WsClient;
use common::*;
use jobers::store::Role;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn group_rooms_are_created_renamed_and_their_members_changed() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let olga = app
        .create_user(&ws.tenant, "olga@acme.test", Role::Recruiter)
        .await;
    let ivan = app
        .create_user(&ws.tenant, "ivan@acme.test", Role::Recruiter)
        .await;
    let r = app
        .post_json(
            "/api/v1/rooms",
            Some(&ws.access()),
            json!({"name": "Найм", "member_ids": [olga.id]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let room: Value = r.json().await.unwrap();
    let id = room["id"].as_str().unwrap();
    assert_eq!(room["kind"], "group");
    assert_eq!(room["member_ids"].as_array().unwrap().len(), 2);
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/rooms/{id}"),
            &ws.access(),
            Some(json!({"name": "Найм ИТ"})),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Найм ИТ");
    let r = app
        .post_json(
            &format!("/api/v1/rooms/{id}/members"),
            Some(&ws.access()),
            json!({"add": [ivan.id], "remove": [olga.id]}),
        )
        .await;
    let room: Value = r.json().await.unwrap();
    let members: Vec<&str> = room["member_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(members.contains(&ivan.id.as_str()) && !members.contains(&olga.id.as_str()));
    // Olga no longer sees the room.
    let olga_t = app.login("acme", &olga.email, PASSWORD).await;
    assert_error(
        app.get(
            &format!("/api/v1/rooms/{id}"),
            olga_t["access_token"].as_str().unwrap(),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    // Ivan leaves.
    let ivan_t = app.login("acme", &ivan.email, PASSWORD).await;
    let ivan_access = ivan_t["access_token"].as_str().unwrap();
    let r = app
        .post_json(
            &format!("/api/v1/rooms/{id}/leave"),
            Some(ivan_access),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let rooms: Value = app
        .get("/api/v1/rooms", ivan_access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rooms, json!([]));
    // Bad input.
    let r = app
        .post_json("/api/v1/rooms", Some(&ws.access()), json!({"name": ""}))
        .await;
    assert_error(r, 422, "invalid_field").await;
    let r = app
        .post_json(
            "/api/v1/rooms",
            Some(&ws.access()),
            json!({"name": "x", "member_ids": ["nobody"]}),
        )
        .await;
    assert_error(r, 422, "unknown_user").await;
}

#[tokio::test]
async fn a_direct_room_is_one_per_pair() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let olga = app
        .create_user(&ws.tenant, "olga@acme.test", Role::Recruiter)
        .await;
    let r = app
        .post_json(
            "/api/v1/rooms/direct",
            Some(&ws.access()),
            json!({"user_id": olga.id}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let first: Value = r.json().await.unwrap();
    let olga_t = app.login("acme", &olga.email, PASSWORD).await;
    let r = app
        .post_json(
            "/api/v1/rooms/direct",
            Some(olga_t["access_token"].as_str().unwrap()),
            json!({"user_id": ws.admin.id}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], first["id"]);
    let r = app
        .post_json(
            "/api/v1/rooms/direct",
            Some(&ws.access()),
            json!({"user_id": ws.admin.id}),
        )
        .await;
    assert_error(r, 422, "unknown_user").await;
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/rooms/{}", first["id"].as_str().unwrap()),
            &ws.access(),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn history_pages_backwards_by_cursor() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let room: Value = app
        .post_json("/api/v1/rooms", Some(&ws.access()), json!({"name": "r"}))
        .await
        .json()
        .await
        .unwrap();
    let id = room["id"].as_str().unwrap();
    for i in 0..7 {
        app.post_json(
            &format!("/api/v1/rooms/{id}/messages"),
            Some(&ws.access()),
            json!({"body": format!("m{i}")}),
        )
        .await;
    }
    let mut bodies = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(b) => format!("/api/v1/rooms/{id}/messages?limit=3&before={b}"),
            None => format!("/api/v1/rooms/{id}/messages?limit=3"),
        };
        let page: Value = app.get(&path, &ws.access()).await.json().await.unwrap();
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        before = Some(page.last().unwrap()["id"].as_str().unwrap().to_string());
        bodies.extend(page.iter().map(|m| m["body"].as_str().unwrap().to_string()));
    }
    assert_eq!(bodies, ["m6", "m5", "m4", "m3", "m2", "m1", "m0"]);
}

#[tokio::test]
async fn files_are_uploaded_attached_and_downloaded_safely() {
    let app = spawn_app_with(|c| c.http.max_upload_bytes = 64 * 1024).await;
    let ws = app.workspace("acme").await;
    let up = |name: &str, ctype: &str, body: Vec<u8>| {
        app.client
            .post(app.url(&format!("/api/v1/uploads?name={name}")))
            .bearer_auth(ws.access())
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let r = up("resume.pdf", "application/pdf", b"%PDF-1.4 fake".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let pdf: Value = r.json().await.unwrap();
    assert_eq!(pdf["size"], 13);
    assert_eq!(pdf["content_type"], "application/pdf");
    let r = up(
        "evil.html",
        "text/html",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await
    .unwrap();
    let html: Value = r.json().await.unwrap();
    // Too big, empty: refused, nothing stored.
    let r = up("big.bin", "application/octet-stream", vec![0u8; 100 * 1024])
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large").await;
    let r = up("empty.txt", "text/plain", Vec::new()).await.unwrap();
    assert_error(r, 422, "empty_file").await;
    // Attach to a message.
    let room: Value = app
        .post_json("/api/v1/rooms", Some(&ws.access()), json!({"name": "r"}))
        .await
        .json()
        .await
        .unwrap();
    let id = room["id"].as_str().unwrap();
    let sent: Value = app
        .post_json(
            &format!("/api/v1/rooms/{id}/messages"),
            Some(&ws.access()),
            json!({"body": "", "attachments": [pdf["id"]]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sent["message"]["attachments"][0]["file_name"], "resume.pdf");
    let r = app
        .post_json(
            &format!("/api/v1/rooms/{id}/messages"),
            Some(&ws.access()),
            json!({"body": "x", "attachments": ["nope"]}),
        )
        .await;
    assert_error(r, 422, "unknown_upload").await;
    // Download: PDFs inline, HTML never rendered as a page.
    let r = app
        .get(
            &format!("/api/v1/uploads/{}", pdf["id"].as_str().unwrap()),
            &ws.access(),
        )
        .await;
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"%PDF-1.4 fake");
    let r = app
        .get(
            &format!("/api/v1/uploads/{}", html["id"].as_str().unwrap()),
            &ws.access(),
        )
        .await;
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_error(
        app.get("/api/v1/uploads/not-a-uuid", &ws.access()).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn statuses_out_of_office_and_the_directory() {
    let app = spawn_app_with(|c| c.realtime.presence_flush_ms = 20).await;
    let ws = app.workspace("acme").await;
    let dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&ws.access()),
            json!({"name": "Sales"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let olga = app
        .create_user(&ws.tenant, "olga@acme.test", Role::Recruiter)
        .await;
    app.request(
        Method::PATCH,
        &format!("/api/v1/users/{}", olga.id),
        &ws.access(),
        Some(json!({"department_id": dep["id"]})),
    )
    .await;
    let olga_t = app.login("acme", &olga.email, PASSWORD).await;
    let olga_access = olga_t["access_token"].as_str().unwrap().to_string();
    let mut c = WsClient::connect(&app.base, &olga_access, None).await;
    c.next_of("live", None).await;
    let r = app
        .request(
            Method::PUT,
            "/api/v1/me/status",
            &olga_access,
            Some(json!({"status": "sleeping"})),
        )
        .await;
    assert_error(r, 422, "invalid_status").await;
    let r = app
        .request(
            Method::PUT,
            "/api/v1/me/status",
            &olga_access,
            Some(json!({"status": "busy", "text": "Интервью"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let find = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["user"]["id"] == olga.id.as_str())
            .cloned()
            .unwrap()
    };
    let mut entry = Value::Null;
    for _ in 0..100 {
        let dir: Value = app
            .get("/api/v1/directory?q=olga", &ws.access())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(dir.as_array().unwrap().len(), 1, "search works: {dir}");
        entry = find(&dir);
        if entry["presence"]["status"] == "busy" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(entry["presence"]["status"], "busy");
    assert_eq!(entry["presence"]["text"], "Интервью");
    assert_eq!(entry["department_name"], "Sales");
    // Out of office now: back to automatic status, the period makes her away.
    app.request(
        Method::PUT,
        "/api/v1/me/status",
        &olga_access,
        Some(json!({"status": null})),
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let r = app
        .request(
            Method::PUT,
            "/api/v1/me/out-of-office",
            &olga_access,
            Some(json!({"from": now - 1000, "until": now + 3_600_000, "text": "Отпуск"})),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .request(
            Method::PUT,
            "/api/v1/me/out-of-office",
            &olga_access,
            Some(json!({"from": now, "until": now - 1})),
        )
        .await;
    assert_error(r, 422, "invalid_period").await;
    for _ in 0..100 {
        let dir: Value = app
            .get("/api/v1/directory", &ws.access())
            .await
            .json()
            .await
            .unwrap();
        entry = find(&dir);
        if entry["presence"]["out_of_office"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(entry["presence"]["status"], "away");
    assert_eq!(entry["presence"]["text"], "Отпуск");
    let r = app
        .request(
            Method::DELETE,
            "/api/v1/me/out-of-office",
            &olga_access,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn concurrent_sends_are_batched_and_a_repeated_id_is_stored_once() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let room: Value = app
        .post_json("/api/v1/rooms", Some(&ws.access()), json!({"name": "r"}))
        .await
        .json()
        .await
        .unwrap();
    let id = room["id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/rooms/{id}/messages"));
        let token = ws.access();
        // Every fourth send repeats the same client message id.
        let cmid = if i % 4 == 0 {
            "same".to_string()
        } else {
            format!("c{i}")
        };
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": format!("m{i}"), "client_message_id": cmid}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut same_ids = std::collections::HashSet::new();
    let mut positions = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(status == 200 || status == 201, "{body}");
        if body["message"]["client_message_id"] == "same" {
            same_ids.insert(body["message"]["id"].as_str().unwrap().to_string());
        } else {
            assert!(
                positions.insert(body["message"]["position"].as_i64().unwrap()),
                "positions are unique"
            );
        }
    }
    assert_eq!(same_ids.len(), 1, "one message for the repeated id");
    let messages: Value = app
        .get(
            &format!("/api/v1/rooms/{id}/messages?limit=200"),
            &ws.access(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        messages.as_array().unwrap().len(),
        31,
        "30 distinct ids + the repeated one once"
    );
    // Positions stay gap-free: the log has every position from 1 to the last.
    let (_c, frames) = common::ws::WsClient::resume(&app.base, &ws.access(), 0).await;
    let got: Vec<i64> = frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| f["position"].as_i64().unwrap())
        .collect();
    let last = *got.last().unwrap();
    assert_eq!(got, (1..=last).collect::<Vec<_>>());
}

#[tokio::test]
async fn text_with_nul_and_ids_that_are_not_ids_are_refused_before_storing() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let room: Value = app
        .post_json("/api/v1/rooms", Some(&ws.access()), json!({"name": "r"}))
        .await
        .json()
        .await
        .unwrap();
    let id = room["id"].as_str().unwrap();
    let r = app
        .post_json(
            &format!("/api/v1/rooms/{id}/messages"),
            Some(&ws.access()),
            json!({"body": "a\u{0}b"}),
        )
        .await;
    assert_error(r, 422, "invalid_text").await;
    let r = app
        .post_json(
            "/api/v1/rooms/%00/messages",
            Some(&ws.access()),
            json!({"body": "x"}),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    // A send next to them is stored as usual.
    let r = app
        .post_json(
            &format!("/api/v1/rooms/{id}/messages"),
            Some(&ws.access()),
            json!({"body": "fine", "mentions": ["not-an-id"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let messages: Value = app
        .get(&format!("/api/v1/rooms/{id}/messages"), &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages.as_array().unwrap().len(), 1);
}
