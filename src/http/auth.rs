//! `/api/v1/auth/*`: login, refresh (rotation), logout, sessions.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AuthUser, Json};
use super::AppState;
use crate::auth::service::ClientInfo;
use crate::auth::{LoginRequest, TokenPair};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::realtime::protocol::close;
use crate::store::{NewAuditEntry, SessionInfo};

/// Name of the HttpOnly cookie that carries the refresh token for the web client.
pub const REFRESH_COOKIE: &str = "jobers_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
}

fn refresh_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config.http.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_tokens(state: &AppState, pair: TokenPair) -> Response {
    let cookie = refresh_cookie(state, &pair.refresh_token, pair.refresh_expires_in);
    let mut response = axum::Json(pair).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == REFRESH_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// Log in with the company's short name, email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "invalid_credentials, account_deactivated", body = ErrorBody),
        (status = 429, description = "too_many_attempts (Retry-After says when)", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let pair = state.auth.login(&req, &client).await?;
    Ok(with_tokens(&state, pair))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token; omitted when the `jobers_refresh` cookie carries it.
    pub refresh_token: Option<String>,
}

/// Exchange a refresh token for a new access token and a new refresh token. Each refresh
/// token works once; presenting a used one ends its whole session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = TokenPair),
        (status = 401, description = "invalid_refresh_token, refresh_token_reused", body = ErrorBody),
    ))]
async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Response> {
    let token = req
        .refresh_token
        .or_else(|| cookie_token(&headers))
        .unwrap_or_default();
    let pair = state.auth.refresh(&token, &client).await?;
    Ok(with_tokens(&state, pair))
}

fn clear_cookie(state: &AppState) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, refresh_cookie(state, "", 0));
    response
}

/// End this session. Works with the access token, or — when that has expired — with the
/// refresh cookie alone.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    user: Result<AuthUser, ApiError>,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = match (user, cookie_token(&headers)) {
        (Ok(user), _) => user,
        (Err(_), Some(token)) => {
            state.auth.logout_by_refresh(&token).await?;
            return Ok(clear_cookie(&state));
        }
        (Err(e), None) => return Err(e),
    };
    let p = &user.principal;
    user.db
        .revoke_session(p.user_id(), p.session_id(), "logout")
        .await?;
    state
        .hub
        .kick_session(
            p.tenant_id(),
            p.session_id(),
            close::SESSION_REVOKED,
            "session_revoked",
        )
        .await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(p.user_id()),
            action: "logout",
            target_type: Some("session"),
            target_id: Some(p.session_id()),
            source: client.source.as_deref(),
            ..Default::default()
        })
        .await?;
    Ok(clear_cookie(&state))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutAllResponse {
    /// How many sessions were ended, this one included.
    pub revoked: u64,
}

/// End every session of the caller, on every device.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = LogoutAllResponse), (status = 401, body = ErrorBody)))]
async fn logout_all(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
) -> ApiResult<Response> {
    let p = &user.principal;
    let revoked = user
        .db
        .revoke_all_sessions(p.user_id(), "logout_everywhere")
        .await?;
    state
        .hub
        .kick_user(
            p.tenant_id(),
            p.user_id(),
            None,
            close::SESSION_REVOKED,
            "session_revoked",
        )
        .await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(p.user_id()),
            action: "logout_everywhere",
            source: client.source.as_deref(),
            details: serde_json::json!({ "revoked": revoked }),
            ..Default::default()
        })
        .await?;
    let mut response = axum::Json(LogoutAllResponse { revoked }).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, refresh_cookie(&state, "", 0));
    Ok(response)
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionInfo>), (status = 401, body = ErrorBody)))]
async fn list_sessions(user: AuthUser) -> ApiResult<axum::Json<Vec<SessionInfo>>> {
    let p = &user.principal;
    Ok(axum::Json(
        user.db.list_sessions(p.user_id(), p.session_id()).await?,
    ))
}

/// End one of the caller's sessions (e.g. a lost laptop).
#[utoipa::path(delete, path = "/auth/sessions/{session_id}", tag = "auth", security(("bearer" = [])),
    params(("session_id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = 404, body = ErrorBody)))]
async fn revoke_session(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    let p = &user.principal;
    user.db
        .revoke_session(p.user_id(), &session_id, "revoked_by_user")
        .await?;
    state
        .hub
        .kick_session(
            p.tenant_id(),
            &session_id,
            close::SESSION_REVOKED,
            "session_revoked",
        )
        .await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(p.user_id()),
            action: "session_revoked",
            target_type: Some("session"),
            target_id: Some(&session_id),
            source: client.source.as_deref(),
            ..Default::default()
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
