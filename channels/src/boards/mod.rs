//! Job boards: the contract every board connector follows, and the connectors.
//!
//! A board is both a source of applications (vacancies, responses and invitations, resumes)
//! and a channel (its chat with the applicant). A connector does I/O and format conversion
//! only: it turns the board's API into the plain types below, which the hub stores. It never
//! opens the database and keeps no state between calls beyond its HTTP client — tokens,
//! sync positions and imported ids belong to the hub.
//!
//! What a board can do differs (an XML-feed board publishes vacancies and nothing else), so
//! each connector declares [`BoardCapabilities`] and the hub offers only what is there.
//! Adding a board means adding a module here and a variant of [`BoardProvider`]; the hub's
//! sync works on the types of this module.
//!
//! Failures are classified once, in [`BoardError`]: re-login needed, refresh the access
//! token, retry later (honouring the board's `Retry-After`), a chat limit, or a permanent
//! refusal carrying the board's own error type and value.

pub mod hh;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ErrorClass;

/// What a board connector can do. The hub shows and schedules only what is `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardCapabilities {
    /// The employer connects an account through an OAuth authorization-code flow.
    pub oauth_connect: bool,
    /// Existing responses and invitations can be listed and imported.
    pub import_responses: bool,
    /// The board pushes events (new response, state change, chat message) to a URL.
    pub receive_webhooks: bool,
    /// The board can be polled for changes (the backstop for missed events).
    pub poll: bool,
    /// The board has a chat with the applicant that the hub can read and write.
    pub chat: bool,
    /// An application's state on the board can be changed through the API.
    pub change_status: bool,
    /// Vacancies can be published and edited through the API.
    pub publish_vacancies_api: bool,
    /// Vacancies are published by the board reading a feed the hub serves.
    pub publish_feed: bool,
}

/// The boards Jobers has a connector for (the `provider` of a board account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardProvider {
    /// HeadHunter's API: hh.ru, rabota.by, hh.kz (the site is a setting of the account).
    Hh,
}

impl BoardProvider {
    pub const ALL: &'static [BoardProvider] = &[BoardProvider::Hh];

    pub fn as_str(self) -> &'static str {
        match self {
            BoardProvider::Hh => "hh",
        }
    }

    pub fn parse(s: &str) -> Option<BoardProvider> {
        BoardProvider::ALL.iter().copied().find(|p| p.as_str() == s)
    }

    pub fn capabilities(self) -> BoardCapabilities {
        match self {
            BoardProvider::Hh => hh::CAPABILITIES,
        }
    }
}

/// Why a board call failed, classified for the hub's account state and retry policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// The board no longer accepts this login (token deactivated after a password change,
    /// revoked, refresh token already used, password invalidated, account locked). The
    /// account turns "re-login needed"; sync pauses and resumes after a new login.
    #[error("the board needs a new login: {reason}")]
    NeedsRelogin { reason: String },
    /// The access token expired: refresh it (once) and repeat the call.
    #[error("the access token expired")]
    TokenExpired,
    /// Try again later: 429, 5xx, timeouts, refused connections. `retry_after` is the
    /// board's `Retry-After` when it sent one.
    #[error("{reason}")]
    RetryLater {
        class: ErrorClass,
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The board's chat refuses another message until the applicant answers (HeadHunter:
    /// `in_a_row_limit`) or a messaging limit resets (`overall_limit`). Shown to the
    /// recruiter; the message is not retried automatically.
    #[error("the board refuses more messages: {value}")]
    ChatLimit { value: String },
    /// The board refused this request for good. `error_type` / `value` are the board's own
    /// (HeadHunter: `errors[].type` / `errors[].value`, or `error` / `error_description`
    /// from the token endpoint).
    #[error("the board refused the request ({status} {error_type}{}): {message}", value.as_deref().map(|v| format!("/{v}")).unwrap_or_default())]
    Permanent {
        status: u16,
        error_type: String,
        value: Option<String>,
        message: String,
    },
}

impl BoardError {
    /// The account's health class for this failure (`None`: the account is fine, only this
    /// request failed).
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            BoardError::NeedsRelogin { .. } => Some(ErrorClass::AuthFailure),
            BoardError::TokenExpired => None,
            BoardError::RetryLater { class, .. } => Some(*class),
            BoardError::ChatLimit { .. } | BoardError::Permanent { .. } => None,
        }
    }

    pub fn needs_relogin(&self) -> bool {
        matches!(self, BoardError::NeedsRelogin { .. })
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, BoardError::RetryLater { .. })
    }

    /// The board's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BoardError::RetryLater { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The board's error type and value of a permanent refusal.
    pub fn board_error(&self) -> Option<(&str, Option<&str>)> {
        match self {
            BoardError::Permanent {
                error_type, value, ..
            } => Some((error_type.as_str(), value.as_deref())),
            _ => None,
        }
    }
}

/// OAuth tokens of a board account, as the hub stores them (encrypted).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token expires, unix seconds (computed from `expires_in` at issue).
    pub expires_at: i64,
}

impl std::fmt::Debug for BoardTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardTokens")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl BoardTokens {
    /// Whether the access token has expired at `now` (unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// What an OAuth connect needs to remember between the redirect to the board and the
/// callback: the `state` to check and the PKCE verifier to send with the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// Where to send the employer's browser.
    pub url: String,
    /// Must come back unchanged in the callback; anything else is refused.
    pub state: String,
    /// The PKCE `code_verifier` (the URL carries its S256 challenge).
    pub code_verifier: String,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("code_verifier", &"<redacted>")
            .finish()
    }
}

/// Whether a connected account sees all of the employer's vacancies or only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// The employer's administrator: every vacancy of the employer.
    Admin,
    /// A manager: only the vacancies this manager is responsible for.
    Manager,
}

/// Who is connected: the user, the employer and the kind of account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardAccount {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub employer_id: String,
    pub employer_name: String,
    pub manager_id: String,
    pub role: AccountRole,
}

/// A vacancy as the board lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardVacancy {
    pub id: String,
    pub name: String,
    pub city: Option<String>,
    /// The manager responsible on the board.
    pub manager_id: Option<String>,
    /// The public page of the vacancy.
    pub alternate_url: Option<String>,
    pub created_at: Option<String>,
    pub published_at: Option<String>,
    /// All responses (when the board reports it).
    pub responses: Option<u64>,
    /// Responses the employer has not opened yet (when the board reports it).
    pub unread_responses: Option<u64>,
}

/// An employer state of an application. Read from the board per vacancy — the set differs
/// between vacancies and employers — never hard-coded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BoardState {
    pub id: String,
    pub name: String,
}

/// A list of applications of one vacancy the board offers (HeadHunter: a collection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardCollection {
    pub id: String,
    pub name: String,
    /// Where its items are listed (paged).
    pub url: String,
    pub total: Option<u64>,
    pub unread: Option<u64>,
}

/// The collections and states of one vacancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VacancyPipeline {
    pub vacancy_id: String,
    pub collections: Vec<BoardCollection>,
    pub states: Vec<BoardState>,
}

impl VacancyPipeline {
    /// Applications on the board for this vacancy, by the collections' counters (`None`
    /// when the board reported no counter for some collection).
    pub fn total(&self) -> Option<u64> {
        self.collections.iter().map(|c| c.total).sum()
    }
}

/// Something the employer can do with an application, as the board offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardAction {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// `PUT`, `POST`, …
    pub method: String,
    pub url: String,
    /// The state the application ends in (`None`: the action does not change it).
    pub resulting_state: Option<BoardState>,
    /// Arguments the action takes and whether each is required (`message`, `address_id`).
    pub arguments: Vec<ActionArgument>,
}

impl BoardAction {
    pub fn requires(&self, argument: &str) -> bool {
        self.arguments
            .iter()
            .any(|a| a.id == argument && a.required)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionArgument {
    pub id: String,
    pub required: bool,
}

/// A response or invitation: one resume on one vacancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardNegotiation {
    pub id: String,
    pub vacancy_id: String,
    pub vacancy_name: Option<String>,
    pub resume_id: Option<String>,
    /// The API URL of the resume (opening it marks the response as seen on HeadHunter).
    pub resume_url: Option<String>,
    /// The employer state.
    pub state: BoardState,
    /// The chat with the applicant, when the board has one.
    pub chat_id: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub has_updates: bool,
    pub actions: Vec<BoardAction>,
}

impl BoardNegotiation {
    /// The enabled action that moves the application to `state_id`.
    pub fn action_to(&self, state_id: &str) -> Option<&BoardAction> {
        self.actions.iter().find(|a| {
            a.enabled
                && (a.resulting_state.as_ref().map(|s| s.id.as_str()) == Some(state_id)
                    || (a.resulting_state.is_none() && a.id == state_id))
        })
    }
}

/// A field the applicant hid from employers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenField {
    /// Names and photo.
    Name,
    Phones,
    Email,
    OtherContacts,
    Experience,
}

impl HiddenField {
    pub fn as_str(self) -> &'static str {
        match self {
            HiddenField::Name => "name",
            HiddenField::Phones => "phones",
            HiddenField::Email => "email",
            HiddenField::OtherContacts => "other_contacts",
            HiddenField::Experience => "experience",
        }
    }

    /// The English placeholder for a card field the applicant hid ("Applicant 1234 hid the
    /// name"); the web client shows its own translation of the same words.
    pub fn placeholder(self, resume_id: &str) -> String {
        let what = match self {
            HiddenField::Name => "the name",
            HiddenField::Phones => "the phone",
            HiddenField::Email => "the email",
            HiddenField::OtherContacts => "other contacts",
            HiddenField::Experience => "the employers",
        };
        format!("Applicant {resume_id} hid {what}")
    }
}

/// A resume as the card needs it. A hidden field is `None` and listed in `hidden`; a field
/// that is simply empty is `None` and not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardResume {
    pub id: String,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub city: Option<String>,
    /// The resume on the board's site (the card's link).
    pub alternate_url: Option<String>,
    /// Where the PDF is downloaded from (with the account's token).
    pub pdf_url: Option<String>,
    /// Other responses of the same applicant.
    pub negotiations_history_url: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub hidden: Vec<HiddenField>,
}

impl BoardResume {
    /// "Last First Middle", or `None` when no part is known.
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.last_name, &self.first_name, &self.middle_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .filter(|p| !p.trim().is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    pub fn is_hidden(&self, field: HiddenField) -> bool {
        self.hidden.contains(&field)
    }
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    Applicant,
    Employer,
    /// The board itself or an automation (status-change notes, bots).
    Bot,
}

/// A message of the board's chat with the applicant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    pub chat_id: String,
    pub text: Option<String>,
    pub role: ChatRole,
    pub created_at: Option<String>,
}

/// One page of a board list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// All items of the list (every page).
    pub found: u64,
    pub page: u32,
    pub pages: u32,
    pub per_page: u32,
}

impl<T> Page<T> {
    /// The next page number, if any.
    pub fn next_page(&self) -> Option<u32> {
        (self.page + 1 < self.pages).then_some(self.page + 1)
    }
}

/// An event the board pushed. The hub deduplicates on `id`: boards deliver at least once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    pub subscription_id: Option<String>,
    /// The board's event type (HeadHunter: `NEW_NEGOTIATION_VACANCY`, …).
    pub action_type: String,
    pub payload: WebhookPayload,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookPayload {
    /// A new response or invitation: import it.
    NewNegotiation {
        negotiation_id: String,
        vacancy_id: Option<String>,
        resume_id: Option<String>,
        chat_id: Option<String>,
        employer_id: Option<String>,
        created_at: Option<String>,
    },
    /// The employer state changed on the board.
    StateChanged {
        negotiation_id: String,
        vacancy_id: Option<String>,
        resume_id: Option<String>,
        from_state: Option<String>,
        to_state: String,
        manager_id: Option<String>,
        changed_at: Option<String>,
    },
    /// A chat message was created, edited or deleted: fetch the chat's messages.
    ChatMessage {
        chat_id: String,
        message_id: Option<String>,
        role: Option<ChatRole>,
        created_at: Option<String>,
    },
    /// An event the hub does not act on; kept as it came.
    Other { raw: serde_json::Value },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_name_the_applicant_and_the_field() {
        assert_eq!(
            HiddenField::Name.placeholder("1234"),
            "Applicant 1234 hid the name"
        );
    }

    #[test]
    fn pages_know_the_next_page() {
        let p: Page<u8> = Page {
            items: vec![],
            found: 45,
            page: 1,
            pages: 3,
            per_page: 20,
        };
        assert_eq!(p.next_page(), Some(2));
        let last = Page { page: 2, ..p };
        assert_eq!(last.next_page(), None);
    }

    #[test]
    fn errors_map_to_health_classes() {
        let e = BoardError::NeedsRelogin {
            reason: "token deactivated".into(),
        };
        assert_eq!(e.class(), Some(ErrorClass::AuthFailure));
        assert!(BoardError::TokenExpired.class().is_none());
        let p = BoardError::Permanent {
            status: 403,
            error_type: "negotiations".into(),
            value: Some("wrong_state".into()),
            message: String::new(),
        };
        assert_eq!(p.board_error(), Some(("negotiations", Some("wrong_state"))));
        assert!(p.to_string().contains("negotiations/wrong_state"));
    }
}
