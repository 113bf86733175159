//! The switch (R-HUB-1, R-HUB-5): WebSocket sessions, the event fan-out, presence.
//!
//! Writers (REST handlers, WebSocket frames) store a change and its events in one
//! transaction, then [`Hub::publish_events`] puts them on the [`bus`]. Every node's
//! dispatcher receives every bus message, puts each tenant's events back into position
//! order (they may arrive out of order from concurrent writers or other nodes; a gap that
//! does not fill is read back from the event log), and hands the frame — serialised once —
//! to the bounded queue of each local connection allowed to see it. A connection whose
//! queue is full is closed as a slow consumer and resumes from its last position.

pub mod bus;
pub mod connection;
pub mod presence;
pub mod protocol;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use self::bus::{Bus, BusMessage};
use self::presence::{NodeReport, NodeUser, Rules, UserPresence};
use crate::auth::Principal;
use crate::config::{Config, RealtimeConfig};
use crate::store::{now_ms, Audience, ChosenStatus, Db, StoredEvent};

/// How long a gap in a tenant's positions may stay open before the missing events are
/// read from the event log.
const GAP_FILL_AFTER: Duration = Duration::from_millis(500);
/// How often the dispatcher looks at gaps, presence and timers.
const TICK: Duration = Duration::from_millis(50);
/// Users per `presence` frame (about 8 KiB at most; connections keep no write buffer, so a
/// larger frame costs nothing once written, and fewer frames cost both ends less).
pub(crate) const PRESENCE_FRAME_USERS: usize = 64;
/// How often presence is recomputed for time-driven changes (idle, grace, "until", out of
/// office, expired node reports) when no input changed.
const PRESENCE_SWEEP: Duration = Duration::from_millis(500);
/// How long this node's presence report lives in Redis without a refresh.
const NODE_REPORT_TTL_MS: i64 = 6_000;
/// How often this node refreshes its presence reports and reads the other nodes'.
const NODE_REPORT_REFRESH: Duration = Duration::from_secs(2);

/// What a connection's writer sends.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// An event frame; skipped when the connection already sent that position in replay.
    Event(i64, Bytes),
    /// Any other frame (acks, errors, presence, typing).
    Frame(Bytes),
    /// The answer to a client's ping, with its payload.
    Pong(Bytes),
    /// The writer's own heartbeat.
    Ping,
}

/// A connection's outgoing queue and its close request, shared by the hub (which queues
/// frames), the writer (which drains them) and the reader (which waits for a close).
///
/// An idle connection's queue holds no memory: the writer takes everything queued at once
/// and leaves an empty queue behind. At `capacity` frames waiting, the client counts as too
/// slow and is closed (it resumes from its last position).
pub struct ConnControl {
    state: Mutex<ConnState>,
    capacity: usize,
    /// Wakes the writer: a frame was queued or a close asked for (one waiter; a wake-up
    /// with nobody waiting is kept for the next wait).
    queued: tokio::sync::Notify,
    /// Wakes the reader on a close and senders waiting for room.
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct ConnState {
    queue: std::collections::VecDeque<Outbound>,
    close: Option<(u16, String)>,
    /// The writer has stopped: nothing queued from now on would be sent.
    writer_gone: bool,
}

/// What the writer gets from [`ConnControl::next`].
pub enum Next {
    /// Frames to write, oldest first.
    Frames(std::collections::VecDeque<Outbound>),
    /// A close was asked for: the code and reason to send.
    Close(u16, String),
}

/// What became of a frame given to [`ConnControl::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The queue is full.
    Full,
    /// The connection is closing or its writer is gone; the frame was dropped.
    Dropped,
}

impl ConnControl {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(ConnState::default()),
            capacity: capacity.max(1),
            queued: tokio::sync::Notify::new(),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().expect("not poisoned")
    }

    /// Queues a frame unless the connection is closing; gives it back when the queue is
    /// full.
    fn offer(&self, item: Outbound) -> Result<Pushed, Outbound> {
        let mut state = self.lock();
        if state.writer_gone || state.close.is_some() {
            return Ok(Pushed::Dropped);
        }
        if state.queue.len() >= self.capacity {
            return Err(item);
        }
        state.queue.push_back(item);
        drop(state);
        self.queued.notify_one();
        Ok(Pushed::Queued)
    }

    /// Queues a frame unless the queue is full or the connection is closing.
    pub fn push(&self, item: Outbound) -> Pushed {
        self.offer(item).unwrap_or(Pushed::Full)
    }

    /// Queues a frame, waiting for room while the queue is full (a connection's answers
    /// to its own frames: back-pressure on itself).
    pub async fn push_waiting(&self, mut item: Outbound) -> Pushed {
        loop {
            let room = self.changed.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.offer(item) {
                Ok(pushed) => return pushed,
                Err(back) => item = back,
            }
            room.await;
        }
    }

    /// Asks for the connection to be closed; true for the first such request.
    pub fn close(&self, code: u16, reason: &str) -> bool {
        let mut state = self.lock();
        let first = state.close.is_none();
        if first {
            state.close = Some((code, reason.to_string()));
            // Nothing queued will be sent now; free it.
            state.queue = Default::default();
        }
        drop(state);
        self.queued.notify_one();
        self.changed.notify_waiters();
        first
    }

    pub fn close_reason(&self) -> Option<(u16, String)> {
        self.lock().close.clone()
    }

    pub fn is_closing(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Completes once a close was asked for.
    pub async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_closing() {
                return;
            }
            changed.await;
        }
    }

    /// The writer's wait: everything queued, or the close once asked for.
    pub async fn next(&self) -> Next {
        loop {
            // A close asked for between these two looks also wakes `queued`.
            if let Some((code, reason)) = self.close_reason() {
                return Next::Close(code, reason);
            }
            if let Some(frames) = self.take_queued() {
                return Next::Frames(frames);
            }
            self.queued.notified().await;
        }
    }

    /// Everything queued, without waiting (`None` when nothing is, or once closing).
    pub fn take_queued(&self) -> Option<std::collections::VecDeque<Outbound>> {
        let mut state = self.lock();
        if state.close.is_some() || state.queue.is_empty() {
            return None;
        }
        let frames = std::mem::take(&mut state.queue);
        drop(state);
        self.changed.notify_waiters();
        Some(frames)
    }

    /// The writer has stopped; later frames are dropped and senders stop waiting.
    pub fn writer_gone(&self) {
        let mut state = self.lock();
        state.writer_gone = true;
        state.queue = Default::default();
        drop(state);
        self.changed.notify_waiters();
    }
}

#[derive(Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub user_id: Arc<str>,
    pub session_id: Arc<str>,
    pub control: Arc<ConnControl>,
}

impl ConnHandle {
    fn push(&self, item: Outbound) {
        if self.control.push(item) == Pushed::Full
            && self
                .control
                .close(protocol::close::SLOW_CONSUMER, "slow_consumer")
        {
            metrics::counter!("ws_slow_consumer_disconnects_total").increment(1);
        }
    }
}

#[derive(serde::Serialize)]
struct PresenceFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    users: &'a [&'a UserPresence],
}

fn member_key(tenant: &str, room_id: &str) -> String {
    format!("{tenant}/{room_id}")
}

/// An event waiting for its turn: kind, audience, recipients when published, frame.
type PendingEvent = (String, String, Option<Arc<Vec<String>>>, Bytes);

struct Sequencer {
    delivered: i64,
    pending: BTreeMap<i64, PendingEvent>,
    gap_since: Option<tokio::time::Instant>,
    filling: bool,
}

#[derive(Default)]
struct TenantState {
    conns: HashMap<Arc<str>, Vec<ConnHandle>>,
    seq: Option<Sequencer>,
    /// This node's presence view of its own users.
    local: HashMap<String, NodeUser>,
    local_dirty: bool,
    /// Other nodes' reports.
    reports: HashMap<String, NodeReport>,
    chosen: HashMap<String, ChosenStatus>,
    /// Presence last shown to clients.
    shown: HashMap<String, UserPresence>,
    /// An input of presence changed since it was last computed.
    presence_dirty: bool,
    /// When a timer may next change someone's presence here (see `presence::next_due`):
    /// the periodic recomputation of an unchanged tenant waits for it.
    presence_due: Option<i64>,
}

enum Input {
    Bus(BusMessage),
    Refill {
        tenant: String,
        events: Vec<BusMessage>,
    },
    FillFailed {
        tenant: String,
    },
    Chosen {
        tenant: String,
        status: ChosenStatus,
    },
}

pub struct HubInner {
    db: Db,
    config: RealtimeConfig,
    node_id: String,
    bus: Bus,
    input: mpsc::UnboundedSender<Input>,
    tenants: Mutex<HashMap<String, TenantState>>,
    members: Mutex<HashMap<String, Arc<Vec<String>>>>,
    /// Reads of room members from the database (the tests check they are read together).
    member_reads: AtomicU64,
    redis: Option<redis::aio::ConnectionManager>,
    next_conn: AtomicU64,
    connections: AtomicUsize,
    /// Tenants whose shown presence changed (the router listens).
    presence_changes: tokio::sync::broadcast::Sender<String>,
    /// Rings every [`WRITE_LINGER`]: busy connections' writers wait for it, so the frames
    /// that follow one another closely leave together.
    write_tick: Arc<tokio::sync::Notify>,
}

/// How long a busy connection's writer lets frames gather before writing (at most; a
/// connection not written to within this long writes at once).
pub const WRITE_LINGER: Duration = Duration::from_millis(5);

/// The hub handle; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// Starts the dispatcher (and, with Redis, the bus subscriber).
    pub async fn start(db: Db, config: &Config) -> anyhow::Result<Hub> {
        let (input, input_rx) = mpsc::unbounded_channel::<Input>();
        let (bus_tx, mut bus_rx) = mpsc::unbounded_channel::<BusMessage>();
        let node_id = config
            .node_id
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{}-{}", std::process::id(), &crate::store::new_id()[24..]));
        let (bus, redis) = match &config.redis_url {
            Some(url) if !url.expose().is_empty() => {
                let client = redis::Client::open(url.expose().as_str())?;
                let manager = tokio::time::timeout(
                    Duration::from_secs(10),
                    redis::aio::ConnectionManager::new(client.clone()),
                )
                .await
                .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))??;
                tokio::spawn(bus::run_redis_subscriber(client, bus_tx.clone()));
                (
                    Bus::Redis {
                        publisher: manager.clone(),
                        local: bus_tx.clone(),
                    },
                    Some(manager),
                )
            }
            _ => (Bus::Local(bus_tx.clone()), None),
        };
        // Bus messages join the dispatcher's input.
        let forward = input.clone();
        tokio::spawn(async move {
            while let Some(m) = bus_rx.recv().await {
                if forward.send(Input::Bus(m)).is_err() {
                    break;
                }
            }
        });
        let hub = Hub {
            inner: Arc::new(HubInner {
                db,
                config: config.realtime.clone(),
                node_id,
                bus,
                input,
                tenants: Mutex::new(HashMap::new()),
                members: Mutex::new(HashMap::new()),
                member_reads: AtomicU64::new(0),
                redis,
                next_conn: AtomicU64::new(1),
                connections: AtomicUsize::new(0),
                presence_changes: tokio::sync::broadcast::channel(1024).0,
                write_tick: Arc::new(tokio::sync::Notify::new()),
            }),
        };
        let tick = Arc::downgrade(&hub.inner.write_tick);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WRITE_LINGER);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match tick.upgrade() {
                    Some(t) => t.notify_waiters(),
                    None => break,
                }
            }
        });
        tokio::spawn(dispatch(Arc::downgrade(&hub.inner), input_rx));
        tokio::spawn(maintain(Arc::downgrade(&hub.inner)));
        Ok(hub)
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Rings every [`WRITE_LINGER`] (see there).
    pub(crate) fn write_tick(&self) -> Arc<tokio::sync::Notify> {
        self.inner.write_tick.clone()
    }

    pub fn config(&self) -> &RealtimeConfig {
        &self.inner.config
    }

    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Puts stored events on the bus (after their transaction committed).
    pub async fn publish_events(&self, tenant_id: &str, events: &[StoredEvent]) {
        for event in events {
            let message = self.inner.envelope(tenant_id, event).await;
            self.inner.bus.publish(message).await;
        }
    }

    /// A frame that is not logged (typing), to room members or the whole tenant.
    pub async fn publish_ephemeral(
        &self,
        tenant_id: &str,
        recipients: Option<Arc<Vec<String>>>,
        except_user: Option<&str>,
        frame: String,
    ) {
        self.inner
            .bus
            .publish(BusMessage::Ephemeral {
                tenant: tenant_id.into(),
                recipients,
                except_user: except_user.map(Into::into),
                frame,
            })
            .await;
    }

    /// Closes every connection of a session (on every node).
    pub async fn kick_session(&self, tenant_id: &str, session_id: &str, code: u16, reason: &str) {
        self.inner
            .bus
            .publish(BusMessage::Kick {
                tenant: tenant_id.into(),
                user: None,
                session: Some(session_id.into()),
                except_session: None,
                code,
                reason: reason.into(),
            })
            .await;
    }

    /// Closes every connection of a user (on every node), except those of `except_session`.
    pub async fn kick_user(
        &self,
        tenant_id: &str,
        user_id: &str,
        except_session: Option<&str>,
        code: u16,
        reason: &str,
    ) {
        self.inner
            .bus
            .publish(BusMessage::Kick {
                tenant: tenant_id.into(),
                user: Some(user_id.into()),
                session: None,
                except_session: except_session.map(Into::into),
                code,
                reason: reason.into(),
            })
            .await;
    }

    /// Tenants whose presence (as shown to this node's clients) changed.
    pub fn presence_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.presence_changes.subscribe()
    }

    /// A user's chosen status changed in the database: every node reloads it.
    pub async fn status_changed(&self, tenant_id: &str, user_id: &str) {
        self.inner
            .bus
            .publish(BusMessage::StatusChanged {
                tenant: tenant_id.into(),
                user: user_id.into(),
            })
            .await;
    }

    /// Members of a room, from the cache or the database.
    pub async fn room_members(&self, tenant_id: &str, room_id: &str) -> Arc<Vec<String>> {
        self.inner.room_members(tenant_id, room_id).await
    }

    /// Makes sure the members of `rooms` (tenant, room) are at hand before their events
    /// are published: those not cached yet are read together (see
    /// `HubInner::warm_room_members`).
    pub async fn warm_room_members(&self, rooms: &[(&str, &str)]) {
        self.inner.warm_room_members(rooms).await
    }

    /// The presence of everyone this node knows of in the tenant.
    ///
    /// It is what the clients of this node were last shown (so the `presence` frames that
    /// follow continue from it exactly), with the changes not yet flushed folded in for
    /// `fresh_user` (the one asking: they see themselves online at once).
    pub fn presence_snapshot(
        &self,
        tenant_id: &str,
        fresh_user: Option<&str>,
    ) -> Vec<UserPresence> {
        let tenants = self.inner.tenants.lock().expect("not poisoned");
        let now = now_ms();
        let Some(ts) = tenants.get(tenant_id) else {
            return Vec::new();
        };
        if ts.shown.is_empty() {
            return self.inner.compute_all(ts, now).into_values().collect();
        }
        let mut list: Vec<UserPresence> = ts.shown.values().cloned().collect();
        if let Some(user) = fresh_user {
            let rules = self.inner.rules();
            let mut views: Vec<&NodeUser> = ts.local.get(user).into_iter().collect();
            views.extend(
                ts.reports
                    .values()
                    .filter(|r| r.expires_at > now)
                    .filter_map(|r| r.users.get(user)),
            );
            let me = presence::effective(user, &views, ts.chosen.get(user), &rules, now);
            match list.iter_mut().find(|p| p.user_id == user) {
                Some(p) => *p = me,
                None => list.push(me),
            }
        }
        list
    }

    /// Closes every connection of this node with "going away" (shutdown).
    pub fn close_all(&self) {
        let tenants = self.inner.tenants.lock().expect("not poisoned");
        for ts in tenants.values() {
            for conns in ts.conns.values() {
                for c in conns {
                    c.control
                        .close(protocol::close::GOING_AWAY, "server_shutdown");
                }
            }
        }
    }

    /// Registers an authenticated connection; returns its handle and its queue.
    pub(crate) async fn attach(&self, principal: &Principal) -> anyhow::Result<(ConnHandle, i64)> {
        let inner = &self.inner;
        let tenant = principal.tenant_id();
        let tdb = inner.db.for_tenant(tenant);
        let needs_init = {
            let tenants = inner.tenants.lock().expect("not poisoned");
            tenants.get(tenant).is_none_or(|ts| ts.seq.is_none())
        };
        let init = if needs_init {
            let position = tdb.current_position().await?;
            let chosen = tdb.chosen_statuses().await?;
            Some((position, chosen))
        } else {
            None
        };
        let handle = ConnHandle {
            id: inner.next_conn.fetch_add(1, Ordering::Relaxed),
            user_id: Arc::from(principal.user_id()),
            session_id: Arc::from(principal.session_id()),
            control: Arc::new(ConnControl::new(inner.config.outgoing_queue.max(8))),
        };
        let first_here = init.is_some();
        let current = {
            let mut tenants = inner.tenants.lock().expect("not poisoned");
            let ts = tenants.entry(tenant.to_string()).or_default();
            if let Some((position, chosen)) = init {
                if ts.seq.is_none() {
                    ts.seq = Some(Sequencer {
                        delivered: position,
                        pending: BTreeMap::new(),
                        gap_since: None,
                        filling: false,
                    });
                    ts.chosen = chosen.into_iter().map(|c| (c.user_id.clone(), c)).collect();
                }
            }
            let list = ts.conns.entry(handle.user_id.clone()).or_default();
            list.push(handle.clone());
            // Past the limit, the oldest open connection is asked to close; it leaves the
            // list (and the counts) through its own `detach`.
            let open: Vec<&ConnHandle> = list.iter().filter(|c| !c.control.is_closing()).collect();
            if open.len() > inner.config.max_connections_per_user.max(1) {
                open[0].control.close(
                    protocol::close::TOO_MANY_CONNECTIONS,
                    "too_many_connections",
                );
            }
            let now = now_ms();
            let entry = ts.local.entry(principal.user_id().to_string()).or_default();
            entry.conns += 1;
            entry.active_at = now;
            entry.left_at = None;
            ts.local_dirty = true;
            ts.presence_dirty = true;
            inner.connections.fetch_add(1, Ordering::Relaxed);
            metrics::gauge!("ws_connections").set(inner.connections.load(Ordering::Relaxed) as f64);
            // The last position this node has delivered, read as the connection joins
            // (under the same lock the dispatcher delivers under): every later event reaches
            // this connection live (the writer skips positions up to this one); every earlier
            // one is in the state the client loads, or replays.
            ts.seq
                .as_ref()
                .expect("set up above or by an earlier connection, and never taken away")
                .delivered
        };
        if let (true, Some(redis)) = (first_here, &inner.redis) {
            // First user of this tenant on this node: learn the other nodes' view now, so
            // the snapshot in `welcome` is complete.
            read_tenant_reports(inner, &mut redis.clone(), tenant).await;
        }
        Ok((handle, current))
    }

    pub(crate) fn detach(&self, tenant: &str, handle: &ConnHandle) {
        let inner = &self.inner;
        let mut tenants = inner.tenants.lock().expect("not poisoned");
        if let Some(ts) = tenants.get_mut(tenant) {
            let mut removed = false;
            if let Some(list) = ts.conns.get_mut(&handle.user_id) {
                let before = list.len();
                list.retain(|c| c.id != handle.id);
                removed = list.len() != before;
                if list.is_empty() {
                    ts.conns.remove(&handle.user_id);
                }
            }
            if removed {
                if let Some(entry) = ts.local.get_mut(handle.user_id.as_ref()) {
                    entry.conns = entry.conns.saturating_sub(1);
                    if entry.conns == 0 {
                        entry.left_at = Some(now_ms());
                    }
                }
                ts.local_dirty = true;
                ts.presence_dirty = true;
                inner.connections.fetch_sub(1, Ordering::Relaxed);
                metrics::gauge!("ws_connections")
                    .set(inner.connections.load(Ordering::Relaxed) as f64);
            }
        }
    }

    /// The user did something: not idle.
    pub(crate) fn activity(&self, tenant: &str, user: &str) {
        let mut tenants = self.inner.tenants.lock().expect("not poisoned");
        if let Some(entry) = tenants
            .get_mut(tenant)
            .and_then(|ts| ts.local.get_mut(user))
        {
            let now = now_ms();
            let drift = self.inner.activity_drift_ms();
            // Other nodes need to hear of it only when it may change what they show.
            let stale = now - entry.active_at > drift;
            entry.active_at = now;
            let ts = tenants.get_mut(tenant).expect("present");
            if stale {
                ts.local_dirty = true;
                ts.presence_dirty = true;
            }
            // Clients hear of it once what they were shown is a quarter of the idle time old.
            if ts
                .shown
                .get(user)
                .and_then(|p| p.last_active_at)
                .is_some_and(|shown| now - shown >= drift)
            {
                ts.presence_dirty = true;
            }
        }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }
}

impl HubInner {
    /// How far a user's last activity moves before it is news (to other nodes and to
    /// clients): a quarter of the idle time.
    fn activity_drift_ms(&self) -> i64 {
        self.config.idle_away_secs as i64 * 1000 / 4
    }

    fn rules(&self) -> Rules {
        Rules {
            idle_away_ms: self.config.idle_away_secs as i64 * 1000,
            offline_grace_ms: self.config.offline_grace_secs as i64 * 1000,
        }
    }

    /// Members of a room of `tenant`. Cached per (tenant, room); an unknown room or a
    /// failed read is not cached (it must not silence a room later).
    async fn room_members(&self, tenant: &str, room_id: &str) -> Arc<Vec<String>> {
        let key = member_key(tenant, room_id);
        if let Some(m) = self.members.lock().expect("not poisoned").get(&key) {
            return m.clone();
        }
        self.member_reads.fetch_add(1, Ordering::Relaxed);
        match self.db.for_tenant(tenant).room_member_ids(room_id).await {
            Ok(ids) if !ids.is_empty() => self
                .members
                .lock()
                .expect("not poisoned")
                .entry(key)
                .or_insert_with(|| Arc::new(ids))
                .clone(),
            Ok(_) => Arc::new(Vec::new()),
            Err(e) => {
                tracing::warn!(error = %e, "reading room members failed");
                Arc::new(Vec::new())
            }
        }
    }

    /// Reads the members of those of `rooms` (tenant, room) not yet cached, in one read per
    /// tenant, so that publishing a batch of messages to rooms this node has not seen
    /// (after a start, every room) waits for one read, not one per room in turn. A list
    /// learned meanwhile from a membership event is newer and stays.
    async fn warm_room_members(&self, rooms: &[(&str, &str)]) {
        let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        {
            let cached = self.members.lock().expect("not poisoned");
            for (tenant, room) in rooms {
                if !cached.contains_key(&member_key(tenant, room)) {
                    missing.entry(tenant).or_default().push(room);
                }
            }
        }
        for (tenant, wanted) in missing {
            self.member_reads.fetch_add(1, Ordering::Relaxed);
            match self
                .db
                .for_tenant(tenant)
                .member_ids_of_rooms(&wanted)
                .await
            {
                Ok(found) => {
                    let mut cached = self.members.lock().expect("not poisoned");
                    for (room, ids) in found {
                        cached
                            .entry(member_key(tenant, &room))
                            .or_insert_with(|| Arc::new(ids));
                    }
                }
                // Each room is read on its own when its event is published.
                Err(e) => tracing::warn!(error = %e, "reading room members failed"),
            }
        }
    }

    fn learn_members(&self, tenant: &str, kind: &str, frame: &[u8]) {
        if !matches!(
            kind,
            "room.created" | "room.members_changed" | "room.updated"
        ) {
            return;
        }
        #[derive(serde::Deserialize)]
        struct Frame {
            data: RoomIds,
        }
        #[derive(serde::Deserialize)]
        struct RoomIds {
            id: String,
            member_ids: Vec<String>,
        }
        if let Ok(f) = serde_json::from_slice::<Frame>(frame) {
            self.members
                .lock()
                .expect("not poisoned")
                .insert(member_key(tenant, &f.data.id), Arc::new(f.data.member_ids));
        }
    }

    async fn envelope(&self, tenant_id: &str, event: &StoredEvent) -> BusMessage {
        let frame = protocol::event_frame(event.position, &event.kind, event.payload.get());
        let recipients = match &event.audience {
            // Who is in the room when this node delivers the event is decided in position
            // order by the dispatcher; this list is what it falls back on for a room it
            // has not seen a membership event of.
            Audience::Room(room) => Some(self.room_members(tenant_id, room).await),
            _ => None,
        };
        BusMessage::Event {
            tenant: tenant_id.into(),
            position: event.position,
            audience: event.audience.as_db(),
            recipients,
            kind: event.kind.clone(),
            frame,
        }
    }

    fn compute_all(&self, ts: &TenantState, now: i64) -> HashMap<String, UserPresence> {
        let rules = self.rules();
        let mut users: Vec<&String> = ts.local.keys().collect();
        for r in ts.reports.values() {
            users.extend(r.users.keys());
        }
        users.extend(ts.chosen.keys());
        users.sort();
        users.dedup();
        users
            .into_iter()
            .map(|u| {
                let mut views: Vec<&NodeUser> = Vec::new();
                if let Some(l) = ts.local.get(u) {
                    views.push(l);
                }
                for r in ts.reports.values() {
                    if r.expires_at > now {
                        if let Some(v) = r.users.get(u) {
                            views.push(v);
                        }
                    }
                }
                (
                    u.clone(),
                    presence::effective(u, &views, ts.chosen.get(u), &rules, now),
                )
            })
            .collect()
    }
}

fn deliver(
    ts: &TenantState,
    audience: &str,
    recipients: Option<&[String]>,
    except: Option<&str>,
    item: Outbound,
) {
    let send_to = |user: &str| {
        if except == Some(user) {
            return;
        }
        if let Some(list) = ts.conns.get(user) {
            for c in list {
                c.push(item.clone());
            }
        }
    };
    if let Some(user) = audience.strip_prefix("user:") {
        send_to(user);
    } else if let Some(list) = recipients {
        for u in list {
            send_to(u);
        }
    } else {
        for (user, list) in &ts.conns {
            if except == Some(user.as_ref()) {
                continue;
            }
            for c in list {
                c.push(item.clone());
            }
        }
    }
}

/// The dispatcher: the one task that orders and fans out events on this node.
async fn dispatch(hub: std::sync::Weak<HubInner>, mut input: mpsc::UnboundedReceiver<Input>) {
    let presence_every = match hub.upgrade() {
        Some(inner) => Duration::from_millis(inner.config.presence_flush_ms.max(10)),
        None => return,
    };
    let mut last_presence = tokio::time::Instant::now();
    let mut last_sweep = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(TICK.min(presence_every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let item = tokio::select! {
            item = input.recv() => match item { Some(i) => Some(i), None => return },
            _ = tick.tick() => None,
        };
        let Some(inner) = hub.upgrade() else { return };
        match item {
            Some(Input::Bus(m)) => handle_bus(&inner, m),
            Some(Input::Refill { tenant, events }) => {
                for m in events {
                    handle_bus(&inner, m);
                }
                if let Some(seq) = inner
                    .tenants
                    .lock()
                    .expect("not poisoned")
                    .get_mut(&tenant)
                    .and_then(|t| t.seq.as_mut())
                {
                    seq.filling = false;
                }
            }
            Some(Input::FillFailed { tenant }) => {
                let mut tenants = inner.tenants.lock().expect("not poisoned");
                if let Some(ts) = tenants.get_mut(&tenant) {
                    // The log cannot fill the gap: skip it rather than stall the tenant.
                    if let Some(seq) = ts.seq.as_mut() {
                        seq.filling = false;
                        if let Some((&first, _)) = seq.pending.iter().next() {
                            tracing::warn!(
                                tenant,
                                from = seq.delivered + 1,
                                to = first - 1,
                                "skipping unfillable gap"
                            );
                            seq.delivered = first - 1;
                            seq.gap_since = None;
                        }
                    }
                    // Clients of this tenant may have missed events: they reconnect and
                    // resume from the log (or get a resync), never a silent gap.
                    for list in ts.conns.values() {
                        for c in list {
                            c.control
                                .close(protocol::close::RESUME_REQUIRED, "resume_required");
                        }
                    }
                    drain(&inner, &tenant, ts);
                }
            }
            Some(Input::Chosen { tenant, status }) => {
                let mut tenants = inner.tenants.lock().expect("not poisoned");
                if let Some(ts) = tenants.get_mut(&tenant) {
                    ts.chosen.insert(status.user_id.clone(), status);
                    ts.presence_dirty = true;
                }
            }
            None => {
                let presence_due = last_presence.elapsed() >= presence_every;
                let sweep = presence_due && last_sweep.elapsed() >= PRESENCE_SWEEP;
                if presence_due {
                    last_presence = tokio::time::Instant::now();
                }
                if sweep {
                    last_sweep = tokio::time::Instant::now();
                }
                on_tick(&inner, presence_due, sweep);
            }
        }
    }
}

fn handle_bus(inner: &Arc<HubInner>, message: BusMessage) {
    match message {
        BusMessage::Event {
            tenant,
            position,
            audience,
            recipients,
            kind,
            frame,
        } => {
            let mut tenants = inner.tenants.lock().expect("not poisoned");
            let Some(ts) = tenants.get_mut(&tenant) else {
                return;
            };
            let Some(seq) = ts.seq.as_mut() else { return };
            if position <= seq.delivered {
                return;
            }
            seq.pending
                .insert(position, (kind, audience, recipients, Bytes::from(frame)));
            drain(inner, &tenant, ts);
        }
        BusMessage::Ephemeral {
            tenant,
            recipients,
            except_user,
            frame,
        } => {
            let tenants = inner.tenants.lock().expect("not poisoned");
            if let Some(ts) = tenants.get(&tenant) {
                deliver(
                    ts,
                    "",
                    recipients.as_deref().map(|r| r.as_slice()),
                    except_user.as_deref(),
                    Outbound::Frame(Bytes::from(frame)),
                );
            }
        }
        BusMessage::Kick {
            tenant,
            user,
            session,
            except_session,
            code,
            reason,
        } => {
            let tenants = inner.tenants.lock().expect("not poisoned");
            if let Some(ts) = tenants.get(&tenant) {
                for list in ts.conns.values() {
                    for c in list {
                        let hit = (user.as_deref() == Some(c.user_id.as_ref())
                            || session.as_deref() == Some(c.session_id.as_ref()))
                            && except_session.as_deref() != Some(c.session_id.as_ref());
                        if hit {
                            c.control.close(code, &reason);
                        }
                    }
                }
            }
        }
        BusMessage::Presence(report) => {
            if report.node == inner.node_id {
                return;
            }
            let mut tenants = inner.tenants.lock().expect("not poisoned");
            if let Some(ts) = tenants.get_mut(&report.tenant) {
                ts.reports.insert(report.node.clone(), report);
                ts.presence_dirty = true;
            }
        }
        BusMessage::StatusChanged { tenant, user } => {
            let serves = inner
                .tenants
                .lock()
                .expect("not poisoned")
                .contains_key(&tenant);
            if serves {
                let db = inner.db.for_tenant(&tenant);
                let tx = inner.input.clone();
                tokio::spawn(async move {
                    if let Ok(status) = db.chosen_status(&user).await {
                        let _ = tx.send(Input::Chosen { tenant, status });
                    }
                });
            }
        }
    }
}

/// Delivers a tenant's pending events that are next in order. Room membership is learnt
/// here, in position order, so each room event reaches exactly the members of that moment
/// (a member removed just before a message does not get it, one added just after does).
fn drain(inner: &HubInner, tenant: &str, ts: &mut TenantState) {
    let Some(seq) = ts.seq.as_mut() else { return };
    let mut ready = Vec::new();
    while let Some(entry) = seq.pending.first_entry() {
        if *entry.key() != seq.delivered + 1 {
            break;
        }
        let (position, value) = entry.remove_entry();
        seq.delivered = position;
        ready.push((position, value));
    }
    seq.gap_since = if seq.pending.is_empty() {
        None
    } else {
        seq.gap_since.or(Some(tokio::time::Instant::now()))
    };
    for (position, (kind, audience, recipients, frame)) in ready {
        inner.learn_members(tenant, &kind, &frame);
        let recipients = match audience.strip_prefix("room:") {
            Some(room) => inner
                .members
                .lock()
                .expect("not poisoned")
                .get(&member_key(tenant, room))
                .cloned()
                .or(recipients),
            None => recipients,
        };
        deliver(
            ts,
            &audience,
            recipients.as_deref().map(|r| r.as_slice()),
            None,
            Outbound::Event(position, frame),
        );
    }
}

/// Whether `now` differs from what clients were last `shown` of a user: anything but the
/// last activity, or the last activity by at least `drift` ms.
fn differs(shown: &UserPresence, now: &UserPresence, drift: i64) -> bool {
    let moved = match (shown.last_active_at, now.last_active_at) {
        (Some(a), Some(b)) => (b - a).abs() >= drift,
        (a, b) => a != b,
    };
    moved
        || shown.status != now.status
        || shown.text != now.text
        || shown.until != now.until
        || shown.out_of_office != now.out_of_office
}

fn on_tick(inner: &Arc<HubInner>, presence_due: bool, sweep: bool) {
    let now = now_ms();
    let mut tenants = inner.tenants.lock().expect("not poisoned");
    let mut fills = Vec::new();
    for (tenant, ts) in tenants.iter_mut() {
        // Gaps that did not fill by themselves are read from the log.
        if let Some(seq) = ts.seq.as_mut() {
            if let (Some(since), false) = (seq.gap_since, seq.filling) {
                if since.elapsed() >= GAP_FILL_AFTER {
                    if let Some((&first, _)) = seq.pending.iter().next() {
                        seq.filling = true;
                        fills.push((tenant.clone(), seq.delivered, first - 1));
                    }
                }
            }
        }
        // Presence: recompute when an input changed (or, for the timers — idle, grace,
        // "until", out of office, expired node reports — on the periodic sweep), and send
        // what changed as one frame.
        let timer_due = sweep && ts.presence_due.is_some_and(|d| now >= d);
        if !presence_due || !(ts.presence_dirty || timer_due) || ts.conns.is_empty() {
            continue;
        }
        ts.presence_dirty = false;
        let mut computed = inner.compute_all(ts, now);
        // Someone this node no longer knows anything of (their node's report expired and
        // was dropped) is offline: say so, rather than leave them shown as they were.
        for (user, shown) in &ts.shown {
            if !computed.contains_key(user) && shown.status != presence::Status::Offline {
                computed.insert(
                    user.clone(),
                    UserPresence {
                        user_id: user.clone(),
                        status: presence::Status::Offline,
                        text: None,
                        until: None,
                        out_of_office: false,
                        last_active_at: shown.last_active_at,
                    },
                );
            }
        }
        // Activity alone is news only after a quarter of the idle time: an active user
        // would otherwise be re-sent to the whole tenant on every recomputation.
        let drift = inner.activity_drift_ms();
        let changed: Vec<&UserPresence> = computed
            .values()
            .filter(|p| {
                ts.shown
                    .get(&p.user_id)
                    .is_none_or(|s| differs(s, p, drift))
            })
            .collect();
        if !changed.is_empty() {
            // Small frames: a socket keeps the capacity of the largest frame it wrote.
            for users in changed.chunks(PRESENCE_FRAME_USERS) {
                let frame = serde_json::to_string(&PresenceFrame {
                    kind: "presence",
                    users,
                })
                .expect("serialisable");
                metrics::counter!("presence_frames_total").increment(1);
                deliver(ts, "", None, None, Outbound::Frame(Bytes::from(frame)));
            }
            ts.shown.retain(|user, _| computed.contains_key(user));
            for p in changed {
                ts.shown.insert(p.user_id.clone(), p.clone());
            }
            let _ = inner.presence_changes.send(tenant.clone());
        }
        // Forget users who have left long ago.
        ts.local
            .retain(|_, u| u.conns > 0 || u.left_at.is_none_or(|t| now - t < 3_600_000));
        ts.presence_due = presence::next_due(
            ts.local
                .values()
                .chain(ts.reports.values().flat_map(|r| r.users.values())),
            ts.reports.values().map(|r| r.expires_at),
            ts.chosen.values(),
            &inner.rules(),
            now,
        );
    }
    drop(tenants);
    for (tenant, after, upto) in fills {
        let db = inner.db.for_tenant(&tenant);
        let tx = inner.input.clone();
        let weak = Arc::downgrade(inner);
        tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            match db.events_between(after, upto).await {
                Ok(events) if !events.is_empty() => {
                    let mut messages = Vec::with_capacity(events.len());
                    for e in &events {
                        messages.push(inner.envelope(&tenant, e).await);
                    }
                    let _ = tx.send(Input::Refill {
                        tenant,
                        events: messages,
                    });
                }
                _ => {
                    let _ = tx.send(Input::FillFailed { tenant });
                }
            }
        });
    }
}

/// Publishes this node's presence reports when they change and refreshes them before
/// they expire; with Redis, also keeps them under expiring keys and reads the others'.
async fn maintain(hub: std::sync::Weak<HubInner>) {
    let Some(first) = hub.upgrade() else { return };
    let flush = Duration::from_millis(first.config.presence_flush_ms.max(10));
    drop(first);
    let mut tick = tokio::time::interval(flush);
    let mut last_refresh = tokio::time::Instant::now();
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(inner) = hub.upgrade() else { return };
        let refresh = last_refresh.elapsed() >= NODE_REPORT_REFRESH;
        if refresh {
            last_refresh = tokio::time::Instant::now();
        }
        let reports: Vec<NodeReport> = {
            let mut tenants = inner.tenants.lock().expect("not poisoned");
            tenants
                .iter_mut()
                .filter(|(_, ts)| ts.local_dirty || (refresh && !ts.local.is_empty()))
                .map(|(tenant, ts)| {
                    ts.local_dirty = false;
                    NodeReport {
                        node: inner.node_id.clone(),
                        tenant: tenant.clone(),
                        expires_at: now_ms() + NODE_REPORT_TTL_MS,
                        users: ts.local.clone(),
                    }
                })
                .collect()
        };
        if let Some(redis) = &inner.redis {
            let mut conn = redis.clone();
            for r in &reports {
                let key = format!("jobers:presence:{}:{}", r.tenant, r.node);
                let _: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(&key)
                    .arg(serde_json::to_string(r).expect("serialisable"))
                    .arg("PX")
                    .arg(NODE_REPORT_TTL_MS)
                    .query_async(&mut conn)
                    .await;
                inner.bus.publish(BusMessage::Presence(r.clone())).await;
            }
            if refresh {
                read_other_reports(&inner, &mut conn).await;
            }
        }
        if last_prune.elapsed() >= Duration::from_secs(3600) {
            last_prune = tokio::time::Instant::now();
            let before = now_ms() - inner.config.event_retention_secs as i64 * 1000;
            if let Err(e) = inner.db.prune_events(before).await {
                tracing::warn!(error = %e, "pruning events failed");
            }
        }
    }
}

/// Reads every other node's presence keys for the tenants this node serves; a node whose
/// key expired (it died) drops out.
async fn read_other_reports(inner: &Arc<HubInner>, conn: &mut redis::aio::ConnectionManager) {
    let tenants: Vec<String> = inner
        .tenants
        .lock()
        .expect("not poisoned")
        .keys()
        .cloned()
        .collect();
    for tenant in tenants {
        read_tenant_reports(inner, conn, &tenant).await;
    }
}

async fn read_tenant_reports(
    inner: &HubInner,
    conn: &mut redis::aio::ConnectionManager,
    tenant: &str,
) {
    let pattern = format!("jobers:presence:{tenant}:*");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let page: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(200)
            .query_async(conn)
            .await;
        let Ok((next, found)) = page else { return };
        keys.extend(found);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut reports = HashMap::new();
    if !keys.is_empty() {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(conn)
            .await
            .unwrap_or_default();
        for v in values.into_iter().flatten() {
            if let Ok(r) = serde_json::from_str::<NodeReport>(&v) {
                if r.node != inner.node_id {
                    reports.insert(r.node.clone(), r);
                }
            }
        }
    }
    if let Some(ts) = inner.tenants.lock().expect("not poisoned").get_mut(tenant) {
        ts.reports = reports;
        ts.presence_dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_members_of_a_batchs_rooms_are_read_together_and_a_learned_list_stays() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::Secret::new(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ));
        let db = Db::connect(&url, 2).await.unwrap();
        db.migrate().await.unwrap();
        let mut users = Vec::new();
        let (a, b) = (
            db.create_tenant("a", "A").await.unwrap(),
            db.create_tenant("b", "B").await.unwrap(),
        );
        for (tenant, n) in [(&a, 0), (&a, 1), (&a, 2), (&b, 3)] {
            let user = db
                .for_tenant(&tenant.id)
                .create_user(crate::store::NewUser {
                    email: format!("u{n}@t.test"),
                    name: format!("U{n}"),
                    role: crate::store::Role::Recruiter,
                    department_id: None,
                    phone: None,
                    title: None,
                    password_hash: "not used".into(),
                })
                .await
                .unwrap();
            users.push(user.id);
        }
        let ta = db.for_tenant(&a.id);
        let mut rooms = Vec::new();
        for (me, other) in [(0, 1), (0, 2), (1, 2)] {
            rooms.push(
                ta.open_direct_room(&users[me], &users[other])
                    .await
                    .unwrap()
                    .room
                    .id,
            );
        }
        let group = ta
            .create_group_room(&users[0], "all", &[users[1].clone(), users[2].clone()])
            .await
            .unwrap()
            .room
            .id;
        rooms.push(group.clone());
        let hub = Hub::start(db.clone(), &Config::default()).await.unwrap();
        let reads = || hub.inner.member_reads.load(Ordering::Relaxed);
        // A list learned from a membership event before the read is newer: it stays.
        let learned = format!(
            r#"{{"type":"event","data":{{"id":"{group}","member_ids":["{}"]}}}}"#,
            users[0]
        );
        hub.inner
            .learn_members(&a.id, "room.members_changed", learned.as_bytes());
        let mut batch: Vec<(&str, &str)> =
            rooms.iter().map(|r| (a.id.as_str(), r.as_str())).collect();
        // A room repeated, and one of tenant A asked for under tenant B: B has no such room.
        batch.push((a.id.as_str(), rooms[0].as_str()));
        batch.push((b.id.as_str(), rooms[1].as_str()));
        hub.warm_room_members(&batch).await;
        assert_eq!(
            reads(),
            2,
            "one read per tenant, whatever the number of rooms"
        );
        for (i, (me, other)) in [(0, 1), (0, 2), (1, 2)].into_iter().enumerate() {
            let mut want = vec![users[me].clone(), users[other].clone()];
            want.sort();
            assert_eq!(*hub.room_members(&a.id, &rooms[i]).await, want);
        }
        assert_eq!(
            *hub.room_members(&a.id, &group).await,
            vec![users[0].clone()]
        );
        assert_eq!(reads(), 2, "published from what was read together");
        // Nothing of tenant A's room was cached under tenant B.
        assert!(hub.room_members(&b.id, &rooms[1]).await.is_empty());
        assert_eq!(reads(), 3);
        // All known: no read at all.
        hub.warm_room_members(&batch[..4]).await;
        assert_eq!(reads(), 3);
    }

    fn frame(text: &str) -> Outbound {
        Outbound::Frame(Bytes::from(text.to_string()))
    }

    fn texts(next: Next) -> Vec<String> {
        match next {
            Next::Frames(frames) => frames
                .into_iter()
                .map(|f| match f {
                    Outbound::Frame(t) | Outbound::Event(_, t) | Outbound::Pong(t) => {
                        String::from_utf8(t.to_vec()).unwrap()
                    }
                    Outbound::Ping => "ping".into(),
                })
                .collect(),
            Next::Close(code, reason) => vec![format!("close {code} {reason}")],
        }
    }

    #[tokio::test]
    async fn the_writer_takes_everything_queued_and_leaves_nothing_allocated() {
        let c = ConnControl::new(3);
        assert_eq!(c.push(frame("a")), Pushed::Queued);
        assert_eq!(c.push(frame("b")), Pushed::Queued);
        assert_eq!(texts(c.next().await), ["a", "b"]);
        // An idle connection's queue holds no memory.
        assert_eq!(c.lock().queue.capacity(), 0);
        assert_eq!(c.push(frame("c")), Pushed::Queued);
        assert_eq!(c.push(frame("d")), Pushed::Queued);
        assert_eq!(c.push(frame("e")), Pushed::Queued);
        assert_eq!(c.push(frame("f")), Pushed::Full);
        assert_eq!(texts(c.next().await), ["c", "d", "e"]);
    }

    #[tokio::test]
    async fn a_frame_queued_while_the_writer_waits_wakes_it() {
        let c = Arc::new(ConnControl::new(8));
        let writer = tokio::spawn({
            let c = c.clone();
            async move { texts(c.next().await) }
        });
        tokio::task::yield_now().await;
        c.push(frame("late"));
        let got = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("woken")
            .expect("no panic");
        assert_eq!(got, ["late"]);
    }

    #[tokio::test]
    async fn a_close_beats_queued_frames_and_wakes_reader_and_writer() {
        let c = Arc::new(ConnControl::new(8));
        let reader = tokio::spawn({
            let c = c.clone();
            async move { c.closed().await }
        });
        c.push(frame("never sent"));
        tokio::task::yield_now().await;
        assert!(c.close(4008, "slow_consumer"));
        assert!(!c.close(1000, "bye"), "only the first close counts");
        tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("reader woken")
            .expect("no panic");
        assert_eq!(texts(c.next().await), ["close 4008 slow_consumer"]);
        assert_eq!(c.push(frame("after")), Pushed::Dropped);
        assert_eq!(c.lock().queue.capacity(), 0);
    }

    #[tokio::test]
    async fn an_answer_waits_for_room_and_stops_waiting_when_the_writer_is_gone() {
        let c = Arc::new(ConnControl::new(1));
        c.push(frame("first"));
        let answer = tokio::spawn({
            let c = c.clone();
            async move { c.push_waiting(frame("answer")).await }
        });
        tokio::task::yield_now().await;
        assert!(!answer.is_finished(), "the queue is full: the answer waits");
        assert_eq!(texts(c.next().await), ["first"]);
        let pushed = tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .expect("room made")
            .expect("no panic");
        assert_eq!(pushed, Pushed::Queued);
        assert_eq!(texts(c.next().await), ["answer"]);

        c.push(frame("fills it"));
        let stuck = tokio::spawn({
            let c = c.clone();
            async move { c.push_waiting(frame("stuck")).await }
        });
        tokio::task::yield_now().await;
        c.writer_gone();
        let pushed = tokio::time::timeout(Duration::from_secs(5), stuck)
            .await
            .expect("released")
            .expect("no panic");
        assert_eq!(pushed, Pushed::Dropped);
    }
}
