//! Email end to end against real servers on loopback (an SMTP server relaying to Dovecot,
//! and Dovecot IMAP — `deploy/dev/mail.sh`, started by the test command): an applicant's
//! letter opens a thread, the recruiter's reply reaches the applicant's mailbox with our
//! Message-ID and reply token, answers written as Gmail and Outlook write them come back to
//! the same thread with the quote trimmed for display, a bounce fails the reply, and an
//! auto-reply is flagged.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use common::*;
use jobers_channels::email::{fetch_since, ImapSettings, MailboxSettings, Security, SmtpSettings};
use serde_json::{json, Value};

fn port(var: &str) -> u16 {
    std::env::var(var)
        .unwrap_or_else(|_| {
            panic!("{var} is not set: the email tests need the loopback mail servers; run them through the test command (deploy/dev/test.sh)")
        })
        .parse()
        .unwrap()
}

fn password() -> String {
    std::env::var("JOBERS_TEST_MAIL_PASSWORD").unwrap_or_else(|_| "secret".into())
}

/// Sends a raw RFC 5322 message over SMTP as `user` (what a mail client does).
fn smtp_raw(user: &str, from: &str, to: &str, message: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port("JOBERS_TEST_SMTP_PORT"))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut expect = |code: &str| loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with(code),
            "SMTP said {line:?}, expected {code}"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect("220");
    let mut say = |line: String, code: &str, w: &mut TcpStream| {
        w.write_all(line.as_bytes()).unwrap();
        expect(code);
    };
    say("EHLO client.example.test\r\n".into(), "250", &mut w);
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{}", password()));
    say(format!("AUTH PLAIN {auth}\r\n"), "235", &mut w);
    say(format!("MAIL FROM:<{from}>\r\n"), "250", &mut w);
    say(format!("RCPT TO:<{to}>\r\n"), "250", &mut w);
    say("DATA\r\n".into(), "354", &mut w);
    let body = message.replace("\r\n", "\n").replace('\n', "\r\n");
    say(format!("{body}\r\n.\r\n"), "250", &mut w);
    w.write_all(b"QUIT\r\n").unwrap();
}

fn mailbox(user: &str, address: &str, folder: &str) -> MailboxSettings {
    MailboxSettings {
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port: port("JOBERS_TEST_SMTP_PORT"),
            security: Security::Plain,
            username: user.into(),
            password: password(),
        },
        imap: ImapSettings {
            host: "127.0.0.1".into(),
            port: port("JOBERS_TEST_IMAP_PORT"),
            security: Security::Plain,
            username: user.into(),
            password: password(),
            folder: folder.into(),
        },
        address: address.into(),
        display_name: "HR Acme".into(),
        reply_domain: Some("jobers.test".into()),
        timeout_secs: 10,
    }
}

#[tokio::test]
async fn a_mail_conversation_stays_in_one_thread_across_clients_bounces_and_auto_replies() {
    let tag = format!("t{}", uuid::Uuid::now_v7().simple());
    let recruiter = format!("recruiter+{tag}@jobers.test");
    let applicant = format!("applicant+{tag}@example.test");
    let app = spawn_app_with(|c| c.switch.mail_wait_secs = 1).await;
    let ws = app.workspace("acme").await;
    let settings =
        serde_json::to_value(mailbox("recruiter@jobers.test", &recruiter, &tag)).unwrap();
    let r = app
        .post_json(
            "/api/v1/channel-accounts",
            Some(&ws.access()),
            json!({"kind": "email", "provider": "email", "name": "HR mailbox", "address": recruiter, "settings": settings}),
        )
        .await;
    let status = r.status();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["secret"], "", "typed passwords are not echoed");
    let shown = &created["account"]["settings"];
    assert_eq!(
        shown["smtp"]["password"], "",
        "passwords never come back: {created}"
    );
    assert_eq!(
        shown["imap"]["password"], "",
        "passwords never come back: {created}"
    );
    // 1. The applicant writes.
    smtp_raw(
        "applicant@example.test",
        &applicant,
        &recruiter,
        &format!(
            "From: Анна Иванова <{applicant}>\nTo: <{recruiter}>\nSubject: =?UTF-8?B?{}?=\nMessage-ID: <first-{tag}@example.test>\nDate: Fri, 27 Nov 2026 10:00:00 +0300\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nДобрый день! Высылаю резюме на вакансию курьера.\n",
            base64::engine::general_purpose::STANDARD.encode("Резюме курьера")
        ),
    );
    let thread = eventually("the letter opens a thread", || async {
        let list = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
        list.as_array().unwrap().first().cloned()
    })
    .await;
    // Read by the node holding the mailbox's lease (one reader per mailbox).
    let lease = format!("mailbox:{}", created["account"]["id"].as_str().unwrap());
    assert_eq!(
        app.lease_holder(&ws, &lease).await.as_deref(),
        Some(app.hub.node_id())
    );
    let t = thread["id"].as_str().unwrap().to_string();
    assert_eq!(thread["subject"], "Резюме курьера");
    assert_eq!(thread["contact_name"], "Анна Иванова");
    assert_eq!(thread["last_channel_kind"], "email");
    // 2. The recruiter answers from the thread; it reaches the applicant's mailbox.
    let reply = json_of(
        app.post_json(
            &format!("/api/v1/threads/{t}/messages"),
            Some(&ws.access()),
            json!({"text": "Анна, спасибо! Приходите в понедельник в 10:00.", "signature": "none"}),
        )
        .await,
    )
    .await;
    let reply_id = reply["id"].as_str().unwrap().to_string();
    let inbox = mailbox("applicant@example.test", &applicant, &tag);
    let received = eventually("the reply reaches the applicant", || async {
        let (mails, _) = fetch_since(&inbox, None).await.ok()?;
        mails.into_iter().next()
    })
    .await;
    assert_eq!(received.message_id, format!("{reply_id}@jobers.test"));
    assert_eq!(
        received.in_reply_to.as_deref(),
        Some(format!("first-{tag}@example.test").as_str())
    );
    assert_eq!(received.subject, "Re: Резюме курьера");
    assert!(received.text.contains("Приходите в понедельник"));
    let token = received
        .reply_to
        .iter()
        .find_map(|a| jobers_channels::email::reply_token_of(a))
        .expect("a reply+token Reply-To");
    let m = eventually("sent", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&reply_id)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("sent")).then_some(m)
    })
    .await;
    assert_eq!(m.remote_address.as_deref(), Some(applicant.as_str()));
    // 3. A Gmail-style answer: In-Reply-To, the quote below "… wrote:", HTML with gmail_quote.
    smtp_raw(
        "applicant@example.test",
        &applicant,
        &recruiter,
        &format!(
            "From: Анна Иванова <{applicant}>\nTo: HR Acme <{recruiter}>\nSubject: Re: Резюме курьера\nMessage-ID: <gmail-{tag}@mail.gmail.com>\nIn-Reply-To: <{reply_id}@jobers.test>\nReferences: <first-{tag}@example.test> <{reply_id}@jobers.test>\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nХорошо, буду в понедельник.\n\nOn Fri, 27 Nov 2026 at 11:00, HR Acme <{recruiter}> wrote:\n> Анна, спасибо! Приходите в понедельник в 10:00.\n--b1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n<div dir=\"ltr\">Хорошо, буду в понедельник.</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Fri wrote:</div><blockquote class=\"gmail_quote\">Анна, спасибо!</blockquote></div><script>alert(1)</script>\n--b1--\n"
        ),
    );
    let gmail = eventually("the Gmail answer joins the thread", || async {
        let list = json_of(
            app.get(&format!("/api/v1/threads/{t}/messages"), &ws.access())
                .await,
        )
        .await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["external_id"] == format!("gmail-{tag}@mail.gmail.com").as_str())
            .cloned()
    })
    .await;
    assert_eq!(gmail["direction"], "in");
    assert_eq!(
        gmail["display_text"], "Хорошо, буду в понедельник.",
        "{gmail}"
    );
    assert!(
        gmail["text"].as_str().unwrap().contains("> Анна, спасибо!"),
        "the full text stays"
    );
    let html = gmail["html"].as_str().unwrap();
    assert!(
        html.contains("gmail_quote") && !html.contains("<script"),
        "{html}"
    );
    // 4. An Outlook-style answer from another address, found by the reply token alone.
    smtp_raw(
        "applicant@example.test",
        &applicant,
        &recruiter,
        &format!(
            "From: Anna Ivanova <anna.ivanova@work.example>\nTo: <reply+{token}@jobers.test>\nSubject: RE: Резюме курьера\nMessage-ID: <outlook-{tag}@work.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nПишу с рабочей почты: можно перенести на вторник?\n\n-----Original Message-----\nFrom: HR Acme <{recruiter}>\nSent: Friday, November 27, 2026 11:00 AM\nSubject: Re: Резюме курьера\n\nАнна, спасибо! Приходите в понедельник в 10:00.\n"
        ),
    );
    let outlook = eventually("the Outlook answer joins the thread", || async {
        let list = json_of(
            app.get(&format!("/api/v1/threads/{t}/messages"), &ws.access())
                .await,
        )
        .await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["external_id"] == format!("outlook-{tag}@work.example").as_str())
            .cloned()
    })
    .await;
    assert_eq!(
        outlook["display_text"],
        "Пишу с рабочей почты: можно перенести на вторник?"
    );
    let contact = app
        .db
        .for_tenant(&ws.tenant.id)
        .contact(thread["contact_id"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        contact
            .identities
            .iter()
            .any(|i| i.value == "anna.ivanova@work.example"),
        "the work address joins the applicant"
    );
    // 5. An auto-reply is stored and flagged.
    smtp_raw(
        "applicant@example.test",
        &applicant,
        &recruiter,
        &format!(
            "From: <{applicant}>\nTo: <{recruiter}>\nSubject: Auto: Re: Резюме курьера\nMessage-ID: <auto-{tag}@example.test>\nIn-Reply-To: <{reply_id}@jobers.test>\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nЯ в отпуске до понедельника.\n"
        ),
    );
    let auto = eventually("the auto-reply is stored", || async {
        let list = json_of(
            app.get(&format!("/api/v1/threads/{t}/messages"), &ws.access())
                .await,
        )
        .await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["external_id"] == format!("auto-{tag}@example.test").as_str())
            .cloned()
    })
    .await;
    assert_eq!(auto["auto_submitted"], true);
    // 6. A bounce of the reply marks it failed with the reason.
    smtp_raw(
        "applicant@example.test",
        "mailer-daemon@example.test",
        &recruiter,
        &format!(
            "From: Mail Delivery System <mailer-daemon@example.test>\nTo: <{recruiter}>\nSubject: Undelivered Mail Returned to Sender\nMessage-ID: <bounce-{tag}@example.test>\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r1\"\n\n--r1\nContent-Type: text/plain; charset=utf-8\n\nYour message could not be delivered.\n--r1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\nFinal-Recipient: rfc822; {applicant}\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\n--r1\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{reply_id}@jobers.test>\nFrom: HR Acme <{recruiter}>\nTo: <{applicant}>\nSubject: Re: Резюме курьера\n--r1--\n"
        ),
    );
    let failed = eventually("the bounce fails the reply", || async {
        let m = app
            .db
            .for_tenant(&ws.tenant.id)
            .thread_message(&reply_id)
            .await
            .unwrap();
        (m.delivery_state.as_deref() == Some("failed")).then_some(m)
    })
    .await;
    let reason = failed.failure_reason.unwrap();
    assert!(
        reason.contains("5.1.1") || reason.contains("550"),
        "{reason}"
    );
    let threads = json_of(app.get("/api/v1/threads", &ws.access()).await).await;
    assert_eq!(
        threads.as_array().unwrap().len(),
        1,
        "one thread for the whole conversation"
    );
    let acc = json_of(app.get("/api/v1/channel-accounts", &ws.access()).await).await;
    assert_eq!(acc[0]["health"], "ok", "{acc}");
}

#[tokio::test]
async fn a_mailbox_with_a_wrong_password_needs_a_new_login() {
    let tag = format!("t{}", uuid::Uuid::now_v7().simple());
    let app = spawn_app_with(|c| c.switch.mail_wait_secs = 1).await;
    let ws = app.workspace("acme").await;
    let mut settings = mailbox(
        "recruiter@jobers.test",
        &format!("recruiter+{tag}@jobers.test"),
        &tag,
    );
    settings.imap.password = "wrong".into();
    let r = app
        .post_json(
            "/api/v1/channel-accounts",
            Some(&ws.access()),
            json!({"kind": "email", "provider": "email", "name": "HR", "address": "x@jobers.test", "settings": settings}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let acc = eventually("needs relogin", || async {
        let a = json_of(app.get("/api/v1/channel-accounts", &ws.access()).await).await;
        (a[0]["health"] == "needs_relogin").then(|| a[0].clone())
    })
    .await;
    assert_eq!(acc["health_class"], "auth_failure");
    // Settings that are not a mailbox are refused.
    let r = app
        .post_json(
            "/api/v1/channel-accounts",
            Some(&ws.access()),
            json!({"kind": "email", "provider": "email", "name": "HR", "address": "x@jobers.test", "settings": {"smtp": {}}}),
        )
        .await;
    assert_error(r, 422, "invalid_settings").await;
}
