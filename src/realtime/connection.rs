//! One WebSocket connection: `hello` (authentication and resume), then a reader task and
//! a writer task (draining the connection's bounded queue).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{ReadHalf, WriteHalf};

use super::wire::{Incoming, Reader, WireError, Writer, OP_PING, OP_PONG, OP_TEXT};

use super::protocol::{close, error_frame, event_frame, ClientFrame, PROTOCOL_VERSION};
use super::{ConnControl, ConnHandle, Hub, Next, Outbound};
use crate::auth::{AuthService, Principal};
use crate::chat::Chat;
use crate::error::ApiError;
use crate::store::ReplayStart;

#[derive(serde::Serialize)]
struct Welcome<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    v: u32,
    #[serde(rename = "ref")]
    reference: Option<&'a str>,
    user_id: &'a str,
    session_id: &'a str,
    node: &'a str,
    position: i64,
}

#[derive(serde::Serialize)]
struct Snapshot<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    users: &'a [super::presence::UserPresence],
    /// True on the last frame of the snapshot.
    last: bool,
}

/// How long `welcome`, the snapshot and the replay may take together.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one write to a client may take before the client counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Events read from the log per query while replaying.
const REPLAY_PAGE: i64 = 500;

pub struct Context {
    pub hub: Hub,
    pub auth: AuthService,
    pub chat: Chat,
}

type Io = TokioIo<hyper::upgrade::Upgraded>;
/// The reading side of an upgraded connection.
pub type SocketReader = Reader<ReadHalf<Io>>;
/// The writing side of an upgraded connection.
pub type SocketWriter = Writer<WriteHalf<Io>>;

/// Sends a close frame (best effort: the client may be gone already).
async fn send_close(writer: &mut SocketWriter, code: u16, reason: &str) {
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer.close(code, reason)).await;
}

/// How a read error closes the connection: the code and reason, or nothing to send.
fn close_for(e: &WireError) -> Option<(u16, String)> {
    match e {
        WireError::TooBig(_) => Some((close::TOO_BIG, "frame_too_large".into())),
        WireError::Protocol(_) => Some((close::PROTOCOL_ERROR, "protocol_error".into())),
        WireError::InvalidUtf8 => Some((close::INVALID_DATA, "invalid_utf8".into())),
        WireError::Ended | WireError::Io(_) => None,
    }
}

/// Serves one upgraded socket: `hello` and the handshake here, then a reader task and a
/// writer task of their own. This task ends once they run, so a connection holds only their
/// small state (the handshake's futures are large and live only while it runs).
pub async fn serve(reader: SocketReader, writer: SocketWriter, ctx: Arc<Context>) {
    let Some(opened) = Box::pin(open(reader, writer, &ctx)).await else {
        return;
    };
    let Opened {
        reader,
        mut writer,
        principal,
        handle,
        current,
        since,
        reference,
    } = opened;
    // The handshake writes a lot (snapshot, replay); a client that stops reading during it
    // is dropped after a while like any other.
    let greeted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        Box::pin(greet(
            &mut writer,
            &ctx,
            &principal,
            current,
            since,
            reference,
        )),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("handshake timed out")));
    let last = match greeted {
        Ok(last) => last,
        Err(e) => {
            tracing::debug!(error = %e, "connection ended in its handshake");
            ctx.hub.detach(principal.tenant_id(), &handle);
            return;
        }
    };
    let heartbeat = Duration::from_secs(ctx.hub.config().heartbeat_secs.max(1));
    let writer = tokio::spawn(write_loop(
        writer,
        handle.control.clone(),
        ctx.hub.write_tick(),
        last,
        heartbeat,
    ));
    // Boxed, and passed on by reference: a task's future keeps its arguments apart from
    // what it moves them into, so this way the reader's state is held once.
    tokio::spawn(read_task(Box::new(Attached {
        reader,
        writer,
        ctx,
        principal,
        handle,
        heartbeat,
    })));
}

struct Opened {
    reader: SocketReader,
    writer: SocketWriter,
    principal: Principal,
    handle: ConnHandle,
    current: i64,
    since: Option<i64>,
    reference: Option<String>,
}

/// What the reader holds for the life of a connection.
struct Attached {
    reader: SocketReader,
    writer: tokio::task::JoinHandle<()>,
    ctx: Arc<Context>,
    principal: Principal,
    handle: ConnHandle,
    heartbeat: Duration,
}

/// `hello`, authentication and registration; `None` when the socket was closed.
async fn open(mut reader: SocketReader, mut writer: SocketWriter, ctx: &Context) -> Option<Opened> {
    let config = ctx.hub.config().clone();
    // 1. hello, within the time limit (pings before it are answered).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.hello_timeout_secs);
    let text = loop {
        match tokio::time::timeout_at(deadline, reader.next()).await {
            Err(_) => {
                send_close(&mut writer, close::HELLO_TIMEOUT, "hello_timeout").await;
                return None;
            }
            Ok(Ok(Incoming::Text(t))) => break t,
            Ok(Ok(Incoming::Ping(p))) => {
                let _ = writer.send(&[(OP_PONG, p)]).await;
            }
            Ok(Ok(Incoming::Pong)) => {}
            Ok(Ok(Incoming::Close(_))) => return None,
            Ok(Err(e)) => {
                if let Some((code, reason)) = close_for(&e) {
                    send_close(&mut writer, code, &reason).await;
                }
                return None;
            }
            Ok(Ok(Incoming::Binary)) => {
                send_close(&mut writer, close::AUTH_FAILED, "expected_hello").await;
                return None;
            }
        }
    };
    let (token, since, reference) = match serde_json::from_str::<ClientFrame>(&text) {
        Ok(ClientFrame::Hello {
            v,
            token,
            since,
            reference,
        }) if v == PROTOCOL_VERSION => (token, since, reference),
        Ok(ClientFrame::Hello { .. }) => {
            let _ = writer
                .text(error_frame(
                    None,
                    "unsupported_version",
                    "this server speaks protocol version 1",
                ))
                .await;
            send_close(&mut writer, close::AUTH_FAILED, "unsupported_version").await;
            return None;
        }
        _ => {
            send_close(&mut writer, close::AUTH_FAILED, "expected_hello").await;
            return None;
        }
    };
    let principal = match ctx.auth.authenticate(&token).await {
        Ok(p) => p,
        Err(e) => {
            let (code, reason) = match e.code() {
                "token_expired" => (close::TOKEN_EXPIRED, "token_expired"),
                "session_revoked" => (close::SESSION_REVOKED, "session_revoked"),
                "account_deactivated" => (close::ACCOUNT_DEACTIVATED, "account_deactivated"),
                _ => (close::AUTH_FAILED, "invalid_token"),
            };
            send_close(&mut writer, code, reason).await;
            return None;
        }
    };

    // 2. Register before reading the log, so nothing falls between replay and live.
    let (handle, current) = match ctx.hub.attach(&principal).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "attaching a connection failed");
            send_close(&mut writer, 1011, "internal_error").await;
            return None;
        }
    };
    Some(Opened {
        reader,
        writer,
        principal,
        handle,
        current,
        since,
        reference,
    })
}

/// The reader for the life of a connection; when it ends (the client left, the hub closed
/// the connection, or the writer gave up) the writer finishes and the connection detaches.
async fn read_task(mut conn: Box<Attached>) {
    let Attached {
        reader,
        writer,
        ctx,
        principal,
        handle,
        heartbeat,
    } = &mut *conn;
    let control = &handle.control;
    let (outcome, writer_done) = tokio::select! {
        outcome = read_loop(reader, ctx, principal, handle, *heartbeat) => (outcome, false),
        // The writer gave up (the client stopped reading, or went away).
        _ = &mut *writer => (None, true),
    };
    if let Some((code, reason)) = outcome {
        control.close(code, &reason);
    } else {
        control.close(1000, "bye");
    }
    if !writer_done
        && tokio::time::timeout(WRITE_TIMEOUT, &mut *writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    control.writer_gone();
    ctx.hub.detach(principal.tenant_id(), handle);
}

/// `welcome`, the presence snapshot, the replay and `live`; returns the position the
/// client is at. Boxed by the caller: its state is dropped once it is done.
async fn greet(
    writer: &mut SocketWriter,
    ctx: &Context,
    principal: &Principal,
    current: i64,
    since: Option<i64>,
    reference: Option<String>,
) -> anyhow::Result<i64> {
    let tdb = ctx.hub.db().for_principal(principal);
    let welcome = serde_json::to_string(&Welcome {
        kind: "welcome",
        v: PROTOCOL_VERSION,
        reference: reference.as_deref(),
        user_id: principal.user_id(),
        session_id: principal.session_id(),
        node: ctx.hub.node_id(),
        position: current,
    })?;
    writer.text(welcome).await?;
    // The presence snapshot follows, in frames of a bounded size, written together.
    // Serialised up front, so nothing of the snapshot stays in the connection's state.
    let snapshot: Vec<(u8, Bytes)> = {
        let presence = ctx
            .hub
            .presence_snapshot(principal.tenant_id(), Some(principal.user_id()));
        let chunks: Vec<&[super::presence::UserPresence]> = if presence.is_empty() {
            vec![&[]]
        } else {
            presence.chunks(super::PRESENCE_FRAME_USERS).collect()
        };
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, users)| {
                let frame = serde_json::to_string(&Snapshot {
                    kind: "presence_snapshot",
                    users,
                    last: i + 1 == n,
                })
                .expect("serialisable");
                (OP_TEXT, Bytes::from(frame))
            })
            .collect()
    };
    writer.send(&snapshot).await?;
    drop(snapshot);

    // 3. Replay what the client missed, straight to the socket; live events wait in the
    //    queue meanwhile.
    let mut last = current;
    if let Some(since) = since {
        match tdb.replay_start(since).await? {
            ReplayStart::Resync { current } => {
                writer
                    .text(json!({"type": "resync", "position": current}).to_string())
                    .await?;
                last = current;
            }
            ReplayStart::From(mut from) => {
                let mut replayed = 0i64;
                loop {
                    let page = tdb
                        .events_for_user(principal.user_id(), from, REPLAY_PAGE)
                        .await?;
                    let n = page.len() as i64;
                    let frames: Vec<(u8, Bytes)> = page
                        .iter()
                        .map(|e| {
                            let frame = event_frame(e.position, &e.kind, e.payload.get());
                            (OP_TEXT, Bytes::from(frame))
                        })
                        .collect();
                    writer.send(&frames).await?;
                    if let Some(e) = page.last() {
                        from = e.position;
                    }
                    replayed += n;
                    if n < REPLAY_PAGE {
                        break;
                    }
                    if replayed >= ctx.hub.config().max_replay_events {
                        let current = tdb.current_position().await?;
                        writer
                            .text(json!({"type": "resync", "position": current}).to_string())
                            .await?;
                        from = current;
                        break;
                    }
                }
                // Positions the user may not see were skipped; the client is at least at
                // `current` (read before replay) or the last replayed event.
                last = from.max(current);
                metrics::counter!("ws_replayed_events_total").increment(replayed as u64);
            }
        }
    }
    writer
        .text(json!({"type": "live", "position": last}).to_string())
        .await?;
    Ok(last)
}

async fn write_loop(
    mut writer: SocketWriter,
    control: Arc<ConnControl>,
    tick: Arc<tokio::sync::Notify>,
    mut last: i64,
    heartbeat: Duration,
) {
    // The first ping after a random part of the period, then one every period: clients
    // that connected together (a node's restart brings every one back within seconds) would
    // otherwise be pinged together, every period, for as long as they stay. In `direct`,
    // 10,000 connections made in two seconds were all pinged within the same second
    // 20 s later, and sends waited up to 130 ms meanwhile.
    let phase = heartbeat.mul_f64(rand::random::<f64>());
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + phase.max(Duration::from_millis(1)),
        heartbeat,
    );
    let mut written_at = Instant::now() - super::WRITE_LINGER;
    // A write that cannot finish in time means the client stopped reading: give up.
    loop {
        let next = tokio::select! {
            biased;
            next = control.next() => next,
            _ = ping.tick() => Next::Frames([Outbound::Ping].into()),
        };
        let mut frames = match next {
            Next::Close(code, reason) => {
                // Boxed: said once, it need not size the state of every connection.
                Box::pin(send_close(&mut writer, code, &reason)).await;
                break;
            }
            Next::Frames(frames) => frames,
        };
        // A connection written to moments ago is busy: what follows within the next few
        // milliseconds joins this write (one write and one TCP segment for several frames
        // instead of one each). A quiet connection writes at once.
        if written_at.elapsed() < super::WRITE_LINGER
            && !matches!(frames.front(), Some(Outbound::Ping))
        {
            tokio::select! {
                biased;
                _ = control.closed() => {}
                _ = tick.notified() => {}
            }
            if let Some(more) = control.take_queued() {
                frames.extend(more);
            }
        }
        let frames: Vec<(u8, Bytes)> = frames
            .into_iter()
            .filter_map(|item| match item {
                Outbound::Event(position, _) if position <= last => None,
                Outbound::Event(position, text) => {
                    last = position;
                    Some((OP_TEXT, text))
                }
                Outbound::Frame(text) => Some((OP_TEXT, text)),
                Outbound::Pong(payload) => Some((OP_PONG, payload)),
                Outbound::Ping => Some((OP_PING, Bytes::new())),
            })
            .collect();
        // Everything queued goes out together, in one vectored write.
        if !frames.is_empty()
            && !matches!(
                tokio::time::timeout(WRITE_TIMEOUT, writer.send(&frames)).await,
                Ok(Ok(()))
            )
        {
            break;
        }
        written_at = Instant::now();
    }
    control.writer_gone();
}

/// Token bucket for client frames.
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    /// Refused frames in the current run of refusals; a client that keeps pushing past
    /// many warnings is disconnected. A quiet spell forgives.
    strikes: u32,
    last_strike: Instant,
}

/// Refused frames, without a quiet spell in between, before the connection is closed.
const MAX_STRIKES: u32 = 50;
/// A spell without refusals this long resets the strikes.
const STRIKES_FORGIVEN_AFTER: Duration = Duration::from_secs(10);

impl RateLimit {
    fn new(rate: f64) -> Self {
        let now = Instant::now();
        RateLimit {
            rate,
            burst: rate * 2.0,
            tokens: rate * 2.0,
            at: now,
            strikes: 0,
            last_strike: now,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            if now.duration_since(self.last_strike) >= STRIKES_FORGIVEN_AFTER {
                self.strikes = 0;
            }
            true
        } else {
            self.strikes += 1;
            self.last_strike = now;
            false
        }
    }
}

/// Reads client frames until the socket closes; returns why it should close, if the hub
/// decides.
async fn read_loop(
    reader: &mut SocketReader,
    ctx: &Context,
    principal: &Principal,
    handle: &ConnHandle,
    heartbeat: Duration,
) -> Option<(u16, String)> {
    let rate = ctx.hub.config().frames_per_second.max(1) as f64;
    let mut limit = RateLimit::new(rate);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(heartbeat * 3, reader.next()) => next,
            // Closed by the hub: the writer sends the close frame.
            _ = handle.control.closed() => return handle.control.close_reason(),
        };
        let message = match next {
            Err(_) => return Some((close::HEARTBEAT_TIMEOUT, "heartbeat_timeout".into())),
            Ok(Err(e)) => return close_for(&e),
            Ok(Ok(m)) => m,
        };
        let text = match message {
            Incoming::Text(t) => t,
            Incoming::Binary => {
                // Boxed (here and below): rare answers need not make every idle
                // connection's state larger.
                Box::pin(reply(
                    handle,
                    error_frame(None, "unsupported_frame", "frames are JSON text"),
                ))
                .await;
                continue;
            }
            Incoming::Close(_) => return None,
            Incoming::Ping(payload) => {
                Box::pin(handle.control.push_waiting(Outbound::Pong(payload))).await;
                continue;
            }
            Incoming::Pong => continue,
        };
        if !limit.allow() {
            if limit.strikes > MAX_STRIKES {
                return Some((close::RATE_LIMITED, "rate_limited".into()));
            }
            Box::pin(reply(
                handle,
                error_frame(None, "rate_limited", "too many frames; slow down"),
            ))
            .await;
            continue;
        }
        let frame = match serde_json::from_str::<ClientFrame>(&text) {
            Ok(f) => f,
            Err(e) => {
                let frame = error_frame(None, "malformed_frame", &e.to_string());
                Box::pin(reply(handle, frame)).await;
                continue;
            }
        };
        // Boxed: the handling future is large and lives only while a frame is handled,
        // not in every idle connection.
        Box::pin(handle_frame(ctx, principal, handle, frame)).await;
    }
}

async fn reply(handle: &ConnHandle, frame: String) {
    // Answers wait for room in this connection's own queue (back-pressure on itself).
    handle
        .control
        .push_waiting(Outbound::Frame(frame.into()))
        .await;
}

async fn handle_frame(
    ctx: &Context,
    principal: &Principal,
    handle: &ConnHandle,
    frame: ClientFrame,
) {
    let reference = frame.reference().map(str::to_owned);
    let r = reference.as_deref();
    let send_started = matches!(frame, ClientFrame::Send { .. }).then(std::time::Instant::now);
    let ack = |extra: serde_json::Value| {
        let mut v = json!({"type": "ack", "ref": r});
        if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        v.to_string()
    };
    let tenant = principal.tenant_id();
    let result: Result<Option<String>, ApiError> = async {
        match frame {
            ClientFrame::Hello { .. } => Err(ApiError::BadRequest { code: "already_authenticated", message: "hello was already said".into() }),
            ClientFrame::Ping { .. } => Ok(Some(json!({"type": "pong", "ref": r}).to_string())),
            ClientFrame::Activity { .. } => {
                ctx.hub.activity(tenant, principal.user_id());
                Ok(None)
            }
            ClientFrame::Send { room_id, body, client_message_id, mentions, attachments, .. } => {
                ctx.hub.activity(tenant, principal.user_id());
                let sent = ctx.chat.send(principal, &room_id, &body, Some(&client_message_id), &mentions, &attachments).await?;
                Ok(Some(ack(json!({
                    "client_message_id": client_message_id, "message_id": sent.message.id,
                    "position": sent.message.position, "duplicate": sent.duplicate,
                }))))
            }
            ClientFrame::Edit { message_id, body, .. } => {
                let sent = ctx.chat.edit(principal, None, &message_id, Some(&body)).await?;
                Ok(Some(ack(json!({"message_id": sent.message.id, "position": sent.events.first().map(|e| e.position)}))))
            }
            ClientFrame::Delete { message_id, .. } => {
                let sent = ctx.chat.edit(principal, None, &message_id, None).await?;
                Ok(Some(ack(json!({"message_id": sent.message.id, "position": sent.events.first().map(|e| e.position)}))))
            }
            ClientFrame::Typing { room_id, thread_id, .. } => {
                ctx.hub.activity(tenant, principal.user_id());
                match (room_id, thread_id) {
                    (Some(room), None) => ctx.chat.typing(principal, &room).await?,
                    (None, Some(thread)) => ctx.chat.typing_in_thread(principal, &thread).await?,
                    _ => return Err(ApiError::BadRequest { code: "malformed_frame", message: "typing names either a room_id or a thread_id".into() }),
                }
                Ok(None)
            }
            ClientFrame::Read { room_id, message_id, .. } => {
                ctx.chat.mark_read(principal, &room_id, &message_id).await?;
                Ok(Some(ack(json!({}))))
            }
            ClientFrame::Presence { status, text, until, .. } => {
                ctx.hub.activity(tenant, principal.user_id());
                ctx.chat.set_status(principal, status.as_deref(), text.as_deref(), until).await?;
                Ok(Some(ack(json!({}))))
            }
        }
    }
    .await;
    match result {
        Ok(Some(frame)) => {
            reply(handle, frame).await;
            if let Some(started) = send_started {
                metrics::histogram!("ws_send_seconds").record(started.elapsed().as_secs_f64());
            }
        }
        Ok(None) => {}
        Err(e) => {
            let message = match &e {
                ApiError::Internal(_) => "something went wrong on our side".to_string(),
                other => other.to_string(),
            };
            if let ApiError::Internal(err) = &e {
                tracing::error!(error = ?err, "frame failed");
            }
            reply(handle, error_frame(r, e.code(), &message)).await;
        }
    }
}
