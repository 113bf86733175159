//! `/api/v1/rooms`, `/api/v1/uploads`, `/api/v1/presence`, `/api/v1/directory`,
//! `/api/v1/me/status`: internal staff chat, files, presence and the staff directory.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::extract::{AuthUser, Json, Query};
use super::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::store::{Room, RoomMessage, Upload, User};

pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(open_direct))
        .routes(routes!(get_room, rename_room))
        .routes(routes!(change_members))
        .routes(routes!(leave_room))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(edit_message, delete_message))
        .routes(routes!(mark_read))
        .routes(routes!(upload).layer(DefaultBodyLimit::max(max_upload_bytes)))
        .routes(routes!(download))
        .routes(routes!(presence))
        .routes(routes!(directory))
        .routes(routes!(set_status))
        .routes(routes!(set_out_of_office, clear_out_of_office))
}

fn check_name(name: &str) -> ApiResult<()> {
    let n = name.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "name must be 1 to 100 characters long",
        ));
    }
    Ok(())
}

/// The caller's rooms, most recently active first, with unread counts.
#[utoipa::path(get, path = "/rooms", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = Vec<Room>)))]
async fn list_rooms(user: AuthUser) -> ApiResult<axum::Json<Vec<Room>>> {
    Ok(axum::Json(
        user.db.rooms_of(user.principal.user_id()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    pub name: String,
    /// Members besides the creator.
    #[serde(default)]
    pub member_ids: Vec<String>,
}

/// Create a group room.
#[utoipa::path(post, path = "/rooms", tag = "chat", security(("bearer" = [])), request_body = CreateRoom,
    responses((status = 201, body = Room), (status = 422, description = "unknown_user", body = ErrorBody)))]
async fn create_room(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<CreateRoom>,
) -> ApiResult<(StatusCode, axum::Json<Room>)> {
    check_name(&req.name)?;
    if req.member_ids.len() > 5_000 {
        return Err(ApiError::unprocessable(
            "too_many_members",
            "at most 5000 members",
        ));
    }
    let change = user
        .db
        .create_group_room(user.principal.user_id(), req.name.trim(), &req.member_ids)
        .await?;
    state.chat.publish_change(&user.principal, &change).await;
    Ok((StatusCode::CREATED, axum::Json(change.room)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDirect {
    pub user_id: String,
}

/// The direct conversation with another staff member (created on first use).
#[utoipa::path(post, path = "/rooms/direct", tag = "chat", security(("bearer" = [])), request_body = OpenDirect,
    responses((status = 200, body = Room), (status = 201, body = Room), (status = 422, body = ErrorBody)))]
async fn open_direct(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<OpenDirect>,
) -> ApiResult<(StatusCode, axum::Json<Room>)> {
    let change = user
        .db
        .open_direct_room(user.principal.user_id(), &req.user_id)
        .await?;
    let status = if change.events.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    state.chat.publish_change(&user.principal, &change).await;
    Ok((status, axum::Json(change.room)))
}

/// One room the caller is a member of.
#[utoipa::path(get, path = "/rooms/{room_id}", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path)), responses((status = 200, body = Room), (status = 404, body = ErrorBody)))]
async fn get_room(user: AuthUser, Path(room_id): Path<String>) -> ApiResult<axum::Json<Room>> {
    Ok(axum::Json(
        user.db.room_for(&room_id, user.principal.user_id()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRoom {
    pub name: String,
}

/// Rename a group room (any member).
#[utoipa::path(patch, path = "/rooms/{room_id}", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = RenameRoom,
    responses((status = 200, body = Room), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rename_room(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
    Json(req): Json<RenameRoom>,
) -> ApiResult<axum::Json<Room>> {
    check_name(&req.name)?;
    let change = user
        .db
        .rename_room(&room_id, user.principal.user_id(), req.name.trim())
        .await?;
    state.chat.publish_change(&user.principal, &change).await;
    Ok(axum::Json(change.room))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMembers {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Add and remove members of a group room (any member).
#[utoipa::path(post, path = "/rooms/{room_id}/members", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = ChangeMembers,
    responses((status = 200, body = Room), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_members(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
    Json(req): Json<ChangeMembers>,
) -> ApiResult<axum::Json<Room>> {
    let change = user
        .db
        .change_members(&room_id, user.principal.user_id(), &req.add, &req.remove)
        .await?;
    state.chat.publish_change(&user.principal, &change).await;
    Ok(axum::Json(change.room))
}

/// Leave a group room.
#[utoipa::path(post, path = "/rooms/{room_id}/leave", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path)), responses((status = 204, description = "Left"), (status = 404, body = ErrorBody)))]
async fn leave_room(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> ApiResult<StatusCode> {
    let me = user.principal.user_id().to_string();
    let change = user
        .db
        .change_members(&room_id, &me, &[], std::slice::from_ref(&me))
        .await?;
    state.chat.publish_change(&user.principal, &change).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Messages older than this message id (the last id of the previous page).
    pub before: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// A room's history, newest first, paged by cursor.
#[utoipa::path(get, path = "/rooms/{room_id}/messages", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path), Page),
    responses((status = 200, body = Vec<RoomMessage>), (status = 404, body = ErrorBody)))]
async fn list_messages(
    user: AuthUser,
    Path(room_id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<Vec<RoomMessage>>> {
    Ok(axum::Json(
        user.db
            .room_messages(
                &room_id,
                user.principal.user_id(),
                page.before.as_deref(),
                page.limit.unwrap_or(50),
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub body: String,
    /// Makes the send idempotent: a repeat returns the first message.
    pub client_message_id: Option<String>,
    /// Members to notify.
    #[serde(default)]
    pub mentions: Vec<String>,
    /// Upload ids.
    #[serde(default)]
    pub attachments: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SentMessage {
    pub message: RoomMessage,
    /// True when this repeated an earlier send with the same client message id.
    pub duplicate: bool,
}

/// Send a message to a room.
#[utoipa::path(post, path = "/rooms/{room_id}/messages", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = SendMessage,
    responses((status = 201, body = SentMessage), (status = 200, description = "A repeat", body = SentMessage),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_message(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
    Json(req): Json<SendMessage>,
) -> ApiResult<(StatusCode, axum::Json<SentMessage>)> {
    let sent = state
        .chat
        .send(
            &user.principal,
            &room_id,
            &req.body,
            req.client_message_id.as_deref(),
            &req.mentions,
            &req.attachments,
        )
        .await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        axum::Json(SentMessage {
            message: sent.message,
            duplicate: sent.duplicate,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    pub body: String,
}

/// Edit one's own message.
#[utoipa::path(patch, path = "/rooms/{room_id}/messages/{message_id}", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path), ("message_id" = String, Path)), request_body = EditMessage,
    responses((status = 200, body = RoomMessage), (status = 404, body = ErrorBody)))]
async fn edit_message(
    State(state): State<AppState>,
    user: AuthUser,
    Path((room_id, message_id)): Path<(String, String)>,
    Json(req): Json<EditMessage>,
) -> ApiResult<axum::Json<RoomMessage>> {
    let sent = state
        .chat
        .edit(
            &user.principal,
            Some(&room_id),
            &message_id,
            Some(&req.body),
        )
        .await?;
    Ok(axum::Json(sent.message))
}

/// Delete one's own message.
#[utoipa::path(delete, path = "/rooms/{room_id}/messages/{message_id}", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path), ("message_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_message(
    State(state): State<AppState>,
    user: AuthUser,
    Path((room_id, message_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .edit(&user.principal, Some(&room_id), &message_id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    pub message_id: String,
}

/// Move the caller's read mark forward (others see the receipt).
#[utoipa::path(post, path = "/rooms/{room_id}/read", tag = "chat", security(("bearer" = [])),
    params(("room_id" = String, Path)), request_body = MarkRead,
    responses((status = 204, description = "Marked"), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
    Json(req): Json<MarkRead>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .mark_read(&user.principal, &room_id, &req.message_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name as the user sees it.
    pub name: String,
}

/// Content types shown inline in the browser; everything else downloads.
const INLINE_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
];

/// Upload a file (the raw body; its Content-Type is kept). Use its id as an attachment.
#[utoipa::path(post, path = "/uploads", tag = "chat", security(("bearer" = [])), params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Upload), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, axum::Json<Upload>)> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest {
                code: "bad_request",
                message: e.body_text(),
            }
        }
    })?;
    let name: String = q
        .name
        .trim()
        .chars()
        .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
        .collect();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_file_name",
            "name must be 1 to 200 characters",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::unprocessable("empty_file", "the file is empty"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| v.contains('/') && v.len() < 100)
        .unwrap_or_else(|| "application/octet-stream".into());
    let id = crate::store::new_id();
    let sha = hex::encode(Sha256::digest(&body));
    state
        .blobs
        .put(user.db.tenant_id(), &id, &body)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("storing upload: {e}")))?;
    let upload = user
        .db
        .create_upload(
            &id,
            user.principal.user_id(),
            &name,
            &content_type,
            body.len() as i64,
            &sha,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(upload)))
}

/// Download an uploaded file of this workspace.
#[utoipa::path(get, path = "/uploads/{upload_id}", tag = "chat", security(("bearer" = [])),
    params(("upload_id" = String, Path)),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    Path(upload_id): Path<String>,
) -> ApiResult<Response> {
    if uuid::Uuid::parse_str(&upload_id).is_err() {
        return Err(ApiError::NotFound);
    }
    let meta = user.db.upload(&upload_id).await?;
    let bytes = state
        .blobs
        .get(user.db.tenant_id(), &upload_id)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading upload: {e}")))?;
    let inline = INLINE_TYPES.contains(&meta.content_type.as_str());
    let content_type = if inline {
        meta.content_type.clone()
    } else {
        "application/octet-stream".into()
    };
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encode(&meta.file_name)
    );
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Uploaded content never runs as part of the app.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(response)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceEntry {
    pub user_id: String,
    /// online, away, busy or offline.
    pub status: String,
    pub text: Option<String>,
    pub until: Option<i64>,
    pub out_of_office: bool,
    pub last_active_at: Option<i64>,
}

fn presence_entries(state: &AppState, tenant: &str) -> Vec<PresenceEntry> {
    state
        .hub
        .presence_snapshot(tenant, None)
        .into_iter()
        .map(|p| PresenceEntry {
            user_id: p.user_id,
            status: serde_json::to_value(p.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            text: p.text,
            until: p.until,
            out_of_office: p.out_of_office,
            last_active_at: p.last_active_at,
        })
        .collect()
}

/// Presence of the workspace's staff as this node sees it (users not listed are offline).
#[utoipa::path(get, path = "/presence", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = Vec<PresenceEntry>)))]
async fn presence(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<Vec<PresenceEntry>>> {
    Ok(axum::Json(presence_entries(&state, user.db.tenant_id())))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryEntry {
    pub user: User,
    pub department_name: Option<String>,
    pub presence: Option<PresenceEntry>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    /// Search in name, email, phone and title.
    pub q: Option<String>,
    pub department_id: Option<String>,
}

/// The staff directory: people with department and presence, searchable.
#[utoipa::path(get, path = "/directory", tag = "chat", security(("bearer" = [])), params(DirectoryQuery),
    responses((status = 200, body = Vec<DirectoryEntry>)))]
async fn directory(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<DirectoryQuery>,
) -> ApiResult<axum::Json<Vec<DirectoryEntry>>> {
    let users = user
        .db
        .list_users(q.q.as_deref(), q.department_id.as_deref(), false)
        .await?;
    let departments = user.db.list_departments().await?;
    let mut presence: std::collections::HashMap<String, PresenceEntry> =
        presence_entries(&state, user.db.tenant_id())
            .into_iter()
            .map(|p| (p.user_id.clone(), p))
            .collect();
    Ok(axum::Json(
        users
            .into_iter()
            .map(|u| DirectoryEntry {
                department_name: u
                    .department_id
                    .as_ref()
                    .and_then(|d| departments.iter().find(|x| &x.id == d))
                    .map(|d| d.name.clone()),
                presence: presence.remove(&u.id),
                user: u,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// online, away, busy, or null for automatic.
    pub status: Option<String>,
    pub text: Option<String>,
    /// Unix ms when it ends by itself.
    pub until: Option<i64>,
}

/// Set one's chosen status and custom text.
#[utoipa::path(put, path = "/me/status", tag = "me", security(("bearer" = [])), request_body = StatusBody,
    responses((status = 204, description = "Set"), (status = 422, body = ErrorBody)))]
async fn set_status(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<StatusBody>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .set_status(
            &user.principal,
            req.status.as_deref(),
            req.text.as_deref(),
            req.until,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutOfOffice {
    /// Unix ms.
    pub from: i64,
    /// Unix ms; open-ended when omitted.
    pub until: Option<i64>,
    pub text: Option<String>,
}

/// Schedule an out-of-office period: the status turns away (with the text) by itself
/// and returns by itself.
#[utoipa::path(put, path = "/me/out-of-office", tag = "me", security(("bearer" = [])), request_body = OutOfOffice,
    responses((status = 204, description = "Scheduled"), (status = 422, body = ErrorBody)))]
async fn set_out_of_office(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<OutOfOffice>,
) -> ApiResult<StatusCode> {
    if req
        .text
        .as_ref()
        .is_some_and(|t| t.chars().count() > crate::chat::MAX_STATUS_CHARS)
    {
        return Err(ApiError::unprocessable(
            "status_text_too_long",
            "the text is too long",
        ));
    }
    state
        .chat
        .set_out_of_office(&user.principal, Some((req.from, req.until, req.text)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cancel the out-of-office period.
#[utoipa::path(delete, path = "/me/out-of-office", tag = "me", security(("bearer" = [])),
    responses((status = 204, description = "Cancelled")))]
async fn clear_out_of_office(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<StatusCode> {
    state.chat.set_out_of_office(&user.principal, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
