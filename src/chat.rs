//! Staff chat and statuses as one service used by both the REST API and WebSocket frames:
//! validate, store (with events) and publish to the hub.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Hub;
use crate::store::{ChosenStatus, NewRoomMessage, RoomChange, Sent};

/// Longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest custom status text.
pub const MAX_STATUS_CHARS: usize = 100;

#[derive(Clone)]
pub struct Chat {
    hub: Hub,
}

impl Chat {
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub async fn send(
        &self,
        who: &Principal,
        room_id: &str,
        body: &str,
        client_message_id: Option<&str>,
        mentions: &[String],
        attachments: &[String],
    ) -> ApiResult<Sent> {
        let body = body.trim();
        if body.is_empty() && attachments.is_empty() {
            return Err(ApiError::unprocessable(
                "empty_message",
                "a message needs text or an attachment",
            ));
        }
        if body.chars().count() > MAX_MESSAGE_CHARS {
            return Err(ApiError::unprocessable(
                "message_too_long",
                format!("a message has at most {MAX_MESSAGE_CHARS} characters"),
            ));
        }
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(ApiError::unprocessable(
                "too_many_attachments",
                format!("at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        if client_message_id.is_some_and(|c| c.is_empty() || c.len() > 100) {
            return Err(ApiError::unprocessable(
                "invalid_client_message_id",
                "client_message_id must be 1 to 100 characters",
            ));
        }
        let db = self.hub.db().for_principal(who);
        let sent = db
            .send_room_message(
                room_id,
                who.user_id(),
                NewRoomMessage {
                    body,
                    client_message_id,
                    mentions,
                    attachments,
                },
            )
            .await?;
        self.hub.publish_events(who.tenant_id(), &sent.events).await;
        Ok(sent)
    }

    /// Edits (`Some`) or deletes (`None`) one's own message.
    pub async fn edit(
        &self,
        who: &Principal,
        room_id: Option<&str>,
        message_id: &str,
        body: Option<&str>,
    ) -> ApiResult<Sent> {
        if let Some(b) = body {
            if b.trim().is_empty() {
                return Err(ApiError::unprocessable(
                    "empty_message",
                    "use delete to remove a message",
                ));
            }
            if b.chars().count() > MAX_MESSAGE_CHARS {
                return Err(ApiError::unprocessable(
                    "message_too_long",
                    format!("a message has at most {MAX_MESSAGE_CHARS} characters"),
                ));
            }
        }
        let db = self.hub.db().for_principal(who);
        let sent = db
            .change_room_message(room_id, message_id, who.user_id(), body.map(str::trim))
            .await?;
        self.hub.publish_events(who.tenant_id(), &sent.events).await;
        Ok(sent)
    }

    pub async fn typing(&self, who: &Principal, room_id: &str) -> ApiResult<()> {
        let members = self.hub.room_members(who.tenant_id(), room_id).await;
        if !members.iter().any(|m| m == who.user_id()) {
            return Err(ApiError::NotFound);
        }
        let frame =
            serde_json::json!({"type": "typing", "room_id": room_id, "user_id": who.user_id()})
                .to_string();
        self.hub
            .publish_ephemeral(who.tenant_id(), Some(members), Some(who.user_id()), frame)
            .await;
        Ok(())
    }

    pub async fn mark_read(
        &self,
        who: &Principal,
        room_id: &str,
        message_id: &str,
    ) -> ApiResult<()> {
        let db = self.hub.db().for_principal(who);
        let events = db
            .mark_room_read(room_id, who.user_id(), message_id)
            .await?;
        self.hub.publish_events(who.tenant_id(), &events).await;
        Ok(())
    }

    pub async fn publish_change(&self, who: &Principal, change: &RoomChange) {
        self.hub
            .publish_events(who.tenant_id(), &change.events)
            .await;
    }

    /// Sets the caller's chosen status (`None`: automatic), with a text and an end time.
    pub async fn set_status(
        &self,
        who: &Principal,
        status: Option<&str>,
        text: Option<&str>,
        until: Option<i64>,
    ) -> ApiResult<()> {
        if let Some(s) = status {
            if !matches!(s, "online" | "away" | "busy") {
                return Err(ApiError::unprocessable(
                    "invalid_status",
                    "status is online, away, busy or null",
                ));
            }
        }
        if text.is_some_and(|t| t.chars().count() > MAX_STATUS_CHARS) {
            return Err(ApiError::unprocessable(
                "status_text_too_long",
                format!("at most {MAX_STATUS_CHARS} characters"),
            ));
        }
        let db = self.hub.db().for_principal(who);
        let mut chosen = db.chosen_status(who.user_id()).await?;
        chosen.status = status.map(Into::into);
        chosen.text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        chosen.until = until;
        db.save_chosen_status(&chosen).await?;
        self.hub
            .status_changed(who.tenant_id(), who.user_id())
            .await;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the caller's out-of-office period.
    pub async fn set_out_of_office(
        &self,
        who: &Principal,
        period: Option<(i64, Option<i64>, Option<String>)>,
    ) -> ApiResult<ChosenStatus> {
        let db = self.hub.db().for_principal(who);
        let mut chosen = db.chosen_status(who.user_id()).await?;
        match period {
            Some((from, until, text)) => {
                if until.is_some_and(|u| u <= from) {
                    return Err(ApiError::unprocessable(
                        "invalid_period",
                        "the period must end after it starts",
                    ));
                }
                chosen.ooo_from = Some(from);
                chosen.ooo_until = until;
                chosen.ooo_text = text;
            }
            None => {
                chosen.ooo_from = None;
                chosen.ooo_until = None;
                chosen.ooo_text = None;
            }
        }
        db.save_chosen_status(&chosen).await?;
        self.hub
            .status_changed(who.tenant_id(), who.user_id())
            .await;
        Ok(chosen)
    }
}
