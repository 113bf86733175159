//! The HeadHunter connector against the HeadHunter simulator.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use jobers_channels::boards::hh::simulator::{
    Applicant, HhSimulator, ADMIN_MANAGER, ADMIN_USER, MANAGER_MANAGER, MANAGER_USER,
};
use jobers_channels::boards::hh::{parse_webhook, HhClient, HhConfig, Site, WEBHOOK_ACTIONS};
use jobers_channels::boards::{
    AccountRole, BoardError, BoardTokens, ChatRole, HiddenField, WebhookPayload,
};
use jobers_channels::ErrorClass;

const REDIRECT: &str = "https://jobers.example/api/v1/boards/hh/callback";

async fn setup() -> (HhSimulator, HhClient) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = HhSimulator::start(listener, "client-1", "secret-1", REDIRECT).await;
    let mut config = HhConfig::production(
        Site::RabotaBy,
        "client-1",
        "secret-1",
        REDIRECT,
        "JobersTest/1.0 (ops@jobers.example)",
    );
    config.api_base = sim.base_url();
    config.oauth_base = sim.base_url();
    config.timeout = Duration::from_secs(5);
    (sim, HhClient::new(config))
}

/// Follows the authorize page like a browser would and returns the callback's query.
async fn authorize(url: &str) -> (Option<String>, Option<String>, Option<String>) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    (
        q.get("state").cloned(),
        q.get("code").cloned(),
        q.get("error").cloned(),
    )
}

async fn connect(sim: &HhSimulator, client: &HhClient, user: &str) -> BoardTokens {
    sim.authorize_as(user);
    let request = client.authorization_request();
    let (state, code, error) = authorize(&request.url).await;
    client
        .complete_authorization(
            &request,
            state.as_deref(),
            code.as_deref(),
            error.as_deref(),
        )
        .await
        .unwrap()
}

fn applicant(n: usize) -> Applicant {
    Applicant {
        first_name: format!("Имя{n}"),
        last_name: format!("Фамилия{n}"),
        middle_name: None,
        phone: Some(format!("+375 29 100-{:02}-{:02}", n / 100, n % 100)),
        email: Some(format!("applicant{n}@mail.example")),
        city: "Минск".into(),
        title: "Курьер".into(),
        hidden: vec![],
    }
}

#[tokio::test]
async fn oauth_connect_checks_state_and_pkce() {
    let (sim, client) = setup().await;
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    assert!(tokens.refresh_token.is_some());
    assert!(client.me(&tokens.access_token).await.is_ok());

    // A callback with another state is refused before the code is used.
    let request = client.authorization_request();
    let (_, code, _) = authorize(&request.url).await;
    let err = client
        .complete_authorization(&request, Some("forged"), code.as_deref(), None)
        .await
        .unwrap_err();
    assert_eq!(err.board_error(), Some(("state_mismatch", None)));

    // The code is bound to the PKCE challenge: another verifier does not redeem it.
    let err = client
        .exchange_code(code.as_deref().unwrap(), "not-the-verifier-of-this-code")
        .await
        .unwrap_err();
    assert_eq!(
        err.board_error(),
        Some(("invalid_grant", Some("bad code_verifier")))
    );

    // The right verifier does, once.
    let code = code.unwrap();
    assert!(client
        .exchange_code(&code, &request.code_verifier)
        .await
        .is_ok());
    let err = client
        .exchange_code(&code, &request.code_verifier)
        .await
        .unwrap_err();
    assert_eq!(
        err.board_error(),
        Some(("invalid_grant", Some("code has already been used")))
    );

    // The employer refuses on the board's page.
    sim.deny_next_authorization();
    let request = client.authorization_request();
    let (state, code, error) = authorize(&request.url).await;
    assert_eq!(error.as_deref(), Some("access_denied"));
    let err = client
        .complete_authorization(
            &request,
            state.as_deref(),
            code.as_deref(),
            error.as_deref(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.board_error(), Some(("access_denied", None)));
}

#[tokio::test]
async fn refresh_happens_only_after_expiry_and_only_once() {
    let (sim, client) = setup().await;
    let mut tokens = connect(&sim, &client, ADMIN_USER).await;
    let asked = sim.token_requests();

    // Not expired: no call to the token endpoint at all.
    assert!(!client.ensure_fresh(&mut tokens).await.unwrap());
    assert_eq!(sim.token_requests(), asked);
    // Forcing it is refused by the board, and the tokens stay usable.
    let err = client.refresh(&tokens).await.unwrap_err();
    assert_eq!(
        err.board_error(),
        Some(("invalid_grant", Some("token not expired")))
    );
    assert!(client.me(&tokens.access_token).await.is_ok());

    // Expired on the board: API calls ask for a refresh.
    sim.expire_access_tokens();
    assert_eq!(
        client.me(&tokens.access_token).await.unwrap_err(),
        BoardError::TokenExpired
    );
    let spent = tokens.clone();
    tokens.expires_at = 0; // the local clock agrees
    assert!(client.ensure_fresh(&mut tokens).await.unwrap());
    assert_ne!(tokens, spent);
    assert!(client.me(&tokens.access_token).await.is_ok());

    // The old refresh token was spent.
    let err = client.refresh(&spent).await.unwrap_err();
    assert!(err.needs_relogin());
    assert!(
        err.to_string().contains("token has already been refreshed"),
        "{err}"
    );
}

#[tokio::test]
async fn password_change_turns_the_account_to_relogin_needed() {
    let (sim, client) = setup().await;
    let mut tokens = connect(&sim, &client, ADMIN_USER).await;
    sim.change_password(ADMIN_USER);

    let err = client.me(&tokens.access_token).await.unwrap_err();
    assert!(err.needs_relogin(), "{err:?}");
    assert_eq!(err.class(), Some(ErrorClass::AuthFailure));

    sim.expire_access_tokens();
    tokens.expires_at = 0;
    let err = client.ensure_fresh(&mut tokens).await.unwrap_err();
    assert_eq!(
        err,
        BoardError::NeedsRelogin {
            reason: "token deactivated".into()
        }
    );

    // A new login works again.
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    assert!(client.me(&tokens.access_token).await.is_ok());

    // An outdated password: the token endpoint says `password invalidated`.
    sim.invalidate_password(ADMIN_USER);
    sim.expire_access_tokens();
    let err = client.refresh(&tokens).await.unwrap_err();
    assert_eq!(
        err,
        BoardError::NeedsRelogin {
            reason: "password invalidated".into()
        }
    );
}

#[tokio::test]
async fn logging_out_revokes_the_token() {
    let (sim, client) = setup().await;
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    client.revoke(&tokens.access_token).await.unwrap();
    assert!(client
        .me(&tokens.access_token)
        .await
        .unwrap_err()
        .needs_relogin());
    let err = client.refresh(&tokens).await.unwrap_err();
    assert!(err.to_string().contains("token was revoked"), "{err}");
}

#[tokio::test]
async fn admin_sees_every_vacancy_and_a_manager_only_its_own() {
    let (sim, client) = setup().await;
    let a = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let b = sim.add_vacancy("Кладовщик", "Гродно", MANAGER_MANAGER);
    let c = sim.add_vacancy("Водитель", "Брест", MANAGER_MANAGER);

    let admin = connect(&sim, &client, ADMIN_USER).await;
    let account = client.me(&admin.access_token).await.unwrap();
    assert_eq!(account.role, AccountRole::Admin);
    assert_eq!(account.manager_id, ADMIN_MANAGER);
    let page = client
        .active_vacancies(&admin.access_token, &account, 0, 20)
        .await
        .unwrap();
    let ids: HashSet<_> = page.items.iter().map(|v| v.id.clone()).collect();
    assert_eq!(ids, HashSet::from([a.clone(), b.clone(), c.clone()]));
    let mine = client.manager_accounts(&admin.access_token).await.unwrap();
    assert!(mine.iter().any(|m| m.primary && m.id == ADMIN_MANAGER));

    let manager = connect(&sim, &client, MANAGER_USER).await;
    let account = client.me(&manager.access_token).await.unwrap();
    assert_eq!(account.role, AccountRole::Manager);
    let page = client
        .active_vacancies(&manager.access_token, &account, 0, 20)
        .await
        .unwrap();
    let ids: HashSet<_> = page.items.iter().map(|v| v.id.clone()).collect();
    assert_eq!(ids, HashSet::from([b, c]));
    // Another manager's vacancy is not there for it.
    let err = client
        .vacancy_pipeline(&manager.access_token, &a)
        .await
        .unwrap_err();
    assert_eq!(
        err.board_error(),
        Some(("negotiations", Some("vacancy_not_found")))
    );
}

#[tokio::test]
async fn collections_are_read_per_vacancy_and_items_paged_with_counts() {
    let (sim, client) = setup().await;
    let vacancy = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let mut created = Vec::new();
    for n in 0..45 {
        created.push(sim.add_response(&vacancy, applicant(n)));
    }
    sim.set_state_on_board(&created[0].negotiation_id, "consider");
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    let token = &tokens.access_token;

    let pipeline = client.vacancy_pipeline(token, &vacancy).await.unwrap();
    let state_ids: Vec<&str> = pipeline.states.iter().map(|s| s.id.as_str()).collect();
    assert!(state_ids.contains(&"phone_interview") && state_ids.contains(&"discard_by_employer"));
    assert_eq!(pipeline.total(), Some(45));

    // Import everything, collection by collection, page by page.
    let mut seen = HashSet::new();
    for collection in &pipeline.collections {
        let mut page_no = 0;
        loop {
            let page = client
                .negotiations(token, collection, page_no, 20)
                .await
                .unwrap();
            assert_eq!(page.found, collection.total.unwrap());
            for n in &page.items {
                assert_eq!(n.vacancy_id, vacancy);
                assert_eq!(n.state.id, collection.id);
                assert!(n.chat_id.is_some() && n.resume_id.is_some());
                assert!(seen.insert(n.id.clone()), "listed twice: {}", n.id);
            }
            match page.next_page() {
                Some(p) => page_no = p,
                None => break,
            }
        }
    }
    assert_eq!(seen.len(), 45);
    let response = pipeline
        .collections
        .iter()
        .find(|c| c.id == "response")
        .unwrap();
    let first = client.negotiations(token, response, 0, 20).await.unwrap();
    assert_eq!((first.found, first.pages, first.items.len()), (44, 3, 20));

    // "New responses": the board's count against what was imported.
    sim.add_response(&vacancy, applicant(100));
    let again = client.vacancy_pipeline(token, &vacancy).await.unwrap();
    assert_eq!(again.total().unwrap() - seen.len() as u64, 1);
    let vacancies = client
        .active_vacancies(token, &client.me(token).await.unwrap(), 0, 20)
        .await
        .unwrap();
    assert_eq!(vacancies.items[0].responses, Some(46));
}

#[tokio::test]
async fn state_changes_go_through_the_items_actions_with_a_message() {
    let (sim, client) = setup().await;
    let vacancy = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let created = sim.add_response(&vacancy, applicant(1));
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    let token = &tokens.access_token;

    let n = client
        .negotiation(token, &created.negotiation_id)
        .await
        .unwrap();
    assert_eq!(n.state.id, "response");
    assert_eq!(n.chat_id.as_deref(), Some(created.chat_id.as_str()));
    let invite = n.action_to("interview").unwrap();
    assert!(invite.requires("message"));

    // The board wants a message for an invitation: refused before the call.
    let err = client
        .change_state(token, &n, "interview", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.board_error(),
        Some(("negotiations", Some("empty_message")))
    );
    client
        .change_state(token, &n, "interview", Some("Приходите во вторник в 10:00"))
        .await
        .unwrap();
    assert_eq!(sim.negotiation_state(&n.id).as_deref(), Some("interview"));
    assert!(sim
        .chat(&created.chat_id)
        .contains(&("EMPLOYER".into(), "Приходите во вторник в 10:00".into())));

    // The employer moves it on the site; the connector reads the new state.
    sim.set_state_on_board(&n.id, "offer");
    let n = client.negotiation(token, &n.id).await.unwrap();
    assert_eq!(n.state.id, "offer");
    assert_eq!(n.state.name, "Предложение о работе");
    // A stale action (to the state it is already in) is refused by the board.
    let stale = client
        .perform_action(
            token,
            &jobers_channels::boards::BoardAction {
                id: "offer".into(),
                name: "Предложение".into(),
                enabled: true,
                method: "PUT".into(),
                url: format!("{}/negotiations/offer/{}", sim.base_url(), n.id),
                resulting_state: None,
                arguments: vec![],
            },
            Some("ещё раз"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        stale.board_error(),
        Some(("negotiations", Some("wrong_state")))
    );
}

#[tokio::test]
async fn hidden_resume_fields_come_back_as_none_with_placeholders() {
    let (sim, client) = setup().await;
    let vacancy = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let open = sim.add_response(&vacancy, applicant(1));
    let mut hiding = applicant(2);
    hiding.hidden = vec![
        "names_and_photo".into(),
        "phones".into(),
        "email".into(),
        "other_contacts".into(),
        "experience".into(),
    ];
    let hidden = sim.add_response(&vacancy, hiding);
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    let token = &tokens.access_token;

    let r = client.resume(token, &open.resume_id).await.unwrap();
    assert_eq!(r.full_name().as_deref(), Some("Фамилия1 Имя1"));
    assert_eq!(r.phone.as_deref(), Some("+375 29 100-00-01"));
    assert_eq!(r.email.as_deref(), Some("applicant1@mail.example"));
    assert_eq!(r.city.as_deref(), Some("Минск"));
    assert!(r.hidden.is_empty());
    assert!(r
        .alternate_url
        .unwrap()
        .starts_with("https://rabota.by/resume/"));
    let pdf = client
        .download(token, r.pdf_url.as_deref().unwrap())
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    let r = client.resume(token, &hidden.resume_id).await.unwrap();
    assert_eq!(
        (r.full_name(), r.phone.clone(), r.email.clone()),
        (None, None, None)
    );
    assert_eq!(
        r.hidden,
        vec![
            HiddenField::Name,
            HiddenField::Phones,
            HiddenField::Email,
            HiddenField::OtherContacts,
            HiddenField::Experience
        ]
    );
    assert_eq!(r.city.as_deref(), Some("Минск"));
    assert_eq!(
        HiddenField::Name.placeholder(&r.id),
        format!("Applicant {} hid the name", r.id)
    );
    assert!(r.pdf_url.is_some());
}

#[tokio::test]
async fn chat_sends_are_idempotent_and_the_in_a_row_limit_is_surfaced() {
    let (sim, client) = setup().await;
    let vacancy = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let created = sim.add_response(&vacancy, applicant(1));
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    let token = &tokens.access_token;
    let chat = &created.chat_id;

    let first = client
        .send_chat_message(token, chat, "Добрый день!", "msg-1")
        .await
        .unwrap();
    let again = client
        .send_chat_message(token, chat, "Добрый день!", "msg-1")
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.role, ChatRole::Employer);
    let employer_lines = sim.chat(chat).iter().filter(|m| m.0 == "EMPLOYER").count();
    assert_eq!(employer_lines, 1);

    for k in 2..=5 {
        client
            .send_chat_message(token, chat, &format!("Сообщение {k}"), &format!("msg-{k}"))
            .await
            .unwrap();
    }
    let err = client
        .send_chat_message(token, chat, "Шестое", "msg-6")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BoardError::ChatLimit {
            value: "in_a_row_limit".into()
        }
    );
    // A repeat of an accepted message is still answered with it.
    assert_eq!(
        client
            .send_chat_message(token, chat, "Добрый день!", "msg-1")
            .await
            .unwrap()
            .id,
        first.id
    );

    // The applicant answers: the employer may write again.
    sim.applicant_writes(chat, "Здравствуйте, удобно завтра")
        .unwrap();
    client
        .send_chat_message(token, chat, "Шестое", "msg-6")
        .await
        .unwrap();
    let page = client.chat_messages(token, chat, 0, 100).await.unwrap();
    assert_eq!(page.found, 8);
    assert_eq!(page.items[0].role, ChatRole::Applicant);
    assert!(page
        .items
        .iter()
        .any(|m| m.text.as_deref() == Some("Здравствуйте, удобно завтра")));
}

/// A receiver of HeadHunter's webhooks: answers 500 to the first `fail_first` requests.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let got: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hooks/hh",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let mut v = seen.lock().unwrap();
                v.push(body.to_vec());
                if v.len() <= fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/hh", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

async fn wait_for(got: &Arc<Mutex<Vec<Vec<u8>>>>, n: usize) {
    for _ in 0..200 {
        if got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} webhook requests, got {}",
        got.lock().unwrap().len()
    );
}

#[tokio::test]
async fn webhooks_are_retried_parsed_and_duplicates_recognisable() {
    let (sim, client) = setup().await;
    sim.set_webhook_retry(Duration::from_millis(30), 4);
    let vacancy = sim.add_vacancy("Курьер", "Минск", ADMIN_MANAGER);
    let tokens = connect(&sim, &client, ADMIN_USER).await;
    let token = &tokens.access_token;
    let (url, got) = receiver(1).await;

    let id = client
        .subscribe(token, &url, WEBHOOK_ACTIONS)
        .await
        .unwrap();
    let subs = client.webhook_subscriptions(token).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].url, url);
    assert_eq!(subs[0].actions.len(), WEBHOOK_ACTIONS.len());

    // The receiver fails the first delivery; the board retries.
    let created = sim.add_response(&vacancy, applicant(1));
    wait_for(&got, 2).await;
    let bodies = got.lock().unwrap().clone();
    let first = parse_webhook(&bodies[0]).unwrap();
    let retry = parse_webhook(&bodies[1]).unwrap();
    assert_eq!(first, retry);
    assert_eq!(first.subscription_id.as_deref(), Some(id.as_str()));
    assert_eq!(first.action_type, "NEW_NEGOTIATION_VACANCY");
    match &first.payload {
        WebhookPayload::NewNegotiation {
            negotiation_id,
            vacancy_id,
            chat_id,
            ..
        } => {
            assert_eq!(negotiation_id, &created.negotiation_id);
            assert_eq!(vacancy_id.as_deref(), Some(vacancy.as_str()));
            assert_eq!(chat_id.as_deref(), Some(created.chat_id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    let attempts: Vec<u16> = sim.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(attempts, vec![500, 200]);

    // Delivered twice: the same id, so the hub stores it once.
    sim.redeliver(&first.id);
    wait_for(&got, 3).await;
    let mut seen = HashSet::new();
    let fresh: Vec<_> = got
        .lock()
        .unwrap()
        .iter()
        .map(|b| parse_webhook(b).unwrap())
        .filter(|e| seen.insert(e.id.clone()))
        .collect();
    assert_eq!(fresh.len(), 1);

    // State changes and chat messages arrive too.
    sim.set_state_on_board(&created.negotiation_id, "consider");
    sim.applicant_writes(&created.chat_id, "Когда собеседование?");
    wait_for(&got, 5).await;
    let events: Vec<_> = got.lock().unwrap()[3..]
        .iter()
        .map(|b| parse_webhook(b).unwrap().payload)
        .collect();
    assert!(events.iter().any(|p| matches!(p,
        WebhookPayload::StateChanged { to_state, from_state, .. }
            if to_state == "consider" && from_state.as_deref() == Some("response"))));
    assert!(events.iter().any(|p| matches!(p,
        WebhookPayload::ChatMessage { chat_id, role: Some(ChatRole::Applicant), .. }
            if chat_id == &created.chat_id)));

    // Subscriptions can be changed and removed.
    client
        .update_subscription(token, &id, &url, &["NEGOTIATION_EMPLOYER_STATE_CHANGE"])
        .await
        .unwrap();
    assert_eq!(
        client.webhook_subscriptions(token).await.unwrap()[0].actions,
        vec!["NEGOTIATION_EMPLOYER_STATE_CHANGE"]
    );
    client.unsubscribe(token, &id).await.unwrap();
    assert!(client
        .webhook_subscriptions(token)
        .await
        .unwrap()
        .is_empty());

    assert!(parse_webhook(b"{not json").is_err());
    assert!(parse_webhook(br#"{"action_type":"X"}"#).is_err());
}

#[tokio::test]
async fn rate_limits_and_server_failures_are_retry_later() {
    let (sim, client) = setup().await;
    let tokens = connect(&sim, &client, ADMIN_USER).await;

    sim.rate_limit_next(1, 7);
    let err = client.me(&tokens.access_token).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(client.me(&tokens.access_token).await.is_ok());

    sim.fail_next(1, 503);
    let err = client.me(&tokens.access_token).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.class(), Some(ErrorClass::ServiceUnreachable));
    assert_eq!(err.retry_after(), None);

    sim.fail_next(1, 502);
    let mut expired = tokens.clone();
    expired.expires_at = 0;
    sim.expire_access_tokens();
    assert!(client
        .ensure_fresh(&mut expired)
        .await
        .unwrap_err()
        .is_retryable());
    // The failed refresh did not spend the refresh token.
    assert!(client.ensure_fresh(&mut expired).await.unwrap());
}

#[tokio::test]
async fn requests_without_a_user_agent_are_refused() {
    let (sim, _client) = setup().await;
    let bare = reqwest::Client::new();
    let r = bare
        .get(format!("{}/me", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["type"], "bad_user_agent");
}
