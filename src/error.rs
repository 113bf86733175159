//! The HTTP error boundary. Every error a client sees has one shape,
//! `{"error": "snake_case_code", "message": "…"}`, and the codes are stable: the web client
//! switches on them. Internal errors are logged with their cause and shown only as a
//! generic `internal_error`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// The wire shape of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `token_expired`.
    #[schema(example = "not_found")]
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than this endpoint accepts")]
    PayloadTooLarge,
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::TooManyRequests { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(what) => on_constraint(&what),
            StoreError::UnknownReference(what) => ApiError::Unprocessable {
                code: match what {
                    "department" => "unknown_department",
                    "user" => "unknown_user",
                    "upload" => "unknown_upload",
                    "message" => "unknown_message",
                    _ => "unknown_reference",
                },
                message: format!("no such {what} in this workspace"),
            },
            StoreError::Database(sqlx::Error::PoolTimedOut) => ApiError::Unavailable {
                code: "database_unavailable",
                message: "the database is busy or unreachable; try again".into(),
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Unique-constraint violations become 409s with a code saying what clashed — in this one
/// place. `what` is the constraint name (PostgreSQL) or the message naming the columns
/// (SQLite).
fn on_constraint(what: &str) -> ApiError {
    let (code, message) = if what.contains("users") && what.contains("email") {
        ("email_taken", "a user with this email already exists")
    } else if what.contains("departments") {
        (
            "department_exists",
            "a department with this name already exists",
        )
    } else if what.contains("identity_taken") || what.contains("identities") {
        (
            "identity_taken",
            "this identity belongs to another applicant; merge them instead",
        )
    } else if what.contains("same_contact") {
        ("same_contact", "an applicant cannot be merged with itself")
    } else if what.contains("merge_already_undone") {
        ("merge_already_undone", "this merge has been undone already")
    } else if what.contains("merge_superseded") {
        (
            "merge_superseded",
            "a later merge changed these applicants; undo that one first",
        )
    } else if what.contains("message_not_failed") {
        (
            "message_not_failed",
            "only a failed message can be sent again",
        )
    } else if what.contains("thread_merged") {
        (
            "thread_merged",
            "this thread was merged into another; use that one",
        )
    } else if what.contains("thread_changed") {
        ("thread_changed", "the thread changed meanwhile; reload it")
    } else if what.contains("queue_exists") || what.contains("queues") {
        ("queue_exists", "a queue with this name already exists")
    } else if what.contains("tenants") {
        ("tenant_exists", "a tenant with this slug already exists")
    } else {
        ("conflict", "this conflicts with existing data")
    };
    ApiError::Conflict {
        code,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let status = self.status();
        let message = match &self {
            ApiError::Internal(_) => "something went wrong on our side".to_string(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: self.code().to_string(),
            message,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
