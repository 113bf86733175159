//! The WebSocket protocol, version 1 (documented in `docs/protocol.md`): JSON text frames
//! with a `type` field. Client frames may carry a `ref`, echoed in the answer.

use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;

/// Close codes the hub uses (4000–4999 are the application's range).
pub mod close {
    /// The first frame was not a valid `hello`, or the token was refused.
    pub const AUTH_FAILED: u16 = 4001;
    /// The access token in `hello` has expired: refresh and reconnect.
    pub const TOKEN_EXPIRED: u16 = 4002;
    /// The session was ended (logout, password change, token theft).
    pub const SESSION_REVOKED: u16 = 4003;
    /// The user was deactivated.
    pub const ACCOUNT_DEACTIVATED: u16 = 4004;
    /// The client did not read fast enough; reconnect and resume from the last position.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The user opened more connections than allowed; this, the oldest, was closed.
    pub const TOO_MANY_CONNECTIONS: u16 = 4009;
    /// The node lost track of some events: reconnect and resume from the last position.
    pub const RESUME_REQUIRED: u16 = 4013;
    /// No `hello` in time.
    pub const HELLO_TIMEOUT: u16 = 4011;
    /// The client kept sending faster than allowed after being warned.
    pub const RATE_LIMITED: u16 = 4029;
    /// No frames (not even pongs) for three heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 4012;
    /// Standard: the node is shutting down; reconnect (to another node).
    pub const GOING_AWAY: u16 = 1001;
    /// Standard: a frame was larger than the limit.
    pub const TOO_BIG: u16 = 1009;
    /// A frame that breaks the WebSocket protocol (RFC 6455), e.g. unmasked.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Hello {
        v: u32,
        token: String,
        /// The last event position the client has; omitted on a first connect.
        since: Option<i64>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Ping {
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    /// The person is active (keys, mouse): keeps them from turning away.
    Activity {
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Send {
        room_id: String,
        body: String,
        client_message_id: String,
        #[serde(default)]
        mentions: Vec<String>,
        #[serde(default)]
        attachments: Vec<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Edit {
        message_id: String,
        body: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Delete {
        message_id: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    /// In a staff room (`room_id`) or in an applicant's thread (`thread_id`): one of them.
    Typing {
        room_id: Option<String>,
        thread_id: Option<String>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Read {
        room_id: String,
        message_id: String,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
    Presence {
        /// `online`, `away`, `busy`; `null` returns to automatic.
        status: Option<String>,
        text: Option<String>,
        /// Unix milliseconds when the chosen status ends by itself.
        until: Option<i64>,
        #[serde(rename = "ref")]
        reference: Option<String>,
    },
}

impl ClientFrame {
    pub fn reference(&self) -> Option<&str> {
        match self {
            ClientFrame::Hello { reference, .. }
            | ClientFrame::Ping { reference }
            | ClientFrame::Activity { reference }
            | ClientFrame::Send { reference, .. }
            | ClientFrame::Edit { reference, .. }
            | ClientFrame::Delete { reference, .. }
            | ClientFrame::Typing { reference, .. }
            | ClientFrame::Read { reference, .. }
            | ClientFrame::Presence { reference, .. } => reference.as_deref(),
        }
    }
}

/// An `error` frame. The connection stays open.
#[derive(Debug, Serialize)]
pub struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'a str>,
    pub code: &'a str,
    pub message: &'a str,
}

pub fn error_frame(reference: Option<&str>, code: &str, message: &str) -> String {
    serde_json::to_string(&ErrorFrame {
        kind: "error",
        reference,
        code,
        message,
    })
    .expect("serialisable")
}

/// The `event` frame, built once per event and sent as the same bytes to everyone.
pub fn event_frame(position: i64, kind: &str, data: &str) -> String {
    let kind = serde_json::to_string(kind).expect("string");
    format!("{{\"type\":\"event\",\"position\":{position},\"kind\":{kind},\"data\":{data}}}")
}
