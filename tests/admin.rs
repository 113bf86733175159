//! Administration of staff and departments, and what each role may do.

mod common;

use common::*;
use jobers::store::Role;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn an_admin_creates_a_user_who_then_logs_in() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&ws.access()),
            json!({"name": "Подбор"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .post_json(
            "/api/v1/users",
            Some(&ws.access()),
            json!({"email": "Olga@Acme.test", "name": "Ольга", "role": "recruiter",
                   "department_id": dep["id"], "password": "olga's password"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "olga@acme.test");
    assert_eq!(user["department_id"], dep["id"]);
    assert_eq!(user["active"], true);
    assert!(user.get("password_hash").is_none());
    let tokens = app.login("acme", "olga@acme.test", "olga's password").await;
    assert_eq!(tokens["user"]["role"], "recruiter");
    // A second user with the same email is a 409.
    let r = app
        .post_json("/api/v1/users", Some(&ws.access()),
            json!({"email": "olga@acme.test", "name": "Другая", "role": "recruiter", "password": "another password"}))
        .await;
    let body = assert_error(r, 409, "email_taken").await;
    assert_eq!(
        body,
        json!({"error": "email_taken", "message": "a user with this email already exists"})
    );
}

#[tokio::test]
async fn recruiters_and_supervisors_cannot_administer() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    for role in [Role::Recruiter, Role::Supervisor] {
        let u = app
            .create_user(&ws.tenant, &format!("{}@acme.test", role.as_str()), role)
            .await;
        let t = app.login("acme", &u.email, PASSWORD).await;
        let access = t["access_token"].as_str().unwrap();
        let r = app.post_json("/api/v1/users", Some(access),
            json!({"email": "x@acme.test", "name": "X", "role": "admin", "password": "long enough pw"})).await;
        assert_error(r, 403, "forbidden").await;
        let r = app
            .request(
                Method::PATCH,
                &format!("/api/v1/users/{}", u.id),
                access,
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_error(r, 403, "forbidden").await;
        let r = app
            .post_json("/api/v1/departments", Some(access), json!({"name": "X"}))
            .await;
        assert_error(r, 403, "forbidden").await;
        assert_error(app.get("/api/v1/audit", access).await, 403, "forbidden").await;
        // Everyone may read the directory.
        assert_eq!(app.get("/api/v1/users", access).await.status(), 200);
        assert_eq!(app.get("/api/v1/departments", access).await.status(), 200);
    }
    let users: Value = app
        .get("/api/v1/users", &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["role"] != "admin" || u["id"] == ws.admin.id.as_str()));
}

#[tokio::test]
async fn the_directory_searches_and_filters() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&ws.access()),
            json!({"name": "Sales"}),
        )
        .await
        .json()
        .await
        .unwrap();
    for (email, name) in [
        ("olga@acme.test", "Ольга Петрова"),
        ("ivan@acme.test", "Иван Сидоров"),
        ("x_y@acme.test", "Percent 100%"),
    ] {
        app.post_json("/api/v1/users", Some(&ws.access()),
            json!({"email": email, "name": name, "role": "recruiter", "password": "long enough pw", "department_id": dep["id"]})).await;
    }
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_string())
            .collect()
    };
    let found = names(
        app.get("/api/v1/users?q=olga", &ws.access())
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(found, vec!["olga@acme.test"]);
    let found = names(
        app.get("/api/v1/users?q=%25", &ws.access())
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(found, vec!["x_y@acme.test"], "% is matched literally");
    let found = names(
        app.get(
            &format!(
                "/api/v1/users?department_id={}",
                dep["id"].as_str().unwrap()
            ),
            &ws.access(),
        )
        .await
        .json()
        .await
        .unwrap(),
    );
    assert_eq!(found.len(), 3);
    let ivan = app
        .db
        .for_tenant(&ws.tenant.id)
        .credentials_by_email("ivan@acme.test")
        .await
        .unwrap();
    app.post_json(
        &format!("/api/v1/users/{}/deactivate", ivan.id),
        Some(&ws.access()),
        json!({}),
    )
    .await;
    let found = names(
        app.get("/api/v1/users", &ws.access())
            .await
            .json()
            .await
            .unwrap(),
    );
    assert!(!found.contains(&"ivan@acme.test".to_string()));
    let found = names(
        app.get("/api/v1/users?include_inactive=true", &ws.access())
            .await
            .json()
            .await
            .unwrap(),
    );
    assert!(found.contains(&"ivan@acme.test".to_string()));
}

#[tokio::test]
async fn users_edit_their_own_profile_but_not_their_role() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let u = app
        .create_user(&ws.tenant, "r@acme.test", Role::Recruiter)
        .await;
    let t = app.login("acme", &u.email, PASSWORD).await;
    let access = t["access_token"].as_str().unwrap();
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/me",
            access,
            Some(json!({"signature": "С уважением, Р.", "phone": "+375291234567"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["signature"], "С уважением, Р.");
    assert_eq!(me["role"], "recruiter");
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/me",
            access,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_error(r, 422, "invalid_body").await;
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/me",
            access,
            Some(json!({"signature": null})),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["signature"], Value::Null);
}

#[tokio::test]
async fn admins_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let r = app
        .post_json(
            &format!("/api/v1/users/{}/deactivate", ws.admin.id),
            Some(&ws.access()),
            json!({}),
        )
        .await;
    assert_error(r, 409, "cannot_deactivate_self").await;
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{}", ws.admin.id),
            &ws.access(),
            Some(json!({"role": "recruiter"})),
        )
        .await;
    assert_error(r, 409, "cannot_demote_self").await;
}

#[tokio::test]
async fn an_admin_password_reset_ends_all_sessions_of_that_user() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let u = app
        .create_user(&ws.tenant, "r@acme.test", Role::Recruiter)
        .await;
    let t = app.login("acme", &u.email, PASSWORD).await;
    let r = app
        .post_json(
            &format!("/api/v1/users/{}/password", u.id),
            Some(&ws.access()),
            json!({"new_password": "set by the admin"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_error(
        app.get("/api/v1/me", t["access_token"].as_str().unwrap())
            .await,
        401,
        "session_revoked",
    )
    .await;
    app.login("acme", &u.email, "set by the admin").await;
}

#[tokio::test]
async fn departments_are_created_renamed_and_deleted() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    let dep: Value = app
        .post_json(
            "/api/v1/departments",
            Some(&ws.access()),
            json!({"name": "Sales"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = dep["id"].as_str().unwrap();
    let r = app
        .post_json(
            "/api/v1/departments",
            Some(&ws.access()),
            json!({"name": "Sales"}),
        )
        .await;
    assert_error(r, 409, "department_exists").await;
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/departments/{id}"),
            &ws.access(),
            Some(json!({"name": "Retail"})),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Retail");
    let u = app
        .create_user(&ws.tenant, "r@acme.test", Role::Recruiter)
        .await;
    app.request(
        Method::PATCH,
        &format!("/api/v1/users/{}", u.id),
        &ws.access(),
        Some(json!({"department_id": id})),
    )
    .await;
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/departments/{id}"),
            &ws.access(),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_error(
        app.get(&format!("/api/v1/departments/{id}"), &ws.access())
            .await,
        404,
        "not_found",
    )
    .await;
    let user: Value = app
        .get(&format!("/api/v1/users/{}", u.id), &ws.access())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["department_id"], Value::Null);
}

#[tokio::test]
async fn the_directory_finds_cyrillic_names_in_any_case() {
    let app = spawn_app().await;
    let ws = app.workspace("acme").await;
    app.post_json("/api/v1/users", Some(&ws.access()),
        json!({"email": "o@acme.test", "name": "Ольга Петрова", "role": "recruiter", "password": "long enough pw", "title": "Старший рекрутер"})).await;
    for q in ["ольга", "ОЛЬГА", "петр", "старший"] {
        let path = format!(
            "/api/v1/users?q={}",
            q.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        );
        let found: Value = app.get(&path, &ws.access()).await.json().await.unwrap();
        assert_eq!(found.as_array().unwrap().len(), 1, "{q}: {found}");
    }
}
