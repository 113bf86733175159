//! HeadHunter (hh.ru, rabota.by, hh.kz — one API, the site is chosen by `?host=`).
//!
//! - [`HhClient`]: OAuth (authorization URL with `state` and PKCE S256, code exchange,
//!   refresh by the board's rules, `DELETE /token`), `/me`, manager accounts, active
//!   vacancies, negotiation collections and items per vacancy, state changes through the
//!   item's actions, resumes with hidden fields and the PDF, the `/common/chats` chat,
//!   webhook subscriptions.
//! - [`parse_webhook`]: HeadHunter's webhook body into a [`WebhookEvent`].
//! - [`simulator::HhSimulator`]: an in-process HeadHunter for the demo and the tests.
//!
//! API guides: <https://github.com/hhru/api> (`docs/`), the OpenAPI description at
//! <https://api.hh.ru/openapi/redoc>. Where the guides leave a shape open, the parsing here
//! is lenient (ids as strings or numbers, optional fields) and the places are marked
//! "unverified".

mod client;
pub mod simulator;

pub use client::{HhClient, HhConfig};

use std::time::Duration;

use serde_json::Value;

use super::{
    ActionArgument, BoardAction, BoardCapabilities, BoardCollection, BoardError, BoardNegotiation,
    BoardResume, BoardState, BoardVacancy, ChatMessage, ChatRole, HiddenField, Page, WebhookEvent,
    WebhookPayload,
};
use crate::ErrorClass;

/// What the HeadHunter connector can do. Publishing vacancies through the API exists on
/// HeadHunter but is not built yet.
pub const CAPABILITIES: BoardCapabilities = BoardCapabilities {
    oauth_connect: true,
    import_responses: true,
    receive_webhooks: true,
    poll: true,
    chat: true,
    change_status: true,
    publish_vacancies_api: false,
    publish_feed: false,
};

/// The site of an account: where the employer logs in and which site's data the API
/// answers with (`?host=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Site {
    #[serde(rename = "hh.ru")]
    HhRu,
    #[serde(rename = "rabota.by")]
    RabotaBy,
    #[serde(rename = "hh.kz")]
    HhKz,
}

impl Site {
    pub fn host(self) -> &'static str {
        match self {
            Site::HhRu => "hh.ru",
            Site::RabotaBy => "rabota.by",
            Site::HhKz => "hh.kz",
        }
    }

    pub fn parse(s: &str) -> Option<Site> {
        [Site::HhRu, Site::RabotaBy, Site::HhKz]
            .into_iter()
            .find(|x| x.host() == s)
    }
}

/// Webhook event types the connector subscribes to.
pub const WEBHOOK_ACTIONS: &[&str] = &[
    "NEW_NEGOTIATION_VACANCY",
    "NEW_RESPONSE_OR_INVITATION_VACANCY",
    "NEGOTIATION_EMPLOYER_STATE_CHANGE",
    "CHAT_MESSAGE_CREATED",
];

/// A webhook subscription of the account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookSubscription {
    pub id: String,
    pub url: String,
    pub actions: Vec<String>,
}

/// One of the user's work accounts (`GET /manager_accounts/mine`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManagerAccount {
    pub id: String,
    pub name: Option<String>,
    pub employer_id: Option<String>,
    pub employer_name: Option<String>,
    pub primary: bool,
}

// ---- errors ---------------------------------------------------------------------------

/// `Retry-After` as seconds (HTTP dates are not used by HeadHunter).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Classifies an error answer of an API method (`{"errors":[{"type","value"}]}`; 5xx may
/// carry no JSON at all).
pub fn classify_api_error(status: u16, body: &str, retry_after: Option<Duration>) -> BoardError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let first = v["errors"].as_array().and_then(|a| a.first()).cloned();
    let (error_type, value) = match &first {
        Some(e) => (
            e["type"].as_str().unwrap_or("").to_string(),
            e["value"].as_str().map(str::to_string),
        ),
        None => (String::new(), None),
    };
    let description = first
        .as_ref()
        .and_then(|e| e["description"].as_str())
        .unwrap_or("")
        .to_string();
    if error_type == "oauth" {
        return match value.as_deref() {
            Some("token_expired") => BoardError::TokenExpired,
            other => BoardError::NeedsRelogin {
                reason: format!(
                    "HeadHunter refused the token ({})",
                    other.unwrap_or("oauth")
                ),
            },
        };
    }
    if matches!(value.as_deref(), Some("in_a_row_limit" | "overall_limit")) {
        return BoardError::ChatLimit {
            value: value.unwrap_or_default(),
        };
    }
    if status == 429 || status == 408 || status >= 500 {
        let what = if error_type.is_empty() {
            String::new()
        } else {
            format!(
                ": {error_type}{}",
                value
                    .as_deref()
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default()
            )
        };
        return BoardError::RetryLater {
            class: ErrorClass::ServiceUnreachable,
            retry_after,
            reason: if status == 429 {
                format!("HeadHunter asked to slow down (429{what})")
            } else {
                format!("HeadHunter failed ({status}{what})")
            },
        };
    }
    BoardError::Permanent {
        status,
        error_type: if error_type.is_empty() {
            format!("http_{status}")
        } else {
            error_type
        },
        value,
        message: if description.is_empty() {
            body.chars().take(300).collect()
        } else {
            description
        },
    }
}

/// Classifies an error answer of the token endpoint (`{"error","error_description"}`).
pub fn classify_token_error(status: u16, body: &str, retry_after: Option<Duration>) -> BoardError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let Some(error) = v["error"].as_str() else {
        if status >= 500 || status == 429 {
            return BoardError::RetryLater {
                class: ErrorClass::ServiceUnreachable,
                retry_after,
                reason: format!("HeadHunter's token endpoint failed ({status})"),
            };
        }
        return classify_api_error(status, body, retry_after);
    };
    let description = v["error_description"].as_str().unwrap_or("").to_string();
    let relogin = matches!(
        description.as_str(),
        "token deactivated"
            | "token was revoked"
            | "token has already been refreshed"
            | "password invalidated"
            | "account is locked"
            | "login not verified"
            | "token not found"
            | "bad token"
            | "code was revoke"
    );
    if relogin {
        return BoardError::NeedsRelogin {
            reason: description,
        };
    }
    if status >= 500 || status == 429 {
        return BoardError::RetryLater {
            class: ErrorClass::ServiceUnreachable,
            retry_after,
            reason: format!("HeadHunter's token endpoint failed ({status}: {error})"),
        };
    }
    BoardError::Permanent {
        status,
        error_type: error.to_string(),
        message: description.clone(),
        value: Some(description),
    }
}

// ---- wire → board types ---------------------------------------------------------------

/// An id that HeadHunter may send as a string or a number.
pub(crate) fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn u64_of(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

pub(crate) fn page_of<T>(v: &Value, item: impl Fn(&Value) -> Option<T>) -> Page<T> {
    let items: Vec<T> = v["items"]
        .as_array()
        .map(|a| a.iter().filter_map(&item).collect())
        .unwrap_or_default();
    let found = u64_of(&v["found"]).unwrap_or(items.len() as u64);
    let per_page = u64_of(&v["per_page"]).unwrap_or(20) as u32;
    let page = u64_of(&v["page"]).unwrap_or(0) as u32;
    let pages = u64_of(&v["pages"]).map(|p| p as u32).unwrap_or_else(|| {
        if per_page == 0 {
            1
        } else {
            found.div_ceil(per_page as u64) as u32
        }
    });
    Page {
        items,
        found,
        page,
        pages,
        per_page,
    }
}

pub(crate) fn state_of(v: &Value) -> Option<BoardState> {
    Some(BoardState {
        id: id_of(&v["id"])?,
        name: str_of(&v["name"]).unwrap_or_default(),
    })
}

pub(crate) fn vacancy_of(v: &Value) -> Option<BoardVacancy> {
    Some(BoardVacancy {
        id: id_of(&v["id"])?,
        name: str_of(&v["name"]).unwrap_or_default(),
        city: str_of(&v["area"]["name"]),
        manager_id: id_of(&v["manager"]["id"]),
        alternate_url: str_of(&v["alternate_url"]),
        created_at: str_of(&v["created_at"]),
        published_at: str_of(&v["published_at"]),
        responses: u64_of(&v["counters"]["responses"]),
        unread_responses: u64_of(&v["counters"]["unread_responses"]),
    })
}

pub(crate) fn collection_of(v: &Value) -> Option<BoardCollection> {
    Some(BoardCollection {
        id: id_of(&v["id"])?,
        name: str_of(&v["name"]).unwrap_or_default(),
        url: str_of(&v["url"])?,
        total: u64_of(&v["counters"]["total"]),
        unread: u64_of(&v["counters"]["unread"]),
    })
}

pub(crate) fn action_of(v: &Value) -> Option<BoardAction> {
    Some(BoardAction {
        id: id_of(&v["id"])?,
        name: str_of(&v["name"]).unwrap_or_default(),
        enabled: v["enabled"].as_bool().unwrap_or(true),
        method: str_of(&v["method"]).unwrap_or_else(|| "PUT".into()),
        url: str_of(&v["url"])?,
        resulting_state: state_of(&v["resulting_employer_state"]),
        arguments: v["arguments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some(ActionArgument {
                            id: id_of(&x["id"])?,
                            required: x["required"].as_bool().unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(crate) fn negotiation_of(v: &Value) -> Option<BoardNegotiation> {
    // The employer state; older answers carry only `state`.
    let state = state_of(&v["employer_state"]).or_else(|| state_of(&v["state"]))?;
    Some(BoardNegotiation {
        id: id_of(&v["id"])?,
        vacancy_id: id_of(&v["vacancy"]["id"]).unwrap_or_default(),
        vacancy_name: str_of(&v["vacancy"]["name"]),
        resume_id: id_of(&v["resume"]["id"]),
        resume_url: str_of(&v["resume"]["url"]),
        state,
        chat_id: id_of(&v["chat_id"]),
        created_at: str_of(&v["created_at"]),
        updated_at: str_of(&v["updated_at"]),
        has_updates: v["has_updates"].as_bool().unwrap_or(false),
        actions: v["actions"]
            .as_array()
            .map(|a| a.iter().filter_map(action_of).collect())
            .unwrap_or_default(),
    })
}

pub(crate) fn resume_of(v: &Value) -> Option<BoardResume> {
    let hidden: Vec<HiddenField> = v["hidden_fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| {
                    // `[{"id": "phones", "name": …}]`; plain strings are accepted too.
                    let id = f["id"].as_str().or(f.as_str())?;
                    Some(match id {
                        "names_and_photo" => HiddenField::Name,
                        "phones" => HiddenField::Phones,
                        "email" => HiddenField::Email,
                        "other_contacts" => HiddenField::OtherContacts,
                        "experience" => HiddenField::Experience,
                        _ => return None,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut phone = None;
    let mut email = None;
    let contacts = v["contact"].as_array().cloned().unwrap_or_default();
    // The preferred contact of each kind first.
    let mut ordered: Vec<&Value> = contacts.iter().filter(|c| c["preferred"] == true).collect();
    ordered.extend(contacts.iter().filter(|c| c["preferred"] != true));
    for c in ordered {
        let kind = c["type"]["id"]
            .as_str()
            .or(c["type"].as_str())
            .unwrap_or("");
        match kind {
            "cell" | "work" | "home" if phone.is_none() => {
                phone = match &c["value"] {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Object(o) => o
                        .get("formatted")
                        .and_then(|f| f.as_str())
                        .map(str::to_string)
                        .or_else(|| {
                            let part = |k: &str| {
                                o.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
                            };
                            let n =
                                format!("+{}{}{}", part("country"), part("city"), part("number"));
                            (n.len() > 1).then_some(n)
                        }),
                    _ => None,
                };
            }
            "email" if email.is_none() => email = str_of(&c["value"]).filter(|s| !s.is_empty()),
            _ => {}
        }
    }
    let nonempty = |x: &Value| str_of(x).filter(|s| !s.trim().is_empty());
    Some(BoardResume {
        id: id_of(&v["id"])?,
        title: nonempty(&v["title"]),
        first_name: nonempty(&v["first_name"]),
        last_name: nonempty(&v["last_name"]),
        middle_name: nonempty(&v["middle_name"]),
        phone,
        email,
        city: str_of(&v["area"]["name"]),
        alternate_url: str_of(&v["alternate_url"]),
        pdf_url: str_of(&v["download"]["pdf"]["url"]),
        negotiations_history_url: str_of(&v["negotiations_history"]["url"]),
        created_at: str_of(&v["created_at"]),
        updated_at: str_of(&v["updated_at"]),
        hidden,
    })
}

fn role_of(v: &Value) -> Option<ChatRole> {
    match v.as_str()?.to_ascii_uppercase().as_str() {
        "APPLICANT" => Some(ChatRole::Applicant),
        "EMPLOYER" => Some(ChatRole::Employer),
        "BOT" | "SYSTEM" => Some(ChatRole::Bot),
        _ => None,
    }
}

/// A chat message (unverified shape: the fields of the `CHAT_MESSAGE_CREATED` payload —
/// `id`, `text`, `creation_time`, `role`, `sender_participant_id`).
pub(crate) fn chat_message_of(chat_id: &str, v: &Value) -> Option<ChatMessage> {
    Some(ChatMessage {
        id: id_of(&v["id"])?,
        chat_id: id_of(&v["chat_id"]).unwrap_or_else(|| chat_id.to_string()),
        text: str_of(&v["text"]),
        role: role_of(&v["role"])
            .or_else(|| role_of(&v["author"]["participant_type"]))
            .unwrap_or(ChatRole::Bot),
        created_at: str_of(&v["creation_time"]).or_else(|| str_of(&v["created_at"])),
    })
}

pub(crate) fn subscription_of(v: &Value) -> Option<WebhookSubscription> {
    Some(WebhookSubscription {
        id: id_of(&v["id"])?,
        url: str_of(&v["url"]).unwrap_or_default(),
        actions: v["actions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| str_of(&x["type"]).or_else(|| str_of(x)))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Parses a HeadHunter webhook body (`{id, subscription_id, action_type, payload}`).
/// HeadHunter does not sign webhooks: the receiving URL should carry an unguessable token,
/// and the event should be treated as a hint — the hub fetches the negotiation or chat it
/// names through the API before acting on it.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvent, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let id = id_of(&v["id"]).ok_or("no event id")?;
    let action_type = str_of(&v["action_type"]).ok_or("no action_type")?;
    let p = &v["payload"];
    let payload = match action_type.as_str() {
        "NEW_NEGOTIATION_VACANCY" | "NEW_RESPONSE_OR_INVITATION_VACANCY" => {
            match id_of(&p["topic_id"]).or_else(|| id_of(&p["negotiation_id"])) {
                Some(negotiation_id) => WebhookPayload::NewNegotiation {
                    negotiation_id,
                    vacancy_id: id_of(&p["vacancy_id"]),
                    resume_id: id_of(&p["resume_id"]),
                    chat_id: id_of(&p["chat_id"]),
                    employer_id: id_of(&p["employer_id"]),
                    created_at: str_of(&p["negotiation_date"]),
                },
                None => WebhookPayload::Other { raw: p.clone() },
            }
        }
        "NEGOTIATION_EMPLOYER_STATE_CHANGE" => {
            match (id_of(&p["topic_id"]), str_of(&p["to_state"])) {
                (Some(negotiation_id), Some(to_state)) => WebhookPayload::StateChanged {
                    negotiation_id,
                    vacancy_id: id_of(&p["vacancy_id"]),
                    resume_id: id_of(&p["resume_id"]),
                    from_state: str_of(&p["from_state"]),
                    to_state,
                    manager_id: id_of(&p["employer_manager_id"]),
                    changed_at: str_of(&p["transferred_at"]),
                },
                _ => WebhookPayload::Other { raw: p.clone() },
            }
        }
        "CHAT_MESSAGE_CREATED" | "CHAT_MESSAGE_EDITED" | "CHAT_MESSAGE_DELETED" => {
            match id_of(&p["chat_id"]) {
                Some(chat_id) => WebhookPayload::ChatMessage {
                    chat_id,
                    message_id: id_of(&p["message_id"]),
                    role: role_of(&p["role"]),
                    created_at: str_of(&p["creation_time"]),
                },
                None => WebhookPayload::Other { raw: p.clone() },
            }
        }
        _ => WebhookPayload::Other { raw: p.clone() },
    };
    Ok(WebhookEvent {
        id,
        subscription_id: id_of(&v["subscription_id"]),
        action_type,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_classified() {
        let e = classify_api_error(
            403,
            r#"{"errors":[{"type":"oauth","value":"token_expired"}]}"#,
            None,
        );
        assert_eq!(e, BoardError::TokenExpired);
        let e = classify_api_error(
            403,
            r#"{"errors":[{"type":"oauth","value":"token_revoked"}]}"#,
            None,
        );
        assert!(e.needs_relogin());
        let e = classify_api_error(503, "<html>busy</html>", None);
        assert!(e.is_retryable());
        let e = classify_api_error(
            429,
            r#"{"errors":[{"type":"resumes","value":"view_limit_exceeded"}]}"#,
            Some(Duration::from_secs(7)),
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = classify_api_error(
            403,
            r#"{"errors":[{"type":"chats","value":"in_a_row_limit"}]}"#,
            None,
        );
        assert!(matches!(e, BoardError::ChatLimit { value } if value == "in_a_row_limit"));
        let e = classify_api_error(
            403,
            r#"{"errors":[{"type":"negotiations","value":"wrong_state"}]}"#,
            None,
        );
        assert_eq!(e.board_error(), Some(("negotiations", Some("wrong_state"))));
    }

    #[test]
    fn token_errors_are_classified() {
        for d in [
            "token deactivated",
            "token was revoked",
            "token has already been refreshed",
        ] {
            let body = format!(r#"{{"error":"invalid_grant","error_description":"{d}"}}"#);
            assert!(
                classify_token_error(400, &body, None).needs_relogin(),
                "{d}"
            );
        }
        let e = classify_token_error(
            400,
            r#"{"error":"invalid_request","error_description":"password invalidated"}"#,
            None,
        );
        assert!(e.needs_relogin());
        let e = classify_token_error(
            400,
            r#"{"error":"invalid_grant","error_description":"token not expired"}"#,
            None,
        );
        assert_eq!(
            e.board_error(),
            Some(("invalid_grant", Some("token not expired")))
        );
        assert!(classify_token_error(502, "Bad Gateway", None).is_retryable());
    }

    #[test]
    fn hidden_fields_come_back_as_none_and_listed() {
        let v = serde_json::json!({
            "id": "r1", "first_name": null, "last_name": null, "middle_name": null,
            "hidden_fields": [{"id": "names_and_photo", "name": "ФИО и фотография"}, {"id": "phones"}],
            "contact": [{"type": {"id": "cell"}, "value": null},
                        {"type": {"id": "email"}, "value": "a@example.com", "preferred": true}],
            "area": {"name": "Минск"}
        });
        let r = resume_of(&v).unwrap();
        assert_eq!(r.full_name(), None);
        assert_eq!(r.phone, None);
        assert_eq!(r.email.as_deref(), Some("a@example.com"));
        assert_eq!(r.hidden, vec![HiddenField::Name, HiddenField::Phones]);
    }
}
