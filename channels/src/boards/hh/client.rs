//! The HeadHunter API client. Stateless apart from its HTTP client: every call takes the
//! account's access token, and token changes are returned to the hub to store.
//!
//! Every request carries `HH-User-Agent` (and `User-Agent`) — without it HeadHunter answers
//! 400 `bad_user_agent` — and `?host=` of the account's site. Every call has a timeout and
//! redirects are not followed. The bearer token is only ever sent to the API's own host and
//! the site's hosts (resume PDFs live on the site), never to a URL from elsewhere.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    classify_api_error, classify_token_error, id_of, page_of, retry_after, ManagerAccount, Site,
    WebhookSubscription,
};
use crate::boards::{
    AccountRole, AuthorizationRequest, BoardAccount, BoardAction, BoardCollection, BoardError,
    BoardNegotiation, BoardResume, BoardTokens, BoardVacancy, ChatMessage, Page, VacancyPipeline,
};
use crate::{classify_transport, SendError};

/// The largest resume file the client downloads.
const MAX_DOWNLOAD_BYTES: usize = 20 * 1024 * 1024;

/// The largest page HeadHunter serves (`per_page` above it is refused).
pub const MAX_PER_PAGE: u32 = 100;

/// How an application reaches HeadHunter.
#[derive(Clone)]
pub struct HhConfig {
    /// `https://api.hh.ru` (the simulator's URL in tests and the demo).
    pub api_base: String,
    /// Where the employer logs in: `https://hh.ru` (the simulator's URL in tests).
    pub oauth_base: String,
    pub site: Site,
    pub client_id: String,
    pub client_secret: String,
    /// Registered with the application on dev.hh.ru; must match exactly.
    pub redirect_uri: String,
    /// `AppName/1.0 (contact@example.com)`, as HeadHunter requires.
    pub user_agent: String,
    /// For every call.
    pub timeout: Duration,
}

impl std::fmt::Debug for HhConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HhConfig")
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("site", &self.site)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HhConfig {
    /// The production endpoints for a site.
    pub fn production(
        site: Site,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        user_agent: &str,
    ) -> HhConfig {
        HhConfig {
            api_base: "https://api.hh.ru".into(),
            oauth_base: "https://hh.ru".into(),
            site,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: redirect_uri.into(),
            user_agent: user_agent.into(),
            timeout: Duration::from_secs(15),
        }
    }
}

enum Body {
    Empty,
    Form(Vec<(String, String)>),
    Json(Value),
}

/// The HeadHunter connector.
#[derive(Debug, Clone)]
pub struct HhClient {
    config: HhConfig,
    http: reqwest::Client,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn transport(e: &reqwest::Error) -> BoardError {
    match classify_transport(e) {
        SendError::Retryable { class, message } => BoardError::RetryLater {
            class,
            retry_after: None,
            reason: format!("HeadHunter: {message}"),
        },
        other => BoardError::RetryLater {
            class: crate::ErrorClass::ServiceUnreachable,
            retry_after: None,
            reason: other.to_string(),
        },
    }
}

fn unreadable(what: &str) -> BoardError {
    BoardError::RetryLater {
        class: crate::ErrorClass::ServiceUnreachable,
        retry_after: None,
        reason: format!("HeadHunter's answer could not be read ({what})"),
    }
}

impl HhClient {
    pub fn new(config: HhConfig) -> HhClient {
        let http = crate::http_client(config.timeout);
        HhClient { config, http }
    }

    pub fn config(&self) -> &HhConfig {
        &self.config
    }

    // ---- OAuth ------------------------------------------------------------------------

    /// Starts a connect: the URL of HeadHunter's authorize page (employer role, `state`,
    /// PKCE S256) and what the callback must be checked against.
    pub fn authorization_request(&self) -> AuthorizationRequest {
        let state = random_token(24);
        let code_verifier = random_token(48);
        let mut url = url::Url::parse(&format!(
            "{}/oauth/authorize",
            self.config.oauth_base.trim_end_matches('/')
        ))
        .expect("the OAuth base is a URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("state", &state)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("role", "employer")
            .append_pair("force_role", "true")
            .append_pair("code_challenge", &pkce_challenge(&code_verifier))
            .append_pair("code_challenge_method", "S256");
        AuthorizationRequest {
            url: url.into(),
            state,
            code_verifier,
        }
    }

    /// Checks the callback's query against the request it answers and exchanges the code.
    /// A wrong `state` is refused before anything is sent to HeadHunter; `error` (the
    /// employer refused: `access_denied`) is a permanent failure.
    pub async fn complete_authorization(
        &self,
        request: &AuthorizationRequest,
        state: Option<&str>,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<BoardTokens, BoardError> {
        let state_ok = state
            .map(|s| bool::from(s.as_bytes().ct_eq(request.state.as_bytes())))
            .unwrap_or(false);
        if !state_ok {
            return Err(BoardError::Permanent {
                status: 400,
                error_type: "state_mismatch".into(),
                value: None,
                message: "the callback's state is not the one this connect started with".into(),
            });
        }
        if let Some(error) = error {
            return Err(BoardError::Permanent {
                status: 400,
                error_type: error.to_string(),
                value: None,
                message: "the employer did not grant access".into(),
            });
        }
        let code = code.ok_or_else(|| BoardError::Permanent {
            status: 400,
            error_type: "invalid_request".into(),
            value: None,
            message: "the callback carries no code".into(),
        })?;
        self.exchange_code(code, &request.code_verifier).await
    }

    /// `POST /token` with `grant_type=authorization_code`.
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<BoardTokens, BoardError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", &self.config.client_id),
            ("client_secret", &self.config.client_secret),
            ("redirect_uri", &self.config.redirect_uri),
            ("code", code),
            ("code_verifier", code_verifier),
        ])
        .await
    }

    /// `POST /token` with `grant_type=refresh_token`. HeadHunter accepts a refresh token
    /// once and only after the access token expired: prefer [`HhClient::ensure_fresh`].
    /// Errors: `token not expired` is permanent (keep using the access token);
    /// `token has already been refreshed`, `token deactivated`, `token was revoked`,
    /// `password invalidated` → [`BoardError::NeedsRelogin`] (the hub should first reload
    /// the stored tokens: another worker may have refreshed them).
    pub async fn refresh(&self, tokens: &BoardTokens) -> Result<BoardTokens, BoardError> {
        let refresh = tokens
            .refresh_token
            .as_deref()
            .ok_or_else(|| BoardError::NeedsRelogin {
                reason: "no refresh token".into(),
            })?;
        self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .await
    }

    /// Refreshes the tokens only when the access token has expired by the local clock.
    /// Returns whether they changed (then the hub stores them before anything else: the old
    /// refresh token is spent). A board that still finds the token valid (`token not
    /// expired`, clocks differ) leaves the tokens as they are.
    pub async fn ensure_fresh(&self, tokens: &mut BoardTokens) -> Result<bool, BoardError> {
        self.ensure_fresh_at(tokens, now_unix()).await
    }

    /// [`HhClient::ensure_fresh`] at a given time (unix seconds).
    pub async fn ensure_fresh_at(
        &self,
        tokens: &mut BoardTokens,
        now: i64,
    ) -> Result<bool, BoardError> {
        if !tokens.expired_at(now) {
            return Ok(false);
        }
        match self.refresh(tokens).await {
            Ok(new) => {
                *tokens = new;
                Ok(true)
            }
            Err(e) if e.board_error() == Some(("invalid_grant", Some("token not expired"))) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<BoardTokens, BoardError> {
        let url = format!("{}/token", self.config.api_base.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .header("HH-User-Agent", &self.config.user_agent)
            .header(reqwest::header::USER_AGENT, &self.config.user_agent)
            .form(form)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let text = response.text().await.map_err(|e| transport(&e))?;
        if !(200..300).contains(&status) {
            return Err(classify_token_error(status, &text, after));
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| unreadable("token"))?;
        let access_token = v["access_token"]
            .as_str()
            .ok_or_else(|| unreadable("no access_token"))?
            .to_string();
        let expires_in = v["expires_in"].as_i64().unwrap_or(0);
        Ok(BoardTokens {
            access_token,
            refresh_token: v["refresh_token"].as_str().map(str::to_string),
            expires_at: now_unix() + expires_in,
        })
    }

    /// `DELETE /token`: logs the account out (the token stops working).
    pub async fn revoke(&self, token: &str) -> Result<(), BoardError> {
        self.call(Method::DELETE, "/token", Some(token), Body::Empty)
            .await
            .map(|_| ())
    }

    // ---- the calls --------------------------------------------------------------------

    fn same_origin(a: &url::Url, b: &url::Url) -> bool {
        a.scheme() == b.scheme()
            && a.host_str() == b.host_str()
            && a.port_or_known_default() == b.port_or_known_default()
    }

    /// Whether the bearer token may be sent to `url`.
    fn trusted(&self, url: &url::Url) -> bool {
        let api = url::Url::parse(&self.config.api_base).ok();
        let site = url::Url::parse(&self.config.oauth_base).ok();
        if api
            .iter()
            .chain(site.iter())
            .any(|b| Self::same_origin(b, url))
        {
            return true;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        url.scheme() == "https"
            && [self.config.site.host(), "hh.ru"]
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }

    fn url_for(&self, path_or_url: &str) -> Result<url::Url, BoardError> {
        let raw = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!(
                "{}{}",
                self.config.api_base.trim_end_matches('/'),
                path_or_url
            )
        };
        let url = url::Url::parse(&raw).map_err(|_| BoardError::Permanent {
            status: 0,
            error_type: "bad_url".into(),
            value: None,
            message: format!("not a URL: {raw}"),
        })?;
        if !self.trusted(&url) {
            return Err(BoardError::Permanent {
                status: 0,
                error_type: "untrusted_url".into(),
                value: None,
                message: format!("refusing to send the account's token to {raw}"),
            });
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        token: Option<&str>,
        body: Body,
    ) -> Result<reqwest::Response, BoardError> {
        let mut url = self.url_for(path_or_url)?;
        if !url.query_pairs().any(|(k, _)| k == "host") {
            url.query_pairs_mut()
                .append_pair("host", self.config.site.host());
        }
        let mut request = self
            .http
            .request(method, url)
            .header("HH-User-Agent", &self.config.user_agent)
            .header(reqwest::header::USER_AGENT, &self.config.user_agent);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Empty => request,
            Body::Form(f) => request.form(&f),
            Body::Json(v) => request.json(&v),
        };
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        Err(classify_api_error(status, &text, after))
    }

    async fn call(
        &self,
        method: Method,
        path_or_url: &str,
        token: Option<&str>,
        body: Body,
    ) -> Result<Value, BoardError> {
        let response = self.send(method, path_or_url, token, body).await?;
        let text = response.text().await.map_err(|e| transport(&e))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| unreadable("not JSON"))
    }

    async fn get(&self, token: &str, path_or_url: &str) -> Result<Value, BoardError> {
        self.call(Method::GET, path_or_url, Some(token), Body::Empty)
            .await
    }

    // ---- who is connected -------------------------------------------------------------

    /// `GET /me`, then the manager record for the account kind: an admin of the employer
    /// sees every vacancy, a manager only its own. (The manager `type` ids are not
    /// documented in the guides: `mcp`/`admin` — the main contact person — are taken as
    /// admin; unverified.)
    pub async fn me(&self, token: &str) -> Result<BoardAccount, BoardError> {
        let me = self.get(token, "/me").await?;
        if me["is_employer"] == false || me["employer"].is_null() {
            return Err(BoardError::Permanent {
                status: 200,
                error_type: "not_employer".into(),
                value: None,
                message: "the connected HeadHunter user is not an employer".into(),
            });
        }
        let employer_id = id_of(&me["employer"]["id"]).unwrap_or_default();
        let manager_id = id_of(&me["employer"]["manager_id"])
            .or_else(|| id_of(&me["manager"]["id"]))
            .unwrap_or_default();
        let manager = self
            .get(
                token,
                &format!("/employers/{employer_id}/managers/{manager_id}"),
            )
            .await?;
        let kind = manager["type"]["id"].as_str().unwrap_or("");
        let role = if matches!(kind, "mcp" | "admin") || manager["is_main_contact_person"] == true {
            AccountRole::Admin
        } else {
            AccountRole::Manager
        };
        let name = [&me["last_name"], &me["first_name"], &me["middle_name"]]
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(BoardAccount {
            user_id: id_of(&me["id"]).unwrap_or_default(),
            name,
            email: me["email"].as_str().map(str::to_string),
            employer_id,
            employer_name: me["employer"]["name"].as_str().unwrap_or("").to_string(),
            manager_id,
            role,
        })
    }

    /// `GET /manager_accounts/mine`: the work accounts the user may act as.
    pub async fn manager_accounts(&self, token: &str) -> Result<Vec<ManagerAccount>, BoardError> {
        let v = self.get(token, "/manager_accounts/mine").await?;
        let primary = id_of(&v["primary_account_id"]);
        Ok(v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        let id = id_of(&x["id"])?;
                        Some(ManagerAccount {
                            primary: x["is_primary"] == true || primary.as_deref() == Some(&id),
                            name: x["name"].as_str().map(str::to_string),
                            employer_id: id_of(&x["employer"]["id"]),
                            employer_name: x["employer"]["name"].as_str().map(str::to_string),
                            id,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    // ---- vacancies and applications ---------------------------------------------------

    /// `GET /employers/{employer_id}/vacancies/active`: a page of the account's active
    /// vacancies — all of the employer's for an admin, the manager's own for a manager.
    pub async fn active_vacancies(
        &self,
        token: &str,
        account: &BoardAccount,
        page: u32,
        per_page: u32,
    ) -> Result<Page<BoardVacancy>, BoardError> {
        let mut path = format!(
            "/employers/{}/vacancies/active?page={page}&per_page={}",
            account.employer_id,
            per_page.clamp(1, MAX_PER_PAGE)
        );
        if account.role == AccountRole::Manager {
            path.push_str(&format!("&manager_id={}", account.manager_id));
        }
        let v = self.get(token, &path).await?;
        Ok(page_of(&v, super::vacancy_of))
    }

    /// `GET /negotiations?vacancy_id=`: the vacancy's collections (with counters) and its
    /// employer states. Read per vacancy: they differ between vacancies.
    pub async fn vacancy_pipeline(
        &self,
        token: &str,
        vacancy_id: &str,
    ) -> Result<VacancyPipeline, BoardError> {
        let v = self
            .get(token, &format!("/negotiations?vacancy_id={vacancy_id}"))
            .await?;
        let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        let states = if v["employer_states"].is_array() {
            list("employer_states")
        } else {
            list("states")
        };
        Ok(VacancyPipeline {
            vacancy_id: vacancy_id.to_string(),
            collections: list("collections")
                .iter()
                .filter_map(super::collection_of)
                .collect(),
            states: states.iter().filter_map(super::state_of).collect(),
        })
    }

    /// A page of a collection's items (the collection's `url` with `page` / `per_page`).
    pub async fn negotiations(
        &self,
        token: &str,
        collection: &BoardCollection,
        page: u32,
        per_page: u32,
    ) -> Result<Page<BoardNegotiation>, BoardError> {
        let mut url = self.url_for(&collection.url)?;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "page" && k != "per_page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.clamp(1, MAX_PER_PAGE).to_string());
        let v = self.get(token, url.as_str()).await?;
        Ok(page_of(&v, super::negotiation_of))
    }

    /// `GET /negotiations/{id}`.
    pub async fn negotiation(&self, token: &str, id: &str) -> Result<BoardNegotiation, BoardError> {
        let v = self.get(token, &format!("/negotiations/{id}")).await?;
        super::negotiation_of(&v).ok_or_else(|| unreadable("negotiation"))
    }

    /// Performs an action of a negotiation (its `url` and `method`), e.g. `PUT
    /// /negotiations/interview/{id}` with the message the applicant gets. A required
    /// `message` missing here is refused before the call.
    pub async fn perform_action(
        &self,
        token: &str,
        action: &BoardAction,
        message: Option<&str>,
    ) -> Result<(), BoardError> {
        if !action.enabled {
            return Err(BoardError::Permanent {
                status: 0,
                error_type: "negotiations".into(),
                value: Some("action_disabled".into()),
                message: format!("the board does not offer `{}` now", action.id),
            });
        }
        let message = message.map(str::trim).filter(|m| !m.is_empty());
        if action.requires("message") && message.is_none() {
            return Err(BoardError::Permanent {
                status: 0,
                error_type: "negotiations".into(),
                value: Some("empty_message".into()),
                message: format!("`{}` needs a message for the applicant", action.id),
            });
        }
        let mut form = Vec::new();
        if let Some(m) = message {
            form.push(("message".to_string(), m.to_string()));
        }
        let method = Method::from_bytes(action.method.as_bytes()).unwrap_or(Method::PUT);
        self.call(method, &action.url, Some(token), Body::Form(form))
            .await
            .map(|_| ())
    }

    /// Moves a negotiation to `state_id` with the action the board offers for it.
    pub async fn change_state(
        &self,
        token: &str,
        negotiation: &BoardNegotiation,
        state_id: &str,
        message: Option<&str>,
    ) -> Result<(), BoardError> {
        let action = negotiation
            .action_to(state_id)
            .ok_or_else(|| BoardError::Permanent {
                status: 0,
                error_type: "negotiations".into(),
                value: Some("wrong_state".into()),
                message: format!(
                    "the board offers no action from `{}` to `{state_id}`",
                    negotiation.state.id
                ),
            })?;
        self.perform_action(token, action, message).await
    }

    // ---- resumes ----------------------------------------------------------------------

    /// `GET /resumes/{id}` (or the negotiation's resume URL, which also marks the response
    /// as seen). Hidden fields come back `None` and listed in `hidden`.
    pub async fn resume(&self, token: &str, id_or_url: &str) -> Result<BoardResume, BoardError> {
        let path = if id_or_url.contains("://") {
            id_or_url.to_string()
        } else {
            format!("/resumes/{id_or_url}")
        };
        let v = self.get(token, &path).await?;
        super::resume_of(&v).ok_or_else(|| unreadable("resume"))
    }

    /// Downloads a file of the board (the resume PDF) with the account's token.
    pub async fn download(&self, token: &str, url: &str) -> Result<Vec<u8>, BoardError> {
        let response = self
            .send(Method::GET, url, Some(token), Body::Empty)
            .await?;
        if response
            .content_length()
            .is_some_and(|l| l as usize > MAX_DOWNLOAD_BYTES)
        {
            return Err(BoardError::Permanent {
                status: 200,
                error_type: "too_large".into(),
                value: None,
                message: "the file is larger than the download limit".into(),
            });
        }
        let bytes = response.bytes().await.map_err(|e| transport(&e))?;
        if bytes.len() > MAX_DOWNLOAD_BYTES {
            return Err(BoardError::Permanent {
                status: 200,
                error_type: "too_large".into(),
                value: None,
                message: "the file is larger than the download limit".into(),
            });
        }
        Ok(bytes.to_vec())
    }

    // ---- chat -------------------------------------------------------------------------

    /// `GET /common/chats/{chat_id}/messages`: a page of the chat's messages.
    pub async fn chat_messages(
        &self,
        token: &str,
        chat_id: &str,
        page: u32,
        per_page: u32,
    ) -> Result<Page<ChatMessage>, BoardError> {
        let v = self
            .get(
                token,
                &format!(
                    "/common/chats/{chat_id}/messages?page={page}&per_page={}",
                    per_page.clamp(1, MAX_PER_PAGE)
                ),
            )
            .await?;
        Ok(page_of(&v, |x| super::chat_message_of(chat_id, x)))
    }

    /// `POST /common/chats/{chat_id}/messages` with `{text, idempotency_key}`: the same key
    /// again gives the same message, never a second one. A refusal for too many messages in
    /// a row is [`BoardError::ChatLimit`].
    pub async fn send_chat_message(
        &self,
        token: &str,
        chat_id: &str,
        text: &str,
        idempotency_key: &str,
    ) -> Result<ChatMessage, BoardError> {
        let v = self
            .call(
                Method::POST,
                &format!("/common/chats/{chat_id}/messages"),
                Some(token),
                Body::Json(json!({"text": text, "idempotency_key": idempotency_key})),
            )
            .await?;
        super::chat_message_of(chat_id, &v).ok_or_else(|| unreadable("chat message"))
    }

    // ---- webhooks ---------------------------------------------------------------------

    /// `GET /webhook/subscriptions`.
    pub async fn webhook_subscriptions(
        &self,
        token: &str,
    ) -> Result<Vec<WebhookSubscription>, BoardError> {
        let v = self.get(token, "/webhook/subscriptions").await?;
        Ok(v["items"]
            .as_array()
            .map(|a| a.iter().filter_map(super::subscription_of).collect())
            .unwrap_or_default())
    }

    fn subscription_body(url: &str, actions: &[&str]) -> Value {
        json!({
            "url": url,
            "actions": actions.iter().map(|a| json!({"type": a})).collect::<Vec<_>>(),
        })
    }

    /// `POST /webhook/subscriptions`: returns the subscription's id.
    pub async fn subscribe(
        &self,
        token: &str,
        url: &str,
        actions: &[&str],
    ) -> Result<String, BoardError> {
        let v = self
            .call(
                Method::POST,
                "/webhook/subscriptions",
                Some(token),
                Body::Json(Self::subscription_body(url, actions)),
            )
            .await?;
        id_of(&v["id"]).ok_or_else(|| unreadable("subscription id"))
    }

    /// `PUT /webhook/subscriptions/{id}`.
    pub async fn update_subscription(
        &self,
        token: &str,
        id: &str,
        url: &str,
        actions: &[&str],
    ) -> Result<(), BoardError> {
        self.call(
            Method::PUT,
            &format!("/webhook/subscriptions/{id}"),
            Some(token),
            Body::Json(Self::subscription_body(url, actions)),
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /webhook/subscriptions/{id}`.
    pub async fn unsubscribe(&self, token: &str, id: &str) -> Result<(), BoardError> {
        self.call(
            Method::DELETE,
            &format!("/webhook/subscriptions/{id}"),
            Some(token),
            Body::Empty,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> HhClient {
        HhClient::new(HhConfig::production(
            Site::RabotaBy,
            "cid",
            "secret",
            "https://jobers.example/cb",
            "Jobers/1.0 (ops@jobers.example)",
        ))
    }

    #[test]
    fn authorization_url_carries_state_pkce_and_the_employer_role() {
        let c = client();
        let r = c.authorization_request();
        let url = url::Url::parse(&r.url).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], r.state);
        assert_eq!(q["role"], "employer");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_challenge(&r.code_verifier));
        assert_ne!(c.authorization_request().state, r.state);
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_token_goes_only_to_headhunter_hosts() {
        let c = client();
        assert!(c.url_for("/me").is_ok());
        assert!(c.url_for("https://rabota.by/resume/x.pdf").is_ok());
        assert!(c
            .url_for("https://hh.ru/api_resume_converter/x.pdf")
            .is_ok());
        assert!(c
            .url_for("https://evil.example/negotiations/response")
            .is_err());
        assert!(c.url_for("http://rabota.by/x").is_err());
    }
}
