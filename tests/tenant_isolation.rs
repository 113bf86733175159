//! Tenant isolation, attacked: with an admin token of tenant A, every route of the OpenAPI
//! description is called with the ids of tenant B's objects. Nothing may leak (404 for
//! routes that name an object; no B data in any listing) and nothing of B may change.
//! Routes added later are covered automatically: a path parameter this test cannot fill
//! fails the test until it is taught which of B's objects to use.

mod common;

use std::collections::HashMap;

use common::*;
use jobers::store::Role;
use reqwest::Method;
use serde_json::{json, Map, Value};

/// A value that satisfies the schema (enough to get past body validation, so that a 404
/// means "not yours", not "bad body"). Fields that name objects get tenant B's ids.
fn example(schema: &Value, doc: &Value, b_ids: &HashMap<&str, String>) -> Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return example(&doc["components"]["schemas"][name], doc, b_ids);
    }
    if let Some(options) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        return example(&options[0], doc, b_ids);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values[0].clone();
    }
    let ty = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or(Value::Null),
        t => t.clone(),
    };
    match ty.as_str() {
        Some("object") => {
            let mut obj = Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    if let Some(id) = b_ids.get(name.as_str()) {
                        obj.insert(name.clone(), json!(id));
                    } else if let Some(id) = name
                        .strip_suffix("_ids")
                        .and_then(|n| b_ids.get(format!("{n}_id").as_str()))
                    {
                        obj.insert(name.clone(), json!([id]));
                    } else if name == "add" || name == "attachments" {
                        let key = if name == "add" {
                            "user_id"
                        } else {
                            "upload_id"
                        };
                        obj.insert(name.clone(), json!([b_ids[key]]));
                    } else if required.contains(&name.as_str()) {
                        obj.insert(name.clone(), example(prop, doc, b_ids));
                    }
                }
            }
            Value::Object(obj)
        }
        Some("array") => json!([]),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        _ => json!("isolation probe value"),
    }
}

/// A job-board account (HeadHunter, not connected), a local vacancy and an application of
/// `contact` on it: (board account id, vacancy id, application id, a stage id, pipeline id).
async fn ats_objects(
    app: &TestApp,
    ws: &Workspace,
    secret_word: &str,
    contact: &str,
) -> [String; 5] {
    let board: Value = app
        .post_json(
            "/api/v1/channel-accounts",
            Some(&ws.access()),
            json!({"kind": "board", "provider": "hh", "name": format!("{secret_word} board"), "address": "rabota.by",
                   "settings": {"site": "rabota.by", "client_id": "c", "redirect_uri": "https://jobers.example/cb",
                                "api_base": "http://127.0.0.1:9", "oauth_base": "http://127.0.0.1:9"},
                   "secret": "client secret"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let vacancy: Value = app
        .post_json(
            "/api/v1/vacancies",
            Some(&ws.access()),
            json!({"name": format!("{secret_word} vacancy")}),
        )
        .await
        .json()
        .await
        .unwrap();
    let pipelines: Value = app
        .get("/api/v1/pipelines", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    let application: Value = app
        .post_json(
            "/api/v1/applications",
            Some(&ws.access()),
            json!({"contact_id": contact, "vacancy_id": vacancy["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = |v: &Value| v.as_str().unwrap_or_else(|| panic!("no id")).to_string();
    [
        id(&board["account"]["id"]),
        id(&vacancy["id"]),
        id(&application["id"]),
        id(&pipelines[0]["stages"][1]["id"]),
        id(&pipelines[0]["id"]),
    ]
}

#[tokio::test]
async fn every_route_refuses_another_tenants_objects() {
    let app = spawn_app().await;
    let a = app.workspace("alpha").await;
    let b = app.workspace("bravo").await;

    // Tenant B's objects.
    let b_dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&b.access()),
            json!({"name": "B secret department"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_user = app
        .create_user(&b.tenant, "b-recruiter@bravo.test", Role::Recruiter)
        .await;
    let b_me: Value = app
        .get("/api/v1/me", &b.access())
        .await
        .json()
        .await
        .unwrap();
    let b_session = b_me["session_id"].as_str().unwrap().to_string();
    let b_c1: Value = app.post_json("/api/v1/contacts", Some(&b.access()), json!({"name": "B secret applicant", "identities": [{"kind": "email", "value": "b-applicant@bravo.test"}]})).await.json().await.unwrap();
    let b_c2: Value = app
        .post_json(
            "/api/v1/contacts",
            Some(&b.access()),
            json!({"name": "B second applicant"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_merge: Value = app
        .post_json(
            &format!("/api/v1/contacts/{}/merge", b_c1["id"].as_str().unwrap()),
            Some(&b.access()),
            json!({"contact_id": b_c2["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_room: Value = app
        .post_json(
            "/api/v1/rooms",
            Some(&b.access()),
            json!({"name": "B secret room", "member_ids": [b_user.id]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_room_id = b_room["id"].as_str().unwrap().to_string();
    let b_msg: Value = app
        .post_json(
            &format!("/api/v1/rooms/{b_room_id}/messages"),
            Some(&b.access()),
            json!({"body": "B secret message"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_upload: Value = app
        .client
        .post(app.url("/api/v1/uploads?name=b-secret.txt"))
        .bearer_auth(b.access())
        .header("content-type", "text/plain")
        .body("B secret file")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_queue: Value = app
        .post_json(
            "/api/v1/queues",
            Some(&b.access()),
            json!({"name": "B secret queue", "strategy": "round_robin"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b_channel = app
        .channel(&b, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    let b_ingest = app
        .inbound_ok(&b_channel, json!({"id": "b-1", "from": {"phone": "+79160000001", "name": "B secret sender"}, "text": "B secret thread text"}))
        .await;
    let b_template: Value = app
        .post_json(
            "/api/v1/templates",
            Some(&b.access()),
            json!({"name": "B secret template", "body": "B secret template body", "shared": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    // Tenant A's own objects, for the control calls.
    let a_dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&a.access()),
            json!({"name": "A department"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_me: Value = app
        .get("/api/v1/me", &a.access())
        .await
        .json()
        .await
        .unwrap();
    let a_contact: Value = app
        .post_json(
            "/api/v1/contacts",
            Some(&a.access()),
            json!({"name": "A applicant"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_other: Value = app
        .post_json(
            "/api/v1/contacts",
            Some(&a.access()),
            json!({"name": "A other"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_merge: Value = app
        .post_json(
            &format!(
                "/api/v1/contacts/{}/merge",
                a_contact["id"].as_str().unwrap()
            ),
            Some(&a.access()),
            json!({"contact_id": a_other["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_room: Value = app
        .post_json(
            "/api/v1/rooms",
            Some(&a.access()),
            json!({"name": "A room"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_room_id = a_room["id"].as_str().unwrap().to_string();
    let a_msg: Value = app
        .post_json(
            &format!("/api/v1/rooms/{a_room_id}/messages"),
            Some(&a.access()),
            json!({"body": "A message"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_upload: Value = app
        .client
        .post(app.url("/api/v1/uploads?name=a.txt"))
        .bearer_auth(a.access())
        .header("content-type", "text/plain")
        .body("A file")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let a_queue: Value = app
        .post_json(
            "/api/v1/queues",
            Some(&a.access()),
            json!({"name": "A queue", "strategy": "manual"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let a_channel = app
        .channel(&a, "sms", "http://127.0.0.1:9/", json!({}))
        .await;
    // A's applicant writes, so that it has a thread.
    app.post_json(
        &format!(
            "/api/v1/contacts/{}/identities",
            a_contact["id"].as_str().unwrap()
        ),
        Some(&a.access()),
        json!({"kind": "phone", "value": "+79160000002"}),
    )
    .await;
    let a_ingest = app
        .inbound_ok(
            &a_channel,
            json!({"id": "a-1", "from": {"phone": "+79160000002"}, "text": "A text"}),
        )
        .await;
    let a_template: Value = app
        .post_json(
            "/api/v1/templates",
            Some(&a.access()),
            json!({"name": "A template", "body": "A body"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let [b_board, b_vacancy, b_application, b_stage, b_pipeline] =
        ats_objects(&app, &b, "B secret", b_c1["id"].as_str().unwrap()).await;
    let [a_board, a_vacancy, a_application, a_stage, a_pipeline] =
        ats_objects(&app, &a, "A", a_contact["id"].as_str().unwrap()).await;
    let b_ids: HashMap<&str, String> = HashMap::from([
        ("vacancy_id", b_vacancy.clone()),
        ("application_id", b_application.clone()),
        ("stage_id", b_stage.clone()),
        ("pipeline_id", b_pipeline.clone()),
        ("user_id", b_user.id.clone()),
        ("department_id", b_dep["id"].as_str().unwrap().to_string()),
        ("session_id", b_session.clone()),
        ("room_id", b_room_id.clone()),
        (
            "message_id",
            b_msg["message"]["id"].as_str().unwrap().to_string(),
        ),
        ("upload_id", b_upload["id"].as_str().unwrap().to_string()),
        ("contact_id", b_c1["id"].as_str().unwrap().to_string()),
        ("merge_id", b_merge["id"].as_str().unwrap().to_string()),
        (
            "thread_id",
            b_ingest["thread_id"].as_str().unwrap().to_string(),
        ),
        // Routes under an account are probed with the job-board account (every route
        // answers for it); bodies naming a channel account get the SMS line.
        ("account_id", b_board.clone()),
        ("channel_account_id", b_channel.id.clone()),
        ("queue_id", b_queue["id"].as_str().unwrap().to_string()),
        (
            "template_id",
            b_template["id"].as_str().unwrap().to_string(),
        ),
    ]);
    let a_ids: HashMap<&str, String> = HashMap::from([
        ("vacancy_id", a_vacancy.clone()),
        ("application_id", a_application.clone()),
        ("stage_id", a_stage.clone()),
        ("pipeline_id", a_pipeline.clone()),
        ("user_id", a.admin.id.clone()),
        ("department_id", a_dep["id"].as_str().unwrap().to_string()),
        (
            "session_id",
            a_me["session_id"].as_str().unwrap().to_string(),
        ),
        ("room_id", a_room_id.clone()),
        (
            "message_id",
            a_msg["message"]["id"].as_str().unwrap().to_string(),
        ),
        ("upload_id", a_upload["id"].as_str().unwrap().to_string()),
        ("contact_id", a_contact["id"].as_str().unwrap().to_string()),
        ("merge_id", a_merge["id"].as_str().unwrap().to_string()),
        (
            "thread_id",
            a_ingest["thread_id"].as_str().unwrap().to_string(),
        ),
        ("account_id", a_board.clone()),
        ("channel_account_id", a_channel.id.clone()),
        ("queue_id", a_queue["id"].as_str().unwrap().to_string()),
        (
            "template_id",
            a_template["id"].as_str().unwrap().to_string(),
        ),
    ]);
    // Strings that must never appear in a response to tenant A.
    let secrets = [
        b_user.id.clone(),
        b_user.email.clone(),
        b.admin.id.clone(),
        b.admin.email.clone(),
        b_dep["id"].as_str().unwrap().to_string(),
        "B secret department".to_string(),
        b.tenant.id.clone(),
        b_session.clone(),
        b_room_id.clone(),
        "B secret room".into(),
        "B secret message".into(),
        "B secret file".into(),
        "B secret applicant".into(),
        "b-applicant@bravo.test".into(),
        b_upload["id"].as_str().unwrap().to_string(),
        "B secret queue".into(),
        "B secret sender".into(),
        "B secret thread text".into(),
        "B secret template".into(),
        b_channel.id.clone(),
        b_board.clone(),
        b_vacancy.clone(),
        b_application.clone(),
        b_stage.clone(),
        b_pipeline.clone(),
        "B secret vacancy".into(),
        "B secret board".into(),
        b_ingest["thread_id"].as_str().unwrap().to_string(),
    ];

    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
            let body = (!body.is_null()).then(|| example(&body, &doc, &b_ids));
            let fill = |ids: &HashMap<&str, String>| {
                let mut p = path.clone();
                for name in &params {
                    let id = ids.get(name).unwrap_or_else(|| panic!("{path}: teach this test which object of tenant B to use for {{{name}}}"));
                    p = p.replace(&format!("{{{name}}}"), id);
                }
                p
            };
            if params.is_empty() {
                // Objects named in the body: B's ids must be refused, never linked.
                let names_b = body.as_ref().is_some_and(|b| {
                    let text = b.to_string();
                    b_ids.values().any(|id| text.contains(id.as_str()))
                });
                if method != Method::GET && names_b {
                    let r = app
                        .request(method.clone(), path, &a.access(), body.clone())
                        .await;
                    let status = r.status();
                    let text = r.text().await.unwrap();
                    assert!(
                        status == 404 || status == 422,
                        "{method} {path} with B's ids in {body:?} gave {status}: {text}"
                    );
                    for s in &secrets {
                        assert!(
                            !text.contains(s.as_str()),
                            "{method} {path} leaked {s}: {text}"
                        );
                    }
                    probed += 1;
                }
                // Listings and singletons: must not contain B's data.
                if method == Method::GET {
                    let r = app.request(method.clone(), path, &a.access(), None).await;
                    let text = r.text().await.unwrap();
                    for s in &secrets {
                        assert!(!text.contains(s.as_str()), "GET {path} leaked {s}: {text}");
                    }
                    probed += 1;
                }
                continue;
            }
            // Control: the route exists and works on A's own objects (GET only: safe).
            if method == Method::GET && !path.starts_with("/api/v1/hooks/") {
                let r = app
                    .request(method.clone(), &fill(&a_ids), &a.access(), None)
                    .await;
                assert_eq!(r.status(), 200, "control GET {path} with A's ids");
            }
            let target = fill(&b_ids);
            if path.starts_with("/api/v1/hooks/") {
                // Webhooks answer to signatures, not tokens: A's token opens nothing.
                let r = app
                    .request(method.clone(), &target, &a.access(), body.clone())
                    .await;
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                assert!(
                    [400, 401, 422].contains(&status),
                    "{method} {path} with A's token gave {status}: {text}"
                );
                for s in &secrets {
                    assert!(
                        !text.contains(s.as_str()),
                        "{method} {path} leaked {s}: {text}"
                    );
                }
                probed += 1;
                continue;
            }
            let r = app
                .request(method.clone(), &target, &a.access(), body.clone())
                .await;
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(
                status, 404,
                "{method} {path} with B's ids gave {status}: {text}"
            );
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{method} {path} leaked {s}: {text}"
                );
            }
            probed += 1;
        }
    }
    assert!(probed >= 30, "only {probed} operations probed");

    // Nothing of B changed.
    let b_access = b.access();
    assert_eq!(
        app.get("/api/v1/me", &b_access).await.status(),
        200,
        "B's session survived"
    );
    let dep: Value = app
        .get(
            &format!("/api/v1/departments/{}", b_dep["id"].as_str().unwrap()),
            &b_access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dep["name"], "B secret department");
    let user: Value = app
        .get(&format!("/api/v1/users/{}", b_user.id), &b_access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["active"], true);
    assert_eq!(user["role"], "recruiter");
    assert_eq!(user["name"], b_user.name.as_str());
    app.login("bravo", &b_user.email, PASSWORD).await;
    let room: Value = app
        .get(&format!("/api/v1/rooms/{b_room_id}"), &b_access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(room["name"], "B secret room");
    assert_eq!(
        room["member_ids"].as_array().unwrap().len(),
        2,
        "no A user joined B's room"
    );
    let messages: Value = app
        .get(&format!("/api/v1/rooms/{b_room_id}/messages"), &b_access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(messages.as_array().unwrap().len(), 1);
    assert_eq!(messages[0]["body"], "B secret message");
    let b_thread: Value = app
        .get(
            &format!(
                "/api/v1/threads/{}/messages",
                b_ingest["thread_id"].as_str().unwrap()
            ),
            &b_access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        b_thread.as_array().unwrap().len(),
        1,
        "nothing was added to B's thread: {b_thread}"
    );
    let b_t: Value = app
        .get(
            &format!(
                "/api/v1/threads/{}",
                b_ingest["thread_id"].as_str().unwrap()
            ),
            &b_access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        b_t["assignee_id"].is_null() && b_t["state"] == "open",
        "B's thread untouched: {b_t}"
    );
    // And nothing of B's was pulled into A's room.
    let a_messages: Value = app
        .get(&format!("/api/v1/rooms/{a_room_id}/messages"), &a.access())
        .await
        .json()
        .await
        .unwrap();
    assert!(!a_messages.to_string().contains("b-secret"), "{a_messages}");
}

#[tokio::test]
async fn an_access_token_cannot_be_replayed_against_another_tenant() {
    let app = spawn_app().await;
    let a = app.workspace("alpha").await;
    let b = app.workspace("bravo").await;
    // A token whose tenant claim names B but whose session is A's is refused.
    let me: Value = app
        .get("/api/v1/me", &a.access())
        .await
        .json()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = json!({"sub": a.admin.id, "tid": b.tenant.id, "sid": me["session_id"], "iat": now, "exp": now + 60, "typ": "access"});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_TOKEN_SECRET.as_bytes()),
    )
    .unwrap();
    assert_error(app.get("/api/v1/users", &token).await, 401, "invalid_token").await;
    // B's refresh token cannot be re-labelled as A's.
    let relabelled = b.refresh().replacen(&b.tenant.id, &a.tenant.id, 1);
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": relabelled}),
        )
        .await;
    assert_error(r, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn the_same_email_may_exist_in_two_tenants_without_clashing() {
    let app = spawn_app().await;
    let a = app.workspace("alpha").await;
    let b = app.workspace("bravo").await;
    app.create_user(&a.tenant, "same@person.test", Role::Recruiter)
        .await;
    let in_b = app
        .create_user(&b.tenant, "same@person.test", Role::Recruiter)
        .await;
    let t = app.login("bravo", "same@person.test", PASSWORD).await;
    assert_eq!(t["user"]["id"], in_b.id.as_str());
}

#[tokio::test]
async fn a_department_of_another_tenant_cannot_be_assigned() {
    let app = spawn_app().await;
    let a = app.workspace("alpha").await;
    let b = app.workspace("bravo").await;
    let b_dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&b.access()),
            json!({"name": "B"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{}", a.admin.id),
            &a.access(),
            Some(json!({"department_id": b_dep["id"]})),
        )
        .await;
    assert_error(r, 422, "unknown_department").await;
    let r = app.post_json("/api/v1/users", Some(&a.access()),
        json!({"email": "n@alpha.test", "name": "N", "role": "recruiter", "password": "long enough pw", "department_id": b_dep["id"]})).await;
    assert_error(r, 422, "unknown_department").await;
}

#[tokio::test]
async fn a_lease_of_one_tenant_cannot_be_taken_renewed_or_given_up_from_another() {
    let app = spawn_app().await;
    let a = app.workspace("lease-a").await;
    let b = app.workspace("lease-b").await;
    let ta = app.db.for_tenant(&a.tenant.id);
    let tb = app.db.for_tenant(&b.tenant.id);
    let name = "board:account-1";
    assert!(ta.take_lease(name, "node-a", 60_000).await.unwrap());
    assert!(
        ta.take_lease(name, "node-a", 60_000).await.unwrap(),
        "the holder renews it"
    );
    assert!(
        !ta.take_lease(name, "node-b", 60_000).await.unwrap(),
        "another node waits while it runs"
    );
    // Another tenant can neither take it nor give it up, nor see who has it.
    assert!(!tb.take_lease(name, "node-b", 60_000).await.unwrap());
    tb.release_lease(name, "node-a").await.unwrap();
    assert_eq!(tb.lease_holder(name).await.unwrap(), None);
    assert_eq!(
        ta.lease_holder(name).await.unwrap().as_deref(),
        Some("node-a")
    );
    // Once it has run out, the next node of the tenant that asks gets it, and the old
    // holder has lost it; another tenant still does not get it.
    assert!(ta.take_lease(name, "node-a", 100).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(ta.lease_holder(name).await.unwrap(), None, "ran out");
    assert!(!tb.take_lease(name, "node-b", 60_000).await.unwrap());
    assert!(ta.take_lease(name, "node-b", 60_000).await.unwrap());
    assert!(!ta.take_lease(name, "node-a", 60_000).await.unwrap());
    // Only the holder gives it up; then it is free at once.
    ta.release_lease(name, "node-a").await.unwrap();
    assert_eq!(
        ta.lease_holder(name).await.unwrap().as_deref(),
        Some("node-b")
    );
    ta.release_lease(name, "node-b").await.unwrap();
    assert!(ta.take_lease(name, "node-a", 60_000).await.unwrap());
    app.stop().await;
}

#[tokio::test]
async fn room_members_read_together_are_only_the_asking_tenants() {
    let app = spawn_app().await;
    let a = app.workspace("members-a").await;
    let b = app.workspace("members-b").await;
    let olga = app
        .create_user(&a.tenant, "olga@members-a.test", Role::Recruiter)
        .await;
    let ivan = app
        .create_user(&b.tenant, "ivan@members-b.test", Role::Recruiter)
        .await;
    let ta = app.db.for_tenant(&a.tenant.id);
    let tb = app.db.for_tenant(&b.tenant.id);
    let direct = ta
        .open_direct_room(&a.admin.id, &olga.id)
        .await
        .unwrap()
        .room
        .id;
    let theirs = tb
        .open_direct_room(&b.admin.id, &ivan.id)
        .await
        .unwrap()
        .room
        .id;
    let found = ta
        .member_ids_of_rooms(&[&direct, &theirs, "no-such-room"])
        .await
        .unwrap();
    let mut want = vec![a.admin.id.clone(), olga.id.clone()];
    want.sort();
    assert_eq!(found.len(), 1, "only the tenant's own room: {found:?}");
    assert_eq!(found[&direct], want);
    // Tenant B asking for A's room learns nothing of it.
    let found = tb.member_ids_of_rooms(&[&direct]).await.unwrap();
    assert!(found.is_empty(), "{found:?}");
    // More rooms than one statement takes are all answered, a room asked twice once.
    let mut rooms = vec![direct.clone()];
    for other in 0..300 {
        let user = app
            .create_user(
                &a.tenant,
                &format!("u{other}@members-a.test"),
                Role::Recruiter,
            )
            .await;
        rooms.push(
            ta.open_direct_room(&olga.id, &user.id)
                .await
                .unwrap()
                .room
                .id,
        );
    }
    rooms.push(direct.clone());
    let refs: Vec<&str> = rooms.iter().map(String::as_str).collect();
    let found = ta.member_ids_of_rooms(&refs).await.unwrap();
    assert_eq!(found.len(), 301);
    assert_eq!(found[&direct], want);
    assert!(found.values().all(|m| m.len() == 2 && m.contains(&olga.id)));
    app.stop().await;
}
