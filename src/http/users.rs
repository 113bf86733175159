//! `/api/v1/users`, `/api/v1/departments`, `/api/v1/me`, `/api/v1/audit`: the staff
//! directory and its administration.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{nullable, AuthUser, Json, Query};
use super::AppState;
use crate::auth::password::check_policy;
use crate::auth::service::ClientInfo;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::realtime::protocol::close;
use crate::store::{
    AuditEntry, AuditQuery, Department, NewAuditEntry, NewUser, Role, Tenant, User, UserPatch,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(activate_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_departments, create_department))
        .routes(routes!(
            get_department,
            rename_department,
            delete_department
        ))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(list_audit))
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    let n = value.trim().chars().count();
    if n < min || n > max {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field} must be {min} to {max} characters long"),
        ));
    }
    Ok(())
}

fn check_opt(field: &str, value: &Option<String>, max: usize) -> ApiResult<()> {
    match value {
        Some(v) => check_len(field, v, 0, max),
        None => Ok(()),
    }
}

fn check_email(email: &str) -> ApiResult<()> {
    let e = email.trim();
    let valid = e.len() <= 254
        && !e.contains(char::is_whitespace)
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_email",
            "this is not a valid email address",
        ))
    }
}

fn check_password(password: &str) -> ApiResult<()> {
    check_policy(password).map_err(|m| ApiError::unprocessable("weak_password", m))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Search in name, email, phone and title.
    pub q: Option<String>,
    pub department_id: Option<String>,
    /// Include deactivated users too.
    pub include_inactive: Option<bool>,
}

/// The staff directory.
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])),
    params(UserListQuery),
    responses((status = 200, body = Vec<User>), (status = 401, body = ErrorBody)))]
async fn list_users(
    user: AuthUser,
    Query(q): Query<UserListQuery>,
) -> ApiResult<axum::Json<Vec<User>>> {
    Ok(axum::Json(
        user.db
            .list_users(
                q.q.as_deref(),
                q.department_id.as_deref(),
                q.include_inactive.unwrap_or(false),
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department_id: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    /// Initial password (at least 10 characters).
    pub password: String,
}

/// Create a staff user (admin).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, description = "email_taken", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(req): Json<CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    user.principal.require(Role::Admin)?;
    check_email(&req.email)?;
    check_len("name", &req.name, 1, 200)?;
    check_opt("phone", &req.phone, 40)?;
    check_opt("title", &req.title, 200)?;
    check_password(&req.password)?;
    let hash = state.auth.hasher().hash(&req.password).await?;
    let created = user
        .db
        .create_user(NewUser {
            email: req.email,
            name: req.name,
            role: req.role,
            department_id: req.department_id,
            phone: req.phone,
            title: req.title,
            password_hash: hash,
        })
        .await?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "user_created",
            target_type: Some("user"),
            target_id: Some(&created.id),
            source: client.source.as_deref(),
            details: json!({ "email": created.email, "role": created.role }),
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// One staff user.
#[utoipa::path(get, path = "/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn get_user(user: AuthUser, Path(user_id): Path<String>) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(user.db.user(&user_id).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    /// `null` removes the user from their department.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub department_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
}

/// Edit a staff user (admin). A role change is audited.
#[utoipa::path(patch, path = "/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_user(
    user: AuthUser,
    client: ClientInfo,
    Path(user_id): Path<String>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    user.principal.require(Role::Admin)?;
    if let Some(email) = &req.email {
        check_email(email)?;
    }
    if let Some(name) = &req.name {
        check_len("name", name, 1, 200)?;
    }
    check_opt("phone", &req.phone.clone().flatten(), 40)?;
    check_opt("title", &req.title.clone().flatten(), 200)?;
    let before = user.db.user(&user_id).await?;
    if user_id == user.principal.user_id() && req.role.is_some_and(|r| r != Role::Admin) {
        return Err(ApiError::Conflict {
            code: "cannot_demote_self",
            message: "an admin cannot take away their own admin role".into(),
        });
    }
    let after = user
        .db
        .update_user(
            &user_id,
            UserPatch {
                name: req.name,
                email: req.email,
                role: req.role,
                department_id: req.department_id,
                phone: req.phone,
                title: req.title,
                signature: None,
            },
        )
        .await?;
    let actor = Some(user.principal.user_id());
    if before.role != after.role {
        user.db
            .audit(NewAuditEntry {
                actor_user_id: actor,
                action: "role_changed",
                target_type: Some("user"),
                target_id: Some(&user_id),
                source: client.source.as_deref(),
                details: json!({ "from": before.role, "to": after.role }),
            })
            .await?;
    }
    user.db
        .audit(NewAuditEntry {
            actor_user_id: actor,
            action: "user_updated",
            target_type: Some("user"),
            target_id: Some(&user_id),
            source: client.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(axum::Json(after))
}

async fn set_active(
    state: AppState,
    user: AuthUser,
    client: ClientInfo,
    user_id: String,
    active: bool,
) -> ApiResult<axum::Json<User>> {
    user.principal.require(Role::Admin)?;
    if !active && user_id == user.principal.user_id() {
        return Err(ApiError::Conflict {
            code: "cannot_deactivate_self",
            message: "an admin cannot deactivate their own account".into(),
        });
    }
    let changed = user.db.set_user_active(&user_id, active).await?;
    if !active {
        state
            .hub
            .kick_user(
                user.db.tenant_id(),
                &user_id,
                None,
                close::ACCOUNT_DEACTIVATED,
                "account_deactivated",
            )
            .await;
    }
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: if active {
                "user_activated"
            } else {
                "user_deactivated"
            },
            target_type: Some("user"),
            target_id: Some(&user_id),
            source: client.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(axum::Json(changed))
}

/// Deactivate a user (admin): every token and connection of theirs stops working at once.
#[utoipa::path(post, path = "/users/{user_id}/deactivate", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn deactivate_user(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    set_active(state, user, client, user_id, false).await
}

/// Reactivate a deactivated user (admin).
#[utoipa::path(post, path = "/users/{user_id}/activate", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
async fn activate_user(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    set_active(state, user, client, user_id, true).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    pub new_password: String,
}

/// Set a user's password (admin). All of that user's sessions end.
#[utoipa::path(post, path = "/users/{user_id}/password", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = ResetPassword,
    responses((status = 204, description = "Password set"), (status = 404, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(user_id): Path<String>,
    Json(req): Json<ResetPassword>,
) -> ApiResult<StatusCode> {
    user.principal.require(Role::Admin)?;
    check_password(&req.new_password)?;
    user.db.user(&user_id).await?;
    let hash = state.auth.hasher().hash(&req.new_password).await?;
    user.db.set_password(&user_id, &hash, None).await?;
    state
        .hub
        .kick_user(
            user.db.tenant_id(),
            &user_id,
            None,
            close::SESSION_REVOKED,
            "session_revoked",
        )
        .await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "password_reset",
            target_type: Some("user"),
            target_id: Some(&user_id),
            source: client.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Departments of the workspace.
#[utoipa::path(get, path = "/departments", tag = "departments", security(("bearer" = [])),
    responses((status = 200, body = Vec<Department>)))]
async fn list_departments(user: AuthUser) -> ApiResult<axum::Json<Vec<Department>>> {
    Ok(axum::Json(user.db.list_departments().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentBody {
    pub name: String,
}

/// Create a department (admin).
#[utoipa::path(post, path = "/departments", tag = "departments", security(("bearer" = [])),
    request_body = DepartmentBody,
    responses((status = 201, body = Department), (status = 409, description = "department_exists", body = ErrorBody)))]
async fn create_department(
    user: AuthUser,
    client: ClientInfo,
    Json(req): Json<DepartmentBody>,
) -> ApiResult<(StatusCode, axum::Json<Department>)> {
    user.principal.require(Role::Admin)?;
    check_len("name", &req.name, 1, 100)?;
    let created = user.db.create_department(req.name.trim()).await?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "department_created",
            target_type: Some("department"),
            target_id: Some(&created.id),
            source: client.source.as_deref(),
            details: json!({ "name": created.name }),
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// One department.
#[utoipa::path(get, path = "/departments/{department_id}", tag = "departments", security(("bearer" = [])),
    params(("department_id" = String, Path)),
    responses((status = 200, body = Department), (status = 404, body = ErrorBody)))]
async fn get_department(
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Department>> {
    Ok(axum::Json(user.db.department(&id).await?))
}

/// Rename a department (admin).
#[utoipa::path(patch, path = "/departments/{department_id}", tag = "departments", security(("bearer" = [])),
    params(("department_id" = String, Path)), request_body = DepartmentBody,
    responses((status = 200, body = Department), (status = 404, body = ErrorBody)))]
async fn rename_department(
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<DepartmentBody>,
) -> ApiResult<axum::Json<Department>> {
    user.principal.require(Role::Admin)?;
    check_len("name", &req.name, 1, 100)?;
    Ok(axum::Json(
        user.db.rename_department(&id, req.name.trim()).await?,
    ))
}

/// Delete a department (admin); its members stay, without a department.
#[utoipa::path(delete, path = "/departments/{department_id}", tag = "departments", security(("bearer" = [])),
    params(("department_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_department(
    user: AuthUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    user.principal.require(Role::Admin)?;
    user.db.delete_department(&id).await?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "department_deleted",
            target_type: Some("department"),
            target_id: Some(&id),
            source: client.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub tenant: Tenant,
    pub session_id: String,
}

/// The caller: profile, tenant and current session.
#[utoipa::path(get, path = "/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<axum::Json<Me>> {
    let tenant = state.db.tenant(user.db.tenant_id()).await?;
    Ok(axum::Json(Me {
        user: user.db.user(user.principal.user_id()).await?,
        tenant,
        session_id: user.principal.session_id().to_string(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    /// Signature added to messages to applicants; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub signature: Option<Option<String>>,
}

/// Edit one's own profile.
#[utoipa::path(patch, path = "/me", tag = "me", security(("bearer" = [])),
    request_body = UpdateMe, responses((status = 200, body = User), (status = 422, body = ErrorBody)))]
async fn update_me(user: AuthUser, Json(req): Json<UpdateMe>) -> ApiResult<axum::Json<User>> {
    if let Some(name) = &req.name {
        check_len("name", name, 1, 200)?;
    }
    check_opt("phone", &req.phone.clone().flatten(), 40)?;
    check_opt("title", &req.title.clone().flatten(), 200)?;
    check_opt("signature", &req.signature.clone().flatten(), 2000)?;
    Ok(axum::Json(
        user.db
            .update_user(
                user.principal.user_id(),
                UserPatch {
                    name: req.name,
                    phone: req.phone,
                    title: req.title,
                    signature: req.signature,
                    ..Default::default()
                },
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Change one's own password; every other session ends.
#[utoipa::path(post, path = "/me/password", tag = "me", security(("bearer" = [])),
    request_body = ChangePassword,
    responses((status = 204, description = "Changed"), (status = 401, description = "invalid_credentials", body = ErrorBody),
              (status = 422, description = "weak_password", body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(req): Json<ChangePassword>,
) -> ApiResult<StatusCode> {
    let p = &user.principal;
    let creds = user.db.credentials(p.user_id()).await?;
    if !state
        .auth
        .hasher()
        .verify(&req.current_password, Some(&creds.password_hash))
        .await
    {
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "the current password is wrong",
        ));
    }
    check_password(&req.new_password)?;
    let hash = state.auth.hasher().hash(&req.new_password).await?;
    user.db
        .set_password(p.user_id(), &hash, Some(p.session_id()))
        .await?;
    state
        .hub
        .kick_user(
            p.tenant_id(),
            p.user_id(),
            Some(p.session_id()),
            close::SESSION_REVOKED,
            "session_revoked",
        )
        .await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(p.user_id()),
            action: "password_changed",
            target_type: Some("user"),
            target_id: Some(p.user_id()),
            source: client.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The security and administration audit log (admin), newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ErrorBody)))]
async fn list_audit(
    user: AuthUser,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    user.principal.require(Role::Admin)?;
    Ok(axum::Json(user.db.audit_entries(&q).await?))
}
