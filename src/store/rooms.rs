//! Internal staff chat (R-COMM-3): direct and group rooms, members, messages, read marks.
//! Every change appends an event in the same transaction (see `events`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Any, FromRow, Transaction};
use utoipa::ToSchema;

use super::events::{push_event, Audience, StoredEvent};
use super::sends::{padded, MAX_PIECE};
use super::{new_id, now_ms, to_time, StoreError, StoreResult, TenantDb};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Room {
    pub id: String,
    pub kind: RoomKind,
    /// Group rooms only.
    pub name: Option<String>,
    pub member_ids: Vec<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_message_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Messages from others after the caller's read mark (only in the caller's own views).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Attachment {
    pub upload_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomMessage {
    pub id: String,
    pub room_id: String,
    pub author_id: String,
    /// Empty once deleted.
    pub body: String,
    pub client_message_id: Option<String>,
    pub mentions: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// Position of the event that created it.
    pub position: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub edited_at: Option<chrono::DateTime<chrono::Utc>>,
    pub deleted: bool,
}

#[derive(FromRow)]
struct RoomRow {
    id: String,
    kind: String,
    name: Option<String>,
    created_by: String,
    created_at: i64,
    last_message_at: Option<i64>,
}

#[derive(FromRow)]
pub(super) struct MessageRow {
    id: String,
    room_id: String,
    author_id: String,
    body: String,
    client_message_id: Option<String>,
    mentions: String,
    attachments: String,
    position: i64,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, room_id, author_id, body, client_message_id, mentions, \
                               attachments, position, created_at, edited_at, deleted_at";

impl From<MessageRow> for RoomMessage {
    fn from(r: MessageRow) -> Self {
        let deleted = r.deleted_at.is_some();
        RoomMessage {
            id: r.id,
            room_id: r.room_id,
            author_id: r.author_id,
            body: if deleted { String::new() } else { r.body },
            client_message_id: r.client_message_id,
            mentions: serde_json::from_str(&r.mentions).unwrap_or_default(),
            attachments: if deleted {
                Vec::new()
            } else {
                serde_json::from_str(&r.attachments).unwrap_or_default()
            },
            position: r.position,
            created_at: to_time(r.created_at),
            edited_at: r.edited_at.map(to_time),
            deleted,
        }
    }
}

/// Most mentions honoured in one message.
pub(super) const MAX_MENTIONS: usize = 50;

/// On SQLite, a transaction that reads before it writes can fail to upgrade when another
/// connection committed in between; taking the write lock with a first (no-op) write avoids
/// it. PostgreSQL locks rows as it goes.
pub(super) async fn take_write_lock(
    tx: &mut Transaction<'static, Any>,
    backend: super::Backend,
) -> StoreResult<()> {
    if backend == super::Backend::Sqlite {
        sqlx::query("UPDATE tenant_positions SET position = position WHERE tenant_id = ''")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The result of a send: the message, and whether it was a repeat of an earlier send
/// with the same client message id (then nothing new was stored).
#[derive(Debug)]
pub struct Sent {
    pub message: RoomMessage,
    pub duplicate: bool,
    pub events: Vec<StoredEvent>,
}

/// What a change produced: the room as it now is and the events appended.
#[derive(Debug)]
pub struct RoomChange {
    pub room: Room,
    pub events: Vec<StoredEvent>,
}

/// One send of a batch (see `Db::send_room_messages`).
pub struct BatchedSend<'a> {
    pub tenant_id: &'a str,
    pub room_id: &'a str,
    pub author: &'a str,
    pub message: NewRoomMessage<'a>,
}

pub struct NewRoomMessage<'a> {
    pub body: &'a str,
    pub client_message_id: Option<&'a str>,
    pub mentions: &'a [String],
    pub attachments: &'a [String],
}

pub(super) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

impl TenantDb {
    async fn room_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        room_id: &str,
    ) -> StoreResult<Room> {
        let row: RoomRow = sqlx::query_as(
            "SELECT id, kind, name, created_by, created_at, \
             (SELECT MAX(created_at) FROM room_messages m WHERE m.room_id = rooms.id) AS last_message_at FROM rooms \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .fetch_one(&mut **tx)
        .await?;
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM room_members WHERE tenant_id = $1 AND room_id = $2 ORDER BY user_id",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .fetch_all(&mut **tx)
        .await?;
        Ok(room_from(row, members, None))
    }

    /// Whether `user_id` is a member of `room_id` (in this tenant), in one indexed read;
    /// `NotFound` otherwise.
    pub(super) async fn check_member(
        &self,
        tx: &mut Transaction<'static, Any>,
        room_id: &str,
        user_id: &str,
    ) -> StoreResult<()> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM room_members WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }

    async fn require_member(
        &self,
        tx: &mut Transaction<'static, Any>,
        room_id: &str,
        user_id: &str,
    ) -> StoreResult<Room> {
        let room = self.room_in(tx, room_id).await?;
        if !room.member_ids.iter().any(|m| m == user_id) {
            return Err(StoreError::NotFound);
        }
        Ok(room)
    }

    async fn check_users(
        &self,
        tx: &mut Transaction<'static, Any>,
        ids: &[String],
    ) -> StoreResult<()> {
        for id in ids {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT id FROM users WHERE tenant_id = $1 AND id = $2 AND deactivated_at IS NULL",
            )
            .bind(&self.tenant_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::UnknownReference("user"));
            }
        }
        Ok(())
    }

    async fn insert_member(
        &self,
        tx: &mut Transaction<'static, Any>,
        room_id: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO room_members (tenant_id, room_id, user_id, joined_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Creates a group room with the creator and `members`.
    pub async fn create_group_room(
        &self,
        creator: &str,
        name: &str,
        members: &[String],
    ) -> StoreResult<RoomChange> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        self.check_users(&mut tx, members).await?;
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO rooms (id, tenant_id, kind, name, created_by, created_at) VALUES ($1, $2, 'group', $3, $4, $5)",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(name)
        .bind(creator)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.insert_member(&mut tx, &id, creator, now).await?;
        for m in members {
            self.insert_member(&mut tx, &id, m, now).await?;
        }
        let room = self.room_in(&mut tx, &id).await?;
        let mut events = Vec::new();
        let payload = to_json(&room);
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "room.created",
            Audience::Room(id.clone()),
            payload,
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(RoomChange { room, events })
    }

    /// The direct room between `me` and `other`, created on first use.
    pub async fn open_direct_room(&self, me: &str, other: &str) -> StoreResult<RoomChange> {
        if me == other {
            return Err(StoreError::UnknownReference("user"));
        }
        let key = if me < other {
            format!("{me}:{other}")
        } else {
            format!("{other}:{me}")
        };
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM rooms WHERE tenant_id = $1 AND direct_key = $2")
                .bind(&self.tenant_id)
                .bind(&key)
                .fetch_optional(self.pool())
                .await?;
        if let Some(id) = existing {
            let mut tx = self.pool().begin().await?;
            let room = self.room_in(&mut tx, &id).await?;
            tx.commit().await?;
            return Ok(RoomChange {
                room,
                events: Vec::new(),
            });
        }
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        self.check_users(&mut tx, &[other.to_string()]).await?;
        let id = new_id();
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, tenant_id, kind, direct_key, created_by, created_at) \
             VALUES ($1, $2, 'direct', $3, $4, $5) ON CONFLICT (tenant_id, direct_key) DO NOTHING",
        )
        .bind(&id)
        .bind(&self.tenant_id)
        .bind(&key)
        .bind(me)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Created concurrently by the other side: use theirs.
            drop(tx);
            return Box::pin(self.open_direct_room(me, other)).await;
        }
        self.insert_member(&mut tx, &id, me, now).await?;
        self.insert_member(&mut tx, &id, other, now).await?;
        let room = self.room_in(&mut tx, &id).await?;
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "room.created",
            Audience::Room(id.clone()),
            to_json(&room),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(RoomChange { room, events })
    }

    /// The caller's rooms with unread counts, most recently active first.
    pub async fn rooms_of(&self, user_id: &str) -> StoreResult<Vec<Room>> {
        let rows: Vec<RoomRow> = sqlx::query_as(
            "SELECT r.id, r.kind, r.name, r.created_by, r.created_at, \
             (SELECT MAX(msg.created_at) FROM room_messages msg WHERE msg.room_id = r.id) AS last_message_at FROM rooms r \
             JOIN room_members m ON m.room_id = r.id AND m.user_id = $2 \
             WHERE r.tenant_id = $1 ORDER BY coalesce((SELECT MAX(msg.created_at) FROM room_messages msg \
             WHERE msg.room_id = r.id), r.created_at) DESC, r.id",
        )
        .bind(&self.tenant_id)
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in rows {
            let members = self.room_member_ids(&row.id).await?;
            let unread = self.unread(&row.id, user_id).await?;
            rooms.push(room_from(row, members, Some(unread)));
        }
        Ok(rooms)
    }

    /// One room, if the caller is a member.
    pub async fn room_for(&self, room_id: &str, user_id: &str) -> StoreResult<Room> {
        let mut tx = self.pool().begin().await?;
        let mut room = self.require_member(&mut tx, room_id, user_id).await?;
        tx.commit().await?;
        room.unread = Some(self.unread(room_id, user_id).await?);
        Ok(room)
    }

    async fn unread(&self, room_id: &str, user_id: &str) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM room_messages msg JOIN room_members m \
               ON m.room_id = msg.room_id AND m.user_id = $3 \
             WHERE msg.tenant_id = $1 AND msg.room_id = $2 AND msg.author_id <> $3 \
               AND msg.deleted_at IS NULL \
               AND (m.last_read_message_id IS NULL OR msg.id > m.last_read_message_id)",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    /// The member ids of each of `room_ids` (sorted), one read per [`MAX_PIECE`] rooms (each
    /// padded like other lookups, so the statement texts are few); a room without members
    /// (or of another tenant) is missing from the answer.
    pub async fn member_ids_of_rooms(
        &self,
        room_ids: &[&str],
    ) -> StoreResult<HashMap<String, Vec<String>>> {
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        let mut room_ids = room_ids.to_vec();
        room_ids.sort_unstable();
        room_ids.dedup();
        for chunk in room_ids.chunks(MAX_PIECE) {
            let chunk = padded(chunk);
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT room_id, user_id FROM room_members WHERE tenant_id = $1 AND room_id IN ({list}) \
                 ORDER BY room_id, user_id"
            );
            let mut q = sqlx::query_as::<_, (String, String)>(&sql).bind(&self.tenant_id);
            for room in chunk {
                q = q.bind(*room);
            }
            for (room, user) in q.fetch_all(self.pool()).await? {
                found.entry(room).or_default().push(user);
            }
        }
        Ok(found)
    }

    pub async fn room_member_ids(&self, room_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM room_members WHERE tenant_id = $1 AND room_id = $2 ORDER BY user_id",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn rename_room(
        &self,
        room_id: &str,
        actor: &str,
        name: &str,
    ) -> StoreResult<RoomChange> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let room = self.require_member(&mut tx, room_id, actor).await?;
        if room.kind != RoomKind::Group {
            return Err(StoreError::Conflict("direct rooms have no name".into()));
        }
        sqlx::query("UPDATE rooms SET name = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(&self.tenant_id)
            .bind(room_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let room = self.room_in(&mut tx, room_id).await?;
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "room.updated",
            Audience::Room(room_id.into()),
            to_json(&room),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(RoomChange { room, events })
    }

    /// Adds and removes members of a group room. A removed member is told with an event
    /// of their own (they no longer see the room's events).
    pub async fn change_members(
        &self,
        room_id: &str,
        actor: &str,
        add: &[String],
        remove: &[String],
    ) -> StoreResult<RoomChange> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let room = self.require_member(&mut tx, room_id, actor).await?;
        if room.kind != RoomKind::Group {
            return Err(StoreError::Conflict(
                "direct rooms have fixed members".into(),
            ));
        }
        self.check_users(&mut tx, add).await?;
        let now = now_ms();
        for id in add {
            self.insert_member(&mut tx, room_id, id, now).await?;
        }
        let mut removed = Vec::new();
        for id in remove {
            let done = sqlx::query(
                "DELETE FROM room_members WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3",
            )
            .bind(&self.tenant_id)
            .bind(room_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() > 0 {
                removed.push(id.clone());
            }
        }
        let room = self.room_in(&mut tx, room_id).await?;
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "room.members_changed",
            Audience::Room(room_id.into()),
            to_json(&room),
            &mut events,
        )
        .await?;
        for id in &removed {
            let payload = serde_json::json!({ "room_id": room_id, "user_id": id }).to_string();
            push_event(
                &mut tx,
                &self.tenant_id,
                &mut first,
                "room.removed",
                Audience::User(id.clone()),
                payload,
                &mut events,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(RoomChange { room, events })
    }

    /// Messages of a room the caller is in, newest first, before the message id `before`.
    pub async fn room_messages(
        &self,
        room_id: &str,
        user_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RoomMessage>> {
        let mut tx = self.pool().begin().await?;
        self.check_member(&mut tx, room_id, user_id).await?;
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE tenant_id = $1 AND room_id = $2 \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(&self.tenant_id)
        .bind(room_id)
        .bind(before)
        .bind(limit.clamp(1, 200))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Edits (`Some(body)`) or deletes (`None`) one's own message.
    /// `room_id`, when given, must be the message's room.
    pub async fn change_room_message(
        &self,
        room_id: Option<&str>,
        message_id: &str,
        author: &str,
        body: Option<&str>,
    ) -> StoreResult<Sent> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        let row: MessageRow = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        self.check_member(&mut tx, &row.room_id, author).await?;
        if row.author_id != author
            || row.deleted_at.is_some()
            || room_id.is_some_and(|r| r != row.room_id)
        {
            return Err(StoreError::NotFound);
        }
        let now = now_ms();
        let kind = match body {
            Some(b) => {
                sqlx::query("UPDATE room_messages SET body = $3, edited_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(&self.tenant_id)
                    .bind(message_id)
                    .bind(b)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                "room.message_edited"
            }
            None => {
                sqlx::query(
                    "UPDATE room_messages SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&self.tenant_id)
                .bind(message_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                "room.message_deleted"
            }
        };
        let row: MessageRow = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&self.tenant_id)
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        let message: RoomMessage = row.into();
        let mut events = Vec::new();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            kind,
            Audience::Room(message.room_id.clone()),
            to_json(&message),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(Sent {
            message,
            duplicate: false,
            events,
        })
    }

    /// Moves the caller's read mark in a room forward to `message_id` (never back).
    pub async fn mark_room_read(
        &self,
        room_id: &str,
        user_id: &str,
        message_id: &str,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (mut tx, position, _gate) = self.begin_with_position().await?;
        let mut first = Some(position);
        self.check_member(&mut tx, room_id, user_id).await?;
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT id FROM room_messages WHERE tenant_id = $1 AND room_id = $2 AND id = $3",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .bind(message_id)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownReference("message"));
        }
        let now = now_ms();
        let moved = sqlx::query(
            "UPDATE room_members SET last_read_message_id = $4, last_read_at = $5 \
             WHERE tenant_id = $1 AND room_id = $2 AND user_id = $3 \
             AND (last_read_message_id IS NULL OR last_read_message_id < $4)",
        )
        .bind(&self.tenant_id)
        .bind(room_id)
        .bind(user_id)
        .bind(message_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            // Already read that far: nothing to tell anyone; the position is not used.
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        let payload = serde_json::json!({"room_id": room_id, "user_id": user_id, "message_id": message_id, "at": to_time(now)}).to_string();
        push_event(
            &mut tx,
            &self.tenant_id,
            &mut first,
            "room.read",
            Audience::Room(room_id.into()),
            payload,
            &mut events,
        )
        .await?;
        tx.commit().await?;
        Ok(events)
    }
}

fn room_from(row: RoomRow, members: Vec<String>, unread: Option<i64>) -> Room {
    Room {
        id: row.id,
        kind: if row.kind == "direct" {
            RoomKind::Direct
        } else {
            RoomKind::Group
        },
        name: row.name,
        member_ids: members,
        created_by: row.created_by,
        created_at: to_time(row.created_at),
        last_message_at: row.last_message_at.map(to_time),
        unread,
    }
}
