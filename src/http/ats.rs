//! The ATS and the job boards over the API: vacancies, applications (the candidate card),
//! pipelines and stages, a board account's status mapping, import progress and "new
//! responses", the OAuth connect of a board account, and the board's webhook.

use axum::body::Bytes;
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
use crate::store::{
    Application, BoardCounters, BoardMapping, BoardStateRef, ChannelAccount, NewAuditEntry,
    Pipeline, Role, StoreError, Vacancy,
};
use crate::switch::boards;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_vacancies, create_vacancy))
        .routes(routes!(get_vacancy, update_vacancy))
        .routes(routes!(list_applications, create_application))
        .routes(routes!(get_application))
        .routes(routes!(move_application))
        .routes(routes!(list_pipelines, create_pipeline))
        .routes(routes!(get_mapping, put_mapping))
        .routes(routes!(board_status))
        .routes(routes!(new_responses))
        .routes(routes!(oauth_start))
        .routes(routes!(oauth_logout))
        .routes(routes!(oauth_callback))
        .routes(routes!(hh_hook))
}

fn check_name(field: &str, v: &str, max: usize) -> ApiResult<()> {
    if v.trim().is_empty() || v.chars().count() > max || v.contains('\0') {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field} must be 1 to {max} characters long"),
        ));
    }
    Ok(())
}

// ----- vacancies -----

/// Vacancies: local ones and those imported from job boards.
#[utoipa::path(get, path = "/vacancies", tag = "ats", security(("bearer" = [])),
    responses((status = 200, body = Vec<Vacancy>)))]
async fn list_vacancies(user: AuthUser) -> ApiResult<axum::Json<Vec<Vacancy>>> {
    Ok(axum::Json(user.db.vacancies().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VacancyInput {
    pub name: String,
    pub city: Option<String>,
}

/// Create a local vacancy (supervisors and admins).
#[utoipa::path(post, path = "/vacancies", tag = "ats", security(("bearer" = [])), request_body = VacancyInput,
    responses((status = 201, body = Vacancy), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_vacancy(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<VacancyInput>,
) -> ApiResult<(StatusCode, axum::Json<Vacancy>)> {
    user.principal.require(Role::Supervisor)?;
    check_name("name", &req.name, 300)?;
    if let Some(c) = &req.city {
        check_name("city", c, 200)?;
    }
    let (v, events) = user
        .db
        .create_vacancy(req.name.trim(), req.city.as_deref().map(str::trim))
        .await?;
    state
        .switch
        .publish_events(user.db.tenant_id(), &events)
        .await;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

/// One vacancy.
#[utoipa::path(get, path = "/vacancies/{vacancy_id}", tag = "ats", security(("bearer" = [])),
    params(("vacancy_id" = String, Path)), responses((status = 200, body = Vacancy), (status = 404, body = ErrorBody)))]
async fn get_vacancy(user: AuthUser, Path(id): Path<String>) -> ApiResult<axum::Json<Vacancy>> {
    valid_id(&id)?;
    Ok(axum::Json(user.db.vacancy(&id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VacancyPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    pub city: Option<Option<String>>,
    /// Link a board's vacancy to the local vacancy it publishes (`null` unlinks).
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    pub linked_vacancy_id: Option<Option<String>>,
}

/// Rename a vacancy, or link a board's vacancy to a local one (supervisors and admins).
/// A board's sync renames its vacancies back to the board's name.
#[utoipa::path(patch, path = "/vacancies/{vacancy_id}", tag = "ats", security(("bearer" = [])),
    params(("vacancy_id" = String, Path)), request_body = VacancyPatch,
    responses((status = 200, body = Vacancy), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn update_vacancy(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<VacancyPatch>,
) -> ApiResult<axum::Json<Vacancy>> {
    user.principal.require(Role::Supervisor)?;
    valid_id(&id)?;
    user.db.vacancy(&id).await?;
    if let Some(n) = &req.name {
        check_name("name", n, 300)?;
    }
    if let Some(Some(c)) = &req.city {
        check_name("city", c, 200)?;
    }
    if let Some(Some(l)) = &req.linked_vacancy_id {
        if uuid::Uuid::parse_str(l).is_err() {
            return Err(ApiError::unprocessable(
                "unknown_vacancy",
                "no such local vacancy in this workspace",
            ));
        }
    }
    let (v, events) = user
        .db
        .update_vacancy(
            &id,
            req.name.as_deref().map(str::trim),
            req.city.as_ref().map(|c| c.as_deref()),
            req.linked_vacancy_id.as_ref().map(|l| l.as_deref()),
        )
        .await
        .map_err(|e| match e {
            StoreError::UnknownReference(_) => ApiError::unprocessable(
                "unknown_vacancy",
                "no such local vacancy in this workspace",
            ),
            other => other.into(),
        })?;
    state
        .switch
        .publish_events(user.db.tenant_id(), &events)
        .await;
    Ok(axum::Json(v))
}

// ----- applications -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    pub vacancy_id: Option<String>,
    pub contact_id: Option<String>,
    /// At most 200 (default 50).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Applications, newest first, by vacancy and/or applicant, paged.
#[utoipa::path(get, path = "/applications", tag = "ats", security(("bearer" = [])), params(ApplicationQuery),
    responses((status = 200, body = Vec<Application>)))]
async fn list_applications(
    user: AuthUser,
    Query(q): Query<ApplicationQuery>,
) -> ApiResult<axum::Json<Vec<Application>>> {
    Ok(axum::Json(
        user.db
            .applications(
                q.vacancy_id.as_deref(),
                q.contact_id.as_deref(),
                q.limit.unwrap_or(50).clamp(1, 200),
                q.offset.unwrap_or(0).max(0),
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    pub contact_id: String,
    pub vacancy_id: String,
    pub stage_id: Option<String>,
}

fn unknown_ref(e: StoreError) -> ApiError {
    match e {
        StoreError::UnknownReference(what) => ApiError::Unprocessable {
            code: match what {
                "contact" => "unknown_contact",
                "vacancy" => "unknown_vacancy",
                _ => "unknown_stage",
            },
            message: format!("no such {what} in this workspace"),
        },
        other => other.into(),
    }
}

/// Put an applicant on a vacancy by hand (a local application).
#[utoipa::path(post, path = "/applications", tag = "ats", security(("bearer" = [])), request_body = ApplicationInput,
    responses((status = 201, body = Application), (status = 422, body = ErrorBody)))]
async fn create_application(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<ApplicationInput>,
) -> ApiResult<(StatusCode, axum::Json<Application>)> {
    for id in [
        Some(&req.contact_id),
        Some(&req.vacancy_id),
        req.stage_id.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ApiError::unprocessable(
                "unknown_reference",
                "no such object in this workspace",
            ));
        }
    }
    let (app, events) = user
        .db
        .create_application(&req.contact_id, &req.vacancy_id, req.stage_id.as_deref())
        .await
        .map_err(unknown_ref)?;
    state
        .switch
        .publish_events(user.db.tenant_id(), &events)
        .await;
    Ok((StatusCode::CREATED, axum::Json(app)))
}

/// HeadHunter's chat takes this many employer messages in a row before the applicant must
/// answer (its `in_a_row_limit`).
const HH_CHAT_IN_A_ROW_LIMIT: i64 = 5;

/// The candidate card.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationCard {
    pub application: Application,
    /// The applicant's name, or a placeholder when they hid it ("Applicant 1234 hid the name").
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub city: Option<String>,
    /// Fields the applicant hid on the board.
    pub hidden: Vec<String>,
    /// The resume on the board's site.
    pub resume_url: Option<String>,
    /// The board chat: replies sent in a row since the applicant last wrote, and the
    /// board's limit (HeadHunter: 5) — at the limit the board refuses until they answer.
    pub chat_replies_in_a_row: Option<i64>,
    pub chat_limit: Option<i64>,
    /// The applicant's other applications (the first 50; all through
    /// `GET /applications?contact_id=`).
    pub other_applications: Vec<Application>,
}

/// The candidate card of an application.
#[utoipa::path(get, path = "/applications/{application_id}", tag = "ats", security(("bearer" = [])),
    params(("application_id" = String, Path)),
    responses((status = 200, body = ApplicationCard), (status = 404, body = ErrorBody)))]
async fn get_application(
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ApplicationCard>> {
    valid_id(&id)?;
    let app = user.db.application(&id).await?;
    let contact = user.db.contact(&app.contact_id).await?;
    let identity = |kind: &str| {
        contact
            .identities
            .iter()
            .find(|i| i.kind == kind)
            .map(|i| i.value.clone())
    };
    let card_str = |k: &str| app.card[k].as_str().map(str::to_string);
    let others = user
        .db
        .applications(None, Some(&app.contact_id), 51, 0)
        .await?
        .into_iter()
        .filter(|a| a.id != app.id)
        .take(50)
        .collect();
    let in_a_row = match (&app.thread_id, &app.board_account_id, &app.board_chat_id) {
        (Some(t), Some(a), Some(_)) => Some(user.db.board_replies_in_a_row(t, a).await?),
        _ => None,
    };
    Ok(axum::Json(ApplicationCard {
        chat_replies_in_a_row: in_a_row,
        chat_limit: in_a_row.map(|_| HH_CHAT_IN_A_ROW_LIMIT),
        name: card_str("name").or(contact.name.clone()),
        phone: card_str("phone").or_else(|| identity("phone")),
        email: card_str("email").or_else(|| identity("email")),
        city: card_str("city").or(contact.city.clone()),
        hidden: app.card["hidden"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        resume_url: card_str("resume_url"),
        other_applications: others,
        application: app,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    pub stage_id: String,
    /// For the applicant, where the board requires one (HeadHunter: invitations, offers).
    pub message: Option<String>,
}

/// Move an application to a stage; a stage mapped to a board state changes it on the board
/// first (422 `board_message_required` when the board needs a message).
#[utoipa::path(post, path = "/applications/{application_id}/stage", tag = "ats", security(("bearer" = [])),
    params(("application_id" = String, Path)), request_body = StageMove,
    responses((status = 200, body = Application), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn move_application(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(req): Json<StageMove>,
) -> ApiResult<axum::Json<Application>> {
    valid_id(&id)?;
    let app = user.db.application(&id).await?;
    if uuid::Uuid::parse_str(&req.stage_id).is_err() {
        return Err(ApiError::unprocessable(
            "unknown_stage",
            "no such stage in this workspace",
        ));
    }
    user.db.stage(&req.stage_id).await.map_err(|e| match e {
        StoreError::NotFound => {
            ApiError::unprocessable("unknown_stage", "no such stage in this workspace")
        }
        other => other.into(),
    })?;
    if let Some(m) = &req.message {
        check_name("message", m, 5000)?;
    }
    let moved = boards::move_application(
        &state.switch,
        &user.db,
        &app,
        &req.stage_id,
        req.message.as_deref(),
    )
    .await?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "application_stage_changed",
            target_type: Some("application"),
            target_id: Some(&id),
            source: client.source.as_deref(),
            details: json!({"from": app.stage_id, "to": moved.stage_id, "board_state": moved.board_state_id}),
        })
        .await?;
    Ok(axum::Json(moved))
}

// ----- pipelines -----

/// Pipelines with their stages (the default one is created on first use).
#[utoipa::path(get, path = "/pipelines", tag = "ats", security(("bearer" = [])),
    responses((status = 200, body = Vec<Pipeline>)))]
async fn list_pipelines(user: AuthUser) -> ApiResult<axum::Json<Vec<Pipeline>>> {
    Ok(axum::Json(user.db.pipelines().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineInput {
    pub name: String,
    /// Stage names in order.
    pub stages: Vec<String>,
}

/// Create a pipeline (supervisors and admins).
#[utoipa::path(post, path = "/pipelines", tag = "ats", security(("bearer" = [])), request_body = PipelineInput,
    responses((status = 201, body = Pipeline), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_pipeline(
    user: AuthUser,
    Json(req): Json<PipelineInput>,
) -> ApiResult<(StatusCode, axum::Json<Pipeline>)> {
    user.principal.require(Role::Supervisor)?;
    check_name("name", &req.name, 200)?;
    if req.stages.is_empty() || req.stages.len() > 50 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "a pipeline has 1 to 50 stages",
        ));
    }
    for s in &req.stages {
        check_name("stage", s, 200)?;
    }
    let stages: Vec<String> = req.stages.iter().map(|s| s.trim().to_string()).collect();
    let p = user
        .db
        .create_pipeline(req.name.trim(), &stages, false)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict {
                code: "pipeline_exists",
                message: "a pipeline with this name already exists".into(),
            },
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, axum::Json(p)))
}

// ----- board accounts -----

async fn board_account(user: &AuthUser, id: &str) -> ApiResult<ChannelAccount> {
    valid_id(id)?;
    let account = user.db.channel_account(id).await?;
    if account.kind != "board" || account.provider != "hh" {
        return Err(ApiError::unprocessable(
            "not_a_board",
            "this channel account is not a job-board account",
        ));
    }
    Ok(account)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappingView {
    #[serde(flatten)]
    pub mapping: BoardMapping,
    /// The states the board reported for this account's vacancies.
    pub board_states: Vec<BoardStateRef>,
}

/// A board account's status mapping (board state → stage) and the board's states.
#[utoipa::path(get, path = "/channel-accounts/{account_id}/board/mapping", tag = "ats", security(("bearer" = [])),
    params(("account_id" = String, Path)),
    responses((status = 200, body = BoardMapping), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_mapping(user: AuthUser, Path(id): Path<String>) -> ApiResult<axum::Json<MappingView>> {
    let account = board_account(&user, &id).await?;
    Ok(axum::Json(MappingView {
        mapping: user.db.board_mapping(&account.id).await?,
        board_states: user.db.board_states_of_account(&account.id).await?,
    }))
}

/// Replace a board account's status mapping (admins).
#[utoipa::path(put, path = "/channel-accounts/{account_id}/board/mapping", tag = "ats", security(("bearer" = [])),
    params(("account_id" = String, Path)), request_body = BoardMapping,
    responses((status = 200, body = BoardMapping), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn put_mapping(
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<BoardMapping>,
) -> ApiResult<axum::Json<MappingView>> {
    user.principal.require(Role::Admin)?;
    let account = board_account(&user, &id).await?;
    if !["simple", "extended"].contains(&req.mode.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "mode must be simple or extended",
        ));
    }
    let stages = req
        .responses_stage_id
        .iter()
        .chain(req.invitations_stage_id.iter())
        .chain(req.state_stages.values());
    for s in stages {
        let found = uuid::Uuid::parse_str(s).is_ok() && user.db.stage(s).await.is_ok();
        if !found {
            return Err(ApiError::unprocessable(
                "unknown_stage",
                "no such stage in this workspace",
            ));
        }
    }
    if let Some(p) = &req.pipeline_id {
        if uuid::Uuid::parse_str(p).is_err() || user.db.pipeline(p).await.is_err() {
            return Err(ApiError::unprocessable(
                "unknown_pipeline",
                "no such pipeline in this workspace",
            ));
        }
    }
    if let Some(u) = &req.responsible_user_id {
        let active =
            uuid::Uuid::parse_str(u).is_ok() && user.db.user(u).await.is_ok_and(|u| u.active);
        if !active {
            return Err(ApiError::unprocessable(
                "unknown_user",
                "no such active user in this workspace",
            ));
        }
    }
    user.db.save_board_mapping(&account.id, &req).await?;
    Ok(axum::Json(MappingView {
        mapping: user.db.board_mapping(&account.id).await?,
        board_states: user.db.board_states_of_account(&account.id).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardStatus {
    /// An employer account is connected (OAuth tokens stored).
    pub connected: bool,
    /// Who is connected: user, employer, `role` admin (every vacancy) or manager (own ones).
    #[schema(value_type = Object)]
    pub board_account: serde_json::Value,
    /// The first full import has finished.
    pub initial_done: bool,
    /// Where the running pass is: the board's vacancy id, the collection (index) and the
    /// page to read next (all empty between passes).
    pub position_vacancy_id: Option<String>,
    pub position_collection: usize,
    pub position_page: u32,
    #[serde(flatten)]
    pub counters: BoardCounters,
    /// The account's health (`needs_relogin` when the board wants a new login).
    pub health: String,
    pub last_error: Option<String>,
}

/// A board account's connection and import progress: "responses loaded", "applications
/// created", and every difference with its reason.
#[utoipa::path(get, path = "/channel-accounts/{account_id}/board", tag = "ats", security(("bearer" = [])),
    params(("account_id" = String, Path)),
    responses((status = 200, body = BoardStatus), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn board_status(
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<BoardStatus>> {
    let account = board_account(&user, &id).await?;
    let secret = boards::HhSecret::parse(account.secret.as_deref());
    let cursor: boards::Cursor = account
        .sync_state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    Ok(axum::Json(BoardStatus {
        connected: secret.tokens.is_some(),
        board_account: user
            .db
            .board_connection(&account.id)
            .await?
            .map(|(w, _)| w)
            .unwrap_or(serde_json::Value::Null),
        initial_done: cursor.initial_done,
        position_vacancy_id: cursor.vacancy_id,
        position_collection: cursor.collection,
        position_page: cursor.page,
        counters: user.db.board_counters(&account.id).await?,
        health: account.health,
        last_error: account.last_error,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewResponses {
    /// Responses on the board not imported yet, all vacancies.
    pub total: i64,
    /// `board` (asked now) or `last_sync` (the counters of the last sync: the board
    /// could not be asked).
    pub source: String,
    pub vacancies: Vec<VacancyNew>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VacancyNew {
    pub board_vacancy_id: String,
    pub name: String,
    pub on_board: i64,
    pub imported: i64,
    pub not_imported: i64,
}

/// "New responses": how many responses on the board are not imported yet, by vacancy.
#[utoipa::path(get, path = "/channel-accounts/{account_id}/board/new-responses", tag = "ats", security(("bearer" = [])),
    params(("account_id" = String, Path)),
    responses((status = 200, body = NewResponses), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn new_responses(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<NewResponses>> {
    let account = board_account(&user, &id).await?;
    let imported = user.db.imported_per_vacancy(&account.id).await?;
    let (source, counts) = match boards::board_totals(&state.switch, &user.db, &account).await {
        Ok(live) => ("board", live),
        Err(_) => (
            "last_sync",
            user.db
                .vacancies()
                .await?
                .into_iter()
                .filter(|v| v.board_account_id.as_deref() == Some(account.id.as_str()))
                .map(|v| {
                    (
                        v.board_vacancy_id.unwrap_or_default(),
                        v.name,
                        v.board_total.unwrap_or(0),
                    )
                })
                .collect(),
        ),
    };
    let vacancies: Vec<VacancyNew> = counts
        .into_iter()
        .map(|(vid, name, on_board)| {
            let done = imported.get(&vid).copied().unwrap_or(0);
            VacancyNew {
                board_vacancy_id: vid,
                name,
                on_board,
                imported: done,
                not_imported: (on_board - done).max(0),
            }
        })
        .collect();
    Ok(axum::Json(NewResponses {
        total: vacancies.iter().map(|v| v.not_imported).sum(),
        source: source.into(),
        vacancies,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthStart {
    /// Send the admin's browser here.
    pub authorize_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// How long a started connect waits for its callback.
const OAUTH_TTL_MS: i64 = 10 * 60 * 1000;

/// Start connecting an employer account (admins): the board's authorize URL, with a
/// `state` and a PKCE challenge kept here until the callback.
#[utoipa::path(post, path = "/channel-accounts/{account_id}/oauth/start", tag = "ats", security(("bearer" = [])),
    params(("account_id" = String, Path)),
    responses((status = 200, body = OAuthStart), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn oauth_start(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<OAuthStart>> {
    user.principal.require(Role::Admin)?;
    let account = board_account(&user, &id).await?;
    let timeout = std::time::Duration::from_secs(state.switch.config().send_timeout_secs);
    let (client, _) = boards::client_for(&account, timeout)
        .map_err(|m| ApiError::unprocessable("invalid_settings", m))?;
    let request = client.authorization_request();
    let expires = crate::store::now_ms() + OAUTH_TTL_MS;
    user.db
        .save_oauth_request(&request.state, &account.id, &request.code_verifier, expires)
        .await?;
    Ok(axum::Json(OAuthStart {
        authorize_url: request.url,
        expires_at: chrono::DateTime::from_timestamp_millis(expires).unwrap_or_default(),
    }))
}

/// Log the employer account out (admins): the board's token is revoked and forgotten.
#[utoipa::path(delete, path = "/channel-accounts/{account_id}/oauth", tag = "ats", security(("bearer" = [])),
    params(("account_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn oauth_logout(
    State(state): State<AppState>,
    user: AuthUser,
    client_info: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    user.principal.require(Role::Admin)?;
    let account = board_account(&user, &id).await?;
    let timeout = std::time::Duration::from_secs(state.switch.config().send_timeout_secs);
    let (client, mut secret) = boards::client_for(&account, timeout)
        .map_err(|m| ApiError::unprocessable("invalid_settings", m))?;
    if let Some(tokens) = secret.tokens.take() {
        if let Err(e) = client.revoke(&tokens.access_token).await {
            tracing::warn!(error = %e, account = %account.id, "board: revoking the token failed");
        }
        user.db
            .set_channel_secret(&account.id, &secret.to_json())
            .await?;
    }
    user.db
        .set_board_connection(&account.id, None, None)
        .await?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "board_logged_out",
            target_type: Some("channel_account"),
            target_id: Some(&account.id),
            source: client_info.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Connected {
    pub account_id: String,
    /// Who connected: `role` admin (every vacancy of the employer) or manager (own ones).
    #[schema(value_type = Object)]
    pub board_account: serde_json::Value,
}

/// The board's OAuth redirect: checks `state` (single use, expiring), exchanges the code
/// with the PKCE verifier, stores the tokens sealed and starts the import.
///
/// A browser (`Accept: text/html`) is sent back into the workspace instead: 303 to
/// `/admin/channels?board_connected=<account_id>`, or `?board_error=<code>`.
#[utoipa::path(get, path = "/oauth/hh/callback", tag = "ats", params(CallbackQuery),
    responses((status = 200, body = Connected), (status = 303, description = "a browser: back to the workspace"),
              (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn oauth_callback(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let result = complete_oauth(&state, q).await;
    if !browser {
        return result.map(axum::Json).into_response();
    }
    let to = match &result {
        Ok(c) => format!("/admin/channels?board_connected={}", c.account_id),
        Err(e) => format!("/admin/channels?board_error={}", e.code()),
    };
    axum::response::Redirect::to(&to).into_response()
}

async fn complete_oauth(state: &AppState, q: CallbackQuery) -> ApiResult<Connected> {
    let bad_state = || ApiError::BadRequest {
        code: "invalid_state",
        message: "unknown or expired OAuth state; start connecting again".into(),
    };
    let given = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or_else(bad_state)?;
    let pending = state
        .db
        .take_oauth_request(given)
        .await?
        .ok_or_else(bad_state)?;
    if pending.expires_at < crate::store::now_ms() {
        return Err(bad_state());
    }
    let tdb = state.db.for_tenant(&pending.tenant_id);
    let account = tdb
        .channel_account(&pending.board_account_id)
        .await
        .map_err(|_| bad_state())?;
    let timeout = std::time::Duration::from_secs(state.switch.config().send_timeout_secs);
    let (client, mut secret) = boards::client_for(&account, timeout)
        .map_err(|m| ApiError::unprocessable("invalid_settings", m))?;
    let request = jobers_channels::boards::AuthorizationRequest {
        url: String::new(),
        state: given.to_string(),
        code_verifier: pending.code_verifier.clone(),
    };
    let tokens = client
        .complete_authorization(&request, Some(given), q.code.as_deref(), q.error.as_deref())
        .await
        .map_err(boards::board_api_error)?;
    secret.tokens = Some(tokens.clone());
    let account = tdb
        .set_channel_secret(&account.id, &secret.to_json())
        .await?;
    let who = boards::connected(&state.switch, &tdb, &account, &client, &tokens)
        .await
        .map_err(boards::board_api_error)?;
    tdb.audit(NewAuditEntry {
        actor_user_id: None,
        action: "board_connected",
        target_type: Some("channel_account"),
        target_id: Some(&account.id),
        source: None,
        details: json!({"role": who["role"], "employer_id": who["employer_id"]}),
    })
    .await?;
    Ok(Connected {
        account_id: account.id,
        board_account: who,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HookToken {
    /// The account's webhook token (in the URL Jobers subscribes with).
    pub token: String,
}

/// HeadHunter's webhook (unsigned: the URL carries the account's token). Answered at once
/// after the event is recorded; an event id seen before is 409 (HeadHunter stops retrying).
#[utoipa::path(post, path = "/hooks/{account_id}/hh", tag = "hooks",
    params(("account_id" = String, Path), HookToken), request_body = Object,
    responses((status = 200), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn hh_hook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HookToken>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let refuse = || ApiError::unauthorized("bad_signature", "unknown account or bad token");
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(refuse());
    }
    let account = match state.db.channel_account_any_tenant(&id).await {
        Ok(a) if a.provider == "hh" => a,
        Ok(_) | Err(StoreError::NotFound) => return Err(refuse()),
        Err(e) => return Err(e.into()),
    };
    if !boards::hook_token_matches(&account, &q.token) {
        metrics::counter!("webhook_rejected_total").increment(1);
        return Err(refuse());
    }
    match boards::take_webhook(&state.switch, &account, &body).await {
        Ok(true) => Ok(StatusCode::OK),
        Ok(false) => Err(ApiError::Conflict {
            code: "duplicate_event",
            message: "this event was received before".into(),
        }),
        Err(m) => Err(ApiError::BadRequest {
            code: "invalid_body",
            message: m,
        }),
    }
}
