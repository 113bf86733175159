//! Kannel, the open-source SMS gateway: sending through smsbox's `sendsms`, inbound through
//! an `sms-service` whose `get-url` calls Jobers, delivery reports through `dlr-url`.
//!
//! Account settings: `{"sendsms_url": "http://127.0.0.1:13013", "username": "jobers"}`; the
//! secret is the sendsms password. Kannel's configuration for Jobers is in docs/channels.md.

use std::time::Duration;

use crate::{classify_transport, Accepted, AccountConfig, ErrorClass, OutboundMessage, SendError};

/// dlr-mask: delivered (1), failed (2), accepted by the SMSC (8), rejected by the SMSC (16).
pub const DLR_MASK: &str = "27";

/// A Kannel DLR type → a delivery state (`None`: nothing to record).
pub fn delivery_state(dlr_type: i64) -> Option<(&'static str, Option<&'static str>)> {
    match dlr_type {
        1 => Some(("delivered", None)),
        2 => Some(("failed", Some("the SMS centre reported a delivery failure"))),
        16 => Some(("failed", Some("rejected by the SMS centre"))),
        8 => Some(("sent", None)),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct KannelAdapter {
    client: reqwest::Client,
}

impl KannelAdapter {
    pub fn new(timeout: Duration) -> Self {
        KannelAdapter {
            client: crate::http_client(timeout),
        }
    }

    pub async fn send(
        &self,
        account: &AccountConfig,
        message: &OutboundMessage,
    ) -> Result<Accepted, SendError> {
        let setting = |k: &str| account.settings.get(k).and_then(|v| v.as_str());
        let (Some(url), Some(user), Some(password)) = (
            setting("sendsms_url"),
            setting("username"),
            account.secret.as_deref(),
        ) else {
            return Err(SendError::Auth {
                message: "the account needs sendsms_url, username and a password".into(),
            });
        };
        let (encoding, _) = super::segments(&message.text);
        let mut query = vec![
            ("username", user.to_string()),
            ("password", password.to_string()),
            ("to", message.to.clone()),
            ("from", account.address.clone()),
            ("text", message.text.clone()),
            ("charset", "UTF-8".to_string()),
        ];
        if encoding == super::Encoding::Ucs2 {
            // Without coding=2 Kannel sends Cyrillic as GSM-7 question marks.
            query.push(("coding", "2".to_string()));
        }
        if let Some(cb) = &message.status_callback {
            query.push(("dlr-mask", DLR_MASK.to_string()));
            query.push(("dlr-url", format!("{cb}&type=%d")));
        }
        let response = self
            .client
            .get(format!("{}/cgi-bin/sendsms", url.trim_end_matches('/')))
            .query(&query)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| classify_transport(&e))?;
        let text = text.trim().to_string();
        // "0: Accepted for delivery", "3: Queued for later delivery".
        if (200..300).contains(&status) && (text.starts_with("0:") || text.starts_with("3:")) {
            return Ok(Accepted {
                provider_message_id: None,
            });
        }
        Err(match status {
            401 | 403 => SendError::Auth {
                message: format!("Kannel refused the credentials: {text}"),
            },
            s if s >= 500 || s == 0 => SendError::Retryable {
                class: ErrorClass::ServiceUnreachable,
                message: format!("Kannel failed ({s}): {text}"),
            },
            s => SendError::Permanent {
                reason: format!("Kannel refused the message ({s}): {text}"),
            },
        })
    }
}

/// The token in the URLs Kannel calls (get-url, dlr-url), derived from the account's
/// password so nothing else needs storing: hex(HMAC-SHA256(password, "kannel-hook:" + id)),
/// first 32 characters.
pub fn hook_token(password: &str, account_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(password.as_bytes()).expect("any key length");
    mac.update(b"kannel-hook:");
    mac.update(account_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())[..32].to_string()
}

/// Compares a presented hook token in constant time.
pub fn token_matches(password: &str, account_id: &str, presented: &str) -> bool {
    let expected = hook_token(password, account_id);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), presented.as_bytes()).into()
}
