//! Channel accounts with their health, routing queues, templates and signatures, and the
//! signed webhooks through which the generic channel delivers messages and reports.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use jobers_channels::signing::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use jobers_channels::webhook::{InboundPayload, StatusPayload};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::extract::{AuthUser, Json};
use super::{valid_id, AppState};
use crate::auth::service::ClientInfo;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::store::{
    ChannelAccount, ChannelAccountPatch, NewAuditEntry, NewChannelAccount, Queue, QueueInput, Role,
    StoreError, Template,
};
use crate::switch::IngestResult;

/// Inbound webhooks may carry attachments (base64): a larger body limit than the API's.
const HOOK_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, update_account))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_queues, create_queue))
        .routes(routes!(update_queue, delete_queue))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(update_template, delete_template))
        .routes(routes!(hook_inbound).layer(DefaultBodyLimit::max(HOOK_BODY_LIMIT)))
        .routes(routes!(hook_status))
        .routes(routes!(kannel_inbound))
        .routes(routes!(kannel_dlr))
        .routes(routes!(twilio_inbound))
        .routes(routes!(twilio_status))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn check_len(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.contains('\0') {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field} must be 1 to {max} characters long"),
        ));
    }
    Ok(())
}

fn unknown_queue(e: StoreError) -> ApiError {
    match e {
        StoreError::UnknownReference("queue") => {
            ApiError::unprocessable("unknown_queue", "no such queue in this workspace")
        }
        other => other.into(),
    }
}

// ----- channel accounts -----

/// Channel accounts with their health (every staff member sees them: they pick senders).
#[utoipa::path(get, path = "/channel-accounts", tag = "channels", security(("bearer" = [])),
    responses((status = 200, body = Vec<ChannelAccount>)))]
async fn list_accounts(user: AuthUser) -> ApiResult<axum::Json<Vec<ChannelAccount>>> {
    Ok(axum::Json(user.db.channel_accounts().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// `sms`, `email`, `board` or `chat`.
    pub kind: String,
    /// The adapter; `webhook` (the generic signed-webhook channel).
    pub provider: String,
    pub name: String,
    /// The sender the applicant sees (number, address, …).
    pub address: String,
    /// A personal sender: only this user sends from it.
    pub owner_user_id: Option<String>,
    #[schema(value_type = Object)]
    pub settings: Option<serde_json::Value>,
    pub queue_id: Option<String>,
    /// Health turns `degraded` / `no_inbound` when nothing arrives for this long.
    pub inbound_expected_within_s: Option<i64>,
    /// The provider credential: the Kannel sendsms password, the Twilio auth token, the
    /// SMS.ru api_id. For `webhook` accounts a signing secret is generated instead.
    pub secret: Option<String>,
}

/// Checks the settings a provider needs.
fn check_provider_settings(
    provider: &str,
    settings: &serde_json::Value,
    secret: Option<&str>,
) -> ApiResult<()> {
    let need = |keys: &[&str]| -> ApiResult<()> {
        for k in keys {
            if settings
                .get(*k)
                .and_then(|v| v.as_str())
                .is_none_or(|v| v.trim().is_empty())
            {
                return Err(ApiError::unprocessable(
                    "invalid_settings",
                    format!("provider {provider} needs settings.{k}"),
                ));
            }
        }
        Ok(())
    };
    match provider {
        "kannel" => need(&["sendsms_url", "username"])?,
        "twilio" => need(&["account_sid"])?,
        _ => {}
    }
    if provider != "webhook" && secret.is_none_or(|s| s.trim().is_empty()) {
        return Err(ApiError::unprocessable(
            "invalid_settings",
            format!("provider {provider} needs its credential in secret"),
        ));
    }
    Ok(())
}

/// New mailbox passwords (JSON) with an empty one replaced by the stored one.
fn keep_stored_passwords(new: &str, stored: Option<&str>) -> String {
    use jobers_channels::MailboxPasswords;
    let (Ok(mut p), Some(Ok(old))) = (
        serde_json::from_str::<MailboxPasswords>(new),
        stored.map(serde_json::from_str::<MailboxPasswords>),
    ) else {
        return new.to_string();
    };
    if p.smtp_password.is_empty() {
        p.smtp_password = old.smtp_password;
    }
    if p.imap_password.is_empty() {
        p.imap_password = old.imap_password;
    }
    serde_json::to_string(&p).expect("serialisable")
}

/// Mailbox settings (docs/channels.md#email) split into what is stored openly and the
/// passwords (stored sealed as the account's secret).
fn mailbox_settings(settings: &serde_json::Value) -> ApiResult<(serde_json::Value, String)> {
    let mailbox: jobers_channels::email::MailboxSettings = serde_json::from_value(settings.clone())
        .map_err(|e| {
            ApiError::unprocessable("invalid_settings", format!("mailbox settings: {e}"))
        })?;
    if !mailbox.address.contains('@') {
        return Err(ApiError::unprocessable(
            "invalid_settings",
            "mailbox settings: address must be an email address",
        ));
    }
    let (open, passwords) = jobers_channels::split_mailbox(mailbox);
    Ok((
        open,
        serde_json::to_string(&passwords).expect("serialisable"),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountWithSecret {
    pub account: ChannelAccount,
    /// The signing secret of the webhooks, shown once.
    pub secret: String,
}

/// Add a channel account (admins; anyone their own mailbox: `kind` and `provider` email,
/// no queue, `owner_user_id` themselves or left out). The answer carries the webhook
/// signing secret once.
#[utoipa::path(post, path = "/channel-accounts", tag = "channels", security(("bearer" = [])),
    request_body = CreateAccount,
    responses((status = 201, body = AccountWithSecret), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_account(
    user: AuthUser,
    client: ClientInfo,
    Json(mut req): Json<CreateAccount>,
) -> ApiResult<(StatusCode, axum::Json<AccountWithSecret>)> {
    // Everyone may add their own mailbox (a personal sender); the rest is the admins'.
    let own_mailbox = req.kind == "email"
        && req.provider == "email"
        && req.queue_id.is_none()
        && req
            .owner_user_id
            .as_deref()
            .is_none_or(|o| o == user.principal.user_id());
    if own_mailbox && !user.principal.has_role(Role::Admin) {
        req.owner_user_id = Some(user.principal.user_id().to_string());
    } else {
        user.principal.require(Role::Admin)?;
    }
    if !["sms", "email", "board", "chat"].contains(&req.kind.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "kind must be sms, email, board or chat",
        ));
    }
    let board = jobers_channels::boards::BoardProvider::parse(&req.provider).is_some();
    if board && req.kind != "board" {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "a job-board provider needs kind board",
        ));
    }
    if !board && !jobers_channels::PROVIDERS.contains(&req.provider.as_str()) {
        return Err(ApiError::unprocessable(
            "unknown_provider",
            format!(
                "provider must be one of: {}, hh",
                jobers_channels::PROVIDERS.join(", ")
            ),
        ));
    }
    check_len("name", &req.name, 200)?;
    check_len("address", &req.address, 200)?;
    let settings = req.settings.clone().unwrap_or_else(|| json!({}));
    if !settings.is_object() {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "settings must be an object",
        ));
    }
    if let Some(owner) = &req.owner_user_id {
        user.db
            .user(owner)
            .await
            .map_err(|_| ApiError::unprocessable("unknown_user", "no such user"))?;
    }
    let (settings, secret) = match req.provider.as_str() {
        "webhook" => {
            check_provider_settings(&req.provider, &settings, None)?;
            (settings, new_secret())
        }
        // A HeadHunter employer account: the application's client secret now, the
        // employer's tokens after the OAuth connect, both sealed.
        "hh" => {
            crate::switch::boards::hh_settings(&settings)
                .map_err(|m| ApiError::unprocessable("invalid_settings", m))?;
            let client_secret = req
                .secret
                .clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::unprocessable(
                        "invalid_settings",
                        "provider hh needs the application's client secret in secret",
                    )
                })?;
            let sealed = crate::switch::boards::HhSecret {
                client_secret,
                tokens: None,
            };
            (settings, sealed.to_json())
        }
        // A mailbox: the passwords in its settings become the (sealed) secret.
        "email" => {
            let (open, passwords) = mailbox_settings(&settings)?;
            (open, passwords)
        }
        _ => {
            check_provider_settings(&req.provider, &settings, req.secret.as_deref())?;
            (settings, req.secret.clone().unwrap_or_default())
        }
    };
    let account = user
        .db
        .create_channel_account(NewChannelAccount {
            kind: &req.kind,
            provider: &req.provider,
            name: req.name.trim(),
            address: req.address.trim(),
            owner_user_id: req.owner_user_id.as_deref(),
            settings: &settings,
            secret: Some(&secret),
            queue_id: req.queue_id.as_deref(),
            inbound_expected_within_s: req.inbound_expected_within_s,
        })
        .await
        .map_err(unknown_queue)?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "channel_account_created",
            target_type: Some("channel_account"),
            target_id: Some(&account.id),
            source: client.source.as_deref(),
            details: json!({"kind": account.kind, "provider": account.provider}),
        })
        .await?;
    // Only generated secrets are shown (once); credentials the admin typed are not echoed.
    let shown = if account.provider == "webhook" {
        secret
    } else {
        String::new()
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(AccountWithSecret {
            account,
            secret: shown,
        }),
    ))
}

/// One channel account with its health.
#[utoipa::path(get, path = "/channel-accounts/{account_id}", tag = "channels", security(("bearer" = [])),
    params(("account_id" = String, Path)), responses((status = 200, body = ChannelAccount), (status = 404, body = ErrorBody)))]
async fn get_account(
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ChannelAccount>> {
    valid_id(&id)?;
    Ok(axum::Json(user.db.channel_account(&id).await?))
}

/// Change a channel account (admins; the owner their personal mailbox, but its queue).
#[utoipa::path(patch, path = "/channel-accounts/{account_id}", tag = "channels", security(("bearer" = [])),
    params(("account_id" = String, Path)), request_body = ChannelAccountPatch,
    responses((status = 200, body = ChannelAccount), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_account(
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<ChannelAccountPatch>,
) -> ApiResult<axum::Json<ChannelAccount>> {
    valid_id(&id)?;
    let current = user.db.channel_account(&id).await?;
    // The owner of a personal mailbox changes it (not its queue); the rest is the admins'.
    let own_mailbox = current.provider == "email"
        && current.owner_user_id.as_deref() == Some(user.principal.user_id())
        && req.queue_id.is_none();
    if !own_mailbox {
        user.principal.require(Role::Admin)?;
    }
    if let Some(n) = &req.name {
        check_len("name", n, 200)?;
    }
    if current.provider == "email" {
        if let Some(settings) = &req.settings {
            // New mailbox settings come whole; a password left empty keeps the stored one
            // (a client that shows settings gets them without passwords).
            let (open, passwords) = mailbox_settings(settings)?;
            let passwords = keep_stored_passwords(&passwords, current.secret.as_deref());
            user.db.set_channel_secret(&id, &passwords).await?;
            let patch = ChannelAccountPatch {
                name: req.name.clone(),
                settings: Some(open),
                queue_id: req.queue_id.clone(),
                enabled: req.enabled,
                inbound_expected_within_s: req.inbound_expected_within_s,
            };
            return Ok(axum::Json(
                user.db
                    .update_channel_account(&id, &patch)
                    .await
                    .map_err(unknown_queue)?,
            ));
        }
    }
    if current.provider == "hh" {
        if let Some(settings) = &req.settings {
            crate::switch::boards::hh_settings(settings)
                .map_err(|m| ApiError::unprocessable("invalid_settings", m))?;
        }
    }
    if req.settings.as_ref().is_some_and(|s| !s.is_object()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "settings must be an object",
        ));
    }
    Ok(axum::Json(
        user.db
            .update_channel_account(&id, &req)
            .await
            .map_err(unknown_queue)?,
    ))
}

/// Replace the webhook signing secret (admins); the old one stops working at once.
#[utoipa::path(post, path = "/channel-accounts/{account_id}/rotate-secret", tag = "channels",
    security(("bearer" = [])), params(("account_id" = String, Path)),
    responses((status = 200, body = AccountWithSecret), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rotate_secret(
    user: AuthUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AccountWithSecret>> {
    user.principal.require(Role::Admin)?;
    valid_id(&id)?;
    let current = user.db.channel_account(&id).await?;
    if current.provider != "webhook" {
        return Err(ApiError::unprocessable(
            "invalid_settings",
            "only webhook accounts have a generated secret; change the provider credential with PATCH",
        ));
    }
    let secret = new_secret();
    let account = user.db.set_channel_secret(&id, &secret).await?;
    user.db
        .audit(NewAuditEntry {
            actor_user_id: Some(user.principal.user_id()),
            action: "channel_secret_rotated",
            target_type: Some("channel_account"),
            target_id: Some(&id),
            source: client.source.as_deref(),
            details: json!({}),
        })
        .await?;
    Ok(axum::Json(AccountWithSecret { account, secret }))
}

// ----- webhooks -----

/// Finds the account and checks the request's signature with its secret. Every failure
/// is the same 401, so the hook does not tell which accounts exist.
async fn verified_account(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<ChannelAccount> {
    let refuse = |m: &str| ApiError::unauthorized("bad_signature", m.to_string());
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(refuse("unknown account or bad signature"));
    }
    let account = match state.db.hook_account(id).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => return Err(refuse("unknown account or bad signature")),
        Err(e) => return Err(e.into()),
    };
    // Only webhook accounts: other providers' secrets are their credentials, not signing keys.
    let Some(secret) = account
        .secret
        .as_ref()
        .filter(|_| account.provider == "webhook")
    else {
        return Err(refuse("unknown account or bad signature"));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signing::verify(
        secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| {
        metrics::counter!("webhook_rejected_total").increment(1);
        refuse(&e.to_string())
    })?;
    Ok(account)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::BadRequest {
                code: "malformed_json",
                message: format!("the body is not valid JSON: {e}"),
            }
        } else {
            ApiError::unprocessable("invalid_body", format!("the body does not fit: {e}"))
        }
    })
}

/// Inbound message from the generic webhook channel (signed with the account's secret:
/// `X-Jobers-Timestamp`, `X-Jobers-Signature: sha256=HMAC(secret, "<ts>.<body>")`).
/// Answered only after the message is stored; the same `id` twice is stored once.
#[utoipa::path(post, path = "/hooks/{account_id}/inbound", tag = "hooks",
    params(("account_id" = String, Path)), request_body = Object,
    responses((status = 200, body = IngestResult), (status = 400, body = ErrorBody),
              (status = 401, description = "bad_signature", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn hook_inbound(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<IngestResult>> {
    let account = verified_account(&state, &id, &headers, &body).await?;
    let payload: InboundPayload = parse(&body)?;
    if !account.enabled {
        return Err(ApiError::Unavailable {
            code: "channel_disabled",
            message: "this channel account is switched off; retry later".into(),
        });
    }
    Ok(axum::Json(state.switch.ingest(&account, payload).await?))
}

/// A delivery report from the generic webhook channel (signed like inbound messages).
#[utoipa::path(post, path = "/hooks/{account_id}/status", tag = "hooks",
    params(("account_id" = String, Path)), request_body = Object,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn hook_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let account = verified_account(&state, &id, &headers, &body).await?;
    let p: StatusPayload = parse(&body)?;
    if !["delivered", "read", "failed", "sent"].contains(&p.state.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "state must be sent, delivered, read or failed",
        ));
    }
    if p.message_id.is_none() && p.provider_message_id.is_none() {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "message_id or provider_message_id is required",
        ));
    }
    let tdb = state.db.for_tenant(&account.tenant_id);
    let reason = p
        .reason
        .as_deref()
        .map(|r| r.chars().take(500).collect::<String>());
    if let Some((_, events)) = tdb
        .delivery_report(
            &account.id,
            p.message_id.as_deref(),
            p.provider_message_id.as_deref(),
            &p.state,
            reason.as_deref(),
        )
        .await?
    {
        state
            .switch
            .publish_events(&account.tenant_id, &events)
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Inbound messages through a switched-off account are refused for the provider to retry.
fn refuse_disabled(account: &ChannelAccount) -> ApiResult<()> {
    if account.enabled {
        return Ok(());
    }
    Err(ApiError::Unavailable {
        code: "channel_disabled",
        message: "this channel account is switched off; retry later".into(),
    })
}

/// Finds an account of `provider` for a provider's callback (404 when unknown, so the
/// caller learns nothing more than with a bad token).
async fn provider_account(state: &AppState, id: &str, provider: &str) -> ApiResult<ChannelAccount> {
    let refuse = || ApiError::unauthorized("bad_signature", "unknown account or bad signature");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(refuse());
    }
    match state.db.hook_account(id).await {
        Ok(a) if a.provider == provider && a.secret.is_some() => Ok(a),
        Ok(_) | Err(StoreError::NotFound) => Err(refuse()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KannelInbound {
    /// The account's hook token (docs/channels.md).
    pub token: String,
    /// `%p`: the sender.
    pub from: String,
    /// `%a`: the text.
    pub text: Option<String>,
    /// `%I`: Kannel's message id.
    pub id: String,
}

/// Kannel `sms-service` get-url: an SMS from an applicant. Answered after it is stored
/// (empty body: Kannel sends no reply SMS with `max-messages = 0`).
#[utoipa::path(get, path = "/hooks/{account_id}/kannel/inbound", tag = "hooks",
    params(("account_id" = String, Path), KannelInbound),
    responses((status = 200), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn kannel_inbound(
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::extract::Query(q): super::extract::Query<KannelInbound>,
) -> ApiResult<StatusCode> {
    let account = provider_account(&state, &id, "kannel").await?;
    if !jobers_channels::sms::kannel::token_matches(
        account.secret.as_deref().unwrap_or(""),
        &account.id,
        &q.token,
    ) {
        return Err(ApiError::unauthorized(
            "bad_signature",
            "unknown account or bad signature",
        ));
    }
    refuse_disabled(&account)?;
    let payload = InboundPayload {
        id: q.id,
        from: jobers_channels::webhook::Sender {
            phone: Some(q.from),
            ..Default::default()
        },
        text: q.text.unwrap_or_default(),
        html: None,
        subject: None,
        refs: Vec::new(),
        vacancy: None,
        attachments: Vec::new(),
        auto_submitted: false,
    };
    state.switch.ingest(&account, payload).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KannelDlr {
    pub token: String,
    /// Jobers' message id (put into the dlr-url when sending).
    pub msg: String,
    /// `%d`: 1 delivered, 2 failed, 8 accepted by the SMS centre, 16 rejected.
    #[serde(rename = "type")]
    pub dlr_type: i64,
}

/// Kannel delivery report (dlr-url).
#[utoipa::path(get, path = "/hooks/{account_id}/kannel/dlr", tag = "hooks",
    params(("account_id" = String, Path), KannelDlr),
    responses((status = 200), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn kannel_dlr(
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::extract::Query(q): super::extract::Query<KannelDlr>,
) -> ApiResult<StatusCode> {
    let account = provider_account(&state, &id, "kannel").await?;
    if !jobers_channels::sms::kannel::token_matches(
        account.secret.as_deref().unwrap_or(""),
        &account.id,
        &q.token,
    ) {
        return Err(ApiError::unauthorized(
            "bad_signature",
            "unknown account or bad signature",
        ));
    }
    if let Some((s, reason)) = jobers_channels::sms::kannel::delivery_state(q.dlr_type) {
        report_delivery(&state, &account, Some(&q.msg), None, s, reason).await?;
    }
    Ok(StatusCode::OK)
}

async fn report_delivery(
    state: &AppState,
    account: &ChannelAccount,
    message_id: Option<&str>,
    provider_id: Option<&str>,
    delivery: &str,
    reason: Option<&str>,
) -> ApiResult<()> {
    let tdb = state.db.for_tenant(&account.tenant_id);
    if let Some((_, events)) = tdb
        .delivery_report(&account.id, message_id, provider_id, delivery, reason)
        .await?
    {
        state
            .switch
            .publish_events(&account.tenant_id, &events)
            .await;
    }
    Ok(())
}

/// Checks `X-Twilio-Signature` over the public URL Twilio called and every form field.
fn twilio_verified(
    state: &AppState,
    account: &ChannelAccount,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Vec<(String, String)>> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let url = format!(
        "{}{}",
        state.switch.public_url(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    );
    let given = headers
        .get(jobers_channels::sms::twilio::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let ok = given.is_some_and(|g| {
        jobers_channels::sms::twilio::verify(
            account.secret.as_deref().unwrap_or(""),
            &url,
            &params,
            g,
        )
    });
    if !ok {
        metrics::counter!("webhook_rejected_total").increment(1);
        return Err(ApiError::unauthorized(
            "bad_signature",
            "missing or wrong X-Twilio-Signature",
        ));
    }
    Ok(params)
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Twilio-compatible inbound SMS webhook (form post signed with `X-Twilio-Signature`).
/// Answers an empty TwiML response after the message is stored.
#[utoipa::path(post, path = "/hooks/{account_id}/twilio", tag = "hooks",
    params(("account_id" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, content_type = "text/xml"), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn twilio_inbound(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], &'static str)> {
    let account = provider_account(&state, &id, "twilio").await?;
    let params = twilio_verified(&state, &account, &uri, &headers, &body)?;
    refuse_disabled(&account)?;
    let (Some(sid), Some(from)) = (field(&params, "MessageSid"), field(&params, "From")) else {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "MessageSid and From are required",
        ));
    };
    let mut text = field(&params, "Body").unwrap_or("").to_string();
    let media: usize = field(&params, "NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for i in 0..media.min(10) {
        if let Some(url) = field(&params, &format!("MediaUrl{i}")) {
            text.push_str(&format!("\n[media: {url}]"));
        }
    }
    let payload = InboundPayload {
        id: sid.to_string(),
        from: jobers_channels::webhook::Sender {
            phone: Some(from.to_string()),
            ..Default::default()
        },
        text,
        html: None,
        subject: None,
        refs: Vec::new(),
        vacancy: None,
        attachments: Vec::new(),
        auto_submitted: false,
    };
    state.switch.ingest(&account, payload).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    ))
}

/// Twilio-compatible status callback (signed like inbound messages).
#[utoipa::path(post, path = "/hooks/{account_id}/twilio/status", tag = "hooks",
    params(("account_id" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn twilio_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let account = provider_account(&state, &id, "twilio").await?;
    let params = twilio_verified(&state, &account, &uri, &headers, &body)?;
    let (Some(sid), Some(status)) = (
        field(&params, "MessageSid"),
        field(&params, "MessageStatus"),
    ) else {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "MessageSid and MessageStatus are required",
        ));
    };
    // Our message id rides in the StatusCallback URL (a callback may come before the SID
    // is recorded).
    let ours = uri
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "msg"))
        .map(|(_, v)| v.into_owned());
    if let Some(delivery) = jobers_channels::sms::twilio::delivery_state(status) {
        let reason = (delivery == "failed").then(|| {
            format!(
                "Twilio reported {status}{}",
                field(&params, "ErrorCode")
                    .map(|c| format!(" (error {c})"))
                    .unwrap_or_default()
            )
        });
        report_delivery(
            &state,
            &account,
            ours.as_deref(),
            Some(sid),
            delivery,
            reason.as_deref(),
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

// ----- queues -----

/// Routing queues with their members.
#[utoipa::path(get, path = "/queues", tag = "routing", security(("bearer" = [])),
    responses((status = 200, body = Vec<Queue>)))]
async fn list_queues(user: AuthUser) -> ApiResult<axum::Json<Vec<Queue>>> {
    Ok(axum::Json(user.db.queues().await?))
}

fn check_queue(q: &QueueInput) -> ApiResult<()> {
    check_len("name", &q.name, 200)?;
    if !["manual", "round_robin", "least_busy"].contains(&q.strategy.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "strategy must be manual, round_robin or least_busy",
        ));
    }
    for limit in [q.away_limit_s, q.response_limit_s].into_iter().flatten() {
        if limit < 1 {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "limits are whole seconds, at least 1",
            ));
        }
    }
    if q.members
        .iter()
        .any(|m| m.capacity < 0 || m.capacity > 10_000)
    {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "capacity must be 0 to 10000",
        ));
    }
    Ok(())
}

fn queue_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(c) if c.contains("queue") => ApiError::Conflict {
            code: "queue_exists",
            message: "a queue with this name already exists".into(),
        },
        other => other.into(),
    }
}

/// Create a queue (supervisors and admins).
#[utoipa::path(post, path = "/queues", tag = "routing", security(("bearer" = [])), request_body = QueueInput,
    responses((status = 201, body = Queue), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn create_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<QueueInput>,
) -> ApiResult<(StatusCode, axum::Json<Queue>)> {
    user.principal.require(Role::Supervisor)?;
    check_queue(&req)?;
    let q = user.db.save_queue(None, &req).await.map_err(queue_error)?;
    state.switch.route_tenant(user.db.tenant_id());
    Ok((StatusCode::CREATED, axum::Json(q)))
}

/// Replace a queue's settings and members (supervisors and admins).
#[utoipa::path(put, path = "/queues/{queue_id}", tag = "routing", security(("bearer" = [])),
    params(("queue_id" = String, Path)), request_body = QueueInput,
    responses((status = 200, body = Queue), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn update_queue(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<QueueInput>,
) -> ApiResult<axum::Json<Queue>> {
    user.principal.require(Role::Supervisor)?;
    valid_id(&id)?;
    // Another tenant's queue is a 404 whatever the body says.
    user.db.queue(&id).await?;
    check_queue(&req)?;
    let q = user
        .db
        .save_queue(Some(&id), &req)
        .await
        .map_err(queue_error)?;
    state.switch.route_tenant(user.db.tenant_id());
    Ok(axum::Json(q))
}

/// Delete a queue (its threads stay, out of routing).
#[utoipa::path(delete, path = "/queues/{queue_id}", tag = "routing", security(("bearer" = [])),
    params(("queue_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_queue(user: AuthUser, Path(id): Path<String>) -> ApiResult<StatusCode> {
    user.principal.require(Role::Supervisor)?;
    valid_id(&id)?;
    user.db.delete_queue(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- templates and signatures -----

/// The company's templates and signatures, and the caller's own.
#[utoipa::path(get, path = "/templates", tag = "templates", security(("bearer" = [])),
    responses((status = 200, body = Vec<Template>)))]
async fn list_templates(user: AuthUser) -> ApiResult<axum::Json<Vec<Template>>> {
    Ok(axum::Json(
        user.db.templates(user.principal.user_id()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// `template` (default) or `signature`.
    pub kind: Option<String>,
    pub name: String,
    pub body: String,
    /// `true`: the company's (admins); otherwise the caller's own.
    #[serde(default)]
    pub shared: bool,
}

/// Create a template or signature.
#[utoipa::path(post, path = "/templates", tag = "templates", security(("bearer" = [])), request_body = TemplateInput,
    responses((status = 201, body = Template), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_template(
    user: AuthUser,
    Json(req): Json<TemplateInput>,
) -> ApiResult<(StatusCode, axum::Json<Template>)> {
    let kind = req.kind.as_deref().unwrap_or("template");
    if !["template", "signature"].contains(&kind) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "kind must be template or signature",
        ));
    }
    check_len("name", &req.name, 200)?;
    check_len("body", &req.body, 10_000)?;
    let owner = if req.shared {
        user.principal.require(Role::Admin)?;
        None
    } else {
        Some(user.principal.user_id())
    };
    let t = user
        .db
        .create_template(owner, kind, req.name.trim(), &req.body)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

/// Only the owner changes a personal template; admins change the company's.
async fn may_edit(user: &AuthUser, id: &str) -> ApiResult<()> {
    match user.db.template_owner(id).await? {
        Some(owner) if owner == user.principal.user_id() => Ok(()),
        // Another user's personal template: not even its existence is shown.
        Some(_) => Err(ApiError::NotFound),
        None => user.principal.require(Role::Admin),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub body: Option<String>,
}

/// Change a template or signature.
#[utoipa::path(patch, path = "/templates/{template_id}", tag = "templates", security(("bearer" = [])),
    params(("template_id" = String, Path)), request_body = TemplatePatch,
    responses((status = 200, body = Template), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_template(
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<TemplatePatch>,
) -> ApiResult<axum::Json<Template>> {
    valid_id(&id)?;
    may_edit(&user, &id).await?;
    if let Some(n) = &req.name {
        check_len("name", n, 200)?;
    }
    if let Some(b) = &req.body {
        check_len("body", b, 10_000)?;
    }
    Ok(axum::Json(
        user.db
            .update_template(&id, req.name.as_deref(), req.body.as_deref())
            .await?,
    ))
}

/// Delete a template or signature.
#[utoipa::path(delete, path = "/templates/{template_id}", tag = "templates", security(("bearer" = [])),
    params(("template_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_template(user: AuthUser, Path(id): Path<String>) -> ApiResult<StatusCode> {
    valid_id(&id)?;
    may_edit(&user, &id).await?;
    user.db.delete_template(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
