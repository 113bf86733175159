//! The demo company: what `jobers demo` creates (once) so that a first run shows a working
//! workspace without any setup.

use crate::auth::AuthService;
use crate::store::{Db, NewUser, Role, StoreError};

pub const DEMO_TENANT: &str = "demo";
/// Every demo user's password. Demo data only: the README lists it.
pub const DEMO_PASSWORD: &str = "jobers-demo";

pub struct DemoLogin {
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
}

pub const DEMO_USERS: &[DemoLogin] = &[
    DemoLogin {
        email: "admin@demo.jobers.local",
        name: "Анна Админова",
        role: Role::Admin,
    },
    DemoLogin {
        email: "supervisor@demo.jobers.local",
        name: "Сергей Руководов",
        role: Role::Supervisor,
    },
    DemoLogin {
        email: "olga@demo.jobers.local",
        name: "Ольга Подборова",
        role: Role::Recruiter,
    },
    DemoLogin {
        email: "ivan@demo.jobers.local",
        name: "Иван Наймов",
        role: Role::Recruiter,
    },
];

/// Creates the demo tenant, its departments and users when they do not exist yet.
pub async fn seed(db: &Db, auth: &AuthService) -> anyhow::Result<&'static [DemoLogin]> {
    let tenant = match db.tenant_by_slug(DEMO_TENANT).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => db.create_tenant(DEMO_TENANT, "Демо: ООО «Джоберс»").await?,
        Err(e) => return Err(e.into()),
    };
    let tdb = db.for_tenant(&tenant.id);
    let mut departments = tdb.list_departments().await?;
    if departments.is_empty() {
        for name in ["Подбор персонала", "Продажи"] {
            departments.push(tdb.create_department(name).await?);
        }
    }
    let hash = auth.hasher().hash(DEMO_PASSWORD).await?;
    for (i, login) in DEMO_USERS.iter().enumerate() {
        match tdb.credentials_by_email(login.email).await {
            Ok(_) => continue,
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        tdb.create_user(NewUser {
            email: login.email.into(),
            name: login.name.into(),
            role: login.role,
            department_id: departments.get(i % departments.len()).map(|d| d.id.clone()),
            phone: None,
            title: None,
            password_hash: hash.clone(),
        })
        .await?;
    }
    Ok(DEMO_USERS)
}

pub fn print_banner(url: &str, logins: &[DemoLogin]) {
    println!();
    println!("  Jobers demo is running at {url}");
    println!("  API description: {url}/api/v1/openapi.json");
    println!("  Company (tenant): {DEMO_TENANT}    password for every user: {DEMO_PASSWORD}");
    for l in logins {
        println!("    {:<11} {}", l.role.as_str(), l.email);
    }
    println!("  Stop with Ctrl-C.");
    println!();
}

/// The demo's simulated applicants: an SMS line served by the webhook channel's simulator
/// (in this process), a routing queue with the two recruiters, and a few applicants who
/// have written. The simulated applicants report delivery, read replies and answer them.
pub async fn simulate(app: &crate::App, url: &str) -> anyhow::Result<()> {
    use jobers_channels::webhook::{HubLink, InboundPayload, Sender, Simulator};
    use std::time::Duration;

    let tenant = app.db().tenant_by_slug(DEMO_TENANT).await?;
    let tdb = app.db().for_tenant(&tenant.id);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = Simulator::start(listener, None).await;
    let queue = match tdb.queues().await?.into_iter().next() {
        Some(q) => q,
        None => {
            let mut members = Vec::new();
            for email in ["olga@demo.jobers.local", "ivan@demo.jobers.local"] {
                if let Ok(c) = tdb.credentials_by_email(email).await {
                    members.push(crate::store::QueueMember {
                        user_id: c.id,
                        capacity: 5,
                    });
                }
            }
            tdb.save_queue(
                None,
                &crate::store::QueueInput {
                    name: "Линейный персонал".into(),
                    department_id: None,
                    vacancy: None,
                    strategy: "round_robin".into(),
                    away_limit_s: Some(15 * 60),
                    response_limit_s: Some(30 * 60),
                    members,
                },
            )
            .await?
        }
    };
    let settings = serde_json::json!({ "url": sim.url() });
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let account = demo_account(
        &tdb,
        crate::store::NewChannelAccount {
            kind: "sms",
            provider: "webhook",
            name: "SMS (демо)",
            address: "+375290000000",
            owner_user_id: None,
            settings: &settings,
            secret: Some(&secret),
            queue_id: Some(&queue.id),
            inbound_expected_within_s: None,
        },
    )
    .await?;
    let secret = account.secret.clone().unwrap_or_default();
    sim.link(HubLink {
        base: url.to_string(),
        account_id: account.id.clone(),
        secret,
        delivered_after: Duration::from_millis(800),
        read_after: Duration::from_secs(3),
        reply_after: Some(Duration::from_secs(6)),
    });
    let twilio = twilio_line(&tdb, &queue.id, url).await?;
    let mail = mail_line(&tdb, &queue.id, url).await?;
    let threads = tdb
        .list_threads(
            "",
            &crate::store::ThreadFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    if threads.is_empty() {
        // The Twilio line and the mailbox first: the three SMS applicants are the newest.
        let first_words = [
            (
                &twilio,
                InboundPayload {
                    id: "demo-twilio-0".into(),
                    from: Sender {
                        name: Some("Алексей Водителев".into()),
                        phone: Some("+79035556677".into()),
                        ..Default::default()
                    },
                    text: "Добрый вечер. Вакансия водителя категории C ещё открыта?".into(),
                    html: None,
                    subject: None,
                    refs: Vec::new(),
                    vacancy: Some("Водитель".into()),
                    attachments: Vec::new(),
                    auto_submitted: false,
                },
            ),
            (
                &mail,
                InboundPayload {
                    id: "<demo-mail-0@example.test>".into(),
                    from: Sender {
                        name: Some("Ирина Бухгалтерова".into()),
                        email: Some("irina@example.test".into()),
                        ..Default::default()
                    },
                    text: String::new(),
                    html: Some(
                        "<p>Здравствуйте!</p><p>Прошу рассмотреть моё резюме на должность \
                         <b>бухгалтера</b>. Опыт работы — 7 лет.</p>"
                            .into(),
                    ),
                    subject: Some("Резюме на должность бухгалтера".into()),
                    refs: Vec::new(),
                    vacancy: Some("Бухгалтер".into()),
                    attachments: Vec::new(),
                    auto_submitted: false,
                },
            ),
        ];
        for (account, payload) in first_words {
            app.switch()
                .ingest(account, payload)
                .await
                .map_err(|e| anyhow::anyhow!("seeding demo threads: {e}"))?;
        }
        let applicants = [
            (
                "Мария Курьерова",
                "+375291112233",
                "Здравствуйте! Видела вакансию курьера, ещё актуально?",
                "Курьер",
            ),
            (
                "Дмитрий Складов",
                "+79161234567",
                "Добрый день, хочу на склад, график 2/2 есть?",
                "Кладовщик",
            ),
            (
                "Елена Продавцова",
                "+375447654321",
                "Можно прийти на собеседование завтра?",
                "Продавец-консультант",
            ),
        ];
        for (i, (name, phone, text, vacancy)) in applicants.into_iter().enumerate() {
            app.switch()
                .ingest(
                    &account,
                    InboundPayload {
                        id: format!("demo-{i}"),
                        from: Sender {
                            name: Some(name.into()),
                            phone: Some(phone.into()),
                            ..Default::default()
                        },
                        text: text.into(),
                        html: None,
                        subject: None,
                        refs: Vec::new(),
                        vacancy: Some(vacancy.into()),
                        attachments: Vec::new(),
                        auto_submitted: false,
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("seeding demo threads: {e}"))?;
        }
    }
    simulate_board(app, url, &tdb, &queue.id).await?;
    // The simulators live as long as the process.
    Ok(())
}

/// A HeadHunter simulator with a connected demo employer account (rabota.by): vacancies
/// with responses — one applicant hid everything, one is the SMS applicant Мария — and,
/// while the demo runs, new applicants who respond and write in the board chat.
async fn simulate_board(
    app: &crate::App,
    url: &str,
    tdb: &crate::store::TenantDb,
    queue_id: &str,
) -> anyhow::Result<()> {
    use jobers_channels::boards::hh::simulator::{Applicant, HhSimulator, ADMIN_MANAGER};
    use std::time::Duration;

    let redirect = format!("{url}/api/v1/oauth/hh/callback");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = HhSimulator::start(listener, "jobers-demo", "jobers-demo-secret", &redirect).await;
    sim.set_webhook_retry(Duration::from_secs(1), 5);
    let applicant = |first: &str, last: &str, phone: &str, hidden: &[&str]| Applicant {
        first_name: first.into(),
        last_name: last.into(),
        middle_name: None,
        phone: Some(phone.into()),
        email: Some(format!("{}@mail.example", phone.trim_start_matches('+'))),
        city: "Минск".into(),
        title: "Курьер".into(),
        hidden: hidden.iter().map(|h| h.to_string()).collect(),
    };
    let courier = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let seller = sim.add_vacancy("Продавец-консультант", "Минск", ADMIN_MANAGER);
    sim.add_response(
        &courier,
        applicant("Мария", "Курьерова", "+375291112233", &[]),
    );
    sim.add_response(&courier, applicant("Олег", "Быстров", "+375293334455", &[]));
    sim.add_response(
        &seller,
        applicant(
            "Скрытый",
            "Соискатель",
            "+375295556677",
            &["names_and_photo", "phones", "email", "other_contacts"],
        ),
    );
    let settings = serde_json::json!({
        "site": "rabota.by", "client_id": "jobers-demo", "redirect_uri": redirect,
        "api_base": sim.base_url(), "oauth_base": sim.base_url(),
        "user_agent": "JobersDemo/1.0 (demo@jobers.local)",
    });
    let secret = crate::switch::boards::HhSecret {
        client_secret: "jobers-demo-secret".into(),
        tokens: None,
    }
    .to_json();
    let account = demo_account(
        tdb,
        crate::store::NewChannelAccount {
            kind: "board",
            provider: "hh",
            name: "rabota.by (демо)",
            address: "rabota.by",
            owner_user_id: None,
            settings: &settings,
            secret: Some(&secret),
            queue_id: Some(queue_id),
            inbound_expected_within_s: None,
        },
    )
    .await?;
    // The employer logs in (the simulator's authorize page approves at once).
    let (client, mut secret) = crate::switch::boards::client_for(&account, Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!(e))?;
    let request = client.authorization_request();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let answer = browser.get(&request.url).send().await?;
    let location = answer
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("the board simulator did not redirect"))?;
    let query: std::collections::HashMap<String, String> = url::Url::parse(location)?
        .query_pairs()
        .into_owned()
        .collect();
    let tokens = client
        .complete_authorization(
            &request,
            query.get("state").map(String::as_str),
            query.get("code").map(String::as_str),
            query.get("error").map(String::as_str),
        )
        .await?;
    secret.tokens = Some(tokens.clone());
    let account = tdb
        .set_channel_secret(&account.id, &secret.to_json())
        .await?;
    crate::switch::boards::connected(app.switch(), tdb, &account, &client, &tokens).await?;
    // New applicants keep coming while the demo runs, and write in the board chat.
    tokio::spawn(async move {
        let names = [
            ("Ирина", "Новикова"),
            ("Павел", "Сидоров"),
            ("Анна", "Ковалёва"),
            ("Максим", "Лебедев"),
        ];
        for i in 0u32.. {
            tokio::time::sleep(Duration::from_secs(40)).await;
            let (first, last) = names[i as usize % names.len()];
            let phone = format!("+37529{:07}", 7_000_000 + i);
            let vacancy = if i % 2 == 0 { &courier } else { &seller };
            let created = sim.add_response(vacancy, applicant(first, last, &phone, &[]));
            tokio::time::sleep(Duration::from_secs(15)).await;
            sim.applicant_writes(
                &created.chat_id,
                "Добрый день! Когда можно подойти на собеседование?",
            );
        }
    });
    Ok(())
}

/// A second SMS number on a simulated Twilio-compatible API, whose applicants answer.
async fn twilio_line(
    tdb: &crate::store::TenantDb,
    queue: &str,
    url: &str,
) -> anyhow::Result<crate::store::ChannelAccount> {
    use jobers_channels::sms::twilio::TwilioSimulator;
    const SID: &str = "ACdemo0000000000000000000000000000";
    const NAME: &str = "SMS Twilio (демо)";
    let existing = tdb
        .channel_accounts()
        .await?
        .into_iter()
        .find(|a| a.provider == "twilio" && a.name == NAME);
    let token = existing
        .as_ref()
        .and_then(|a| a.secret.clone())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = TwilioSimulator::start(listener, SID, &token).await;
    let settings = serde_json::json!({"account_sid": SID, "base_url": sim.base_url()});
    let account = demo_account(
        tdb,
        crate::store::NewChannelAccount {
            kind: "sms",
            provider: "twilio",
            name: NAME,
            address: "+15005550006",
            owner_user_id: None,
            settings: &settings,
            secret: Some(&token),
            queue_id: Some(queue),
            inbound_expected_within_s: None,
        },
    )
    .await?;
    sim.answer_through(
        &format!("{url}/api/v1/hooks/{}/twilio", account.id),
        std::time::Duration::from_secs(6),
    );
    Ok(account)
}

/// A mailbox played by the webhook channel's simulator (the demo needs no mail server):
/// letters with HTML, and applicants who answer.
async fn mail_line(
    tdb: &crate::store::TenantDb,
    queue: &str,
    url: &str,
) -> anyhow::Result<crate::store::ChannelAccount> {
    use jobers_channels::webhook::{HubLink, Simulator};
    const NAME: &str = "Почта (демо)";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = Simulator::start(listener, None).await;
    let settings = serde_json::json!({ "url": sim.url() });
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let account = demo_account(
        tdb,
        crate::store::NewChannelAccount {
            kind: "email",
            provider: "webhook",
            name: NAME,
            address: "hr@demo.jobers.local",
            owner_user_id: None,
            settings: &settings,
            secret: Some(&secret),
            queue_id: Some(queue),
            inbound_expected_within_s: None,
        },
    )
    .await?;
    sim.link(HubLink {
        base: url.to_string(),
        account_id: account.id.clone(),
        secret: account.secret.clone().unwrap_or_default(),
        delivered_after: std::time::Duration::from_millis(800),
        read_after: std::time::Duration::from_secs(3),
        reply_after: Some(std::time::Duration::from_secs(8)),
    });
    Ok(account)
}

/// The demo's account `new.name` of `new.provider`: created with `new` the first time; on
/// later starts the stored one (with its own secret), pointed at this run's simulator.
async fn demo_account(
    tdb: &crate::store::TenantDb,
    new: crate::store::NewChannelAccount<'_>,
) -> anyhow::Result<crate::store::ChannelAccount> {
    let existing = tdb
        .channel_accounts()
        .await?
        .into_iter()
        .find(|a| a.provider == new.provider && a.name == new.name);
    Ok(match existing {
        Some(a) => {
            tdb.update_channel_account(
                &a.id,
                &crate::store::ChannelAccountPatch {
                    settings: Some(new.settings.clone()),
                    ..Default::default()
                },
            )
            .await?
        }
        None => tdb.create_channel_account(new).await?,
    })
}
