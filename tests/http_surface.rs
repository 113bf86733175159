//! The HTTP surface: error shapes for bad input, limits, health, metrics, OpenAPI, CORS.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn malformed_json_is_a_400_with_the_error_shape() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"tenant\": \"acme\", ")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "malformed_json").await;
}

#[tokio::test]
async fn wrong_types_missing_fields_and_unknown_fields_are_422() {
    let app = spawn_app().await;
    for body in [
        json!({"tenant": "acme", "email": 5, "password": "x"}),
        json!({"tenant": "acme", "email": "a@b.c"}),
        json!({"tenant": "acme", "email": "a@b.c", "password": "x", "admin": true}),
        json!([1, 2, 3]),
    ] {
        let r = app
            .post_json("/api/v1/auth/login", None, body.clone())
            .await;
        let err = assert_error(r, 422, "invalid_body").await;
        assert!(!err["message"].as_str().unwrap().is_empty(), "{body}");
    }
}

#[tokio::test]
async fn a_body_without_json_content_type_is_415() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn an_oversized_body_is_413_and_changes_nothing() {
    let app = spawn_app_with(|c| c.http.max_body_bytes = 4096).await;
    let ws = app.workspace("acme").await;
    let r = app
        .post_json(
            "/api/v1/departments",
            Some(&ws.access()),
            json!({"name": "x".repeat(10_000)}),
        )
        .await;
    let body = assert_error(r, 413, "payload_too_large").await;
    assert_eq!(
        body,
        json!({"error": "payload_too_large", "message": "the request body is larger than this endpoint accepts"})
    );
    let departments: Value = app
        .get("/api/v1/departments", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(departments, json!([]));
}

#[tokio::test]
async fn unknown_routes_and_methods_have_the_error_shape() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/no-such-thing"))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 404, "not_found").await;
    assert_eq!(body, json!({"error": "not_found", "message": "not found"}));
    let r = app.client.put(app.url("/healthz")).send().await.unwrap();
    assert_error(r, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn validation_errors_name_the_problem() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let cases = [
        (
            json!({"email": "not-an-email", "name": "N", "role": "recruiter", "password": "long enough pw"}),
            422,
            "invalid_email",
        ),
        (
            json!({"email": "a@acme.test", "name": "", "role": "recruiter", "password": "long enough pw"}),
            422,
            "invalid_field",
        ),
        (
            json!({"email": "a@acme.test", "name": "N", "role": "recruiter", "password": "short"}),
            422,
            "weak_password",
        ),
        (
            json!({"email": "a@acme.test", "name": "N", "role": "king", "password": "long enough pw"}),
            422,
            "invalid_body",
        ),
        (
            json!({"email": "a@acme.test", "name": "N", "role": "recruiter", "password": "long enough pw", "department_id": "nope"}),
            422,
            "unknown_department",
        ),
    ];
    for (body, status, code) in cases {
        let r = app
            .post_json("/api/v1/users", Some(&ws.access()), body)
            .await;
        assert_error(r, status, code).await;
    }
    let users: Value = app
        .get("/api/v1/users", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "nothing was created: {users}"
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = app
        .get("/api/v1/users?include_inactive=perhaps", &ws.access())
        .await;
    assert_error(r, 400, "invalid_query").await;
    let r = app.get("/api/v1/audit?limit=lots", &ws.access()).await;
    assert_error(r, 400, "invalid_query").await;
}

#[tokio::test]
async fn health_and_readiness_report_the_database() {
    let app = spawn_app().await;
    let health: Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(
        ready,
        json!({"reachable": true, "migrations_applied": true, "pending_migrations": []})
    );
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.close().await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["reachable"], false);
    assert_eq!(ready["migrations_applied"], false);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    app.get(&format!("/api/v1/users/{}", ws.admin.id), &ws.access())
        .await;
    let text = app.metrics().await;
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/users/{user_id}\""), "{text}");
    assert!(!text.contains(&ws.admin.id), "ids never become labels");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("db_pool_connections"), "{text}");
}

#[tokio::test]
async fn openapi_description_is_served_and_lists_the_api() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/users/{user_id}",
        "/api/v1/departments",
        "/healthz",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn cross_origin_requests_get_no_cors_grant_by_default() {
    let app = spawn_app().await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .json(&json!({"tenant": "x", "email": "a@b.c", "password": "whatever pw"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "cross_origin_rejected").await;
}

#[tokio::test]
async fn configured_origins_are_granted_cors() {
    let app =
        spawn_app_with(|c| c.http.cors_allowed_origins = vec!["https://hr.example".into()]).await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("origin", "https://hr.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://hr.example"
    );
}

#[tokio::test]
async fn responses_carry_a_request_id_and_security_headers() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}
