//! Applicant threads end to end: ingest through the signed webhook, one thread per
//! applicant, merges and undo, routing (round robin, least busy, capacity, availability,
//! waiting, re-routing after absence and after no answer), the outbox with retries and
//! permanent failures, delivery reports, templates and signatures, live events.

mod common;

use std::time::Duration;

use common::ws::WsClient;
use common::*;
use jobers::store::Role;
use jobers_channels::webhook::{Behaviour, Simulator};
use reqwest::Method;
use serde_json::{json, Value};

async fn simulator(secret: Option<String>) -> Simulator {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::start(l, secret).await
}

fn sms(id: &str, phone: &str, text: &str) -> Value {
    json!({"id": id, "from": {"phone": phone}, "text": text})
}

async fn thread(app: &TestApp, token: &str, id: &str) -> Value {
    json_of(app.get(&format!("/api/v1/threads/{id}"), token).await).await
}

async fn messages(app: &TestApp, token: &str, thread: &str) -> Vec<Value> {
    let v = json_of(
        app.get(&format!("/api/v1/threads/{thread}/messages"), token)
            .await,
    )
    .await;
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn an_inbound_message_lands_in_one_thread_live_and_twice_is_stored_once() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/unused", json!({}))
        .await;
    let mut live = WsClient::connect(&app.base, &ws.access(), None).await;
    live.next_of("live", None).await;
    let first = app
        .inbound_ok(
            &ch,
            sms("ext-1", "8 (916) 123-45-67", "Здравствуйте, я по вакансии"),
        )
        .await;
    assert_eq!(first["duplicate"], false);
    let event = live.next_of("event", Some("thread.message")).await;
    assert_eq!(event["data"]["text"], "Здравствуйте, я по вакансии");
    assert_eq!(event["data"]["direction"], "in");
    let updated = live.next_of("event", Some("thread.updated")).await;
    assert_eq!(updated["data"]["unread"], 1);
    assert_eq!(updated["data"]["last_channel_kind"], "sms");
    // The provider repeats itself: stored once, the same ids answered.
    let again = app
        .inbound_ok(
            &ch,
            sms("ext-1", "+79161234567", "Здравствуйте, я по вакансии"),
        )
        .await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message_id"], first["message_id"]);
    // A second message from the same phone (another spelling) joins the same thread.
    let second = app
        .inbound_ok(
            &ch,
            sms("ext-2", "+7 916 123 45 67", "Когда собеседование?"),
        )
        .await;
    assert_eq!(second["thread_id"], first["thread_id"]);
    let t = first["thread_id"].as_str().unwrap();
    assert_eq!(messages(&app, &ws.access(), t).await.len(), 2);
    let th = thread(&app, &ws.access(), t).await;
    assert_eq!(th["unread"], 2);
    assert_eq!(th["state"], "open");
    let all = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    // Read: the counter goes to zero.
    let read = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/read"),
            Some(&ws.access()),
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(read["unread"], 0);
    // Searchable across conversations.
    let found = json_of(
        app.get("/api/v1/thread-messages?q=собеседование", &ws.access())
            .await,
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn webhooks_with_a_bad_signature_or_bad_body_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let url = app.url(&format!("/api/v1/hooks/{}/inbound", ch.id));
    let body = serde_json::to_vec(&sms("x1", "+79161234567", "hi")).unwrap();
    // No signature.
    let r = app
        .client
        .post(&url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "bad_signature").await;
    // Signed with the wrong secret.
    let r = jobers_channels::webhook::post_signed(&app.client, &url, "not-the-secret", &body)
        .await
        .unwrap();
    assert_error(r, 401, "bad_signature").await;
    // A valid signature over another body.
    let ts = chrono::Utc::now().timestamp();
    let sig = jobers_channels::signing::sign(&ch.secret, ts, b"{}");
    let r = app
        .client
        .post(&url)
        .header("x-jobers-timestamp", ts.to_string())
        .header("x-jobers-signature", sig)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "bad_signature").await;
    // A replay from an hour ago.
    let old = ts - 3600;
    let r = app
        .client
        .post(&url)
        .header("x-jobers-timestamp", old.to_string())
        .header(
            "x-jobers-signature",
            jobers_channels::signing::sign(&ch.secret, old, &body),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "bad_signature").await;
    // An unknown account looks the same as a bad signature.
    let r = jobers_channels::webhook::post_signed(
        &app.client,
        &app.url("/api/v1/hooks/0190b9d4-0000-7000-8000-000000000000/inbound"),
        &ch.secret,
        &body,
    )
    .await
    .unwrap();
    assert_error(r, 401, "bad_signature").await;
    // Signed garbage: 400; signed but wrong shape: 422; no sender: 422.
    let signed =
        |b: &'static [u8]| jobers_channels::webhook::post_signed(&app.client, &url, &ch.secret, b);
    assert_error(signed(b"{not json").await.unwrap(), 400, "malformed_json").await;
    assert_error(signed(b"{\"id\": 5}").await.unwrap(), 422, "invalid_body").await;
    assert_error(
        app.inbound(&ch, json!({"id": "x2", "from": {}, "text": "hi"}))
            .await,
        422,
        "no_sender",
    )
    .await;
    assert_error(
        app.inbound(
            &ch,
            json!({"id": "x3", "from": {"phone": "12"}, "text": "hi"}),
        )
        .await,
        422,
        "invalid_identity",
    )
    .await;
    let all = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(all, json!([]), "nothing stored");
    // After rotation the old secret stops working.
    let rotated = json_of(
        app.post_json(
            &format!("/api/v1/channel-accounts/{}/rotate-secret", ch.id),
            Some(&ws.access()),
            json!({}),
        )
        .await,
    )
    .await;
    assert_error(
        app.inbound(&ch, sms("x4", "+79161234567", "hi")).await,
        401,
        "bad_signature",
    )
    .await;
    let fresh = Channel {
        id: ch.id.clone(),
        secret: rotated["secret"].as_str().unwrap().to_string(),
    };
    app.inbound_ok(&fresh, sms("x4", "+79161234567", "hi"))
        .await;
}

#[tokio::test]
async fn inbound_html_is_sanitised_and_attachments_are_kept_within_limits() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let ch = app
        .channel(&ws, "email", "http://127.0.0.1:9/", json!({}))
        .await;
    use base64::Engine;
    let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 resume");
    let exe = base64::engine::general_purpose::STANDARD.encode(b"MZ...");
    let got = app
        .inbound_ok(
            &ch,
            json!({"id": "<m1@mail.example>", "from": {"email": "Anna@Mail.RU", "name": "Анна"},
                "subject": "Резюме", "text": "",
                "html": "<p onmouseover=\"steal()\">Моё <b>резюме</b></p><script>alert(1)</script><img src=x onerror=alert(1)>",
                "attachments": [
                    {"file_name": "cv.pdf", "content_type": "application/pdf", "data_base64": pdf},
                    {"file_name": "run.exe", "content_type": "application/x-msdownload", "data_base64": exe},
                    {"file_name": "bad.pdf", "content_type": "application/pdf", "data_base64": "!!!"}
                ]}),
        )
        .await;
    let t = got["thread_id"].as_str().unwrap();
    let m = &messages(&app, &ws.access(), t).await[0];
    let html = m["html"].as_str().unwrap();
    for bad in ["script", "onmouseover", "onerror"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("<b>резюме</b>"));
    assert!(m["text"].as_str().unwrap().starts_with("Моё резюме"), "{m}");
    assert!(
        m["text"].as_str().unwrap().contains("run.exe dropped"),
        "{m}"
    );
    assert!(
        m["text"].as_str().unwrap().contains("bad.pdf dropped"),
        "{m}"
    );
    let atts = m["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1);
    let file = app
        .get(
            &format!("/api/v1/uploads/{}", atts[0]["upload_id"].as_str().unwrap()),
            &ws.access(),
        )
        .await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"%PDF-1.4 resume");
    // The provider repeats the letter: answered as a duplicate, nothing stored again.
    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            files(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    let uploads_before = files(&app.config.data_dir.join("blobs"));
    assert!(
        uploads_before >= 1,
        "the first letter's attachment is stored"
    );
    let again = app
        .inbound_ok(
            &ch,
            json!({"id": "<m1@mail.example>", "from": {"email": "anna@mail.ru"}, "text": "x",
                "attachments": [{"file_name": "cv.pdf", "content_type": "application/pdf", "data_base64": pdf}]}),
        )
        .await;
    assert_eq!(again["duplicate"], true);
    let uploads_after = files(&app.config.data_dir.join("blobs"));
    assert_eq!(
        uploads_before, uploads_after,
        "no blob stored for the repeat"
    );
    let th = thread(&app, &ws.access(), t).await;
    assert_eq!(th["contact_name"], "Анна");
    assert_eq!(th["subject"], "Резюме");
}

#[tokio::test]
async fn applicants_writing_on_two_channels_merge_into_one_thread_and_the_merge_undoes() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sms_ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let mail = app
        .channel(&ws, "email", "http://127.0.0.1:9/", json!({}))
        .await;
    let board = app
        .channel(&ws, "board", "http://127.0.0.1:9/", json!({}))
        .await;
    let by_sms = app
        .inbound_ok(&sms_ch, sms("s1", "+375 29 123-45-67", "Это Анна, SMS"))
        .await;
    let by_mail = app
        .inbound_ok(
            &mail,
            json!({"id": "e1", "from": {"email": "anna@mail.ru"}, "text": "Это Анна, письмо"}),
        )
        .await;
    assert_ne!(by_sms["thread_id"], by_mail["thread_id"]);
    // A board response carries both the phone and the email: one person.
    let by_board = app
        .inbound_ok(
            &board,
            json!({"id": "b1", "from": {"hh": "777", "phone": "80291234567", "email": "ANNA@mail.ru", "name": "Анна"},
                   "text": "Отклик на вакансию", "vacancy": "Курьер"}),
        )
        .await;
    let survivor = by_board["thread_id"].as_str().unwrap().to_string();
    let merged_away = [&by_sms, &by_mail]
        .iter()
        .map(|v| v["thread_id"].as_str().unwrap().to_string())
        .find(|t| *t != survivor)
        .unwrap();
    let timeline = messages(&app, &ws.access(), &survivor).await;
    assert_eq!(
        timeline.len(),
        3,
        "every channel in one timeline: {timeline:?}"
    );
    let gone = thread(&app, &ws.access(), &merged_away).await;
    assert_eq!(gone["merged_into"], survivor.as_str());
    let inbox = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(
        inbox.as_array().unwrap().len(),
        1,
        "no duplicate in the inbox"
    );
    // The merge is recorded; undoing it gives the other applicant its messages back.
    let th = thread(&app, &ws.access(), &survivor).await;
    let contact = th["contact_id"].as_str().unwrap();
    let all_contacts = json_of(app.get("/api/v1/contacts", &ws.access()).await).await;
    assert_eq!(all_contacts.as_array().unwrap().len(), 1);
    let c = app
        .db
        .for_tenant(&ws.tenant.id)
        .contact(contact)
        .await
        .unwrap();
    assert_eq!(c.identities.len(), 3);
    let merges = json_of(
        app.get(&format!("/api/v1/contacts/{contact}/merges"), &ws.access())
            .await,
    )
    .await;
    assert_eq!(merges.as_array().unwrap().len(), 1, "{merges}");
    assert_eq!(merges[0]["reason"], "identity_match");
    let audit_free_merge_id = merges[0]["id"].as_str().unwrap().to_string();
    let undone = app
        .post_json(
            &format!("/api/v1/contact-merges/{audit_free_merge_id}/undo"),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(undone.status(), 200);
    let back = messages(&app, &ws.access(), &merged_away).await;
    assert_eq!(back.len(), 1, "its own message came back: {back:?}");
    assert_eq!(messages(&app, &ws.access(), &survivor).await.len(), 2);
    let inbox = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(inbox.as_array().unwrap().len(), 2);
    // A manual merge and its undo move the timeline the same way.
    let other_contact = thread(&app, &ws.access(), &merged_away).await["contact_id"].clone();
    let m = json_of(
        app.post_json(
            &format!("/api/v1/contacts/{contact}/merge"),
            Some(&ws.access()),
            json!({"contact_id": other_contact}),
        )
        .await,
    )
    .await;
    assert_eq!(messages(&app, &ws.access(), &survivor).await.len(), 3);
    app.post_json(
        &format!("/api/v1/contact-merges/{}/undo", m["id"].as_str().unwrap()),
        Some(&ws.access()),
        json!({}),
    )
    .await;
    assert_eq!(messages(&app, &ws.access(), &survivor).await.len(), 2);
    assert_eq!(messages(&app, &ws.access(), &merged_away).await.len(), 1);
}

/// Three recruiters online in a queue; returns their (id, token, socket).
async fn recruiters(
    app: &TestApp,
    ws: &Workspace,
    names: &[&str],
) -> Vec<(String, String, WsClient)> {
    let mut out = Vec::new();
    for n in names {
        let u = app
            .create_user(&ws.tenant, &format!("{n}@acme.test"), Role::Recruiter)
            .await;
        let t = app.login("acme", &u.email, PASSWORD).await;
        let token = t["access_token"].as_str().unwrap().to_string();
        let mut c = WsClient::connect(&app.base, &token, None).await;
        c.next_of("live", None).await;
        out.push((u.id, token, c));
    }
    out
}

async fn queue(app: &TestApp, ws: &Workspace, body: Value) -> String {
    let r = app
        .post_json("/api/v1/queues", Some(&ws.access()), body)
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn assignee_of(app: &TestApp, ws: &Workspace, thread: &str) -> Option<String> {
    thread_value(app, ws, thread).await["assignee_id"]
        .as_str()
        .map(str::to_string)
}

async fn thread_value(app: &TestApp, ws: &Workspace, id: &str) -> Value {
    thread(app, &ws.access(), id).await
}

async fn wait_assigned(app: &TestApp, ws: &Workspace, thread: &str) -> String {
    eventually("thread assigned", || async {
        assignee_of(app, ws, thread).await
    })
    .await
}

async fn wait_presence_online(app: &TestApp, ws: &Workspace, users: &[&str]) {
    eventually("presence online", || async {
        let snap = app.hub.presence_snapshot(&ws.tenant.id, None);
        users
            .iter()
            .all(|u| {
                snap.iter().any(|p| {
                    p.user_id == *u && p.status == jobers::realtime::presence::Status::Online
                })
            })
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn round_robin_honours_capacity_and_availability() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = recruiters(&app, &ws, &["olga", "ivan", "petr"]).await;
    let (olga, ivan, petr) = (r[0].0.clone(), r[1].0.clone(), r[2].0.clone());
    // Petr is busy: he gets nothing new.
    let put = app
        .request(
            Method::PUT,
            "/api/v1/me/status",
            &r[2].1,
            Some(json!({"status": "busy"})),
        )
        .await;
    assert_eq!(put.status(), 204);
    wait_presence_online(&app, &ws, &[&olga, &ivan]).await;
    // Routing decides from presence as shown: wait until Petr shows busy.
    eventually("petr busy", || async {
        let snap = app.hub.presence_snapshot(&ws.tenant.id, None);
        snap.iter()
            .any(|p| p.user_id == petr && p.status == jobers::realtime::presence::Status::Busy)
            .then_some(())
    })
    .await;
    let q = queue(
        &app,
        &ws,
        json!({"name": "Курьеры", "strategy": "round_robin", "members": [
            {"user_id": olga, "capacity": 2}, {"user_id": ivan, "capacity": 1}, {"user_id": petr, "capacity": 5}]}),
    )
    .await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({"queue_id": q}))
        .await;
    let mut threads = Vec::new();
    for i in 0..4 {
        let got = app
            .inbound_ok(
                &ch,
                sms(&format!("m{i}"), &format!("+7916000000{i}"), "Здравствуйте"),
            )
            .await;
        threads.push(got["thread_id"].as_str().unwrap().to_string());
        if i < 3 {
            wait_assigned(&app, &ws, &threads[i]).await;
        }
    }
    // olga, ivan, olga; then everyone available is full: the fourth waits.
    assert_eq!(
        assignee_of(&app, &ws, &threads[0]).await.as_deref(),
        Some(olga.as_str())
    );
    assert_eq!(
        assignee_of(&app, &ws, &threads[1]).await.as_deref(),
        Some(ivan.as_str())
    );
    assert_eq!(
        assignee_of(&app, &ws, &threads[2]).await.as_deref(),
        Some(olga.as_str())
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let waiting = thread_value(&app, &ws, &threads[3]).await;
    assert!(waiting["assignee_id"].is_null(), "{waiting}");
    assert!(!waiting["waiting_since"].is_null());
    // Ivan closes his thread: capacity frees, the waiting thread goes to him.
    let closed = app
        .post_json(
            &format!("/api/v1/threads/{}/state", threads[1]),
            Some(&r[1].1),
            json!({"state": "closed"}),
        )
        .await;
    assert_eq!(closed.status(), 200);
    assert_eq!(wait_assigned(&app, &ws, &threads[3]).await, ivan);
    let mine = json_of(app.get("/api/v1/threads?scope=mine", &r[1].1).await).await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn least_busy_picks_the_recruiter_with_fewest_open_threads() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = recruiters(&app, &ws, &["olga", "ivan"]).await;
    let (olga, ivan) = (r[0].0.clone(), r[1].0.clone());
    wait_presence_online(&app, &ws, &[&olga, &ivan]).await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    // Olga already holds two threads (assigned by hand before the queue existed).
    let mut held = Vec::new();
    for i in 0..2 {
        let got = app
            .inbound_ok(&ch, sms(&format!("h{i}"), &format!("+7926000000{i}"), "x"))
            .await;
        let t = got["thread_id"].as_str().unwrap().to_string();
        let a = app
            .post_json(
                &format!("/api/v1/threads/{t}/assign"),
                Some(&ws.access()),
                json!({"user_id": olga}),
            )
            .await;
        assert_eq!(a.status(), 200);
        held.push(t);
    }
    let q = queue(
        &app,
        &ws,
        json!({"name": "Склад", "strategy": "least_busy", "members": [
            {"user_id": olga, "capacity": 10}, {"user_id": ivan, "capacity": 10}]}),
    )
    .await;
    let ch2 = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({"queue_id": q}))
        .await;
    let mut got = Vec::new();
    for i in 0..3 {
        let v = app
            .inbound_ok(&ch2, sms(&format!("n{i}"), &format!("+7936000000{i}"), "x"))
            .await;
        let t = v["thread_id"].as_str().unwrap().to_string();
        got.push(wait_assigned(&app, &ws, &t).await);
    }
    // Ivan (0) gets two before they are level (2 and 2), then the one idle longer.
    assert_eq!(got[0], ivan);
    assert_eq!(got[1], ivan);
    assert_eq!(got[2], olga, "level at 2: olga's last assignment is older");
}

#[tokio::test]
async fn a_thread_waits_until_a_recruiter_comes_online() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let olga = app
        .create_user(&ws.tenant, "olga@acme.test", Role::Recruiter)
        .await;
    let q = queue(
        &app,
        &ws,
        json!({"name": "Q", "strategy": "round_robin", "members": [{"user_id": olga.id, "capacity": 3}]}),
    )
    .await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({"queue_id": q}))
        .await;
    let got = app
        .inbound_ok(&ch, sms("w1", "+79160000001", "Есть кто?"))
        .await;
    let t = got["thread_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(assignee_of(&app, &ws, &t).await, None, "nobody is online");
    let unassigned = json_of(
        app.get("/api/v1/threads?scope=unassigned", &ws.access())
            .await,
    )
    .await;
    assert_eq!(unassigned.as_array().unwrap().len(), 1);
    // Olga opens the workspace: the thread is hers.
    let tokens = app.login("acme", &olga.email, PASSWORD).await;
    let mut c = WsClient::connect(&app.base, tokens["access_token"].as_str().unwrap(), None).await;
    c.next_of("live", None).await;
    let assigned = loop {
        let e = c.next_of("event", Some("thread.updated")).await;
        if e["data"]["assignee_id"] == olga.id.as_str() {
            break e;
        }
    };
    assert_eq!(assigned["data"]["id"], t.as_str());
    assert!(assigned["data"]["waiting_since"].is_null());
}

#[tokio::test]
async fn threads_go_back_to_the_queue_after_absence_and_after_no_answer() {
    let app = spawn_app_with(|c| c.realtime.offline_grace_secs = 0).await;
    let ws = app.workspace("acme").await;
    let mut r = recruiters(&app, &ws, &["olga", "ivan"]).await;
    let (olga, ivan) = (r[0].0.clone(), r[1].0.clone());
    wait_presence_online(&app, &ws, &[&olga, &ivan]).await;
    let q = queue(
        &app,
        &ws,
        json!({"name": "Q", "strategy": "round_robin", "away_limit_s": 600, "response_limit_s": 900,
               "members": [{"user_id": olga, "capacity": 5}, {"user_id": ivan, "capacity": 5}]}),
    )
    .await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({"queue_id": q}))
        .await;
    let t1 = app
        .inbound_ok(&ch, sms("a1", "+79160000011", "Первый"))
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait_assigned(&app, &ws, &t1).await, olga);
    // Olga leaves (her socket closes): offline. Ten minutes later the thread is Ivan's.
    let (_, _, olga_socket) = r.remove(0);
    drop(olga_socket);
    eventually("olga offline", || async {
        let snap = app.hub.presence_snapshot(&ws.tenant.id, None);
        snap.iter()
            .any(|p| p.user_id == olga && p.status == jobers::realtime::presence::Status::Offline)
            .then_some(())
    })
    .await;
    // Let the router see her offline, then move time past the limit.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        assignee_of(&app, &ws, &t1).await.as_deref(),
        Some(olga.as_str()),
        "not before the limit"
    );
    app.switch.clock().advance(601_000);
    let now_ivan = eventually("rerouted", || async {
        let v = thread_value(&app, &ws, &t1).await;
        (v["assignee_id"] == ivan.as_str()).then_some(v)
    })
    .await;
    assert_eq!(now_ivan["reroute_reason"], "assignee_offline");
    assert_eq!(now_ivan["rerouted_from"], olga.as_str());
    // Ivan leaves the applicant unanswered for longer than the response limit: it goes
    // back to the queue (and, nobody else being online, waits there).
    app.switch.clock().advance(901_000);
    let back = eventually("no answer", || async {
        let v = thread_value(&app, &ws, &t1).await;
        (v["reroute_reason"] == "no_answer").then_some(v)
    })
    .await;
    assert_eq!(back["rerouted_from"], ivan.as_str());
    // Answered threads stay put: a thread Ivan answered is not taken back.
    let sim = simulator(None).await;
    let ch2 = app
        .channel(&ws, "sms", &sim.url(), json!({"queue_id": q}))
        .await;
    let t2 = app
        .inbound_ok(&ch2, sms("a2", "+79160000022", "Второй"))
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let holder = wait_assigned(&app, &ws, &t2).await;
    assert_eq!(holder, ivan);
    let reply = app
        .post_json(
            &format!("/api/v1/threads/{t2}/messages"),
            Some(&r[0].1),
            json!({"text": "Добрый день!"}),
        )
        .await;
    assert_eq!(reply.status(), 201);
    app.switch.clock().advance(901_000);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        assignee_of(&app, &ws, &t2).await.as_deref(),
        Some(ivan.as_str())
    );
}

#[tokio::test]
async fn a_reply_goes_through_the_outbox_and_reports_delivery_live() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = simulator(None).await;
    let ch = app.channel(&ws, "sms", &sim.url(), json!({})).await;
    // Templates and signatures: the user's signature is added automatically.
    let me = app
        .request(
            Method::PATCH,
            "/api/v1/me",
            &ws.access(),
            Some(json!({"signature": "— Ольга, HR"})),
        )
        .await;
    assert_eq!(me.status(), 200);
    let tpl = json_of(
        app.post_json(
            "/api/v1/templates",
            Some(&ws.access()),
            json!({"name": "Приглашение", "body": "{{applicant.name}}, приглашаем на собеседование ({{vacancy}}). {{company.name}}", "shared": true}),
        )
        .await,
    )
    .await;
    let got = app
        .inbound_ok(
            &ch,
            json!({"id": "r1", "from": {"phone": "+79161112233", "name": "Пётр"}, "text": "Добрый день", "vacancy": "Курьер"}),
        )
        .await;
    let t = got["thread_id"].as_str().unwrap();
    let mut live = WsClient::connect(&app.base, &ws.access(), None).await;
    live.next_of("live", None).await;
    let sent = app
        .post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"template_id": tpl["id"], "client_message_id": "c-1"}),
        )
        .await;
    assert_eq!(sent.status(), 201);
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["delivery_state"], "queued");
    assert_eq!(
        sent["text"],
        "Пётр, приглашаем на собеседование (Курьер). Company acme\n\n— Ольга, HR"
    );
    // A repeat of the same client message id is the same message.
    let again: Value = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"template_id": tpl["id"], "client_message_id": "c-1"}),
        )
        .await,
    )
    .await;
    assert_eq!(again["id"], sent["id"]);
    let update = loop {
        let e = live.next_of("event", Some("thread.message_updated")).await;
        if e["data"]["id"] == sent["id"] {
            break e;
        }
    };
    assert_eq!(update["data"]["delivery_state"], "sent");
    let received = sim.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].payload.to, "+79161112233");
    assert_eq!(received[0].idempotency_key, sent["id"].as_str().unwrap());
    // The provider reports delivery and reading.
    for state in ["delivered", "read"] {
        let body = serde_json::to_vec(
            &json!({"provider_message_id": received[0].provider_id, "state": state}),
        )
        .unwrap();
        let r = jobers_channels::webhook::post_signed(
            &app.client,
            &app.url(&format!("/api/v1/hooks/{}/status", ch.id)),
            &ch.secret,
            &body,
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 204);
        let e = live.next_of("event", Some("thread.message_updated")).await;
        assert_eq!(e["data"]["delivery_state"], state);
    }
    // A late "delivered" does not move it back.
    let body =
        serde_json::to_vec(&json!({"message_id": sent["id"], "state": "delivered"})).unwrap();
    jobers_channels::webhook::post_signed(
        &app.client,
        &app.url(&format!("/api/v1/hooks/{}/status", ch.id)),
        &ch.secret,
        &body,
    )
    .await
    .unwrap();
    let m = &messages(&app, &ws.access(), t).await[0];
    assert_eq!(m["delivery_state"], "read");
    let th = thread(&app, &ws.access(), t).await;
    assert_eq!(th["state"], "pending", "answered: the applicant's turn");
    assert!(!th["first_response_at"].is_null());
    // Variables typed by hand are filled in as well.
    let typed: Value = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "{{applicant.name}}, до встречи!", "signature": "none"}),
        )
        .await,
    )
    .await;
    assert_eq!(typed["text"], "Пётр, до встречи!");
    eventually("second sent", || async {
        (sim.received().len() == 2).then_some(())
    })
    .await;
    // Internal notes never leave.
    let note = app
        .post_json(
            &format!("/api/v1/threads/{t}/notes"),
            Some(&ws.access()),
            json!({"text": "Позвонить завтра"}),
        )
        .await;
    assert_eq!(note.status(), 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.received().len(), 2);
}

#[tokio::test]
async fn the_outbox_retries_with_backoff_fails_for_good_and_retry_sends_again() {
    let app = spawn_app_with(|c| {
        c.switch.outbox_backoff_ms = 50;
        c.switch.outbox_max_attempts = 5;
    })
    .await;
    let ws = app.workspace("acme").await;
    let sim = simulator(None).await;
    let ch = app.channel(&ws, "sms", &sim.url(), json!({})).await;
    let t = app
        .inbound_ok(&ch, sms("o1", "+79160000001", "Привет"))
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = |text: &'static str| {
        let app = &app;
        let ws = &ws;
        let t = t.clone();
        async move {
            json_of(
                app.post_json(
                    &format!("/api/v1/threads/{t}/messages"),
                    Some(&ws.access()),
                    json!({"text": text, "signature": "none"}),
                )
                .await,
            )
            .await
        }
    };
    let state_of = |id: String| {
        let app = &app;
        let ws = &ws;
        async move {
            app.db
                .for_tenant(&ws.tenant.id)
                .thread_message(&id)
                .await
                .unwrap()
        }
    };
    // Two 503s, then accepted: sent after three attempts; the account was degraded.
    sim.set_behaviour(Behaviour {
        fail_next: Some((503, 2)),
        hold: false,
    });
    let m = reply("Первая попытка").await;
    let id = m["id"].as_str().unwrap().to_string();
    eventually("sent after retries", || async {
        (state_of(id.clone()).await.delivery_state.as_deref() == Some("sent")).then_some(())
    })
    .await;
    assert_eq!(sim.requests(), 3);
    let (_, attempts, _) = app
        .db
        .for_tenant(&ws.tenant.id)
        .outbox_state(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts, 3);
    let acc = json_of(
        app.get(&format!("/api/v1/channel-accounts/{}", ch.id), &ws.access())
            .await,
    )
    .await;
    assert_eq!(acc["health"], "ok", "healthy again after a success: {acc}");
    assert!(acc["last_error"].as_str().unwrap().contains("503"), "{acc}");
    // A permanent refusal: failed with the provider's reason, no more attempts.
    sim.set_behaviour(Behaviour {
        fail_next: Some((400, 1)),
        hold: false,
    });
    let m = reply("Неверный номер").await;
    let id = m["id"].as_str().unwrap().to_string();
    let failed = eventually("failed", || async {
        let m = state_of(id.clone()).await;
        (m.delivery_state.as_deref() == Some("failed")).then_some(m)
    })
    .await;
    assert!(failed.failure_reason.unwrap().contains("400"));
    let before = sim.requests();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sim.requests(), before, "no retry after a permanent failure");
    // Retry really sends again.
    let r = app
        .post_json(
            &format!("/api/v1/threads/{t}/messages/{id}/retry"),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    eventually("sent on retry", || async {
        (state_of(id.clone()).await.delivery_state.as_deref() == Some("sent")).then_some(())
    })
    .await;
    assert!(sim.received().iter().any(|r| r.idempotency_key == id));
    // Retrying a message that did not fail is refused.
    let r = app
        .post_json(
            &format!("/api/v1/threads/{t}/messages/{id}/retry"),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_error(r, 409, "message_not_failed").await;
    // Retries run out: the message fails with the reason and the count.
    sim.set_behaviour(Behaviour {
        fail_next: Some((503, 100)),
        hold: false,
    });
    let m = reply("Сервис лежит").await;
    let id = m["id"].as_str().unwrap().to_string();
    let failed = eventually("gave up", || async {
        let m = state_of(id.clone()).await;
        (m.delivery_state.as_deref() == Some("failed")).then_some(m)
    })
    .await;
    assert!(failed
        .failure_reason
        .unwrap()
        .contains("gave up after 5 attempts"));
    // Refused credentials: the account needs a new login.
    sim.set_behaviour(Behaviour {
        fail_next: Some((401, 1)),
        hold: false,
    });
    reply("Ключ отозван").await;
    let acc = eventually("needs relogin", || async {
        let a = json_of(
            app.get(&format!("/api/v1/channel-accounts/{}", ch.id), &ws.access())
                .await,
        )
        .await;
        (a["health"] == "needs_relogin").then_some(a)
    })
    .await;
    assert_eq!(acc["health_class"], "auth_failure");
}

#[tokio::test]
async fn an_unreachable_provider_turns_the_account_down_with_the_next_retry() {
    let app = spawn_app_with(|c| c.switch.outbox_backoff_ms = 60_000).await;
    let ws = app.workspace("acme").await;
    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ch = app
        .channel(
            &ws,
            "sms",
            &format!("http://127.0.0.1:{port}/messages"),
            json!({}),
        )
        .await;
    let mut live = WsClient::connect(&app.base, &ws.access(), None).await;
    live.next_of("live", None).await;
    let t = app
        .inbound_ok(&ch, sms("u1", "+79160000001", "Привет"))
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post_json(
        &format!("/api/v1/threads/{t}/messages"),
        Some(&ws.access()),
        json!({"text": "Ответ"}),
    )
    .await;
    let e = live.next_of("event", Some("channel.health")).await;
    assert_eq!(e["data"]["health"], "down");
    assert_eq!(e["data"]["health_class"], "no_network");
    assert!(!e["data"]["next_retry_at"].is_null());
    assert!(!e["data"]["last_error"].is_null());
}

#[tokio::test]
async fn replies_are_checked_before_anything_is_queued() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = simulator(None).await;
    let ch = app.channel(&ws, "sms", &sim.url(), json!({})).await;
    let mail = app.channel(&ws, "email", &sim.url(), json!({})).await;
    let olga = app
        .create_user(&ws.tenant, "olga@acme.test", Role::Recruiter)
        .await;
    let personal = app
        .channel(&ws, "email", &sim.url(), json!({"owner_user_id": olga.id}))
        .await;
    let t = app
        .inbound_ok(&ch, sms("v1", "+79160000001", "Привет"))
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/threads/{t}/messages");
    let tok = ws.access();
    assert_error(
        app.post_json(&path, Some(&tok), json!({"text": "  "}))
            .await,
        422,
        "invalid_text",
    )
    .await;
    assert_error(
        app.post_json(&path, Some(&tok), json!({})).await,
        422,
        "invalid_field",
    )
    .await;
    assert_error(
        app.post_json(
            &path,
            Some(&tok),
            json!({"text": "x", "channel_account_id": mail.id}),
        )
        .await,
        422,
        "no_address",
    )
    .await;
    assert_error(
        app.post_json(
            &path,
            Some(&tok),
            json!({"text": "x", "channel_account_id": personal.id}),
        )
        .await,
        403,
        "not_your_sender",
    )
    .await;
    assert_error(
        app.post_json(
            &path,
            Some(&tok),
            json!({"template_id": "0190b9d4-0000-7000-8000-000000000000"}),
        )
        .await,
        422,
        "unknown_template",
    )
    .await;
    assert_error(
        app.post_json(&path, Some(&tok), json!({"text": "x", "bogus": 1}))
            .await,
        422,
        "invalid_body",
    )
    .await
    .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.received().is_empty());
    assert_eq!(messages(&app, &tok, &t).await.len(), 1, "nothing stored");
    // A recruiter takes an unassigned thread but cannot hand it to someone else.
    let olga_tok = app.login("acme", &olga.email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        app.post_json(
            &format!("/api/v1/threads/{t}/assign"),
            Some(&olga_tok),
            json!({"user_id": ws.admin.id}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let took = app
        .post_json(
            &format!("/api/v1/threads/{t}/assign"),
            Some(&olga_tok),
            json!({"user_id": olga.id}),
        )
        .await;
    assert_eq!(took.status(), 200);
    let ivan = app
        .create_user(&ws.tenant, "ivan@acme.test", Role::Recruiter)
        .await;
    let ivan_tok = app.login("acme", &ivan.email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        app.post_json(
            &format!("/api/v1/threads/{t}/assign"),
            Some(&ivan_tok),
            json!({"user_id": ivan.id}),
        )
        .await,
        409,
        "thread_taken",
    )
    .await;
}

#[tokio::test]
async fn another_tenants_thread_events_never_reach_a_socket() {
    let app = spawn_app().await;
    let a = app.workspace("alpha").await;
    let b = app.workspace("bravo").await;
    let ch_b = app
        .channel(&b, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let ch_a = app
        .channel(&a, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let mut sock_a = WsClient::connect(&app.base, &a.access(), None).await;
    sock_a.next_of("live", None).await;
    // The same phone writes to both companies: two applicants, two threads, no mixing.
    let in_b = app
        .inbound_ok(&ch_b, sms("same-id", "+79160000001", "B secret"))
        .await;
    let in_a = app
        .inbound_ok(&ch_a, sms("same-id", "+79160000001", "A text"))
        .await;
    assert_eq!(in_a["duplicate"], false, "external ids are per account");
    assert_ne!(in_a["thread_id"], in_b["thread_id"]);
    let e = sock_a.next_of("event", Some("thread.message")).await;
    assert_eq!(e["data"]["text"], "A text");
    let u = sock_a.next_of("event", Some("thread.updated")).await;
    assert_eq!(u["data"]["id"], in_a["thread_id"]);
    sock_a.quiet("event", Duration::from_millis(500)).await;
    let a_threads = json_of(app.get("/api/v1/threads", &a.access()).await).await;
    assert_eq!(a_threads.as_array().unwrap().len(), 1);
    assert!(!a_threads.to_string().contains("B secret"));
}

#[tokio::test]
async fn an_account_that_expects_inbound_and_gets_none_turns_degraded_until_one_arrives() {
    let app = spawn_app_with(|c| c.switch.status_poll_secs = 1).await;
    let ws = app.workspace("acme").await;
    let ch = app
        .channel(
            &ws,
            "sms",
            "http://127.0.0.1:9/",
            json!({"inbound_expected_within_s": 1}),
        )
        .await;
    let degraded = eventually("no inbound", || async {
        let a = json_of(
            app.get(&format!("/api/v1/channel-accounts/{}", ch.id), &ws.access())
                .await,
        )
        .await;
        (a["health"] == "degraded").then_some(a)
    })
    .await;
    assert_eq!(degraded["health_class"], "no_inbound");
    assert!(degraded["last_error"]
        .as_str()
        .unwrap()
        .contains("no inbound"));
    app.inbound_ok(&ch, sms("n1", "+79160000001", "Есть кто?"))
        .await;
    let a = json_of(
        app.get(&format!("/api/v1/channel-accounts/{}", ch.id), &ws.access())
            .await,
    )
    .await;
    assert_eq!(a["health"], "ok", "an inbound message clears it: {a}");
}

#[tokio::test]
async fn an_answer_carrying_the_thread_reference_joins_that_thread_from_a_new_address() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = simulator(None).await;
    let ch = app.channel(&ws, "chat", &sim.url(), json!({})).await;
    let t = app
        .inbound_ok(
            &ch,
            json!({"id": "c1", "from": {"telegram": "anna_k"}, "text": "Привет"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post_json(
        &format!("/api/v1/threads/{t}/messages"),
        Some(&ws.access()),
        json!({"text": "Оставьте email", "signature": "none"}),
    )
    .await;
    let sent = eventually("sent", || async { sim.received().first().cloned() }).await;
    let thread_ref = sent.payload.thread_ref.clone().unwrap();
    // The answer comes from an email address nobody knew, with the thread's reference.
    let got = app
        .inbound_ok(&ch, json!({"id": "c2", "from": {"email": "anna@new.example"}, "text": "anna@new.example", "refs": [thread_ref]}))
        .await;
    assert_eq!(got["thread_id"], t.as_str());
    let th = thread(&app, &ws.access(), &t).await;
    let c = app
        .db
        .for_tenant(&ws.tenant.id)
        .contact(th["contact_id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        c.identities.iter().any(|i| i.value == "anna@new.example"),
        "the new address joins the applicant"
    );
}

#[tokio::test]
async fn messages_arriving_together_are_stored_once_each_in_order_with_gap_free_events() {
    let app = spawn_app().await;
    let ws = app.workspace("together").await;
    let ch = app
        .channel(&ws, "sms", "http://127.0.0.1:9/unused", json!({}))
        .await;
    let known = 24;
    let phone = |i: usize| format!("+37529{:07}", 1_000_000 + i);
    let mut firsts = Vec::new();
    for i in 0..known {
        // Half of them without a name yet: their next message (with one) teaches it.
        let mut m = sms(&format!("k{i}-0"), &phone(i), "первое");
        if i % 2 == 0 {
            m["from"]["name"] = json!(format!("Соискатель {i}"));
        }
        firsts.push(app.inbound_ok(&ch, m).await);
    }
    // Two applicants who turn out to be one person (a message carries both identities).
    let by_phone = app
        .inbound_ok(&ch, sms("m-phone", "+375290000001", "по телефону"))
        .await;
    let by_email = app
        .inbound_ok(
            &ch,
            json!({"id": "m-email", "from": {"email": "one@person.example"}, "text": "по почте"}),
        )
        .await;
    let mut live = WsClient::connect(&app.base, &ws.access(), None).await;
    let live_at = live.next_of("live", None).await["position"]
        .as_i64()
        .unwrap();

    // All at once: three more from each known applicant (one with a name, one with a
    // reference), new applicants, repeats of stored messages, and one message twice.
    let mut sends: Vec<Value> = Vec::new();
    for i in 0..known {
        for n in 1..=3 {
            let mut m = sms(
                &format!("k{i}-{n}"),
                &phone(i),
                &format!("сообщение {n} от {i}"),
            );
            if n == 2 {
                m["from"]["name"] = json!(format!("Имя {i}"));
            }
            if n == 3 {
                m["refs"] = json!([format!("ref-{i}")]);
            }
            sends.push(m);
        }
    }
    for i in 0..8 {
        let mut m = sms(&format!("new-{i}"), &phone(500 + i), "я новый");
        m["from"]["name"] = json!(format!("Новый {i}"));
        sends.push(m);
    }
    for i in 0..6 {
        sends.push(sms(&format!("k{i}-0"), &phone(i), "первое"));
    }
    sends.push(sms("twice", &phone(3), "дважды"));
    sends.push(sms("twice", &phone(3), "дважды"));
    sends.push(sms("m-2", "+375290000001", "снова по телефону"));
    sends.push(
        json!({"id": "m-both", "from": {"phone": "+375290000001", "email": "one@person.example"},
                      "text": "это я"}),
    );
    sends.push(
        json!({"id": "m-3", "from": {"email": "one@person.example"}, "text": "снова по почте"}),
    );
    let answers: Vec<Value> =
        futures::future::join_all(sends.iter().map(|m| app.inbound_ok(&ch, m.clone()))).await;

    // Stored once each: repeats answered with the first ids.
    for (m, a) in sends.iter().zip(&answers) {
        let id = m["id"].as_str().unwrap();
        if let Some(i) = id.strip_prefix('k').and_then(|s| s.strip_suffix("-0")) {
            let first = &firsts[i.parse::<usize>().unwrap()];
            assert_eq!(a["duplicate"], true, "{id}");
            assert_eq!(a["message_id"], first["message_id"], "{id}");
        }
    }
    let twice: Vec<&Value> = sends
        .iter()
        .zip(&answers)
        .filter(|(m, _)| m["id"] == "twice")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(twice[0]["message_id"], twice[1]["message_id"]);
    assert_eq!(
        twice.iter().filter(|a| a["duplicate"] == true).count(),
        1,
        "exactly one of the two was stored"
    );
    for i in 0..known {
        let t = firsts[i]["thread_id"].as_str().unwrap();
        let ms = messages(&app, &ws.access(), t).await;
        let expected = if i == 3 { 5 } else { 4 };
        assert_eq!(ms.len(), expected, "applicant {i}: {ms:?}");
        let th = thread(&app, &ws.access(), t).await;
        assert_eq!(th["unread"], expected);
        // A name is learnt once and never overwritten.
        let name = if i % 2 == 0 {
            format!("Соискатель {i}")
        } else {
            format!("Имя {i}")
        };
        assert_eq!(th["contact_name"], name.as_str(), "{th}");
        // The answers and the thread agree; the reference leads to the thread.
        for n in 1..=3 {
            let a = answers[i * 3 + n - 1].clone();
            assert_eq!(a["thread_id"], t, "k{i}-{n}");
        }
    }
    let threads = json_of(app.get("/api/v1/threads?limit=200", &ws.access()).await).await;
    assert_eq!(threads.as_array().unwrap().len(), known + 8 + 1);
    for i in 0..8 {
        let t = threads
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["contact_name"] == format!("Новый {i}").as_str())
            .expect("a new applicant's thread, with the name");
        assert_eq!(t["unread"], 1, "{t}");
        assert_eq!(t["state"], "open");
    }
    // The merged applicant: one thread with all five messages, whatever the order.
    let survivor = threads
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == by_phone["thread_id"] || t["id"] == by_email["thread_id"])
        .expect("one of the two threads lives on");
    let merged = messages(&app, &ws.access(), survivor["id"].as_str().unwrap()).await;
    assert_eq!(merged.len(), 5, "{merged:?}");

    // Live: every new message once, positions without gaps, each event's message equal to
    // what the API returns.
    let stored = 3 * known + 8 + 1 + 3;
    let mut seen = std::collections::HashSet::new();
    let mut position = live_at;
    while seen.len() < stored {
        let f = live.next().await;
        if f["type"] != "event" {
            continue;
        }
        let p = f["position"].as_i64().unwrap();
        assert_eq!(p, position + 1, "positions without gaps: {f}");
        position = p;
        if f["kind"] == "thread.message" {
            let m = &f["data"];
            assert!(
                seen.insert(m["id"].as_str().unwrap().to_string()),
                "once: {m}"
            );
            let all = messages(&app, &ws.access(), m["thread_id"].as_str().unwrap()).await;
            match all.iter().find(|x| x["id"] == m["id"]) {
                Some(api) => assert_eq!(api, m, "the event carries the stored message"),
                // Moved by the merge later in the batch: now in the surviving thread.
                None => assert!(
                    merged
                        .iter()
                        .any(|x| x["id"] == m["id"] && x["text"] == m["text"]),
                    "stored: {m}"
                ),
            }
        }
    }
    // The hub stored some of them together (otherwise this test proves nothing).
    let metrics = app.metrics().await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(
        value("ingest_batch_size_sum") > value("ingest_batch_size_count"),
        "some batch held more than one message"
    );
    assert!(
        value("ingest_set_based_total") >= 1.0,
        "known applicants took the set-based path"
    );
    assert_eq!(
        value("ingest_wait_seconds_count"),
        value("ingest_batch_size_sum"),
        "every stored message's wait is measured"
    );
    assert_eq!(
        value("ingest_batch_seconds_count"),
        value("ingest_batch_size_count")
    );
    assert!(
        value("runtime_lag_seconds_count") >= 1.0,
        "the runtime's lag is measured"
    );
}

#[tokio::test]
async fn a_recruiter_adds_and_changes_their_own_mailbox_but_nothing_else() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let olga = app
        .create_user(&ws.tenant, "olga@acme.test", Role::Recruiter)
        .await;
    let ivan = app
        .create_user(&ws.tenant, "ivan@acme.test", Role::Recruiter)
        .await;
    let olga_tok = app.login("acme", &olga.email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let ivan_tok = app.login("acme", &ivan.email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let server = |port: u16| {
        json!({"host": "127.0.0.1", "port": port, "security": "plain",
                                    "username": "olga", "password": "secret-pw"})
    };
    let mailbox = |extra: Value| {
        let mut b = json!({"kind": "email", "provider": "email", "name": "Ольга", "address": "olga@acme.test",
            "settings": {"smtp": server(9), "imap": server(9), "address": "olga@acme.test",
                         "display_name": "Ольга"}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let r = app
        .post_json(
            "/api/v1/channel-accounts",
            Some(&olga_tok),
            mailbox(json!({})),
        )
        .await;
    let status = r.status();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["account"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["account"]["owner_user_id"], olga.id.as_str());
    assert_eq!(created["account"]["settings"]["smtp"]["password"], "");
    // Not for someone else, not another kind, not into a queue.
    for body in [
        mailbox(json!({"owner_user_id": ivan.id})),
        mailbox(json!({"owner_user_id": ws.admin.id})),
        json!({"kind": "sms", "provider": "webhook", "name": "x", "address": "+70000000000",
               "settings": {"url": "http://127.0.0.1:9/"}}),
    ] {
        assert_error(
            app.post_json("/api/v1/channel-accounts", Some(&olga_tok), body)
                .await,
            403,
            "forbidden",
        )
        .await;
    }
    // The owner renames it and switches it off; another recruiter cannot touch it.
    let path = format!("/api/v1/channel-accounts/{id}");
    let r = app
        .request(
            Method::PATCH,
            &path,
            &olga_tok,
            Some(json!({"name": "Ольга (личный)", "enabled": false})),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "Ольга (личный)", "{v}");
    assert_eq!(v["enabled"], false);
    assert_error(
        app.request(
            Method::PATCH,
            &path,
            &ivan_tok,
            Some(json!({"enabled": true})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // The admin still can.
    let r = app
        .request(
            Method::PATCH,
            &path,
            &ws.access(),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status(), 200);
    // New settings as a client shows them (passwords empty) keep the stored passwords;
    // a password given replaces its own.
    let mut shown = created["account"]["settings"].clone();
    shown["smtp"]["port"] = json!(2525);
    shown["imap"]["password"] = json!("new-imap-pw");
    let r = app
        .request(
            Method::PATCH,
            &path,
            &olga_tok,
            Some(json!({"settings": shown})),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["settings"]["smtp"]["port"], 2525, "{v}");
    let stored = app
        .db
        .for_tenant(&ws.tenant.id)
        .channel_account(&id)
        .await
        .unwrap();
    let secret: Value = serde_json::from_str(stored.secret.as_deref().unwrap()).unwrap();
    assert_eq!(secret["smtp_password"], "secret-pw");
    assert_eq!(secret["imap_password"], "new-imap-pw");
}
