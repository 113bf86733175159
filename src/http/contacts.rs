//! `/api/v1/contacts`: the applicant directory, identities, merging and undoing merges.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{AuthUser, Json, Query};
use super::{valid_id, AppState};
use crate::auth::service::ClientInfo;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::store::{Contact, ContactMerge, IdentityKey, NewAuditEntry};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search, create))
        .routes(routes!(get_contact))
        .routes(routes!(suggestions))
        .routes(routes!(add_identity))
        .routes(routes!(merge))
        .routes(routes!(merges))
        .routes(routes!(undo_merge))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    /// `phone`, `email`, `hh` or `telegram`.
    pub kind: String,
    pub value: String,
}

fn normalize_all(input: &[IdentityInput]) -> ApiResult<Vec<IdentityKey>> {
    let mut keys: Vec<IdentityKey> = Vec::new();
    for i in input {
        let key = crate::identity::normalize(&i.kind, &i.value)
            .map_err(|m| ApiError::unprocessable("invalid_identity", m))?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn check_text(field: &str, value: &Option<String>, max: usize) -> ApiResult<()> {
    if value
        .as_ref()
        .is_some_and(|v| v.trim().is_empty() || v.chars().count() > max)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field} must be 1 to {max} characters long"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Name, email, or phone digits (any spelling).
    pub q: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// The applicant directory, most recently updated first.
#[utoipa::path(get, path = "/contacts", tag = "contacts", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = Vec<Contact>)))]
async fn search(
    user: AuthUser,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<Vec<Contact>>> {
    Ok(axum::Json(
        user.db
            .search_contacts(q.q.as_deref(), q.limit.unwrap_or(50))
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    pub name: Option<String>,
    pub city: Option<String>,
    #[serde(default)]
    pub identities: Vec<IdentityInput>,
}

/// Create an applicant by hand.
#[utoipa::path(post, path = "/contacts", tag = "contacts", security(("bearer" = [])), request_body = CreateContact,
    responses((status = 201, body = Contact), (status = 409, description = "identity_taken", body = ErrorBody),
              (status = 422, description = "invalid_identity", body = ErrorBody)))]
async fn create(
    user: AuthUser,
    Json(req): Json<CreateContact>,
) -> ApiResult<(StatusCode, axum::Json<Contact>)> {
    check_text("name", &req.name, 200)?;
    check_text("city", &req.city, 100)?;
    let keys = normalize_all(&req.identities)?;
    let contact = user
        .db
        .create_contact(
            req.name.as_deref().map(str::trim),
            req.city.as_deref().map(str::trim),
            &keys,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(contact)))
}

/// One applicant with every identity.
#[utoipa::path(get, path = "/contacts/{contact_id}", tag = "contacts", security(("bearer" = [])),
    params(("contact_id" = String, Path)), responses((status = 200, body = Contact), (status = 404, body = ErrorBody)))]
async fn get_contact(user: AuthUser, Path(id): Path<String>) -> ApiResult<axum::Json<Contact>> {
    Ok(axum::Json(user.db.contact(&id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeSuggestion {
    pub contact: Contact,
    /// `same_name`, `same_phone` (the same last nine digits), `same_email_local_part`.
    pub reasons: Vec<&'static str>,
}

/// Applicants who may be the same person (for a recruiter to merge), at most ten.
#[utoipa::path(get, path = "/contacts/{contact_id}/suggestions", tag = "contacts", security(("bearer" = [])),
    params(("contact_id" = String, Path)),
    responses((status = 200, body = [MergeSuggestion]), (status = 404, body = ErrorBody)))]
async fn suggestions(
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<MergeSuggestion>>> {
    valid_id(&id)?;
    let found = user.db.merge_suggestions(&id).await?;
    Ok(axum::Json(
        found
            .into_iter()
            .map(|(contact, reasons)| MergeSuggestion { contact, reasons })
            .collect(),
    ))
}

/// Add a phone, email or board id to an applicant.
#[utoipa::path(post, path = "/contacts/{contact_id}/identities", tag = "contacts", security(("bearer" = [])),
    params(("contact_id" = String, Path)), request_body = IdentityInput,
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody),
              (status = 409, description = "identity_taken: merge instead", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_identity(
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<IdentityInput>,
) -> ApiResult<axum::Json<Contact>> {
    // Another tenant's (or an unknown) applicant is a 404 whatever the body says.
    user.db.contact(&id).await?;
    let key = crate::identity::normalize(&req.kind, &req.value)
        .map_err(|m| ApiError::unprocessable("invalid_identity", m))?;
    Ok(axum::Json(user.db.add_identity(&id, &key).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The applicant merged into this one (its identities move here).
    pub contact_id: String,
}

/// Merge another applicant into this one (undoable).
#[utoipa::path(post, path = "/contacts/{contact_id}/merge", tag = "contacts", security(("bearer" = [])),
    params(("contact_id" = String, Path)), request_body = MergeBody,
    responses((status = 200, body = ContactMerge), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn merge(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(req): Json<MergeBody>,
) -> ApiResult<axum::Json<ContactMerge>> {
    let (m, events) = user
        .db
        .merge_contacts(&id, &req.contact_id, user.principal.user_id())
        .await?;
    state.hub.publish_events(user.db.tenant_id(), &events).await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "contacts_merged",
            target_type: Some("contact_merge"),
            target_id: Some(&m.id),
            source: client.source.as_deref(),
            details: json!({"survivor_id": m.survivor_id, "merged_id": m.merged_id}),
        })
        .await?;
    Ok(axum::Json(m))
}

/// The merges of an applicant (automatic and manual, undone ones included), newest first.
#[utoipa::path(get, path = "/contacts/{contact_id}/merges", tag = "contacts", security(("bearer" = [])),
    params(("contact_id" = String, Path)), responses((status = 200, body = Vec<ContactMerge>), (status = 404, body = ErrorBody)))]
async fn merges(
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<ContactMerge>>> {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::NotFound);
    }
    user.db.contact(&id).await?;
    Ok(axum::Json(user.db.contact_merges(&id).await?))
}

/// Undo a merge: the merged applicant comes back with the identities it brought.
#[utoipa::path(post, path = "/contact-merges/{merge_id}/undo", tag = "contacts", security(("bearer" = [])),
    params(("merge_id" = String, Path)),
    responses((status = 200, body = ContactMerge), (status = 404, body = ErrorBody), (status = 409, description = "merge_already_undone", body = ErrorBody)))]
async fn undo_merge(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ContactMerge>> {
    let (m, events) = user.db.undo_merge(&id).await?;
    state.hub.publish_events(user.db.tenant_id(), &events).await;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "contact_merge_undone",
            target_type: Some("contact_merge"),
            target_id: Some(&m.id),
            source: client.source.as_deref(),
            details: json!({"survivor_id": m.survivor_id, "merged_id": m.merged_id}),
        })
        .await?;
    Ok(axum::Json(m))
}
