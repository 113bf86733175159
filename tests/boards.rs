//! Job boards in the hub against the HeadHunter simulator: the OAuth connect, the import
//! with its counters, resumption after a kill and after a re-login, webhooks (duplicates,
//! losses), hidden applicant fields, stage changes both ways and the board chat.

mod common;

use std::time::{Duration, Instant};

use common::ws::WsClient;
use common::*;
use jobers_channels::boards::hh::simulator::{Applicant, HhSimulator, ADMIN_USER, MANAGER_USER};
use reqwest::Method;
use serde_json::{json, Value};

struct Board {
    sim: HhSimulator,
    id: String,
}

/// Starts a simulator for the app's callback and adds a HeadHunter account to `ws`.
async fn board(app: &TestApp, ws: &Workspace) -> Board {
    let redirect = app.url("/api/v1/oauth/hh/callback");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = HhSimulator::start(listener, "client-1", "secret-1", &redirect).await;
    sim.set_webhook_retry(Duration::from_millis(200), 3);
    let r = app
        .post_json(
            "/api/v1/channel-accounts",
            Some(&ws.access()),
            json!({"kind": "board", "provider": "hh", "name": "rabota.by", "address": "rabota.by",
                   "settings": {"site": "rabota.by", "client_id": "client-1", "redirect_uri": redirect,
                                "api_base": sim.base_url(), "oauth_base": sim.base_url(),
                                "user_agent": "JobersTest/1.0 (ops@jobers.example)"},
                   "secret": "secret-1"}),
        )
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["secret"], "", "the client secret is not echoed");
    Board {
        sim,
        id: v["account"]["id"].as_str().unwrap().to_string(),
    }
}

/// The authorize page's redirect (what the browser would follow).
async fn authorize(app: &TestApp, ws: &Workspace, b: &Board) -> url::Url {
    let r = app
        .post_json(
            &format!("/api/v1/channel-accounts/{}/oauth/start", b.id),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .get(v["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap()
}

async fn connect(app: &TestApp, ws: &Workspace, b: &Board, user: &str) -> Value {
    b.sim.authorize_as(user);
    let callback = authorize(app, ws, b).await;
    assert!(callback
        .as_str()
        .starts_with(&app.url("/api/v1/oauth/hh/callback")));
    let r = app.client.get(callback.as_str()).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
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

async fn until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(app: &TestApp, ws: &Workspace, path: &str) -> Value {
    let r = app.get(path, &ws.access()).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

async fn status(app: &TestApp, ws: &Workspace, b: &Board) -> Value {
    get_json(app, ws, &format!("/api/v1/channel-accounts/{}/board", b.id)).await
}

async fn account(app: &TestApp, ws: &Workspace, b: &Board) -> Value {
    get_json(app, ws, &format!("/api/v1/channel-accounts/{}", b.id)).await
}

async fn applications(app: &TestApp, ws: &Workspace, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_json(
            app,
            ws,
            &format!("/api/v1/applications?limit=200&offset={offset}{query}"),
        )
        .await;
        let items = page.as_array().unwrap().clone();
        let n = items.len();
        all.extend(items);
        if n < 200 {
            return all;
        }
        offset += 200;
    }
}

async fn wait_imported(app: &TestApp, ws: &Workspace, b: &Board, n: i64) {
    until("the import finishes", 60, || async {
        let s = status(app, ws, b).await;
        s["initial_done"] == true && s["applications_created"] == n
    })
    .await;
    let s = status(app, ws, b).await;
    assert_eq!(s["responses_loaded"], n, "{s}");
    assert_eq!(s["differences"], json!([]), "{s}");
}

/// Every message of the applicant's thread.
async fn thread_messages(app: &TestApp, ws: &Workspace, thread: &str) -> Vec<Value> {
    get_json(
        app,
        ws,
        &format!("/api/v1/threads/{thread}/messages?limit=200"),
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn stage_id(app: &TestApp, ws: &Workspace, name: &str) -> String {
    let p = get_json(app, ws, "/api/v1/pipelines").await;
    p[0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn oauth_connect_checks_state_and_shows_admin_or_manager() {
    let app = spawn_app().await;
    let ws = app.workspace("hh-oauth").await;
    let b = board(&app, &ws).await;
    // Only admins start a connect.
    let recruiter = app
        .create_user(
            &ws.tenant,
            "r@hh-oauth.test",
            jobers::store::Role::Recruiter,
        )
        .await;
    let rt = app.login("hh-oauth", &recruiter.email, PASSWORD).await;
    let r = app
        .post_json(
            &format!("/api/v1/channel-accounts/{}/oauth/start", b.id),
            Some(rt["access_token"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 403);

    // A callback with a state this hub did not issue is refused, nothing stored.
    let mut callback = authorize(&app, &ws, &b).await;
    let code: String = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let real_state: String = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut forged = callback.clone();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged-state");
    let r = app.client.get(forged.as_str()).send().await.unwrap();
    assert_error(r, 400, "invalid_state").await;
    assert_eq!(status(&app, &ws, &b).await["connected"], false);

    // The real state works once.
    let r = app.client.get(callback.as_str()).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["board_account"]["role"], "admin", "{v}");
    let s = status(&app, &ws, &b).await;
    assert_eq!(s["connected"], true);
    assert_eq!(s["board_account"]["role"], "admin");
    callback
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", &real_state);
    let r = app.client.get(callback.as_str()).send().await.unwrap();
    assert_error(r, 400, "invalid_state").await;

    // The employer refuses: nothing changes.
    b.sim.deny_next_authorization();
    let denied = authorize(&app, &ws, &b).await;
    let r = app.client.get(denied.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 422);

    // A manager's login is shown as such.
    let v = connect(&app, &ws, &b, MANAGER_USER).await;
    assert_eq!(v["board_account"]["role"], "manager");
    assert_eq!(
        status(&app, &ws, &b).await["board_account"]["role"],
        "manager"
    );

    // Log out: the token is revoked and forgotten.
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/channel-accounts/{}/oauth", b.id),
            &ws.access(),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(status(&app, &ws, &b).await["connected"], false);
}

#[tokio::test]
async fn import_of_several_vacancies_counts_agree_and_new_responses_are_counted() {
    let app = spawn_app_with(|c| {
        c.switch.board_poll_ms = 60_000;
        c.switch.board_page_size = 3;
    })
    .await;
    let ws = app.workspace("hh-import").await;
    let b = board(&app, &ws).await;
    let mut n = 0;
    for v in 0..3 {
        let vacancy = b.sim.add_vacancy(&format!("Курьер {v}"), "Минск", "7001");
        for _ in 0..7 {
            n += 1;
            b.sim.add_response(&vacancy, applicant(n));
        }
    }
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 21).await;
    let vacancies = get_json(&app, &ws, "/api/v1/vacancies").await;
    assert_eq!(vacancies.as_array().unwrap().len(), 3);
    assert!(vacancies[0]["board_states"].as_array().unwrap().len() >= 7);
    let apps = applications(&app, &ws, "").await;
    assert_eq!(apps.len(), 21);
    let first = &apps[0];
    assert_eq!(first["source"], "hh");
    assert_eq!(first["board_state_id"], "response");
    assert_eq!(first["stage_name"], "Отклик");
    assert!(first["resume_upload_id"].is_string(), "the PDF is stored");
    assert!(first["board_created_at"].is_string());
    let messages = thread_messages(&app, &ws, first["thread_id"].as_str().unwrap()).await;
    let t = texts(&messages);
    assert!(
        t.iter()
            .any(|t| t.starts_with("Отклик на вакансию «Курьер")),
        "{t:?}"
    );
    assert!(
        t.iter()
            .any(|t| t == "Здравствуйте! Откликаюсь на вакансию."),
        "the chat's cover note: {t:?}"
    );
    // The candidate card.
    let card = get_json(
        &app,
        &ws,
        &format!("/api/v1/applications/{}", first["id"].as_str().unwrap()),
    )
    .await;
    assert!(
        card["name"].as_str().unwrap().starts_with("Фамилия"),
        "{card}"
    );
    assert!(
        card["phone"].as_str().unwrap().starts_with("+375"),
        "{card}"
    );
    assert_eq!(card["city"], "Минск");
    // A board's vacancy is linked to the local one it publishes.
    let local: Value = app
        .post_json(
            "/api/v1/vacancies",
            Some(&ws.access()),
            json!({"name": "Курьер (наш)"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let board_vacancy_id = vacancies[0]["id"].as_str().unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/vacancies/{board_vacancy_id}"),
            &ws.access(),
            Some(json!({"linked_vacancy_id": local["id"]})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let linked = get_json(&app, &ws, &format!("/api/v1/vacancies/{board_vacancy_id}")).await;
    assert_eq!(linked["linked_vacancy_id"], local["id"]);
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/vacancies/{}", local["id"].as_str().unwrap()),
            &ws.access(),
            Some(json!({"linked_vacancy_id": vacancies[1]["id"]})),
        )
        .await;
    assert_error(r, 422, "unknown_vacancy").await;
    // Per vacancy.
    let vid = vacancies[1]["id"].as_str().unwrap();
    assert_eq!(
        applications(&app, &ws, &format!("&vacancy_id={vid}"))
            .await
            .len(),
        7
    );
    // Nothing new yet; two responses arrive while webhooks are lost and polling is slow.
    let nr = get_json(
        &app,
        &ws,
        &format!("/api/v1/channel-accounts/{}/board/new-responses", b.id),
    )
    .await;
    assert_eq!(nr["total"], 0, "{nr}");
    assert_eq!(nr["source"], "board");
    b.sim.drop_webhooks(true);
    let board_vacancy = vacancies[0]["board_vacancy_id"].as_str().unwrap();
    b.sim.add_response(board_vacancy, applicant(100));
    b.sim.add_response(board_vacancy, applicant(101));
    let nr = get_json(
        &app,
        &ws,
        &format!("/api/v1/channel-accounts/{}/board/new-responses", b.id),
    )
    .await;
    assert_eq!(nr["total"], 2, "{nr}");
    // The progress was announced.
    let _ = app.stop().await;
}

/// Three vacancies with ten responses each on a new simulator and account of `ws`.
async fn thirty_responses(app: &TestApp, ws: &Workspace) -> Board {
    let b = board(app, ws).await;
    let mut n = 0;
    for v in 0..3 {
        let vacancy = b
            .sim
            .add_vacancy(&format!("Продавец {v}"), "Гомель", "7001");
        for _ in 0..10 {
            n += 1;
            b.sim.add_response(&vacancy, applicant(n));
        }
    }
    b
}

#[tokio::test]
async fn an_import_killed_halfway_resumes_without_duplicates() {
    let app = spawn_app_with(|c| {
        c.switch.board_poll_ms = 60_000;
        c.switch.board_page_size = 2;
    })
    .await;
    // What a whole import of this account costs in board requests.
    let ws0 = app.workspace("hh-baseline").await;
    let b0 = thirty_responses(&app, &ws0).await;
    connect(&app, &ws0, &b0, ADMIN_USER).await;
    wait_imported(&app, &ws0, &b0, 30).await;
    let whole = b0.sim.api_requests();

    let ws = app.workspace("hh-resume").await;
    let b = thirty_responses(&app, &ws).await;
    connect(&app, &ws, &b, ADMIN_USER).await;
    until("part of the import", 30, || async {
        status(&app, &ws, &b).await["responses_loaded"]
            .as_i64()
            .unwrap()
            >= 10
    })
    .await;
    // The board stalls the task (429), and the task is killed where it stands.
    b.sim.rate_limit_next(100_000, 1);
    until("the account is degraded", 30, || async {
        account(&app, &ws, &b).await["health"] == "degraded"
    })
    .await;
    assert!(app.switch.boards().abort(&b.id), "the task was running");
    let halfway = status(&app, &ws, &b).await;
    let loaded = halfway["responses_loaded"].as_i64().unwrap();
    assert!(loaded < 30 && halfway["initial_done"] == false, "{halfway}");
    assert!(
        halfway["position_vacancy_id"].is_string(),
        "the position is stored: {halfway}"
    );
    let before = b.sim.api_requests();
    // The board answers again: a new task continues from the stored position.
    b.sim.rate_limit_next(1, 0);
    wait_imported(&app, &ws, &b, 30).await;
    let after_restart = (b.sim.api_requests() - before) as i64;
    // Starting over would read every response again (chat and pages) and skip only the
    // resume and PDF of those already in: at least `whole - 2 × loaded` requests.
    assert!(
        after_restart + loaded / 2 < whole as i64 - 2 * loaded,
        "resumed from the position: {after_restart} requests after the restart, {whole} for a whole import, {loaded} loaded before"
    );
    let apps = applications(&app, &ws, "").await;
    assert_eq!(apps.len(), 30);
    let mut negotiations: Vec<&str> = apps
        .iter()
        .map(|a| a["board_negotiation_id"].as_str().unwrap())
        .collect();
    negotiations.sort();
    negotiations.dedup();
    assert_eq!(negotiations.len(), 30, "one application per response");
    for a in &apps {
        let m = thread_messages(&app, &ws, a["thread_id"].as_str().unwrap()).await;
        let responses = texts(&m)
            .iter()
            .filter(|t| t.starts_with("Отклик на вакансию"))
            .count();
        assert_eq!(responses, 1, "one response message per applicant");
    }
    assert_eq!(account(&app, &ws, &b).await["health"], "ok");
}

#[tokio::test]
async fn a_token_deactivated_mid_import_pauses_and_resumes_after_a_new_login() {
    let app = spawn_app_with(|c| {
        c.switch.board_poll_ms = 200;
        c.switch.board_page_size = 2;
    })
    .await;
    let ws = app.workspace("hh-relogin").await;
    let b = board(&app, &ws).await;
    let mut n = 0;
    for v in 0..2 {
        let vacancy = b.sim.add_vacancy(&format!("Повар {v}"), "Брест", "7001");
        for _ in 0..10 {
            n += 1;
            b.sim.add_response(&vacancy, applicant(n));
        }
    }
    connect(&app, &ws, &b, ADMIN_USER).await;
    until("part of the import", 30, || async {
        status(&app, &ws, &b).await["responses_loaded"]
            .as_i64()
            .unwrap()
            >= 4
    })
    .await;
    b.sim.rate_limit_next(100_000, 1);
    until("stalled", 30, || async {
        account(&app, &ws, &b).await["health"] == "degraded"
    })
    .await;
    // The employer changes the password: the token is deactivated.
    b.sim.change_password(ADMIN_USER);
    b.sim.rate_limit_next(1, 0);
    until("re-login needed", 30, || async {
        account(&app, &ws, &b).await["health"] == "needs_relogin"
    })
    .await;
    let acc = account(&app, &ws, &b).await;
    assert_eq!(acc["health_class"], "auth_failure");
    assert!(
        acc["last_error"].as_str().unwrap().contains("new login"),
        "{acc}"
    );
    let paused = status(&app, &ws, &b).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let still = status(&app, &ws, &b).await;
    assert_eq!(
        paused["responses_loaded"], still["responses_loaded"],
        "paused"
    );
    assert_eq!(still["initial_done"], false);
    assert!(still["responses_loaded"].as_i64().unwrap() < 20);
    // A new login: the import continues where it stopped.
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 20).await;
    assert_eq!(applications(&app, &ws, "").await.len(), 20);
    assert_eq!(account(&app, &ws, &b).await["health"], "ok");
}

#[tokio::test]
async fn a_webhook_delivered_twice_is_stored_once_and_a_lost_one_is_recovered_by_polling() {
    // Polling is slow here: what arrives, arrives by webhook.
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-hooks").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Кассир", "Минск", "7001");
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 0).await;
    b.sim.add_response(&vacancy, applicant(1));
    until("the response arrives by webhook", 20, || async {
        applications(&app, &ws, "").await.len() == 1
    })
    .await;
    let event = b
        .sim
        .deliveries()
        .into_iter()
        .find(|d| d.action_type == "NEW_NEGOTIATION_VACANCY" && d.status == 200)
        .expect("delivered")
        .event_id;
    let thread = applications(&app, &ws, "").await[0]["thread_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = thread_messages(&app, &ws, &thread).await.len();
    b.sim.redeliver(&event);
    until("the repeat is answered", 20, || async {
        b.sim
            .deliveries()
            .iter()
            .any(|d| d.event_id == event && d.status == 409)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(applications(&app, &ws, "").await.len(), 1);
    assert_eq!(thread_messages(&app, &ws, &thread).await.len(), before);
    // A wrong token is refused.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/hooks/{}/hh?token=wrong", b.id)))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;

    // Lost webhooks: polling finds the response.
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 300).await;
    let ws = app.workspace("hh-lost").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Кассир", "Минск", "7001");
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 0).await;
    b.sim.drop_webhooks(true);
    b.sim.add_response(&vacancy, applicant(2));
    until("polling recovers the response", 20, || async {
        applications(&app, &ws, "").await.len() == 1
    })
    .await;
    assert!(b.sim.deliveries().is_empty(), "nothing was delivered");
}

#[tokio::test]
async fn an_applicant_who_hid_everything_gets_placeholders_and_a_usable_card() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-hidden").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Грузчик", "Минск", "7001");
    let mut hidden = applicant(5);
    hidden.hidden = [
        "names_and_photo",
        "phones",
        "email",
        "other_contacts",
        "experience",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let created = b.sim.add_response(&vacancy, hidden);
    let other = b.sim.add_vacancy("Кладовщик", "Минск", "7001");
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 1).await;
    let apps = applications(&app, &ws, "").await;
    let card = get_json(
        &app,
        &ws,
        &format!("/api/v1/applications/{}", apps[0]["id"].as_str().unwrap()),
    )
    .await;
    let rid = &created.resume_id;
    assert_eq!(
        card["name"],
        format!("Applicant {rid} hid the name"),
        "{card}"
    );
    assert_eq!(card["phone"], format!("Applicant {rid} hid the phone"));
    assert_eq!(card["email"], format!("Applicant {rid} hid the email"));
    assert!(card["hidden"].as_array().unwrap().len() >= 3);
    assert_eq!(card["application"]["board_state_id"], "response");
    let thread = apps[0]["thread_id"].as_str().unwrap();
    let m = thread_messages(&app, &ws, thread).await;
    let response = texts(&m)
        .into_iter()
        .find(|t| t.starts_with("Отклик"))
        .expect("the response in the timeline");
    assert!(
        response.contains(&format!("Имя: скрыто соискателем (резюме {rid})"))
            && response.contains("Телефон: скрыт соискателем")
            && response.contains("Email: скрыт соискателем")
            && !response.contains("Applicant"),
        "{response}"
    );
    // The same applicant on another vacancy: "other responses" on the card.
    let _ = other;
    let t = get_json(&app, &ws, &format!("/api/v1/threads/{thread}")).await;
    let contact = get_json(
        &app,
        &ws,
        &format!("/api/v1/contacts/{}", t["contact_id"].as_str().unwrap()),
    )
    .await;
    let kinds: Vec<&str> = contact["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["hh"], "only the board id is known");
}

#[tokio::test]
async fn stages_move_both_ways_and_the_board_chat_works_both_ways() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-stages").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Официант", "Минск", "7001");
    let created = b.sim.add_response(&vacancy, applicant(7));
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 1).await;
    let a = applications(&app, &ws, "").await[0].clone();
    let id = a["id"].as_str().unwrap();
    let interview = stage_id(&app, &ws, "Собеседование").await;
    // The board needs a message for an invitation.
    let r = app
        .post_json(
            &format!("/api/v1/applications/{id}/stage"),
            Some(&ws.access()),
            json!({"stage_id": interview}),
        )
        .await;
    assert_error(r, 422, "board_message_required").await;
    assert_eq!(
        b.sim.negotiation_state(&created.negotiation_id).unwrap(),
        "response"
    );
    let r = app
        .post_json(
            &format!("/api/v1/applications/{id}/stage"),
            Some(&ws.access()),
            json!({"stage_id": interview, "message": "Ждём вас завтра в 10:00"}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stage_id"], interview.as_str(), "{v}");
    assert_eq!(v["board_state_id"], "interview");
    assert_eq!(
        b.sim.negotiation_state(&created.negotiation_id).unwrap(),
        "interview"
    );
    assert!(b
        .sim
        .chat(&created.chat_id)
        .iter()
        .any(|(_, t)| t == "Ждём вас завтра в 10:00"));

    // The employer moves it on the board: Jobers follows.
    b.sim.set_state_on_board(&created.negotiation_id, "offer");
    let offer = stage_id(&app, &ws, "Оффер").await;
    until("the board's move arrives", 20, || async {
        let c = get_json(&app, &ws, &format!("/api/v1/applications/{id}")).await;
        c["application"]["stage_id"] == offer.as_str()
            && c["application"]["board_state_id"] == "offer"
    })
    .await;

    // The applicant writes in the board chat: the message joins the thread.
    let thread = a["thread_id"].as_str().unwrap();
    b.sim
        .applicant_writes(&created.chat_id, "Можно перенести на 11:00?");
    until("the chat message arrives", 20, || async {
        texts(&thread_messages(&app, &ws, thread).await)
            .iter()
            .any(|t| t == "Можно перенести на 11:00?")
    })
    .await;
    // A reply goes out through the board chat.
    let r = app
        .post_json(
            &format!("/api/v1/threads/{thread}/messages"),
            Some(&ws.access()),
            json!({"text": "Да, конечно", "channel_account_id": b.id, "signature": "none"}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    until("the reply is on the board", 20, || async {
        b.sim
            .chat(&created.chat_id)
            .iter()
            .any(|(role, t)| t == "Да, конечно" && role != "APPLICANT")
    })
    .await;
    until("the reply is sent", 20, || async {
        thread_messages(&app, &ws, thread)
            .await
            .iter()
            .any(|m| m["text"] == "Да, конечно" && m["delivery_state"] == "sent")
    })
    .await;
    let sent = b
        .sim
        .chat(&created.chat_id)
        .iter()
        .filter(|(_, t)| t == "Да, конечно")
        .count();
    assert_eq!(sent, 1, "sent once");
}

#[tokio::test]
async fn a_conflict_between_jobers_and_the_board_is_decided_by_time_and_logged() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-conflict").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Бариста", "Минск", "7001");
    let created = b.sim.add_response(&vacancy, applicant(9));
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 1).await;
    let id = applications(&app, &ws, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // "Рассмотрение" gets no board state: a move there stays in Jobers.
    let path = format!("/api/v1/channel-accounts/{}/board/mapping", b.id);
    let mut mapping = get_json(&app, &ws, &path).await;
    let review = stage_id(&app, &ws, "Рассмотрение").await;
    mapping["state_stages"]
        .as_object_mut()
        .unwrap()
        .retain(|_, stage| stage != review.as_str());
    let body = json!({"mode": mapping["mode"], "pipeline_id": mapping["pipeline_id"],
        "responses_stage_id": mapping["responses_stage_id"],
        "invitations_stage_id": mapping["invitations_stage_id"],
        "state_stages": mapping["state_stages"]});
    let r = app
        .request(Method::PUT, &path, &ws.access(), Some(body))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_json(
            &format!("/api/v1/applications/{id}/stage"),
            Some(&ws.access()),
            json!({"stage_id": review}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        b.sim.negotiation_state(&created.negotiation_id).unwrap(),
        "response"
    );
    // The board moves it with an older change time: Jobers' later move stays, logged.
    b.sim
        .set_state_on_board(&created.negotiation_id, "phone_interview");
    until("the board's move is seen", 20, || async {
        get_json(&app, &ws, &format!("/api/v1/applications/{id}")).await["application"]
            ["board_state_id"]
            == "phone_interview"
    })
    .await;
    let card = get_json(&app, &ws, &format!("/api/v1/applications/{id}")).await;
    assert_eq!(card["application"]["stage_id"], review.as_str(), "{card}");
    let audit = get_json(&app, &ws, "/api/v1/audit").await.to_string();
    assert!(audit.contains("application_stage_conflict"), "{audit}");
    assert!(audit.contains("\"winner\":\"jobers\""), "{audit}");
}

#[tokio::test]
async fn an_access_token_the_board_calls_expired_is_refreshed_once_and_the_work_goes_on() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-expired").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Охранник", "Минск", "7001");
    let first = b.sim.add_response(&vacancy, applicant(11));
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 1).await;
    let before = b.sim.token_requests();
    // The board cuts the token short: the sync refreshes it and carries on.
    b.sim.expire_access_tokens();
    b.sim.add_response(&vacancy, applicant(12));
    until("the second response arrives", 20, || async {
        applications(&app, &ws, "").await.len() == 2
    })
    .await;
    assert_eq!(b.sim.token_requests(), before + 1, "one refresh");
    assert_eq!(account(&app, &ws, &b).await["health"], "ok");
    // A stage move meets an expired token: refreshed, then moved.
    b.sim.expire_access_tokens();
    let a = applications(&app, &ws, "")
        .await
        .into_iter()
        .find(|a| a["board_negotiation_id"] == first.negotiation_id.as_str())
        .unwrap();
    let review = stage_id(&app, &ws, "Рассмотрение").await;
    let r = app
        .post_json(
            &format!("/api/v1/applications/{}/stage", a["id"].as_str().unwrap()),
            Some(&ws.access()),
            json!({"stage_id": review}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        b.sim.negotiation_state(&first.negotiation_id).unwrap(),
        "consider"
    );
    assert_eq!(b.sim.token_requests(), before + 2);
}

#[tokio::test]
async fn the_board_chat_limit_is_shown_and_a_reply_past_it_fails_with_the_reason() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-limit").await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Повар", "Минск", "7001");
    let created = b.sim.add_response(&vacancy, applicant(13));
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 1).await;
    let a = applications(&app, &ws, "").await[0].clone();
    let thread = a["thread_id"].as_str().unwrap();
    let card_path = format!("/api/v1/applications/{}", a["id"].as_str().unwrap());
    let card = get_json(&app, &ws, &card_path).await;
    assert_eq!(card["chat_replies_in_a_row"], 0);
    assert_eq!(card["chat_limit"], 5);
    for i in 0..5 {
        let r = app
            .post_json(
                &format!("/api/v1/threads/{thread}/messages"),
                Some(&ws.access()),
                json!({"text": format!("Сообщение {i}"), "channel_account_id": b.id, "signature": "none"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let text = format!("Сообщение {i}");
        until("sent", 20, || async {
            thread_messages(&app, &ws, thread)
                .await
                .iter()
                .any(|m| m["text"] == text.as_str() && m["delivery_state"] == "sent")
        })
        .await;
    }
    assert_eq!(
        get_json(&app, &ws, &card_path).await["chat_replies_in_a_row"],
        5
    );
    let r = app
        .post_json(
            &format!("/api/v1/threads/{thread}/messages"),
            Some(&ws.access()),
            json!({"text": "Шестое", "channel_account_id": b.id, "signature": "none"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    until("the sixth fails with the board's reason", 20, || async {
        thread_messages(&app, &ws, thread).await.iter().any(|m| {
            m["text"] == "Шестое"
                && m["delivery_state"] == "failed"
                && m["failure_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("in_a_row_limit"))
        })
    })
    .await;
    assert!(!b
        .sim
        .chat(&created.chat_id)
        .iter()
        .any(|(_, t)| t == "Шестое"));
    // The applicant answers: the count starts again.
    b.sim
        .applicant_writes(&created.chat_id, "Спасибо, прочитал");
    until("the answer arrives", 20, || async {
        get_json(&app, &ws, &card_path).await["chat_replies_in_a_row"] == 0
    })
    .await;
}

#[tokio::test]
async fn two_thousand_responses_over_thirty_vacancies_import_with_agreeing_counters() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 600_000).await;
    let ws = app.workspace("hh-scale").await;
    let b = board(&app, &ws).await;
    let mut n = 0;
    for v in 0..30 {
        let vacancy = b.sim.add_vacancy(&format!("Вакансия {v}"), "Минск", "7001");
        let count = if v < 20 { 67 } else { 66 };
        for _ in 0..count {
            n += 1;
            b.sim.add_response(&vacancy, applicant(n));
        }
    }
    assert_eq!(n, 2000);
    connect(&app, &ws, &b, ADMIN_USER).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = status(&app, &ws, &b).await;
        if s["initial_done"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "import too slow: {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let s = status(&app, &ws, &b).await;
    assert_eq!(s["responses_loaded"], 2000, "{s}");
    assert_eq!(s["applications_created"], 2000, "{s}");
    assert_eq!(s["differences"], json!([]));
    assert_eq!(
        get_json(&app, &ws, "/api/v1/vacancies")
            .await
            .as_array()
            .unwrap()
            .len(),
        30
    );
    let nr = get_json(
        &app,
        &ws,
        &format!("/api/v1/channel-accounts/{}/board/new-responses", b.id),
    )
    .await;
    assert_eq!(nr["total"], 0, "{nr}");
}

#[tokio::test]
async fn a_manager_account_imports_only_its_own_vacancies() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-manager").await;
    let b = board(&app, &ws).await;
    let theirs = b.sim.add_vacancy("Чужая вакансия", "Минск", "7001");
    let mine = b.sim.add_vacancy("Своя вакансия", "Минск", "7002");
    b.sim.add_response(&theirs, applicant(21));
    b.sim.add_response(&mine, applicant(22));
    let v = connect(&app, &ws, &b, MANAGER_USER).await;
    assert_eq!(v["board_account"]["role"], "manager");
    wait_imported(&app, &ws, &b, 1).await;
    let vacancies = get_json(&app, &ws, "/api/v1/vacancies").await;
    let names: Vec<&str> = vacancies
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Своя вакансия"]);
}

#[tokio::test]
async fn staff_see_vacancies_applications_and_import_progress_live() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-events").await;
    let mut live = WsClient::connect(&app.base, &ws.access(), None).await;
    live.next_of("live", None).await;
    let b = board(&app, &ws).await;
    let vacancy = b.sim.add_vacancy("Монтажник", "Минск", "7001");
    b.sim.add_response(&vacancy, applicant(31));
    connect(&app, &ws, &b, ADMIN_USER).await;
    let v = live.next_of("event", Some("vacancy.updated")).await;
    assert_eq!(v["data"]["name"], "Монтажник");
    let a = live.next_of("event", Some("application.updated")).await;
    assert_eq!(a["data"]["board_state_id"], "response");
    let id = a["data"]["id"].as_str().unwrap().to_string();
    loop {
        let p = live.next_of("event", Some("board.import")).await;
        if p["data"]["initial_done"] == true {
            assert_eq!(p["data"]["responses_loaded"], 1);
            assert_eq!(p["data"]["applications_created"], 1);
            break;
        }
    }
    let review = stage_id(&app, &ws, "Рассмотрение").await;
    let r = app
        .post_json(
            &format!("/api/v1/applications/{id}/stage"),
            Some(&ws.access()),
            json!({"stage_id": review}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let moved = live.next_of("event", Some("application.updated")).await;
    assert_eq!(moved["data"]["stage_id"], review.as_str());
    assert_eq!(moved["data"]["board_state_id"], "consider");
}

#[tokio::test]
async fn simple_mode_with_a_responsible_recruiter_assigns_threads_and_invites_on_the_board() {
    let app = spawn_app_with(|c| c.switch.board_poll_ms = 60_000).await;
    let ws = app.workspace("hh-simple").await;
    let b = board(&app, &ws).await;
    let olga = app
        .create_user(
            &ws.tenant,
            "olga@hh-simple.example",
            jobers::store::Role::Recruiter,
        )
        .await;
    let path = format!("/api/v1/channel-accounts/{}/board/mapping", b.id);
    let responses = stage_id(&app, &ws, "Отклик").await;
    let invitations = stage_id(&app, &ws, "Собеседование").await;
    let mut mapping = json!({"mode": "simple", "responses_stage_id": responses,
                             "invitations_stage_id": invitations, "state_stages": {},
                             "responsible_user_id": uuid::Uuid::now_v7().to_string()});
    // Someone who is not a user of this workspace cannot be responsible.
    let r = app
        .request(Method::PUT, &path, &ws.access(), Some(mapping.clone()))
        .await;
    assert_error(r, 422, "unknown_user").await;
    mapping["responsible_user_id"] = json!(olga.id);
    let r = app
        .request(Method::PUT, &path, &ws.access(), Some(mapping.clone()))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["responsible_user_id"], olga.id.as_str(), "{v}");
    assert_eq!(v["mode"], "simple");

    let vacancy = b.sim.add_vacancy("Бариста", "Минск", "7001");
    let created = b.sim.add_response(&vacancy, applicant(21));
    connect(&app, &ws, &b, ADMIN_USER).await;
    wait_imported(&app, &ws, &b, 1).await;
    let a = applications(&app, &ws, "").await[0].clone();
    assert_eq!(a["stage_id"], responses.as_str(), "a response on its stage");
    let thread = get_json(
        &app,
        &ws,
        &format!("/api/v1/threads/{}", a["thread_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(thread["assignee_id"], olga.id.as_str(), "{thread}");

    // The invitations stage invites on the board (with the board's required message).
    let id = a["id"].as_str().unwrap();
    let r = app
        .post_json(
            &format!("/api/v1/applications/{id}/stage"),
            Some(&ws.access()),
            json!({"stage_id": invitations, "message": "Приглашаем на собеседование"}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["board_state_id"], "interview", "{v}");
    assert_eq!(
        b.sim.negotiation_state(&created.negotiation_id).unwrap(),
        "interview"
    );
    // Back to the responses stage: nothing to do on the board, the move stays local.
    let r = app
        .post_json(
            &format!("/api/v1/applications/{id}/stage"),
            Some(&ws.access()),
            json!({"stage_id": responses}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stage_id"], responses.as_str(), "{v}");
    assert_eq!(
        b.sim.negotiation_state(&created.negotiation_id).unwrap(),
        "interview"
    );
}

#[tokio::test]
async fn a_browser_returning_from_the_board_lands_back_in_the_workspace() {
    let app = spawn_app().await;
    let ws = app.workspace("hh-browser").await;
    let b = board(&app, &ws).await;
    b.sim.authorize_as(ADMIN_USER);
    let callback = authorize(&app, &ws, &b).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = browser
        .get(callback.as_str())
        .header("accept", html)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/admin/channels?board_connected={}", b.id).as_str()
    );
    assert_eq!(status(&app, &ws, &b).await["connected"], true);
    // The same state again (a reload): an error, told to the workspace.
    let r = browser
        .get(callback.as_str())
        .header("accept", html)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/admin/channels?board_error=invalid_state"
    );
    // Without a browser's Accept the answer stays JSON.
    let r = browser.get(callback.as_str()).send().await.unwrap();
    assert_error(r, 400, "invalid_state").await;
}

/// Node settings for the two-node tests: the same sealing key (credentials are read by
/// both), quick polls and short leases.
fn node(c: &mut jobers::config::Config, name: &str) {
    c.node_id = Some(name.into());
    c.secrets_key = Some(jobers::config::Secret::new("ab".repeat(32)));
    c.switch.board_poll_ms = 200;
    c.switch.sync_lease_ms = 1_500;
}

/// Board requests per second over `secs`.
async fn request_rate(b: &Board, secs: u64) -> f64 {
    let before = b.sim.api_requests();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    (b.sim.api_requests() - before) as f64 / secs as f64
}

#[tokio::test]
async fn two_nodes_on_one_database_read_a_board_once_and_one_takes_over_when_the_other_stops() {
    let first = spawn_app_with(|c| node(c, "node-a")).await;
    let url = first.config.database_url.clone();
    let ws = first.workspace("hh-two-nodes").await;
    let b = thirty_responses(&first, &ws).await;
    connect(&first, &ws, &b, ADMIN_USER).await;
    wait_imported(&first, &ws, &b, 30).await;
    let lease = format!("board:{}", b.id);
    // The rate of one node reading the board, then of the same node with a second one
    // beside it: a reader's rate varies from node to node (the one that takes over later
    // has read at half the first one's rate), so the two are compared on one reader.
    let alone = request_rate(&b, 3).await;
    let second = spawn_app_with(move |c| {
        c.database_url = url;
        node(c, "node-b");
    })
    .await;
    assert_eq!(
        first.lease_holder(&ws, &lease).await.as_deref(),
        Some("node-a"),
        "the node that was alone holds it"
    );
    // Both nodes poll every 200 ms; only the holder reads the board.
    let both = request_rate(&b, 3).await;
    assert_eq!(
        first.lease_holder(&ws, &lease).await.as_deref(),
        Some("node-a"),
        "the holder keeps it while it runs"
    );
    assert!(alone > 0.0, "the first node reads the board");
    assert!(
        both < alone * 1.5,
        "two nodes read more than one: {both:.1} requests/s with both, {alone:.1} with one"
    );
    let (stopping, survivor, other) = (first, second, "node-b");
    // The holder stops (gives its lease up): the other takes over at once, not when the
    // lease would have run out.
    let stopped_at = Instant::now();
    let switch = stopping.switch.clone();
    assert_eq!(
        switch.tasks_running(),
        5,
        "the router, the outbox and three readers run"
    );
    // The database file is in the first node's directory: it stays for the survivor.
    let _data = stopping.stop().await;
    assert_eq!(
        switch.tasks_running(),
        0,
        "nothing of the stopped node runs on"
    );
    until("the other node takes the lease", 10, || async {
        survivor.lease_holder(&ws, &lease).await.as_deref() == Some(other)
    })
    .await;
    assert!(
        stopped_at.elapsed() < Duration::from_millis(1_400),
        "taken over before the lease ran out: {:?}",
        stopped_at.elapsed()
    );
    assert!(
        request_rate(&b, 3).await > 0.0,
        "the survivor reads the board"
    );
    // What arrives now is read by the survivor.
    let vacancy = b.sim.add_vacancy("Кассир", "Гомель", "7001");
    b.sim.add_response(&vacancy, applicant(31));
    until("the new response is imported", 30, || async {
        status(&survivor, &ws, &b).await["applications_created"] == 31
    })
    .await;
    survivor.stop().await;
}
