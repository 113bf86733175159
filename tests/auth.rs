//! The authorization service over HTTP: login, rotation, reuse detection, expiry,
//! sessions, password changes, brute force, deactivation, audit.

mod common;

use std::time::Duration;

use common::*;
use jobers::store::Role;
use serde_json::{json, Value};

#[tokio::test]
async fn login_returns_tokens_and_the_user() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    assert_eq!(ws.tokens["token_type"], "Bearer");
    assert_eq!(ws.tokens["expires_in"], 900);
    assert_eq!(ws.tokens["user"]["email"], "admin@acme.test");
    let me: Value = app
        .get("/api/v1/me", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["id"], ws.admin.id.as_str());
    assert_eq!(me["tenant"]["slug"], "acme");
    app.stop().await;
}

#[tokio::test]
async fn login_sets_an_httponly_strict_refresh_cookie() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let response = app
        .post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": ws.admin.email, "password": PASSWORD}),
        )
        .await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("jobers_refresh="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/api/v1/auth"), "{cookie}");
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn wrong_password_unknown_user_and_unknown_tenant_look_the_same() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    for (tenant, email) in [
        ("acme", ws.admin.email.as_str()),
        ("acme", "nobody@acme.test"),
        ("nope", "admin@acme.test"),
    ] {
        let r = app
            .post_json(
                "/api/v1/auth/login",
                None,
                json!({"tenant": tenant, "email": email, "password": "wrong password!"}),
            )
            .await;
        let body = assert_error(r, 401, "invalid_credentials").await;
        assert_eq!(
            body,
            json!({"error": "invalid_credentials", "message": "wrong company, email or password"})
        );
    }
}

#[tokio::test]
async fn login_email_is_case_insensitive() {
    let app = spawn_app().await;
    app.workspace("acme").await;
    app.login("acme", "  ADMIN@Acme.Test ", PASSWORD).await;
}

#[tokio::test]
async fn refresh_token_works_exactly_once() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": ws.refresh()}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let next: Value = r.json().await.unwrap();
    assert_ne!(next["refresh_token"], ws.tokens["refresh_token"]);
    assert_eq!(
        app.get("/api/v1/me", next["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // The new one works once too.
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": next["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let stolen = ws.refresh();
    // The legitimate client rotates.
    let next: Value = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": stolen}),
        )
        .await
        .json()
        .await
        .unwrap();
    // The thief replays the old token.
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": stolen}),
        )
        .await;
    assert_error(r, 401, "refresh_token_reused").await;
    // The newer refresh token is dead as well ...
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": next["refresh_token"]}),
        )
        .await;
    assert_error(r, 401, "invalid_refresh_token").await;
    // ... and so are the access tokens of that session.
    let r = app
        .get("/api/v1/me", next["access_token"].as_str().unwrap())
        .await;
    assert_error(r, 401, "session_revoked").await;
    // Other sessions of the same user are untouched.
    let other = app.login("acme", &ws.admin.email, PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/me", other["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // And the reuse is in the audit log.
    let audit: Value = app
        .get(
            "/api/v1/audit?action=refresh_token_reused",
            other["access_token"].as_str().unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn garbage_and_forged_refresh_tokens_are_refused() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let forged = format!("{}.{}", ws.tenant.id, "A".repeat(43));
    let other_tenant = format!("{}.{}", uuid::Uuid::now_v7(), "B".repeat(43));
    for token in ["", "garbage", forged.as_str(), other_tenant.as_str()] {
        let r = app
            .post_json(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": token}),
            )
            .await;
        assert_error(r, 401, "invalid_refresh_token").await;
    }
}

#[tokio::test]
async fn refresh_by_cookie_works_and_cross_site_refresh_is_rejected() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let cookie = format!("jobers_refresh={}", ws.refresh());
    let cross = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(cross, 403, "cross_origin_rejected").await;
    let same = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
}

#[tokio::test]
async fn expired_access_token_is_refused_with_token_expired() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    // Forge a correctly signed token that expired a second ago.
    let now = chrono::Utc::now().timestamp() as u64;
    let me: Value = app
        .get("/api/v1/me", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    let claims = json!({
        "sub": ws.admin.id, "tid": ws.tenant.id, "sid": me["session_id"],
        "iat": now - 901, "exp": now - 1, "typ": "access"
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_TOKEN_SECRET.as_bytes()),
    )
    .unwrap();
    let body = assert_error(app.get("/api/v1/me", &token).await, 401, "token_expired").await;
    assert_eq!(
        body,
        json!({"error": "token_expired", "message": "the access token has expired; refresh it"})
    );
}

#[tokio::test]
async fn access_tokens_expire_after_their_configured_lifetime() {
    let app = spawn_app_with(|c| c.auth.access_token_ttl_secs = 1).await;
    let ws = app.workspace("acme").await;
    assert_eq!(app.get("/api/v1/me", &ws.access()).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_error(
        app.get("/api/v1/me", &ws.access()).await,
        401,
        "token_expired",
    )
    .await;
    // The refresh token still gets a fresh one.
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": ws.refresh()}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn tampered_and_missing_tokens_are_refused() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let mut tampered = ws.access();
    tampered.pop();
    tampered.push('x');
    assert_error(app.get("/api/v1/me", &tampered).await, 401, "invalid_token").await;
    // Signed with another key.
    let claims = json!({"sub": ws.admin.id, "tid": ws.tenant.id, "sid": "x", "iat": 0, "exp": u32::MAX, "typ": "access"});
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-key-another-key-another-key!"),
    )
    .unwrap();
    assert_error(app.get("/api/v1/me", &other).await, 401, "invalid_token").await;
    let r = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_error(r, 401, "missing_token").await;
}

#[tokio::test]
async fn logout_ends_only_this_session_and_logout_all_ends_every_session() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let second = app.login("acme", &ws.admin.email, PASSWORD).await;
    let third = app.login("acme", &ws.admin.email, PASSWORD).await;
    let r = app
        .post_json("/api/v1/auth/logout", Some(&ws.access()), json!({}))
        .await;
    assert_eq!(r.status(), 204);
    assert_error(
        app.get("/api/v1/me", &ws.access()).await,
        401,
        "session_revoked",
    )
    .await;
    let second_access = second["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", second_access).await.status(), 200);
    let sessions: Value = app
        .get("/api/v1/auth/sessions", second_access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions}");
    assert_eq!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["current"] == true)
            .count(),
        1
    );

    let r = app
        .post_json("/api/v1/auth/logout-all", Some(second_access), json!({}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["revoked"], 2);
    for token in [second_access, third["access_token"].as_str().unwrap()] {
        assert_error(app.get("/api/v1/me", token).await, 401, "session_revoked").await;
    }
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": third["refresh_token"]}),
        )
        .await;
    assert_error(r, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn logout_with_only_the_refresh_cookie_ends_the_session() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", format!("jobers_refresh={}", ws.refresh()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_error(
        app.get("/api/v1/me", &ws.access()).await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn a_user_can_revoke_one_of_their_sessions_but_not_someone_elses() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let laptop = app.login("acme", &ws.admin.email, PASSWORD).await;
    let laptop_sid = app
        .get("/api/v1/me", laptop["access_token"].as_str().unwrap())
        .await
        .json::<Value>()
        .await
        .unwrap()["session_id"]
        .clone();
    let recruiter = app
        .create_user(&ws.tenant, "r@acme.test", Role::Recruiter)
        .await;
    let rec = app.login("acme", &recruiter.email, PASSWORD).await;
    let rec_access = rec["access_token"].as_str().unwrap();
    // The recruiter cannot end the admin's session.
    let path = format!("/api/v1/auth/sessions/{}", laptop_sid.as_str().unwrap());
    let r = app
        .request(reqwest::Method::DELETE, &path, rec_access, None)
        .await;
    assert_error(r, 404, "not_found").await;
    assert_eq!(
        app.get("/api/v1/me", laptop["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // The admin can.
    let r = app
        .request(reqwest::Method::DELETE, &path, &ws.access(), None)
        .await;
    assert_eq!(r.status(), 204);
    assert_error(
        app.get("/api/v1/me", laptop["access_token"].as_str().unwrap())
            .await,
        401,
        "session_revoked",
    )
    .await;
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_keeps_this_one() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let other = app.login("acme", &ws.admin.email, PASSWORD).await;
    let r = app
        .post_json(
            "/api/v1/me/password",
            Some(&ws.access()),
            json!({"current_password": "not it at all", "new_password": "a brand new password"}),
        )
        .await;
    assert_error(r, 401, "invalid_credentials").await;
    let r = app
        .post_json(
            "/api/v1/me/password",
            Some(&ws.access()),
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_error(r, 422, "weak_password").await;
    let r = app
        .post_json(
            "/api/v1/me/password",
            Some(&ws.access()),
            json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.get("/api/v1/me", &ws.access()).await.status(), 200);
    assert_error(
        app.get("/api/v1/me", other["access_token"].as_str().unwrap())
            .await,
        401,
        "session_revoked",
    )
    .await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": ws.admin.email, "password": PASSWORD}),
        )
        .await;
    assert_error(r, 401, "invalid_credentials").await;
    app.login("acme", &ws.admin.email, "a brand new password")
        .await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_a_retry_time() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    for _ in 0..5 {
        let r = app
            .post_json(
                "/api/v1/auth/login",
                None,
                json!({"tenant": "acme", "email": ws.admin.email, "password": "guess guess guess"}),
            )
            .await;
        assert_error(r, 401, "invalid_credentials").await;
    }
    // Even the right password is refused now, with Retry-After.
    let r = app
        .post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": ws.admin.email, "password": PASSWORD}),
        )
        .await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "retry after {retry}s");
    let body = assert_error(r, 429, "too_many_attempts").await;
    assert!(
        body["message"].as_str().unwrap().contains("15 minute"),
        "{body}"
    );
    // Other accounts are not locked by it.
    let other = app
        .create_user(&ws.tenant, "other@acme.test", Role::Recruiter)
        .await;
    app.login("acme", &other.email, PASSWORD).await;
    let audit: Value = app
        .get("/api/v1/audit?action=account_locked", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 1);
    let failed: Value = app
        .get("/api/v1/audit?action=login_failed", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_source_that_guesses_across_many_accounts_is_blocked() {
    let app = spawn_app_with(|c| c.auth.max_failures_per_source = 4).await;
    let ws = app.workspace("acme").await;
    for i in 0..4 {
        let r = app.post_json("/api/v1/auth/login", None, json!({"tenant": "acme", "email": format!("u{i}@acme.test"), "password": "guess guess guess"})).await;
        assert_error(r, 401, "invalid_credentials").await;
    }
    let r = app
        .post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": ws.admin.email, "password": PASSWORD}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "too_many_attempts").await;
}

#[tokio::test]
async fn the_lock_lifts_when_the_window_passes() {
    let app = spawn_app_with(|c| {
        c.auth.max_failures_per_account = 2;
        c.auth.lockout_window_secs = 1;
    })
    .await;
    let ws = app.workspace("acme").await;
    for _ in 0..2 {
        app.post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": ws.admin.email, "password": "guess guess guess"}),
        )
        .await;
    }
    let r = app
        .post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": ws.admin.email, "password": PASSWORD}),
        )
        .await;
    assert_error(r, 429, "too_many_attempts").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.login("acme", &ws.admin.email, PASSWORD).await;
}

#[tokio::test]
async fn deactivating_a_user_stops_their_tokens_at_once() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let rec = app
        .create_user(&ws.tenant, "r@acme.test", Role::Recruiter)
        .await;
    let tokens = app.login("acme", &rec.email, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me", access).await.status(), 200);
    let r = app
        .post_json(
            &format!("/api/v1/users/{}/deactivate", rec.id),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);
    assert_error(
        app.get("/api/v1/me", access).await,
        401,
        "account_deactivated",
    )
    .await;
    let r = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_error(r, 401, "invalid_refresh_token").await;
    let r = app
        .post_json(
            "/api/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": rec.email, "password": PASSWORD}),
        )
        .await;
    assert_error(r, 401, "account_deactivated").await;
    // Reactivated, they can log in again, but old sessions stay dead.
    let r = app
        .post_json(
            &format!("/api/v1/users/{}/activate", rec.id),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_error(app.get("/api/v1/me", access).await, 401, "session_revoked").await;
    app.login("acme", &rec.email, PASSWORD).await;
}

#[tokio::test]
async fn security_events_are_audited() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let rec = app
        .create_user(&ws.tenant, "r@acme.test", Role::Recruiter)
        .await;
    let r = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{}", rec.id),
            &ws.access(),
            Some(json!({"role": "supervisor"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let entries: Value = app
        .get("/api/v1/audit", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"login"), "{actions:?}");
    assert!(actions.contains(&"role_changed"), "{actions:?}");
    let change = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "role_changed")
        .unwrap();
    assert_eq!(
        change["details"],
        json!({"from": "recruiter", "to": "supervisor"})
    );
    assert_eq!(change["actor_user_id"], ws.admin.id.as_str());
    assert_eq!(change["target_id"], rec.id.as_str());
    // Paging by cursor returns older entries only.
    let newest = entries[0]["id"].as_str().unwrap();
    let older: Value = app
        .get(
            &format!("/api/v1/audit?before={newest}&limit=1"),
            &ws.access(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert!(older[0]["id"].as_str().unwrap() < newest);
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let other_admin = app
        .create_user(&ws.tenant, "a2@acme.test", Role::Admin)
        .await;
    let tokens = app.login("acme", &other_admin.email, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/audit", access).await.status(), 200);
    app.request(
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{}", other_admin.id),
        &ws.access(),
        Some(json!({"role": "recruiter"})),
    )
    .await;
    assert_error(app.get("/api/v1/audit", access).await, 403, "forbidden").await;
}
