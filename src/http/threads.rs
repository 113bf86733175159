//! `/api/v1/threads`: the inbox, thread timelines, replies, notes, assignment, states,
//! delivery retries, and search over every conversation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AuthUser, Json, Query};
use super::{valid_id, AppState};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::store::{Role, Thread, ThreadFilter, ThreadMessage};
use crate::switch::ReplyRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_threads))
        .routes(routes!(get_thread))
        .routes(routes!(contact_thread))
        .routes(routes!(messages, reply))
        .routes(routes!(note))
        .routes(routes!(mark_read))
        .routes(routes!(assign))
        .routes(routes!(set_state))
        .routes(routes!(set_queue))
        .routes(routes!(retry))
        .routes(routes!(search_messages))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadQuery {
    /// `mine`, `unassigned` or `all` (default).
    pub scope: Option<String>,
    /// `open`, `pending` or `closed`.
    pub state: Option<String>,
    /// The channel the applicant last used: `sms`, `email`, `board`, `chat`.
    pub channel: Option<String>,
    pub queue_id: Option<String>,
    pub vacancy: Option<String>,
    /// Applicant name, phone (any spelling) or email.
    pub q: Option<String>,
    /// Cursor: the `last_message_at` (RFC 3339) and `id` of the last thread of the page.
    pub before_time: Option<chrono::DateTime<chrono::Utc>>,
    pub before_id: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// The inbox: threads by last activity, newest first.
#[utoipa::path(get, path = "/threads", tag = "threads", security(("bearer" = [])), params(ThreadQuery),
    responses((status = 200, body = Vec<Thread>), (status = 422, body = ErrorBody)))]
async fn list_threads(
    user: AuthUser,
    Query(q): Query<ThreadQuery>,
) -> ApiResult<axum::Json<Vec<Thread>>> {
    if let Some(s) = q.scope.as_deref() {
        if !["mine", "unassigned", "all"].contains(&s) {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "scope must be mine, unassigned or all",
            ));
        }
    }
    if let Some(s) = q.state.as_deref() {
        if !["open", "pending", "closed"].contains(&s) {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "state must be open, pending or closed",
            ));
        }
    }
    let before = match (&q.before_time, &q.before_id) {
        (Some(t), Some(id)) => Some((t.timestamp_millis(), id.as_str())),
        (None, None) => None,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "before_time and before_id go together",
            ))
        }
    };
    let filter = ThreadFilter {
        scope: q.scope.as_deref(),
        state: q.state.as_deref(),
        channel_kind: q.channel.as_deref(),
        queue_id: q.queue_id.as_deref(),
        vacancy: q.vacancy.as_deref(),
        q: q.q.as_deref(),
        before,
        limit: q.limit.unwrap_or(50),
    };
    Ok(axum::Json(
        user.db
            .list_threads(user.principal.user_id(), &filter)
            .await?,
    ))
}

/// One thread.
#[utoipa::path(get, path = "/threads/{thread_id}", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), responses((status = 200, body = Thread), (status = 404, body = ErrorBody)))]
async fn get_thread(user: AuthUser, Path(id): Path<String>) -> ApiResult<axum::Json<Thread>> {
    valid_id(&id)?;
    Ok(axum::Json(user.db.thread(&id).await?))
}

/// The thread of an applicant (the whole history across channels).
#[utoipa::path(get, path = "/contacts/{contact_id}/thread", tag = "threads", security(("bearer" = [])),
    params(("contact_id" = String, Path)), responses((status = 200, body = Thread), (status = 404, body = ErrorBody)))]
async fn contact_thread(user: AuthUser, Path(id): Path<String>) -> ApiResult<axum::Json<Thread>> {
    valid_id(&id)?;
    Ok(axum::Json(user.db.thread_for_contact(&id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// A message id: older messages than this one.
    pub before: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// The thread's timeline, newest first: inbound, replies, notes — every channel.
#[utoipa::path(get, path = "/threads/{thread_id}/messages", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path), MessagesQuery),
    responses((status = 200, body = Vec<ThreadMessage>), (status = 404, body = ErrorBody)))]
async fn messages(
    user: AuthUser,
    Path(id): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> ApiResult<axum::Json<Vec<ThreadMessage>>> {
    valid_id(&id)?;
    Ok(axum::Json(
        user.db
            .thread_messages(&id, q.before.as_deref(), q.limit.unwrap_or(50))
            .await?,
    ))
}

/// Reply to the applicant. The message is stored with an outbox entry and sent by a
/// worker; its `delivery_state` goes queued → sent → delivered → read, or failed.
#[utoipa::path(post, path = "/threads/{thread_id}/messages", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), request_body = ReplyRequest,
    responses((status = 201, body = ThreadMessage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "thread_merged", body = ErrorBody),
              (status = 422, description = "no_channel, no_address, unknown_template, invalid_text, …", body = ErrorBody)))]
async fn reply(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<ReplyRequest>,
) -> ApiResult<(StatusCode, axum::Json<ThreadMessage>)> {
    valid_id(&id)?;
    user.db.thread(&id).await?;
    let change = state
        .switch
        .reply(&user.principal, &user.db, &id, req)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(change.message.expect("a reply has a message")),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub text: String,
    /// User ids to notify.
    #[serde(default)]
    pub mentions: Vec<String>,
    pub client_message_id: Option<String>,
}

/// An internal note: staff only, never sent to the applicant.
#[utoipa::path(post, path = "/threads/{thread_id}/notes", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), request_body = NoteRequest,
    responses((status = 201, body = ThreadMessage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn note(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<NoteRequest>,
) -> ApiResult<(StatusCode, axum::Json<ThreadMessage>)> {
    valid_id(&id)?;
    user.db.thread(&id).await?;
    let change = state
        .switch
        .note(
            &user.principal,
            &user.db,
            &id,
            &req.text,
            &req.mentions,
            req.client_message_id.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(change.message.expect("a note has a message")),
    ))
}

/// Mark the thread read.
#[utoipa::path(post, path = "/threads/{thread_id}/read", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), responses((status = 200, body = Thread), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Thread>> {
    valid_id(&id)?;
    let change = user.db.mark_thread_read(&id).await?;
    state
        .switch
        .publish_events(user.db.tenant_id(), &change.events)
        .await;
    Ok(axum::Json(change.thread))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// The recruiter; `null` puts the thread back in its queue.
    pub user_id: Option<String>,
}

/// Assign a thread by hand (supervisors and admins; a recruiter may take an unassigned
/// thread for themselves).
#[utoipa::path(post, path = "/threads/{thread_id}/assign", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), request_body = AssignRequest,
    responses((status = 200, body = Thread), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn assign(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<AssignRequest>,
) -> ApiResult<axum::Json<Thread>> {
    valid_id(&id)?;
    let me = user.principal.user_id();
    let supervisor = user.principal.has_role(Role::Supervisor);
    let expect = if supervisor {
        None
    } else if req.user_id.as_deref() == Some(me) {
        // Taking a thread: only one nobody holds.
        Some(None)
    } else {
        return Err(ApiError::forbidden(
            "only supervisors assign threads to others",
        ));
    };
    let change = user
        .db
        .assign_thread(&id, req.user_id.as_deref(), None, expect)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(c) if c == "thread_changed" => ApiError::Conflict {
                code: "thread_taken",
                message: "someone else holds this thread".into(),
            },
            other => other.into(),
        })?;
    state.switch.announce(user.db.tenant_id(), &change).await;
    Ok(axum::Json(change.thread))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    /// `open`, `pending` or `closed`.
    pub state: String,
}

/// Close (resolve), reopen, or set a thread pending.
#[utoipa::path(post, path = "/threads/{thread_id}/state", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), request_body = StateRequest,
    responses((status = 200, body = Thread), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_state(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<StateRequest>,
) -> ApiResult<axum::Json<Thread>> {
    valid_id(&id)?;
    user.db.thread(&id).await?;
    if !["open", "pending", "closed"].contains(&req.state.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "state must be open, pending or closed",
        ));
    }
    let change = user.db.set_thread_state(&id, &req.state).await?;
    state.switch.announce(user.db.tenant_id(), &change).await;
    Ok(axum::Json(change.thread))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRequest {
    /// The queue; `null` takes the thread out of routing.
    pub queue_id: Option<String>,
}

/// Move a thread to another queue (supervisors).
#[utoipa::path(post, path = "/threads/{thread_id}/queue", tag = "threads", security(("bearer" = [])),
    params(("thread_id" = String, Path)), request_body = QueueRequest,
    responses((status = 200, body = Thread), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn set_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<QueueRequest>,
) -> ApiResult<axum::Json<Thread>> {
    valid_id(&id)?;
    user.principal.require(Role::Supervisor)?;
    let change = user
        .db
        .set_thread_queue(&id, req.queue_id.as_deref())
        .await?;
    state.switch.announce(user.db.tenant_id(), &change).await;
    Ok(axum::Json(change.thread))
}

/// Send a failed reply again (the provider sees the same idempotency key).
#[utoipa::path(post, path = "/threads/{thread_id}/messages/{message_id}/retry", tag = "threads",
    security(("bearer" = [])), params(("thread_id" = String, Path), ("message_id" = String, Path)),
    responses((status = 200, body = ThreadMessage), (status = 404, body = ErrorBody),
              (status = 409, description = "message_not_failed", body = ErrorBody)))]
async fn retry(
    State(state): State<AppState>,
    user: AuthUser,
    Path((thread_id, message_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<ThreadMessage>> {
    valid_id(&thread_id)?;
    valid_id(&message_id)?;
    let m = user.db.thread_message(&message_id).await?;
    if m.thread_id != thread_id {
        return Err(ApiError::NotFound);
    }
    Ok(axum::Json(state.switch.retry(&user.db, &message_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find in any message of any conversation.
    pub q: String,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// Search every conversation's text (R-COMM-5), newest first.
#[utoipa::path(get, path = "/thread-messages", tag = "threads", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = Vec<ThreadMessage>)))]
async fn search_messages(
    user: AuthUser,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<Vec<ThreadMessage>>> {
    Ok(axum::Json(
        user.db
            .search_thread_messages(&q.q, q.limit.unwrap_or(50))
            .await?,
    ))
}
