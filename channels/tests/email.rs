//! The email channel against real mail servers on loopback: aiosmtpd (SMTP, relaying over
//! LMTP) and Dovecot (IMAP), started by `start_mail` of deploy/dev/mail.sh, which exports
//! JOBERS_TEST_SMTP_PORT and JOBERS_TEST_IMAP_PORT. Without them these tests fail: they are
//! never skipped.
//!
//! Users (deploy/dev/mail.sh): recruiter@jobers.test, reply@jobers.test,
//! applicant@example.test. Mail to user+folder@… lands in that user's folder "folder", so
//! each test reads folders of its own.

use std::time::{Duration, Instant};

use base64::Engine as _;
use jobers_channels::email::{
    self, fetch_since, send, trim_quoted, wait_for_change, Change, FetchError, ImapCursor,
    ImapSettings, InboundEmail, MailboxSettings, OutboundEmail, Security, SmtpSettings,
};
use jobers_channels::{ErrorClass, OutboundAttachment, SendError};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

const RECRUITER: &str = "recruiter@jobers.test";
const APPLICANT: &str = "applicant@example.test";
const REPLY: &str = "reply@jobers.test";

fn env_port(name: &str) -> u16 {
    let value = std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the email tests need the loopback mail servers. Run them through \
             the test command (deploy/dev/test.sh), or `source deploy/dev/mail.sh && start_mail \
             \"$(mktemp -d)/mail\"` first and run cargo in that shell."
        )
    });
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name}={value:?} is not a port"))
}

fn password() -> String {
    std::env::var("JOBERS_TEST_MAIL_PASSWORD").unwrap_or_else(|_| "secret".to_string())
}

/// The settings of `user`'s mailbox, reading `folder`.
fn mailbox(user: &str, folder: &str) -> MailboxSettings {
    MailboxSettings {
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port: env_port("JOBERS_TEST_SMTP_PORT"),
            security: Security::Plain,
            username: user.into(),
            password: password(),
        },
        imap: ImapSettings {
            host: "127.0.0.1".into(),
            port: env_port("JOBERS_TEST_IMAP_PORT"),
            security: Security::Plain,
            username: user.into(),
            password: password(),
            folder: folder.into(),
        },
        address: user.into(),
        display_name: "Отдел кадров Jobers".into(),
        reply_domain: Some("jobers.test".into()),
        timeout_secs: 10,
    }
}

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// `user+folder@domain`.
fn detail(user: &str, folder: &str) -> String {
    let (local, domain) = user.split_once('@').unwrap();
    format!("{local}+{folder}@{domain}")
}

/// Delivers a message written by hand (as a mail client or a mail server would), logged in
/// as `login`. `from` None is the null sender of bounces (`MAIL FROM:<>`).
async fn deliver_raw(login: &str, from: Option<&str>, to: &str, raw: &str) {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(env_port("JOBERS_TEST_SMTP_PORT"))
        .credentials(Credentials::new(login.into(), password()))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let envelope =
        Envelope::new(from.map(|f| f.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
    transport
        .send_raw(
            &envelope,
            raw.replace("\r\n", "\n").replace('\n', "\r\n").as_bytes(),
        )
        .await
        .expect("the SMTP server takes the message");
}

/// Reads the folder until `n` messages arrived (delivery is synchronous, this only guards
/// against a slow machine), returning them and the cursor.
async fn fetch_n(settings: &MailboxSettings, n: usize) -> (Vec<InboundEmail>, ImapCursor) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let result = fetch_since(settings, None).await;
        match result {
            Ok((emails, cursor)) if emails.len() >= n => return (emails, cursor),
            Ok((emails, _)) if Instant::now() > deadline => {
                panic!("{} of {n} messages arrived", emails.len())
            }
            Err(FetchError::Mailbox { .. }) | Ok(_) if Instant::now() <= deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("reading failed: {other:?}"),
        }
    }
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn a_sent_email_is_read_back_with_every_field() {
    let folder = unique("sent");
    let recruiter = mailbox(RECRUITER, "INBOX");
    let applicant = mailbox(APPLICANT, &folder);
    let pdf: Vec<u8> = b"%PDF-1.4\n\x00\x01\x02\xff\xfe binary \xd0\x9f"
        .iter()
        .copied()
        .cycle()
        .take(70_000)
        .collect();
    let id = unique("m");
    let sent = send(
        &recruiter,
        &OutboundEmail {
            id: id.clone(),
            to: detail(APPLICANT, &folder),
            to_name: Some("Анна Петрова".into()),
            subject: "Приглашение на собеседование".into(),
            text: "Анна, здравствуйте!\nЖдём вас завтра в 10:00.".into(),
            html: Some("<p>Анна, здравствуйте!</p><p>Ждём вас <b>завтра в 10:00</b>.</p>".into()),
            signature: Some("Мария Иванова, HR".into()),
            attachments: vec![
                OutboundAttachment {
                    file_name: "Описание вакансии.pdf".into(),
                    content_type: "application/pdf".into(),
                    data_base64: b64(&pdf),
                },
                OutboundAttachment {
                    file_name: "map.txt".into(),
                    content_type: "text/plain".into(),
                    data_base64: b64("ул. Ленина, 1".as_bytes()),
                },
            ],
            reply_token: Some("tok-42".into()),
            ..Default::default()
        },
    )
    .await
    .expect("sent");
    assert_eq!(sent.message_id, format!("{id}@jobers.test"));

    let (emails, cursor) = fetch_n(&applicant, 1).await;
    assert_eq!(emails.len(), 1);
    let e = &emails[0];
    assert_eq!(e.message_id, sent.message_id);
    assert_eq!(e.from_address, RECRUITER);
    assert_eq!(e.from_name.as_deref(), Some("Отдел кадров Jobers"));
    assert_eq!(e.to, vec![detail(APPLICANT, &folder)]);
    assert_eq!(e.reply_to, vec!["reply+tok-42@jobers.test"]);
    assert_eq!(e.subject, "Приглашение на собеседование");
    assert!(
        e.text
            .starts_with("Анна, здравствуйте!\nЖдём вас завтра в 10:00."),
        "{}",
        e.text
    );
    assert!(e.text.ends_with("-- \nМария Иванова, HR"), "{:?}", e.text);
    let html = e.html.as_deref().expect("an HTML part");
    assert!(html.contains("<b>завтра в 10:00</b>"), "{html}");
    assert!(html.contains("jobers-signature"), "{html}");
    assert_eq!(e.attachments.len(), 2);
    assert_eq!(e.attachments[0].file_name, "Описание вакансии.pdf");
    assert_eq!(e.attachments[0].content_type, "application/pdf");
    assert_eq!(
        e.attachments[0].data, pdf,
        "attachment bytes survive the trip"
    );
    assert_eq!(e.attachments[1].file_name, "map.txt");
    assert_eq!(e.attachments[1].data, "ул. Ленина, 1".as_bytes());
    assert!(!e.auto_submitted);
    assert!(e.bounce.is_none());
    assert!(e.in_reply_to.is_none() && e.references.is_empty());
    assert_eq!(e.imap_uid, Some(cursor.last_uid));
    assert!(e.date.is_some());

    // Read again from the cursor: nothing new.
    let (again, same) = fetch_since(&applicant, Some(cursor)).await.unwrap();
    assert!(again.is_empty());
    assert_eq!(same, cursor);
}

#[tokio::test]
async fn an_answer_written_by_a_mail_client_threads_and_is_trimmed() {
    // The recruiter writes from the thread; the applicant's client answers to Reply-To.
    let token = unique("t");
    let folder = unique("client");
    let recruiter = mailbox(RECRUITER, "INBOX");
    let applicant = mailbox(APPLICANT, &folder);
    let replies = mailbox(REPLY, &token);
    let first = send(
        &recruiter,
        &OutboundEmail {
            id: unique("m"),
            to: detail(APPLICANT, &folder),
            subject: "Собеседование".into(),
            text: "Анна, ждём вас завтра в 10:00.".into(),
            reply_token: Some(token.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (got, _) = fetch_n(&applicant, 1).await;
    let original = &got[0];
    let reply_to = original.reply_to[0].clone();
    assert_eq!(reply_to, format!("reply+{token}@jobers.test"));

    // Gmail-style answer: multipart/alternative, quoted text, gmail_quote HTML.
    let gmail = format!(
        "From: =?UTF-8?B?0JDQvdC90LAg0J/QtdGC0YDQvtCy0LA=?= <{APPLICANT}>
To: =?UTF-8?B?0J7RgtC00LXQuyDQutCw0LTRgNC+0LI=?= <{reply_to}>
Subject: Re: =?UTF-8?B?0KHQvtCx0LXRgdC10LTQvtCy0LDQvdC40LU=?=
Date: Mon, 1 Dec 2025 10:15:00 +0300
Message-ID: <CAGmail{token}@mail.gmail.com>
In-Reply-To: <{mid}>
References: <{mid}>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=\"0000000000007a1b\"

--0000000000007a1b
Content-Type: text/plain; charset=\"UTF-8\"
Content-Transfer-Encoding: base64

{text_b64}
--0000000000007a1b
Content-Type: text/html; charset=\"UTF-8\"
Content-Transfer-Encoding: quoted-printable

<div dir=3D\"ltr\">Да, приду.<br></div><br><div class=3D\"gmail_quote\"><div dir=3D=
\"ltr\" class=3D\"gmail_attr\">пн, 1 дек. 2025 г. в 10:00, Отдел кадров &lt;<a href=3D\"mailto:{RECRUITER}\">{RECRUITER}</a>&gt;:<br></div><blockquote class=3D\"gmail_quote\" style=3D\"margin:0px 0px 0px 0.8ex\">Анна, ждём вас завтра в 10:00.</blockquote></div>
--0000000000007a1b--
",
        mid = first.message_id,
        text_b64 = b64(
            format!(
                "Да, приду.\r\n\r\nпн, 1 дек. 2025 г. в 10:00, Отдел кадров <{RECRUITER}>:\r\n\r\n> Анна, ждём вас завтра в 10:00.\r\n"
            )
            .as_bytes()
        ),
    );
    deliver_raw(APPLICANT, Some(APPLICANT), &reply_to, &gmail).await;

    // Outlook-style answer to the same thread: HTML only, reply header block.
    let outlook = format!(
        "From: Anna Petrova <{APPLICANT}>
To: \"HR\" <{reply_to}>
Subject: RE: Interview
Message-ID: <AM0PR01MB{token}@eurprd01.prod.outlook.com>
In-Reply-To: <{mid}>
Thread-Topic: Interview
MIME-Version: 1.0
Content-Type: text/html; charset=\"utf-8\"
Content-Transfer-Encoding: 8bit

<html><body><div style=\"font-family:Aptos\">Could we move it to 11:00?</div><div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\"><div id=\"divRplyFwdMsg\" dir=\"ltr\"><b>From:</b> HR &lt;{RECRUITER}&gt;<br><b>Sent:</b> Monday, December 1, 2025 10:00<br><b>To:</b> Anna<br><b>Subject:</b> Interview</div><div>Anna, we are waiting for you tomorrow at 10:00.</div></body></html>
",
        mid = first.message_id,
    );
    deliver_raw(APPLICANT, Some(APPLICANT), &reply_to, &outlook).await;

    let (answers, _) = fetch_n(&replies, 2).await;
    assert_eq!(answers.len(), 2);
    let g = &answers[0];
    assert_eq!(g.reply_tokens, vec![token.clone()]);
    assert_eq!(g.in_reply_to.as_deref(), Some(first.message_id.as_str()));
    assert_eq!(g.references, vec![first.message_id.clone()]);
    assert_eq!(g.message_id, format!("CAGmail{token}@mail.gmail.com"));
    assert_eq!(g.from_address, APPLICANT);
    assert_eq!(g.from_name.as_deref(), Some("Анна Петрова"));
    assert_eq!(g.subject, "Re: Собеседование");
    assert!(!g.auto_submitted);
    let trimmed = trim_quoted(&g.text, g.html.as_deref());
    assert!(trimmed.had_quote);
    assert_eq!(trimmed.text_without_quote, "Да, приду.");
    let html = trimmed.html_without_quote.unwrap();
    assert!(
        html.contains("Да, приду.") && !html.contains("ждём"),
        "{html}"
    );
    assert!(g.text.contains("> Анна, ждём вас"), "the full text is kept");

    let o = &answers[1];
    assert_eq!(o.reply_tokens, vec![token.clone()]);
    assert_eq!(o.in_reply_to.as_deref(), Some(first.message_id.as_str()));
    let trimmed = trim_quoted(&o.text, o.html.as_deref());
    assert!(trimmed.had_quote);
    assert_eq!(trimmed.text_without_quote, "Could we move it to 11:00?");
    assert!(!trimmed
        .html_without_quote
        .unwrap()
        .contains("waiting for you"));
}

#[tokio::test]
async fn the_reader_resumes_from_its_cursor_without_losing_or_repeating_mail() {
    let folder = unique("resume");
    let applicant = mailbox(APPLICANT, &folder);
    let to = detail(APPLICANT, &folder);
    let raw = |n: u32| {
        format!(
            "From: {RECRUITER}\nTo: {to}\nSubject: n{n}\nMessage-ID: <{folder}-{n}@jobers.test>\n\nmessage {n}\n"
        )
    };
    for n in 1..=3 {
        deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw(n)).await;
    }
    let (first, cursor) = fetch_n(&applicant, 3).await;
    let ids = |v: &[InboundEmail]| v.iter().map(|e| e.message_id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&first),
        (1..=3)
            .map(|n| format!("{folder}-{n}@jobers.test"))
            .collect::<Vec<_>>()
    );

    // A crash before the cursor was persisted: the next start reads the same mail again
    // (nothing lost; the hub deduplicates by Message-ID).
    let (replay, replay_cursor) = fetch_since(&applicant, None).await.unwrap();
    assert_eq!(ids(&replay), ids(&first));
    assert_eq!(replay_cursor, cursor);

    // Persisted cursor, restart: nothing is read twice …
    let (none, same) = fetch_since(&applicant, Some(cursor)).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(same, cursor);
    // … and mail that arrived while the reader was down is picked up, once.
    for n in 4..=5 {
        deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw(n)).await;
    }
    let (later, cursor2) = fetch_since(&applicant, Some(cursor)).await.unwrap();
    assert_eq!(
        ids(&later),
        vec![
            format!("{folder}-4@jobers.test"),
            format!("{folder}-5@jobers.test")
        ]
    );
    assert!(cursor2.last_uid > cursor.last_uid);
    assert_eq!(cursor2.uid_validity, cursor.uid_validity);
    let (none, _) = fetch_since(&applicant, Some(cursor2)).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_uidvalidity_change_reads_the_folder_again() {
    let folder = unique("uidv");
    let applicant = mailbox(APPLICANT, &folder);
    let to = detail(APPLICANT, &folder);
    for n in 1..=2 {
        let raw = format!("From: {RECRUITER}\nSubject: old {n}\nMessage-ID: <{folder}-old{n}@jobers.test>\n\nold\n");
        deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw).await;
    }
    let (_, cursor) = fetch_n(&applicant, 2).await;
    assert_eq!(cursor.last_uid, 2);

    // The folder is deleted and made again (a server restore, a migration): UIDs restart at 1.
    delete_folder(APPLICANT, &folder).await;
    let raw =
        format!("From: {RECRUITER}\nSubject: new\nMessage-ID: <{folder}-new@jobers.test>\n\nnew\n");
    deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw).await;

    assert_eq!(
        wait_for_change(&applicant, Some(cursor), Duration::from_secs(5))
            .await
            .unwrap(),
        Change::Changed,
        "a new UIDVALIDITY is a change"
    );
    let (emails, new_cursor) = fetch_since(&applicant, Some(cursor)).await.unwrap();
    assert_ne!(new_cursor.uid_validity, cursor.uid_validity);
    assert_eq!(
        emails
            .iter()
            .map(|e| e.message_id.as_str())
            .collect::<Vec<_>>(),
        vec![format!("{folder}-new@jobers.test")],
        "UID 1 of the new folder is read although the old cursor was at 2"
    );
    assert_eq!(new_cursor.last_uid, 1);
}

async fn delete_folder(user: &str, folder: &str) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", env_port("JOBERS_TEST_IMAP_PORT")))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap();
    let mut session = client
        .login(user, password())
        .await
        .map_err(|e| e.0)
        .unwrap();
    session.delete(folder).await.unwrap();
    session.logout().await.unwrap();
}

#[tokio::test]
async fn a_delivery_status_notification_names_the_original_message() {
    let folder = unique("dsn");
    let recruiter_inbox = mailbox(RECRUITER, &folder);
    let sent = send(
        &mailbox(RECRUITER, "INBOX"),
        &OutboundEmail {
            id: unique("m"),
            to: detail(APPLICANT, &unique("x")),
            subject: "Вакансия".into(),
            text: "Здравствуйте".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // What a receiving MTA sends back to the envelope sender, from the null sender.
    let dsn = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>
To: {RECRUITER}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 1 Dec 2025 10:01:00 +0300
Message-ID: <{folder}.dsn@mx.example.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"DSN.b1\"

--DSN.b1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--DSN.b1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.test
X-Postfix-Queue-ID: 4dQ1x2
Arrival-Date: Mon,  1 Dec 2025 10:00:59 +0300 (MSK)

Final-Recipient: rfc822; gone@example.test
Original-Recipient: rfc822;gone@example.test
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx2.example.test
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.test>: Recipient address rejected:
    User unknown in virtual mailbox table

--DSN.b1
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: {RECRUITER}
To: gone@example.test
Subject: =?UTF-8?B?0JLQsNC60LDQvdGB0LjRjw==?=
Message-ID: <{mid}>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Здравствуйте

--DSN.b1--
",
        mid = sent.message_id
    );
    deliver_raw(RECRUITER, None, &detail(RECRUITER, &folder), &dsn).await;

    let (emails, _) = fetch_n(&recruiter_inbox, 1).await;
    let e = &emails[0];
    assert!(e.auto_submitted, "a bounce never triggers bots");
    let bounce = e.bounce.as_ref().expect("a bounce");
    assert!(bounce.is_failure());
    assert_eq!(
        bounce.original_message_id.as_deref(),
        Some(sent.message_id.as_str())
    );
    assert_eq!(bounce.recipient.as_deref(), Some("gone@example.test"));
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        bounce.reason,
        "550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown in virtual mailbox table"
    );
}

#[tokio::test]
async fn auto_replies_are_flagged() {
    let folder = unique("auto");
    let inbox = mailbox(RECRUITER, &folder);
    let to = detail(RECRUITER, &folder);
    let messages = [
        ("ooo", "Auto-Submitted: auto-replied\nX-Autoreply: yes\nSubject: Автоматический ответ: Собеседование\n"),
        ("exchange", "X-Auto-Response-Suppress: All\nSubject: Automatic reply: Interview\n"),
        ("bulk", "Precedence: bulk\nSubject: Newsletter\n"),
        ("person", "Auto-Submitted: no\nSubject: Re: Interview\n"),
    ];
    for (name, headers) in messages {
        let raw = format!(
            "From: {APPLICANT}\nTo: {to}\nMessage-ID: <{folder}-{name}@example.test>\n{headers}\nI am away until Monday.\n"
        );
        deliver_raw(APPLICANT, Some(APPLICANT), &to, &raw).await;
    }
    let (emails, _) = fetch_n(&inbox, 4).await;
    let flags: Vec<(String, bool)> = emails
        .iter()
        .map(|e| (e.message_id.clone(), e.auto_submitted))
        .collect();
    assert_eq!(
        flags,
        vec![
            (format!("{folder}-ooo@example.test"), true),
            (format!("{folder}-exchange@example.test"), true),
            (format!("{folder}-bulk@example.test"), true),
            (format!("{folder}-person@example.test"), false),
        ]
    );
}

#[tokio::test]
async fn refused_recipients_fail_for_good_with_the_servers_text() {
    let err = send(
        &mailbox(RECRUITER, "INBOX"),
        &OutboundEmail {
            id: unique("m"),
            to: "nobody@example.test".into(),
            subject: "x".into(),
            text: "x".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    match err {
        SendError::Permanent { reason } => {
            assert!(reason.contains("550"), "{reason}");
            assert!(reason.contains("User doesn't exist"), "{reason}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_password_needs_a_new_login() {
    let mut settings = mailbox(RECRUITER, "INBOX");
    settings.smtp.password = "wrong".into();
    settings.imap.password = "wrong".into();
    let err = send(
        &settings,
        &OutboundEmail {
            id: unique("m"),
            to: APPLICANT.into(),
            subject: "x".into(),
            text: "x".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, SendError::Auth { message } if message.contains("535")),
        "{err:?}"
    );

    let err = fetch_since(&settings, None).await.unwrap_err();
    assert!(matches!(err, FetchError::Auth { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::AuthFailure);
    let err = wait_for_change(&settings, None, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Auth { .. }), "{err:?}");
}

#[tokio::test]
async fn a_closed_port_is_a_retryable_network_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut settings = mailbox(RECRUITER, "INBOX");
    settings.smtp.port = port;
    settings.imap.port = port;
    let started = Instant::now();
    let err = send(
        &settings,
        &OutboundEmail {
            id: unique("m"),
            to: APPLICANT.into(),
            subject: "x".into(),
            text: "x".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            SendError::Retryable {
                class: ErrorClass::NoNetwork,
                ..
            }
        ),
        "{err:?}"
    );
    let err = fetch_since(&settings, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Retryable {
                class: ErrorClass::NoNetwork,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::NoNetwork);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_missing_folder_is_a_settings_problem() {
    let err = fetch_since(&mailbox(APPLICANT, &unique("missing")), None)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Mailbox { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::NoInbound);
}

#[tokio::test]
async fn idle_wakes_the_reader_when_mail_arrives() {
    let folder = unique("idle");
    let applicant = mailbox(APPLICANT, &folder);
    let to = detail(APPLICANT, &folder);
    let raw = |n: u32| {
        format!("From: {RECRUITER}\nSubject: {n}\nMessage-ID: <{folder}-{n}@jobers.test>\n\nhi\n")
    };
    deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw(1)).await;
    let (_, cursor) = fetch_n(&applicant, 1).await;

    // Nothing new: the wait ends with the timeout.
    let started = Instant::now();
    let change = wait_for_change(&applicant, Some(cursor), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(change, Change::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Mail arriving during IDLE ends the wait long before the timeout.
    let waiter = {
        let applicant = applicant.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let change = wait_for_change(&applicant, Some(cursor), Duration::from_secs(30)).await;
            (change, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw(2)).await;
    let (change, waited) = waiter.await.unwrap();
    assert_eq!(change.unwrap(), Change::Changed);
    assert!(waited < Duration::from_secs(15), "woke after {waited:?}");
    let (new, _) = fetch_since(&applicant, Some(cursor)).await.unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].message_id, format!("{folder}-2@jobers.test"));

    // Mail that came between the fetch and the wait is seen at once.
    deliver_raw(RECRUITER, Some(RECRUITER), &to, &raw(3)).await;
    let started = Instant::now();
    let change = wait_for_change(&applicant, Some(cursor), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(change, Change::Changed);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn reply_addresses_round_trip() {
    let address = email::reply_address("abc-1", "jobers.test");
    assert_eq!(email::reply_token_of(&address).as_deref(), Some("abc-1"));
}
