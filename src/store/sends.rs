//! Chat sends in batches: the message writer (`crate::chat`) stores many sends of any
//! tenants in one transaction with set-based statements — one read per send to check it,
//! one position update per tenant, one insert for all messages and one for all events —
//! instead of a transaction and seven statements per send.

use std::collections::{HashMap, HashSet};

use sqlx::{Any, Transaction};

use super::events::Audience;
use super::rooms::{
    to_json, Attachment, BatchedSend, MessageRow, RoomMessage, Sent, MAX_MENTIONS, MESSAGE_COLUMNS,
};
use super::{new_id, now_ms, to_time, Backend, Db, StoreError, StoreResult, StoredEvent};

/// A send that passed its checks and will be written.
struct Accepted {
    index: usize,
    mentions: Vec<String>,
    attachments: Vec<Attachment>,
}

/// What [`Db::memberships_and_earlier_sends`] found.
#[derive(Default)]
struct Checked {
    /// (tenant, room, author) of the batch that are memberships.
    members: HashSet<(String, String, String)>,
    /// The message of each earlier send, by (tenant, author, client message id).
    earlier: HashMap<(String, String, String), String>,
}

/// An event row to insert.
pub(super) struct EventRow {
    pub tenant_id: String,
    pub position: i64,
    pub kind: &'static str,
    pub audience: Audience,
    pub payload: String,
}

impl Db {
    /// Stores a batch of sends in one transaction. Each send gets its own outcome: stored,
    /// a repeat of an earlier send (same author and client message id), or refused (not a
    /// member, unknown upload, id used in another room) — a refusal takes no position.
    /// A database failure fails the whole batch (nothing is stored).
    pub async fn send_room_messages(
        &self,
        batch: &[BatchedSend<'_>],
    ) -> StoreResult<Vec<StoreResult<Sent>>> {
        let (mut tx, _gate) = self.begin_write().await?;
        let mut outcomes: Vec<Option<StoreResult<Sent>>> = (0..batch.len()).map(|_| None).collect();
        let Checked { members, earlier } =
            self.memberships_and_earlier_sends(&mut tx, batch).await?;
        // Sends repeated within this batch answer with the first one's message.
        let mut first_in_batch: std::collections::HashMap<(&str, &str, &str), usize> =
            std::collections::HashMap::new();
        let mut repeats_in_batch: Vec<(usize, usize)> = Vec::new();
        let mut accepted = Vec::with_capacity(batch.len());
        for (index, job) in batch.iter().enumerate() {
            if let Some(cmid) = job.message.client_message_id {
                if let Some(id) = earlier.get(&(
                    job.tenant_id.to_string(),
                    job.author.to_string(),
                    cmid.to_string(),
                )) {
                    outcomes[index] = Some(self.repeat(&mut tx, job, id).await);
                    if let Some(Err(StoreError::Database(_))) = &outcomes[index] {
                        return Err(outcomes[index].take().expect("set").unwrap_err());
                    }
                    continue;
                }
                if let Some(&first) = first_in_batch.get(&(job.tenant_id, job.author, cmid)) {
                    if batch[first].room_id == job.room_id {
                        repeats_in_batch.push((index, first));
                    } else {
                        outcomes[index] = Some(Err(StoreError::Conflict(
                            "client message id used in another room".into(),
                        )));
                    }
                    continue;
                }
            }
            if !members.contains(&(
                job.tenant_id.to_string(),
                job.room_id.to_string(),
                job.author.to_string(),
            )) {
                outcomes[index] = Some(Err(StoreError::NotFound));
                continue;
            }
            match self.check_extras(&mut tx, job).await {
                Ok((mentions, attachments)) => {
                    if let Some(cmid) = job.message.client_message_id {
                        first_in_batch.insert((job.tenant_id, job.author, cmid), index);
                    }
                    accepted.push(Accepted {
                        index,
                        mentions,
                        attachments,
                    });
                }
                Err(StoreError::Database(e)) => return Err(StoreError::Database(e)),
                Err(refused) => outcomes[index] = Some(Err(refused)),
            }
        }
        let now = now_ms();
        // Positions: one range per tenant, in batch order.
        let mut needed: Vec<(&str, i64)> = Vec::new();
        for a in &accepted {
            let tenant = batch[a.index].tenant_id;
            let count = 1 + a.mentions.len() as i64;
            match needed.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, n)) => *n += count,
                None => needed.push((tenant, count)),
            }
        }
        let last_by_tenant = reserve_positions(&mut tx, &needed).await?;
        let mut next_by_tenant: std::collections::HashMap<&str, i64> = needed
            .iter()
            .map(|(t, n)| (*t, last_by_tenant[*t] - n + 1))
            .collect();
        let mut messages: Vec<(usize, RoomMessage)> = Vec::with_capacity(accepted.len());
        let mut events: Vec<EventRow> = Vec::with_capacity(accepted.len());
        for a in &accepted {
            let job = &batch[a.index];
            let next = next_by_tenant
                .get_mut(job.tenant_id)
                .expect("reserved above");
            let position = *next;
            *next += 1;
            let message = RoomMessage {
                id: new_id(),
                room_id: job.room_id.into(),
                author_id: job.author.into(),
                body: job.message.body.into(),
                client_message_id: job.message.client_message_id.map(Into::into),
                mentions: a.mentions.clone(),
                attachments: a.attachments.clone(),
                position,
                created_at: to_time(now),
                edited_at: None,
                deleted: false,
            };
            events.push(EventRow {
                tenant_id: job.tenant_id.into(),
                position,
                kind: "room.message",
                audience: Audience::Room(job.room_id.into()),
                payload: to_json(&message),
            });
            for m in &a.mentions {
                let excerpt: String = job.message.body.chars().take(140).collect();
                events.push(EventRow {
                    tenant_id: job.tenant_id.into(),
                    position: *next,
                    kind: "mention",
                    audience: Audience::User(m.clone()),
                    payload: serde_json::json!({"room_id": job.room_id, "message_id": message.id, "author_id": job.author, "excerpt": excerpt}).to_string(),
                });
                *next += 1;
            }
            messages.push((a.index, message));
        }
        insert_messages(&mut tx, batch, &messages, now).await?;
        insert_events(&mut tx, &events, now).await?;
        tx.commit().await?;
        // Hand each stored send its message and events (pushed in the same order).
        let mut events = events.into_iter();
        for (index, message) in messages {
            let own = events
                .by_ref()
                .take(1 + message.mentions.len())
                .map(|e| StoredEvent {
                    position: e.position,
                    kind: e.kind.into(),
                    audience: e.audience,
                    payload: serde_json::value::RawValue::from_string(e.payload)
                        .expect("payload is JSON"),
                    created_at: now,
                })
                .collect();
            outcomes[index] = Some(Ok(Sent {
                message,
                duplicate: false,
                events: own,
            }));
        }
        for (index, first) in repeats_in_batch {
            let repeat = match &outcomes[first] {
                Some(Ok(sent)) => Ok(Sent {
                    message: sent.message.clone(),
                    duplicate: true,
                    events: Vec::new(),
                }),
                _ => Err(StoreError::NotFound),
            };
            outcomes[index] = Some(repeat);
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every send has an outcome"))
            .collect())
    }

    /// What the checks of a batch need, in one read (a round trip per statement counts:
    /// the writer's other statements wait for it): which (tenant, room, author) of the
    /// batch are memberships, and the earlier sends with the same (tenant, author, client
    /// message id), by the id of their message.
    async fn memberships_and_earlier_sends(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch: &[BatchedSend<'_>],
    ) -> StoreResult<Checked> {
        let backend = self.backend();
        let keyed: Vec<&BatchedSend<'_>> = batch
            .iter()
            .filter(|j| j.message.client_message_id.is_some())
            .collect();
        let members: Vec<&[BatchedSend<'_>]> = batch.chunks(MAX_PIECE).collect();
        let earlier: Vec<&[&BatchedSend<'_>]> = keyed.chunks(MAX_PIECE).collect();
        let mut checked = Checked::default();
        for i in 0..members.len().max(earlier.len()) {
            let members = members.get(i).map(|c| padded(c)).unwrap_or_default();
            let earlier = earlier.get(i).map(|c| padded(c)).unwrap_or_default();
            let mut parts = Vec::new();
            if !members.is_empty() {
                parts.push(select_by_keys_from(
                    backend,
                    "tenant_id, room_id, user_id, CAST(NULL AS TEXT) AS id",
                    "room_members",
                    &["tenant_id", "room_id", "user_id"],
                    members.len(),
                    0,
                ));
            }
            if !earlier.is_empty() {
                parts.push(select_by_keys_from(
                    backend,
                    "tenant_id, author_id, client_message_id, id",
                    "room_messages",
                    &["tenant_id", "author_id", "client_message_id"],
                    earlier.len(),
                    3 * members.len(),
                ));
            }
            let sql = parts.join(" UNION ALL ");
            let mut q = sqlx::query_as::<_, (String, String, String, Option<String>)>(&sql);
            for job in &members {
                q = q.bind(job.tenant_id).bind(job.room_id).bind(job.author);
            }
            for job in &earlier {
                q = q
                    .bind(job.tenant_id)
                    .bind(job.author)
                    .bind(job.message.client_message_id.unwrap_or_default());
            }
            // A membership has no message id; an earlier send always has one.
            for (tenant, second, third, id) in q.fetch_all(&mut **tx).await? {
                match id {
                    Some(id) => {
                        checked.earlier.insert((tenant, second, third), id);
                    }
                    None => {
                        checked.members.insert((tenant, second, third));
                    }
                }
            }
        }
        Ok(checked)
    }

    /// The answer to a repeated send: the message it repeats.
    async fn repeat(
        &self,
        tx: &mut Transaction<'static, Any>,
        job: &BatchedSend<'_>,
        id: &str,
    ) -> StoreResult<Sent> {
        let row: MessageRow = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(job.tenant_id)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
        let message: RoomMessage = row.into();
        if message.room_id != job.room_id {
            return Err(StoreError::Conflict(
                "client message id used in another room".into(),
            ));
        }
        Ok(Sent {
            message,
            duplicate: true,
            events: Vec::new(),
        })
    }

    /// Mentions (kept when they are members) and attachments (must exist) of one send.
    async fn check_extras(
        &self,
        tx: &mut Transaction<'static, Any>,
        job: &BatchedSend<'_>,
    ) -> StoreResult<(Vec<String>, Vec<Attachment>)> {
        let tdb = self.for_tenant(job.tenant_id);
        let mut mentions: Vec<String> = Vec::new();
        for m in job.message.mentions.iter().take(MAX_MENTIONS) {
            if m != job.author
                && !mentions.contains(m)
                && tdb.check_member(tx, job.room_id, m).await.is_ok()
            {
                mentions.push(m.clone());
            }
        }
        let mut attachments = Vec::new();
        for upload_id in job.message.attachments {
            let a: Option<(String, String, i64)> = sqlx::query_as(
                "SELECT file_name, content_type, size FROM uploads WHERE tenant_id = $1 AND id = $2",
            )
            .bind(job.tenant_id)
            .bind(upload_id)
            .fetch_optional(&mut **tx)
            .await?;
            let (file_name, content_type, size) =
                a.ok_or(StoreError::UnknownReference("upload"))?;
            attachments.push(Attachment {
                upload_id: upload_id.clone(),
                file_name,
                content_type,
                size,
            });
        }
        Ok((mentions, attachments))
    }
}

/// Takes `count` positions of each tenant in one statement whatever the number of tenants
/// (a tenant without a counter yet gets one); returns each tenant's last position. On
/// PostgreSQL the counters' rows stay locked to the end of the transaction, taken in tenant
/// order so writers on several nodes cannot deadlock; a count of 0 takes only the lock. A
/// tenant named twice counts once, with its first count.
pub(super) async fn reserve_positions(
    tx: &mut Transaction<'static, Any>,
    needed: &[(&str, i64)],
) -> StoreResult<HashMap<String, i64>> {
    let mut last = HashMap::new();
    if needed.is_empty() {
        return Ok(last);
    }
    let mut sorted: Vec<&(&str, i64)> = Vec::with_capacity(needed.len());
    for n in needed {
        if !sorted.iter().any(|s| s.0 == n.0) {
            sorted.push(n);
        }
    }
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let backend = backend_of(tx);
    let rows = (0..sorted.len())
        .map(|i| {
            format!(
                "({}, CAST({} AS BIGINT))",
                param(backend, 2 * i + 1),
                param(backend, 2 * i + 2)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let upsert = format!(
        "INSERT INTO tenant_positions (tenant_id, position) VALUES {rows} \
         ON CONFLICT (tenant_id) DO UPDATE SET position = tenant_positions.position + excluded.position \
         RETURNING tenant_id, position"
    );
    let mut q = sqlx::query_as::<_, (String, i64)>(&upsert);
    for (t, count) in &sorted {
        q = q.bind(*t).bind(*count);
    }
    for (t, p) in q.fetch_all(&mut **tx).await? {
        last.insert(t, p);
    }
    Ok(last)
}

/// `SELECT {select} FROM {from} WHERE` the `keys` columns equal one of `rows` tuples of
/// parameters (`$1…`, row by row), each tuple one lookup in a unique index on those
/// columns, whatever the planner believes about the table.
///
/// SQLite: `(a = $1 AND b = $2 …) OR (a = $3 …)`, which it answers with one index lookup
/// per term (a row value `IN (VALUES …)` reads the whole table there). PostgreSQL: the
/// tuples as a `VALUES` list joined `LATERAL` to the lookup. Its planner turns a long `OR`
/// (and a plain join) into a scan of every row of the tenant when the table's statistics
/// are older than its growth — a table that grew since the last `ANALYZE` took 24 ms for
/// 64 keys instead of 0.2 ms. Repeated tuples (from [`padded`]) are read once.
pub(super) fn select_by_keys(
    backend: Backend,
    select: &str,
    from: &str,
    keys: &[&str],
    rows: usize,
) -> String {
    select_by_keys_from(backend, select, from, keys, rows, 0)
}

/// [`select_by_keys`] with its parameters numbered after the first `before` of a larger
/// statement (on PostgreSQL `$before+1…`; SQLite's `?` are numbered by position anyway).
fn select_by_keys_from(
    backend: Backend,
    select: &str,
    from: &str,
    keys: &[&str],
    rows: usize,
    before: usize,
) -> String {
    let n = keys.len();
    match backend {
        Backend::Sqlite => {
            let terms = (0..rows)
                .map(|r| {
                    let terms: Vec<String> = keys
                        .iter()
                        .enumerate()
                        .map(|(c, name)| {
                            format!("{name} = {}", param(backend, before + r * n + c + 1))
                        })
                        .collect();
                    format!("({})", terms.join(" AND "))
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            format!("SELECT {select} FROM {from} WHERE {terms}")
        }
        Backend::Postgres => {
            let tuples = (0..rows)
                .map(|r| {
                    let params: Vec<String> = (0..n)
                        .map(|c| format!("${}", before + r * n + c + 1))
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let names: Vec<String> = (0..n).map(|c| format!("k{c}")).collect();
            let on: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(c, name)| format!("{name} = k.k{c}"))
                .collect();
            // OFFSET 0 keeps the subquery a subquery: one index lookup per tuple.
            format!(
                "SELECT x.* FROM (SELECT DISTINCT * FROM (VALUES {tuples}) AS v ({})) AS k \
                 CROSS JOIN LATERAL (SELECT {select} FROM {from} WHERE {} OFFSET 0) AS x",
                names.join(", "),
                on.join(" AND ")
            )
        }
    }
}

/// The most rows of a multi-row statement.
pub(super) const MAX_PIECE: usize = 64;

/// Pieces of up to this many rows are written whole, whatever their length.
pub(super) const WHOLE_PIECE: usize = 8;

/// `items` in pieces of at most [`MAX_PIECE`] rows, each of a length in a small set — 1 to
/// [`WHOLE_PIECE`], then powers of two — so each statement has only a few texts and the
/// database's prepared-statement cache keeps them (a new text is parsed and planned again:
/// on PostgreSQL a round trip more). The common small batch is one statement; a larger
/// one is split by powers of two down to a whole piece.
pub(super) fn pieces<T>(items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let n = rest.len().min(MAX_PIECE);
        let size = if n <= WHOLE_PIECE {
            n
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        };
        let (piece, tail) = rest.split_at(size);
        out.push(piece);
        rest = tail;
    }
    out
}

/// The terms of a lookup, padded to a power of two by repeating the last (a repeated
/// term finds nothing new), for the same reason as [`pieces`].
pub(super) fn padded<T>(items: &[T]) -> Vec<&T> {
    let mut out: Vec<&T> = items.iter().collect();
    if let Some(last) = items.last() {
        out.resize(items.len().next_power_of_two(), last);
    }
    out
}

/// `rows` tuples of `columns` parameters, numbered in order (`$1…`), or on SQLite plain
/// `?` (see [`param`]).
pub(super) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cols: Vec<String> = (1..=columns)
                .map(|c| param(backend, r * columns + c))
                .collect();
            format!("({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `n`-th parameter of a statement whose parameters are bound in the order they
/// appear: `$n` on PostgreSQL, `?` on SQLite. SQLite's driver looks up each named
/// parameter's number by name, a walk of the statement's list of names: for the 192
/// parameters of a batch's lookup that was 6% of the message writer's time.
pub(super) fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".into(),
        Backend::Postgres => format!("${n}"),
    }
}

/// The backend a transaction runs on.
pub(super) fn backend_of(tx: &mut Transaction<'static, Any>) -> Backend {
    if tx.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

async fn insert_messages(
    tx: &mut Transaction<'static, Any>,
    batch: &[BatchedSend<'_>],
    messages: &[(usize, RoomMessage)],
    now: i64,
) -> StoreResult<()> {
    let backend = backend_of(tx);
    for chunk in pieces(messages) {
        let sql = format!(
            "INSERT INTO room_messages (id, tenant_id, room_id, author_id, body, client_message_id, \
             mentions, attachments, position, created_at) VALUES {}",
            placeholders(backend, chunk.len(), 10)
        );
        let mut q = sqlx::query(&sql);
        for (index, m) in chunk {
            q = q
                .bind(m.id.clone())
                .bind(batch[*index].tenant_id.to_string())
                .bind(m.room_id.clone())
                .bind(m.author_id.clone())
                .bind(m.body.clone())
                .bind(m.client_message_id.clone())
                .bind(to_json(&m.mentions))
                .bind(to_json(&m.attachments))
                .bind(m.position)
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(super) async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[EventRow],
    now: i64,
) -> StoreResult<()> {
    let backend = backend_of(tx);
    for chunk in pieces(events) {
        let sql = format!(
            "INSERT INTO events (tenant_id, position, kind, audience, payload, created_at) VALUES {}",
            placeholders(backend, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(e.tenant_id.clone())
                .bind(e.position)
                .bind(e.kind)
                .bind(e.audience.as_db())
                .bind(e.payload.clone())
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{padded, pieces};

    #[test]
    fn pieces_are_few_lengths_and_cover_everything_once() {
        let lengths = |n: usize| {
            let items: Vec<usize> = (0..n).collect();
            let p = pieces(&items);
            assert_eq!(p.concat(), items, "{n} items, each once, in order");
            p.iter().map(|x| x.len()).collect::<Vec<_>>()
        };
        assert_eq!(lengths(203), [64, 64, 64, 8, 3]);
        assert_eq!(lengths(7), [7], "a small batch is one statement");
        assert_eq!(lengths(8), [8]);
        assert_eq!(lengths(13), [8, 5]);
        assert_eq!(lengths(40), [32, 8]);
        for n in 0..300 {
            assert!(lengths(n)
                .iter()
                .all(|&l| (1..=8).contains(&l) || (l.is_power_of_two() && l <= 64)));
        }
        assert!(pieces::<u8>(&[]).is_empty());
    }

    #[test]
    fn padding_repeats_the_last_term() {
        assert_eq!(padded(&[1, 2, 3]), [&1, &2, &3, &3]);
        assert_eq!(padded(&[7]), [&7]);
        assert!(padded::<u8>(&[]).is_empty());
    }
}
