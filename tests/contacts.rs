//! Applicants and identities: normalised, unique per tenant, joined and merged when they
//! meet, merges undone; the applicant directory.

mod common;

use common::*;
use jobers::store::IdentityKey;
use serde_json::{json, Value};

fn key(kind: &str, value: &str) -> IdentityKey {
    jobers::identity::normalize(kind, value).unwrap()
}

#[tokio::test]
async fn applicants_are_created_with_normalised_identities_and_found_by_any_spelling() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = app
        .post_json("/api/v1/contacts", Some(&ws.access()), json!({"name": "Анна Петрова", "city": "Минск",
            "identities": [{"kind": "phone", "value": "8 (029) 123-45-67"}, {"kind": "email", "value": " Anna@Mail.RU"}]}))
        .await;
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    let values: Vec<&str> = c["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["anna@mail.ru", "+375291234567"]);
    for q in ["анна", "375 29 123", "80291234567", "anna@mail"] {
        let found: Value = app
            .get(
                &format!("/api/v1/contacts?q={}", urlencode(q)),
                &ws.access(),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(found.as_array().unwrap().len(), 1, "search {q}: {found}");
    }
    let none: Value = app
        .get("/api/v1/contacts?q=ivan", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn an_identity_belongs_to_one_applicant() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    app.post_json(
        "/api/v1/contacts",
        Some(&ws.access()),
        json!({"identities": [{"kind": "phone", "value": "+79161234567"}]}),
    )
    .await;
    let r = app
        .post_json(
            "/api/v1/contacts",
            Some(&ws.access()),
            json!({"identities": [{"kind": "phone", "value": "8 916 123-45-67"}]}),
        )
        .await;
    let body = assert_error(r, 409, "identity_taken").await;
    assert_eq!(
        body["message"],
        "this identity belongs to another applicant; merge them instead"
    );
    let other: Value = app
        .post_json(
            "/api/v1/contacts",
            Some(&ws.access()),
            json!({"name": "Other"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post_json(
            &format!(
                "/api/v1/contacts/{}/identities",
                other["id"].as_str().unwrap()
            ),
            Some(&ws.access()),
            json!({"kind": "phone", "value": "89161234567"}),
        )
        .await;
    assert_error(r, 409, "identity_taken").await;
    let r = app
        .post_json(
            "/api/v1/contacts",
            Some(&ws.access()),
            json!({"identities": [{"kind": "phone", "value": "call me maybe"}]}),
        )
        .await;
    assert_error(r, 422, "invalid_identity").await;
    let r = app
        .post_json(
            "/api/v1/contacts",
            Some(&ws.access()),
            json!({"identities": [{"kind": "fax", "value": "1"}]}),
        )
        .await;
    assert_error(r, 422, "invalid_identity").await;
}

#[tokio::test]
async fn an_inbound_sender_joins_the_applicant_that_has_the_identity() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let db = app.db.for_tenant(&ws.tenant.id);
    // An SMS from a phone creates the applicant.
    let sms = db
        .resolve_contact(None, &[key("phone", "+7 916 123-45-67")])
        .await
        .unwrap()
        .0;
    assert!(sms.created);
    // A board response with the same phone (another spelling) and a board id joins it.
    let board = db
        .resolve_contact(
            Some("Иван Сидоров"),
            &[key("hh", "555"), key("phone", "89161234567")],
        )
        .await
        .unwrap()
        .0;
    assert!(!board.created);
    assert_eq!(board.contact.id, sms.contact.id, "no duplicate applicant");
    assert_eq!(board.contact.name.as_deref(), Some("Иван Сидоров"));
    assert_eq!(board.contact.identities.len(), 2);
    assert!(board.merges.is_empty());
    // Another spelling again: still one.
    let again = db
        .resolve_contact(None, &[key("hh", "555")])
        .await
        .unwrap()
        .0;
    assert_eq!(again.contact.id, sms.contact.id);
    let all: Value = app
        .get("/api/v1/contacts", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn identities_of_two_applicants_meeting_merge_them_and_the_merge_can_be_undone() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let db = app.db.for_tenant(&ws.tenant.id);
    let by_email = db
        .resolve_contact(Some("Анна"), &[key("email", "anna@mail.ru")])
        .await
        .unwrap()
        .0
        .contact;
    let by_phone = db
        .resolve_contact(None, &[key("phone", "+375291234567")])
        .await
        .unwrap()
        .0
        .contact;
    assert_ne!(by_email.id, by_phone.id);
    // A message that carries both: they are one person.
    let met = db
        .resolve_contact(
            None,
            &[key("phone", "80291234567"), key("email", "ANNA@mail.ru")],
        )
        .await
        .unwrap()
        .0;
    assert_eq!(met.merges.len(), 1);
    let merge = &met.merges[0];
    assert_eq!(merge.reason, "identity_match");
    assert_eq!(met.contact.identities.len(), 2);
    let gone = app
        .get(
            &format!("/api/v1/contacts/{}", merge.merged_id),
            &ws.access(),
        )
        .await;
    assert_error(gone, 404, "not_found").await;
    // A recruiter undoes it: both applicants are back with their own identities.
    let r = app
        .post_json(
            &format!("/api/v1/contact-merges/{}/undo", merge.id),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let survivor: Value = app
        .get(
            &format!("/api/v1/contacts/{}", merge.survivor_id),
            &ws.access(),
        )
        .await
        .json()
        .await
        .unwrap();
    let merged: Value = app
        .get(
            &format!("/api/v1/contacts/{}", merge.merged_id),
            &ws.access(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(survivor["identities"].as_array().unwrap().len(), 1);
    assert_eq!(merged["identities"].as_array().unwrap().len(), 1);
    let r = app
        .post_json(
            &format!("/api/v1/contact-merges/{}/undo", merge.id),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_error(r, 409, "merge_already_undone").await;
}

#[tokio::test]
async fn a_recruiter_merges_two_applicants_by_hand_and_it_is_audited() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let a: Value = app
        .post_json(
            "/api/v1/contacts",
            Some(&ws.access()),
            json!({"name": "A", "identities": [{"kind": "email", "value": "a@x.ru"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let b: Value = app
        .post_json(
            "/api/v1/contacts",
            Some(&ws.access()),
            json!({"name": "B", "identities": [{"kind": "telegram", "value": "@anna"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let r = app
        .post_json(
            &format!("/api/v1/contacts/{a_id}/merge"),
            Some(&ws.access()),
            json!({"contact_id": a_id}),
        )
        .await;
    assert_error(r, 409, "same_contact").await;
    let r = app
        .post_json(
            &format!("/api/v1/contacts/{a_id}/merge"),
            Some(&ws.access()),
            json!({"contact_id": b_id}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["reason"], "manual");
    assert_eq!(m["actor_user_id"], ws.admin.id.as_str());
    let merged: Value = app
        .get(&format!("/api/v1/contacts/{a_id}"), &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(merged["identities"].as_array().unwrap().len(), 2);
    let audit: Value = app
        .get("/api/v1/audit?action=contacts_merged", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["target_id"], m["id"]);
}

#[tokio::test]
async fn a_merge_that_a_later_merge_built_on_cannot_be_undone_first() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let access = ws.access();
    let mk = |name: &'static str, email: &'static str| {
        app.post_json(
            "/api/v1/contacts",
            Some(&access),
            json!({"name": name, "identities": [{"kind": "email", "value": email}]}),
        )
    };
    let m: Value = mk("M", "m@x.ru").await.json().await.unwrap();
    let s: Value = mk("S", "s@x.ru").await.json().await.unwrap();
    let t: Value = mk("T", "t@x.ru").await.json().await.unwrap();
    let first: Value = app
        .post_json(
            &format!("/api/v1/contacts/{}/merge", s["id"].as_str().unwrap()),
            Some(&ws.access()),
            json!({"contact_id": m["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let second: Value = app
        .post_json(
            &format!("/api/v1/contacts/{}/merge", t["id"].as_str().unwrap()),
            Some(&ws.access()),
            json!({"contact_id": s["id"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post_json(
            &format!(
                "/api/v1/contact-merges/{}/undo",
                first["id"].as_str().unwrap()
            ),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_error(r, 409, "merge_superseded").await;
    // In reverse order both undo cleanly.
    let r = app
        .post_json(
            &format!(
                "/api/v1/contact-merges/{}/undo",
                second["id"].as_str().unwrap()
            ),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_json(
            &format!(
                "/api/v1/contact-merges/{}/undo",
                first["id"].as_str().unwrap()
            ),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for (c, email) in [(&m, "m@x.ru"), (&s, "s@x.ru"), (&t, "t@x.ru")] {
        let got: Value = app
            .get(
                &format!("/api/v1/contacts/{}", c["id"].as_str().unwrap()),
                &ws.access(),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got["identities"][0]["value"], email);
        assert_eq!(got["identities"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn applicants_who_may_be_one_person_are_suggested_for_a_merge() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let create = |body: Value| {
        let app = &app;
        let token = ws.access();
        async move {
            let r = app.post_json("/api/v1/contacts", Some(&token), body).await;
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()
        }
    };
    let anna = create(json!({"name": "Анна Петрова", "identities": [
        {"kind": "phone", "value": "+375 29 123-45-67"}, {"kind": "email", "value": "anna_petrova@mail.ru"}]}))
    .await;
    // Same name in another case; same mailbox name elsewhere; the same number under the
    // Russian code; and two who only look alike (a shorter mailbox name, another number).
    let by_name = create(
        json!({"name": "анна петрова", "identities": [{"kind": "telegram", "value": "anna_p"}]}),
    )
    .await;
    let by_mail =
        create(json!({"identities": [{"kind": "email", "value": "Anna_Petrova@gmail.com"}]})).await;
    let by_phone =
        create(json!({"identities": [{"kind": "phone", "value": "+7 291 234 567"}]})).await;
    create(
        json!({"name": "Анна", "identities": [{"kind": "email", "value": "anna@gmail.com"},
        {"kind": "phone", "value": "+375 29 765-43-21"}]}),
    )
    .await;
    // A `%` or `_` in a mailbox name is a character, not a wildcard.
    create(json!({"identities": [{"kind": "email", "value": "annaxpetrova@yandex.ru"}]})).await;
    let path = format!(
        "/api/v1/contacts/{}/suggestions",
        anna["id"].as_str().unwrap()
    );
    let s = json_of(app.get(&path, &ws.access()).await).await;
    let mut got: Vec<(String, Vec<String>)> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["contact"]["id"].as_str().unwrap().to_string(),
                serde_json::from_value(x["reasons"].clone()).unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (
            by_name["id"].as_str().unwrap().to_string(),
            vec!["same_name".to_string()],
        ),
        (
            by_mail["id"].as_str().unwrap().to_string(),
            vec!["same_email_local_part".to_string()],
        ),
        (
            by_phone["id"].as_str().unwrap().to_string(),
            vec!["same_phone".to_string()],
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{s}");
    // Merged: no longer suggested.
    let r = app
        .post_json(
            &format!("/api/v1/contacts/{}/merge", anna["id"].as_str().unwrap()),
            Some(&ws.access()),
            json!({"contact_id": by_name["id"]}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let s = json_of(app.get(&path, &ws.access()).await).await;
    assert_eq!(s.as_array().unwrap().len(), 2, "{s}");
    // Another tenant neither sees the applicant nor gets suggestions from this one.
    let other = app.workspace("other").await;
    assert_error(app.get(&path, &other.access()).await, 404, "not_found").await;
}
