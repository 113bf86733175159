//! SMS channels end to end: Kannel (a real bearerbox + smsbox driven through its fake SMS
//! centre), a Twilio-compatible API (signatures computed by Twilio's own Python library)
//! and SMS.ru (status polling), each through the thread's reply and back.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use jobers_channels::sms::smsru::SmsRuSimulator;
use jobers_channels::sms::twilio::TwilioSimulator;
use serde_json::{json, Value};

const TOKEN: &str = "test_auth_token_0123456789abcdef";
const SID: &str = "AC00000000000000000000000000000000";

async fn account(app: &TestApp, ws: &Workspace, body: Value) -> Value {
    let r = app
        .post_json("/api/v1/channel-accounts", Some(&ws.access()), body)
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v["account"].clone()
}

/// The signature Twilio's official Python library computes (`RequestValidator`).
fn twilio_library_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let script = "import json, sys\n\
        from twilio.request_validator import RequestValidator\n\
        a = json.load(sys.stdin)\n\
        print(RequestValidator(a['token']).compute_signature(a['url'], dict(a['params'])))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let input = json!({"token": token, "url": url, "params": params}).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Twilio's Python library is needed (pip install twilio; the test command installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn post_form(
    app: &TestApp,
    url: &str,
    sig: Option<&str>,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.client.post(url).form(params);
    if let Some(s) = sig {
        req = req.header("X-Twilio-Signature", s);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn twilio_inbound_is_verified_with_twilios_own_signatures_and_replies_report_delivery() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = TwilioSimulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SID,
        TOKEN,
    )
    .await;
    let acc = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "twilio", "name": "Twilio", "address": "+15005550006",
               "settings": {"account_sid": SID, "base_url": sim.base_url()}, "secret": TOKEN}),
    )
    .await;
    let id = acc["id"].as_str().unwrap();
    // The auth token is sealed at rest.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(app.config.effective_database_url().expose())
        .await
        .unwrap();
    let stored: String = sqlx::query_scalar("SELECT secret FROM channel_accounts WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains(TOKEN),
        "{stored}"
    );
    pool.close().await;
    let url = app.url(&format!("/api/v1/hooks/{id}/twilio"));
    let params = [
        ("AccountSid", SID),
        ("Body", "Здравствуйте, я по вакансии курьера"),
        ("From", "+79001234567"),
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("NumMedia", "0"),
        ("To", "+15005550006"),
    ];
    // Refused: no signature, a signature by another token, a signature over other values.
    assert_error(
        post_form(&app, &url, None, &params).await,
        401,
        "bad_signature",
    )
    .await;
    let other = twilio_library_signature("another_token", &url, &params);
    assert_error(
        post_form(&app, &url, Some(&other), &params).await,
        401,
        "bad_signature",
    )
    .await;
    let sig = twilio_library_signature(TOKEN, &url, &params);
    let mut tampered = params;
    tampered[1].1 = "Поддельный текст";
    assert_error(
        post_form(&app, &url, Some(&sig), &tampered).await,
        401,
        "bad_signature",
    )
    .await;
    let threads = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(threads, json!([]), "nothing stored from refused requests");
    // Accepted: the library's signature over exactly what is posted.
    let ok = post_form(&app, &url, Some(&sig), &params).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("<Response>"));
    let again = post_form(&app, &url, Some(&sig), &params).await;
    assert_eq!(again.status(), 200, "a repeat is acknowledged");
    let threads = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(threads.as_array().unwrap().len(), 1);
    let t = threads[0]["id"].as_str().unwrap().to_string();
    let msgs = json_of(
        app.get(&format!("/api/v1/threads/{t}/messages"), &ws.access())
            .await,
    )
    .await;
    assert_eq!(msgs.as_array().unwrap().len(), 1, "stored once");
    // The reply goes to Twilio and its status callbacks (signed by the simulator) move it.
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "Добрый день! Приходите завтра.", "signature": "none"}),
        )
        .await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    let delivered = eventually("delivered", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("delivered")).then_some(m)
    })
    .await;
    assert_eq!(delivered.remote_address.as_deref(), Some("+79001234567"));
    let sent = sim.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "+79001234567");
    assert_eq!(sent[0].from, "+15005550006");
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some(
            app.url(&format!("/api/v1/hooks/{id}/twilio/status?msg={mid}"))
                .as_str()
        )
    );
    // A status callback signed with the wrong token changes nothing.
    let status_url = app.url(&format!("/api/v1/hooks/{id}/twilio/status"));
    let fake = [
        ("MessageSid", sent[0].sid.as_str()),
        ("MessageStatus", "failed"),
    ];
    let bad = twilio_library_signature("another_token", &status_url, &fake);
    assert_error(
        post_form(&app, &status_url, Some(&bad), &fake).await,
        401,
        "bad_signature",
    )
    .await;
    let m = app
        .db
        .for_tenant(&ws.tenant.id)
        .thread_message(&mid)
        .await
        .unwrap();
    assert_eq!(m.delivery_state.as_deref(), Some("delivered"));
}

#[tokio::test]
async fn twilio_refusals_fail_the_message_or_the_account() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = TwilioSimulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SID,
        TOKEN,
    )
    .await;
    let hook = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    // An applicant whose number Twilio will not take.
    let t = app
        .inbound_ok(
            &hook,
            json!({"id": "x", "from": {"phone": "+375291234567"}, "text": "Привет"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let good = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "twilio", "name": "T", "address": "+15005550006",
        "settings": {"account_sid": SID, "base_url": sim.base_url()}, "secret": TOKEN}),
    )
    .await;
    let wrong = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "twilio", "name": "T2", "address": "+15005550007",
        "settings": {"account_sid": SID, "base_url": sim.base_url()}, "secret": "revoked"}),
    )
    .await;
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "x", "channel_account_id": wrong["id"], "signature": "none"}),
        )
        .await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    let failed = eventually("failed on auth", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("failed")).then_some(m)
    })
    .await;
    assert!(failed.failure_reason.unwrap().contains("20003"));
    let acc = json_of(
        app.get(
            &format!("/api/v1/channel-accounts/{}", wrong["id"].as_str().unwrap()),
            &ws.access(),
        )
        .await,
    )
    .await;
    assert_eq!(acc["health"], "needs_relogin");
    assert!(sim.messages().is_empty());
    // The same number through the account with the right token goes out.
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "y", "channel_account_id": good["id"], "signature": "none"}),
        )
        .await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    eventually("sent", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        matches!(m.delivery_state.as_deref(), Some("sent" | "delivered")).then_some(())
    })
    .await;
    assert_eq!(sim.messages()[0].to, "+375291234567");
}

#[tokio::test]
async fn smsru_replies_learn_delivery_by_polling() {
    let app = spawn_app_with(|c| c.switch.status_poll_secs = 1).await;
    let ws = app.workspace("acme").await;
    let sim = SmsRuSimulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        "api-key-1",
    )
    .await;
    let hook = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let t = app
        .inbound_ok(
            &hook,
            json!({"id": "x", "from": {"phone": "8 916 123-45-67"}, "text": "Привет"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let smsru = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "smsru", "name": "SMS.ru", "address": "Jobers",
        "settings": {"base_url": sim.base_url()}, "secret": "api-key-1"}),
    )
    .await;
    let reply = json_of(
        app.post_json(&format!("/api/v1/threads/{t}/messages"), Some(&ws.access()),
            json!({"text": "Ждём вас завтра", "channel_account_id": smsru["id"], "signature": "none"})).await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    eventually("delivered by polling", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    let sent = sim.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "79161234567", "SMS.ru numbers have no plus");
    // Asked by the node holding the account's lease (one node per account).
    let lease = format!("sms-status:{}", smsru["id"].as_str().unwrap());
    assert_eq!(
        app.lease_holder(&ws, &lease).await.as_deref(),
        Some(app.hub.node_id())
    );
    // A refused number fails the message with SMS.ru's reason.
    sim.refuse_next(202);
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "Второе", "channel_account_id": smsru["id"], "signature": "none"}),
        )
        .await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    let failed = eventually("refused", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("failed")).then_some(m)
    })
    .await;
    assert!(failed.failure_reason.unwrap().contains("202"));
    // A wrong api_id: the account needs a new key.
    let bad = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "smsru", "name": "SMS.ru old", "address": "Jobers",
        "settings": {"base_url": sim.base_url()}, "secret": "old-key"}),
    )
    .await;
    app.post_json(
        &format!("/api/v1/threads/{t}/messages"),
        Some(&ws.access()),
        json!({"text": "Третье", "channel_account_id": bad["id"], "signature": "none"}),
    )
    .await;
    eventually("needs relogin", || async {
        let a = json_of(
            app.get(
                &format!("/api/v1/channel-accounts/{}", bad["id"].as_str().unwrap()),
                &ws.access(),
            )
            .await,
        )
        .await;
        (a["health"] == "needs_relogin").then_some(())
    })
    .await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} did not open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Kannel {
    children: Vec<Child>,
}

impl Drop for Kannel {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

#[tokio::test]
async fn kannel_brings_an_sms_into_a_thread_and_carries_the_reply_with_its_delivery_report() {
    let bearerbox = "/usr/sbin/bearerbox";
    assert!(
        std::path::Path::new(bearerbox).exists(),
        "Kannel is needed (apt-get install kannel; the test command installs it)"
    );
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let (admin_port, box_port, smsc_port, send_port) =
        (free_port(), free_port(), free_port(), free_port());
    let acc = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "kannel", "name": "Kannel", "address": "1234",
        "settings": {"sendsms_url": format!("http://127.0.0.1:{send_port}"), "username": "jobers"},
        "secret": "sendsms-pass"}),
    )
    .await;
    let id = acc["id"].as_str().unwrap();
    let token = jobers_channels::sms::kannel::hook_token("sendsms-pass", id);
    let dir = tempfile::tempdir().unwrap();
    let get_url = app.url(&format!(
        "/api/v1/hooks/{id}/kannel/inbound?token={token}&from=%p&to=%P&text=%a&id=%I&ts=%t"
    ));
    let conf = format!(
        "group = core\nadmin-port = {admin_port}\nadmin-interface = 127.0.0.1\nadmin-password = adminpw\n\
         smsbox-port = {box_port}\nsmsbox-interface = 127.0.0.1\nbox-deny-ip = \"*.*.*.*\"\nbox-allow-ip = \"127.0.0.1\"\n\
         dlr-storage = internal\nlog-file = \"bearerbox.log\"\nlog-level = 0\n\n\
         group = smsc\nsmsc = fake\nsmsc-id = FAKE\nport = {smsc_port}\nour-host = 127.0.0.1\nconnect-allow-ip = \"127.0.0.1\"\n\n\
         group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {box_port}\nsendsms-port = {send_port}\n\
         sendsms-interface = 127.0.0.1\nmo-recode = true\nlog-file = \"smsbox.log\"\nlog-level = 0\n\n\
         group = sendsms-user\nusername = jobers\npassword = sendsms-pass\n\n\
         group = sms-service\nkeyword = default\ncatch-all = true\nmax-messages = 0\nget-url = \"{get_url}\"\n"
    );
    std::fs::write(dir.path().join("kannel.conf"), conf).unwrap();
    let mut kannel = Kannel {
        children: Vec::new(),
    };
    kannel.children.push(
        Command::new(bearerbox)
            .args(["-v", "4", "kannel.conf"])
            .current_dir(dir.path())
            .spawn()
            .unwrap(),
    );
    wait_port(admin_port);
    wait_port(box_port);
    kannel.children.push(
        Command::new("/usr/sbin/smsbox")
            .args(["-v", "4", "kannel.conf"])
            .current_dir(dir.path())
            .spawn()
            .unwrap(),
    );
    wait_port(send_port);
    // The phone network: the fake SMS centre's line protocol on its port.
    let smsc = std::net::TcpStream::connect(("127.0.0.1", smsc_port)).unwrap();
    let mut to_kannel = smsc.try_clone().unwrap();
    to_kannel
        .write_all("+79001112233 1234 text Здравствуйте, это Пётр\n".as_bytes())
        .unwrap();
    let thread = eventually("the SMS reaches a thread", || async {
        let list = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
        list.as_array().unwrap().first().cloned()
    })
    .await;
    let t = thread["id"].as_str().unwrap().to_string();
    let msgs = json_of(
        app.get(&format!("/api/v1/threads/{t}/messages"), &ws.access())
            .await,
    )
    .await;
    assert_eq!(msgs[0]["text"], "Здравствуйте, это Пётр");
    assert_eq!(msgs[0]["remote_address"], "+79001112233");
    // The recruiter answers: Kannel hands it to the SMS centre.
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "Пётр, ждём вас завтра в 10:00", "signature": "none"}),
        )
        .await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    let line = tokio::task::spawn_blocking(move || {
        smsc.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut line = String::new();
        BufReader::new(smsc).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let parts: Vec<&str> = line.trim_end().splitn(4, ' ').collect();
    assert_eq!(parts[0], "1234", "{line}");
    assert_eq!(parts[1], "+79001112233", "{line}");
    assert_eq!(parts[2], "ucs-2", "Cyrillic goes as UCS-2: {line}");
    let raw: Vec<u8> = percent_decode(parts[3]);
    let units: Vec<u16> = raw
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(
        String::from_utf16(&units).unwrap(),
        "Пётр, ждём вас завтра в 10:00"
    );
    // The SMS centre's delivery report comes back through Kannel's dlr-url.
    eventually("delivered", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    // A get-url call without the right token stores nothing.
    let forged = app
        .client
        .get(app.url(&format!(
            "/api/v1/hooks/{id}/kannel/inbound?token=wrong&from=%2B79005556677&text=x&id=1"
        )))
        .send()
        .await
        .unwrap();
    assert_error(forged, 401, "bad_signature").await;
    // The account's password is not a signing key of the generic webhook either.
    let body = serde_json::to_vec(
        &json!({"id": "f1", "from": {"phone": "+79005556677"}, "text": "подделка"}),
    )
    .unwrap();
    let r = jobers_channels::webhook::post_signed(
        &app.client,
        &app.url(&format!("/api/v1/hooks/{id}/inbound")),
        "sendsms-pass",
        &body,
    )
    .await
    .unwrap();
    assert_error(r, 401, "bad_signature").await;
    let list = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    drop(to_kannel);
    drop(kannel);
}

/// Decodes `%XX` escapes and `+` (as space) into bytes.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[tokio::test]
async fn provider_timeouts_5xx_and_garbage_end_sent_after_retries_with_the_account_health_shown() {
    use jobers_channels::sms::Fault;
    let app = spawn_app_with(|c| {
        c.switch.send_timeout_secs = 1;
        c.switch.outbox_backoff_ms = 50;
    })
    .await;
    let ws = app.workspace("acme").await;
    let sim = SmsRuSimulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        "key",
    )
    .await;
    let hook = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let t = app
        .inbound_ok(
            &hook,
            json!({"id": "x", "from": {"phone": "+79161234567"}, "text": "Привет"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let smsru = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "smsru", "name": "SMS.ru", "address": "Jobers",
        "settings": {"base_url": sim.base_url()}, "secret": "key"}),
    )
    .await;
    let acc_id = smsru["id"].as_str().unwrap().to_string();
    let mut live = common::ws::WsClient::connect(&app.base, &ws.access(), None).await;
    live.next_of("live", None).await;
    sim.fail_next(&[
        Fault::Hang(Duration::from_secs(3)),
        Fault::Status(502),
        Fault::Garbage,
    ]);
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "Ответ", "channel_account_id": acc_id, "signature": "none"}),
        )
        .await,
    )
    .await;
    let mid = reply["id"].as_str().unwrap().to_string();
    // The account shows the trouble while it lasts.
    let health = live.next_of("event", Some("channel.health")).await;
    assert_eq!(health["data"]["health"], "degraded");
    assert!(!health["data"]["next_retry_at"].is_null());
    eventually("sent after the faults", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&mid)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("sent")).then_some(())
    })
    .await;
    assert_eq!(sim.messages().len(), 1, "sent once, nothing lost");
    let (_, attempts, _) = app
        .db
        .for_tenant(&ws.tenant.id)
        .outbox_state(&mid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attempts, 4);
    let acc = json_of(
        app.get(&format!("/api/v1/channel-accounts/{acc_id}"), &ws.access())
            .await,
    )
    .await;
    assert_eq!(acc["health"], "ok");
}

#[tokio::test]
async fn an_applicant_who_replies_stop_gets_no_more_sms_until_start() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = TwilioSimulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SID,
        TOKEN,
    )
    .await;
    let hook = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let twilio = account(
        &app,
        &ws,
        json!({"kind": "sms", "provider": "twilio", "name": "T", "address": "+15005550006",
        "settings": {"account_sid": SID, "base_url": sim.base_url()}, "secret": TOKEN}),
    )
    .await;
    let t = app
        .inbound_ok(&hook, json!({"id": "s1", "from": {"phone": "+79161234567", "email": "p@example.test"}, "text": "STOP"}))
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/threads/{t}/messages");
    let r = app
        .post_json(
            &path,
            Some(&ws.access()),
            json!({"text": "x", "channel_account_id": twilio["id"]}),
        )
        .await;
    assert_error(r, 422, "opted_out").await;
    let contact = json_of(app.get(&format!("/api/v1/threads/{t}"), &ws.access()).await).await
        ["contact_id"]
        .clone();
    let c = json_of(
        app.get(
            &format!("/api/v1/contacts/{}", contact.as_str().unwrap()),
            &ws.access(),
        )
        .await,
    )
    .await;
    let phone = c["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "phone")
        .unwrap()
        .clone();
    assert!(!phone["opted_out_at"].is_null(), "{c}");
    // START opts back in.
    app.inbound_ok(
        &hook,
        json!({"id": "s2", "from": {"phone": "+79161234567"}, "text": "Старт"}),
    )
    .await;
    let r = app
        .post_json(
            &path,
            Some(&ws.access()),
            json!({"text": "Снова на связи", "channel_account_id": twilio["id"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    eventually("sent", || async { sim.messages().first().cloned() }).await;
    assert!(
        sim.messages().iter().all(|m| m.body != "x"),
        "nothing was sent while opted out"
    );
}

#[tokio::test]
async fn an_sms_longer_than_the_numbers_limit_needs_confirmation() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let sim = TwilioSimulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SID,
        TOKEN,
    )
    .await;
    let hook = app
        .channel(&ws, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let twilio = account(&app, &ws, json!({"kind": "sms", "provider": "twilio", "name": "T", "address": "+15005550006",
        "settings": {"account_sid": SID, "base_url": sim.base_url(), "max_segments": 2}, "secret": TOKEN})).await;
    let t = app
        .inbound_ok(
            &hook,
            json!({"id": "l1", "from": {"phone": "+79161234567"}, "text": "Привет"}),
        )
        .await["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/threads/{t}/messages");
    // 135 Cyrillic characters: three UCS-2 parts.
    let long = "я".repeat(135);
    let r = app
        .post_json(
            &path,
            Some(&ws.access()),
            json!({"text": long, "channel_account_id": twilio["id"], "signature": "none"}),
        )
        .await;
    let body = assert_error(r, 422, "sms_confirmation_needed").await;
    assert!(
        body["message"].as_str().unwrap().contains("3 parts"),
        "{body}"
    );
    let two = "я".repeat(134);
    let r = app
        .post_json(
            &path,
            Some(&ws.access()),
            json!({"text": two, "channel_account_id": twilio["id"], "signature": "none"}),
        )
        .await;
    assert_eq!(r.status(), 201, "two parts are within the limit");
    let r = app
        .post_json(&path, Some(&ws.access()), json!({"text": long, "channel_account_id": twilio["id"], "signature": "none", "confirm_long": true}))
        .await;
    assert_eq!(r.status(), 201, "confirmed");
    eventually("both sent", || async {
        (sim.messages().len() == 2).then_some(())
    })
    .await;
}
