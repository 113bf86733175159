//! The HTTP surface: REST under `/api/v1` (with its OpenAPI description), health and
//! metrics endpoints, and the cross-cutting layers (body limits, origin checks, metrics,
//! tracing, security headers).

mod ats;
pub mod auth;
mod channels;
mod contacts;
pub mod extract;
mod ops;
mod rooms;
mod threads;
mod users;
mod ws;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::AuthService;
use crate::blobs::Blobs;
use crate::chat::Chat;
use crate::config::Config;
use crate::error::ApiError;
use crate::realtime::Hub;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub auth: AuthService,
    pub hub: Hub,
    pub chat: Chat,
    pub blobs: Blobs,
    pub switch: crate::switch::Switch,
    pub metrics: PrometheusHandle,
    /// What every WebSocket connection shares.
    pub ws: Arc<crate::realtime::connection::Context>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Jobers API", description = "REST API of the Jobers hiring workspace. \
        Errors always have the shape {\"error\": \"snake_case_code\", \"message\": \"…\"}."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Login, token rotation, sessions"),
        (name = "me", description = "The caller's own profile"),
        (name = "users", description = "Staff directory and administration"),
        (name = "departments", description = "Departments"),
        (name = "audit", description = "Audit log"),
        (name = "chat", description = "Staff chat, files, presence, directory"),
        (name = "contacts", description = "Applicants, identities, merges"),
        (name = "ats", description = "Vacancies, applications, pipelines; job-board accounts, their mapping and import"),
        (name = "threads", description = "The inbox: applicant threads, replies, notes, assignment"),
        (name = "channels", description = "Channel accounts (SMS numbers, mailboxes, boards, webhooks) and their health"),
        (name = "routing", description = "Routing queues, strategies and capacities"),
        (name = "templates", description = "Reply templates and signatures"),
        (name = "hooks", description = "Signed webhooks of the generic channel (no bearer token)"),
        (name = "ops", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// A path id that is not an id names nothing here: 404, like an unknown one.
pub(crate) fn valid_id(id: &str) -> crate::error::ApiResult<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| crate::error::ApiError::NotFound)
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .merge(auth::router())
                .merge(users::router())
                .merge(contacts::router())
                .merge(threads::router())
                .merge(channels::router())
                .merge(ats::router())
                .merge(rooms::router(state.config.http.max_upload_bytes)),
        )
        .merge(ops::router())
        .split_for_parts();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_string();
    let openapi = Arc::new(openapi);

    let mut app = api
        .route("/ws", axum::routing::get(ws::upgrade))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(static_or_not_found)
        .layer(DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Unavailable {
                        code: "request_timeout",
                        message: "the request took too long and was abandoned".into(),
                    }
                }))
                .timeout(Duration::from_secs(
                    state.config.http.request_timeout_secs.max(1),
                )),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            reject_cross_origin,
        ))
        .layer(middleware::from_fn(record_metrics));

    if !state.config.http.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = state
            .config
            .http
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PATCH,
                    Method::PUT,
                    Method::DELETE,
                ])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(600)),
        );
    }

    app.layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ))
    .layer(PropagateRequestIdLayer::x_request_id())
    .layer(TraceLayer::new_for_http())
    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
    .layer(CatchPanicLayer::custom(|_| {
        ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
    }))
    .with_state(state)
}

/// Paths outside the API are the web client's: its files, and `index.html` for the
/// client-side routes. API paths that match nothing are a JSON 404.
async fn static_or_not_found(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/api/") || path == "/ws" || path.starts_with("/hooks/");
    match web_root(&state.config) {
        Some(root) if !api && matches!(*req.method(), Method::GET | Method::HEAD) => {
            let index = root.join("index.html");
            match ServeDir::new(&root)
                .fallback(ServeFile::new(index))
                .oneshot(req)
                .await
            {
                Ok(response) => response.into_response(),
                Err(never) => match never {},
            }
        }
        _ => ApiError::NotFound.into_response(),
    }
}

fn web_root(config: &Config) -> Option<std::path::PathBuf> {
    let root = config
        .http
        .web_root
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("web-client/dist"));
    root.join("index.html").is_file().then_some(root)
}

async fn method_not_allowed() -> Response {
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(crate::error::ErrorBody {
            error: "method_not_allowed".into(),
            message: "this method is not allowed on this path".into(),
        }),
    )
        .into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// CSRF defence for a same-origin SPA: a state-changing request that a browser marks as
/// coming from another site is refused, unless that origin is explicitly allowed. The API
/// authenticates with a bearer header (never sent by a browser on its own), and the only
/// cookie (the refresh token) is `SameSite=Strict`; this check is the second wall.
async fn reject_cross_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method {
        let headers = req.headers();
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let allowed = |o: &str| {
            state
                .config
                .http
                .cors_allowed_origins
                .iter()
                .any(|a| a == o)
        };
        let cross = match origin {
            Some(o) if allowed(o) => false,
            Some("null") => true,
            Some(o) => {
                let authority = o.split_once("://").map(|(_, rest)| rest).unwrap_or(o);
                host != Some(authority)
            }
            None => fetch_site == Some("cross-site"),
        };
        if cross {
            return ApiError::Forbidden {
                code: "cross_origin_rejected",
                message: "requests from another site are not accepted".into(),
            }
            .into_response();
        }
    }
    next.run(req).await
}

/// Request counts and latencies per route template (never per concrete path: ids would
/// explode the label space).
async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
