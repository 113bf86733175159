// The client's picture of staff chat and presence, changed only by `chatReducer`.
//
// It is fed by REST loads and by WebSocket frames (docs/protocol.md, "What the client does"):
// events are applied in position order, each at most once (an event at or below the last
// remembered position is a repeat and is ignored), and idempotently against state loaded
// through REST (messages and rooms by id). A `resync` marks the state stale so the app
// reloads it. Presence is rebuilt from each connection's snapshot; typing notices expire.
import type {
  MentionData,
  Message,
  Presence,
  ReadMark,
  RealtimeEvent,
  Room,
  ServerFrame,
} from '../api/types';
import { compareTimes } from './time';

/** How long a typing notice is shown without a new one (the hub sends no "stopped"). */
export const TYPING_TTL_MS = 6000;

export interface RoomHistory {
  /** Messages of the room in position order, without repeats. */
  items: Message[];
  /** Older messages exist on the server (a REST page came back full). */
  hasMore: boolean;
  /** At least one REST page was loaded since the last (re)load. */
  loaded: boolean;
}

export type PendingState = 'queued' | 'sent' | 'failed';

/** A message the user sent that the hub has not yet shown back as a `room.message` event. */
export interface PendingSend {
  client_message_id: string;
  room_id: string;
  body: string;
  mentions: string[];
  attachments: string[];
  state: PendingState;
  error?: string;
  created_at: number;
}

export interface ChatState {
  me: string | null;
  /** The highest position taken from an `event`, `resync` or `live` frame; null before any. */
  position: number | null;
  rooms: Record<string, Room>;
  histories: Record<string, RoomHistory>;
  presence: Record<string, Presence>;
  /** Presence entries collected from the `presence_snapshot` frames of the current handshake. */
  snapshot: Record<string, Presence> | null;
  /** A complete snapshot has arrived: a user missing from `presence` is offline. */
  presenceComplete: boolean;
  /** room id → user id → time (ms) the notice expires. */
  typing: Record<string, Record<string, number>>;
  /** room id → user id → the message id of their read mark (learnt from `room.read`). */
  readMarks: Record<string, Record<string, string>>;
  pending: Record<string, PendingSend>;
  mentions: MentionData[];
  /** The room the user is looking at: its new messages are read, not unread. */
  openRoomId: string | null;
  /** A `resync` arrived: rooms and the open room's history must be reloaded through REST. */
  stale: boolean;
}

export function initialChatState(me: string | null = null): ChatState {
  return {
    me,
    position: null,
    rooms: {},
    histories: {},
    presence: {},
    snapshot: null,
    presenceComplete: false,
    typing: {},
    readMarks: {},
    pending: {},
    mentions: [],
    openRoomId: null,
    stale: false,
  };
}

export type ChatAction =
  | { type: 'frame'; frame: ServerFrame; now: number }
  | { type: 'rooms_loaded'; rooms: Room[] }
  | { type: 'room_loaded'; room: Room }
  /** A REST page of history, newest first as the API gives it. */
  | { type: 'history_loaded'; roomId: string; page: Message[]; limit: number; replace: boolean }
  | { type: 'presence_loaded'; entries: Presence[] }
  | { type: 'open_room'; roomId: string | null }
  | { type: 'send_queued'; send: PendingSend }
  | { type: 'send_acked'; clientMessageId: string; message?: Message }
  | { type: 'send_failed'; clientMessageId: string; error: string }
  | { type: 'send_retry'; clientMessageId: string }
  | { type: 'send_discard'; clientMessageId: string }
  | { type: 'typing_expire'; now: number }
  | { type: 'mentions_seen'; roomId: string }
  | { type: 'room_left'; roomId: string };

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'frame':
      return applyFrame(state, action.frame, action.now);
    case 'rooms_loaded': {
      const rooms: Record<string, Room> = {};
      for (const r of action.rooms) rooms[r.id] = r;
      // Histories of rooms the user no longer belongs to go with them.
      const histories: Record<string, RoomHistory> = {};
      for (const [id, h] of Object.entries(state.histories)) if (rooms[id]) histories[id] = h;
      return { ...state, rooms, histories, stale: false };
    }
    case 'room_loaded':
      return { ...state, rooms: { ...state.rooms, [action.room.id]: action.room } };
    case 'history_loaded': {
      const prev = state.histories[action.roomId];
      const base = action.replace || !prev ? [] : prev.items;
      let items = mergeMessages(base, action.page);
      // Keep live messages newer than the reloaded page that arrived while it loaded.
      if (action.replace && prev) {
        const newest = items.length ? items[items.length - 1].position : 0;
        items = mergeMessages(items, prev.items.filter((m) => m.position > newest));
      }
      // A page shorter than asked for is the oldest one.
      const history: RoomHistory = { items, hasMore: action.page.length >= action.limit, loaded: true };
      return {
        ...state,
        histories: { ...state.histories, [action.roomId]: history },
        pending: dropDelivered(state.pending, action.page, state.me),
      };
    }
    case 'presence_loaded': {
      const presence: Record<string, Presence> = {};
      for (const p of action.entries) presence[p.user_id] = p;
      return { ...state, presence };
    }
    case 'open_room': {
      const s = { ...state, openRoomId: action.roomId };
      if (action.roomId && s.rooms[action.roomId]) {
        s.rooms = { ...s.rooms, [action.roomId]: { ...s.rooms[action.roomId], unread: 0 } };
      }
      return s;
    }
    case 'send_queued':
      return { ...state, pending: { ...state.pending, [action.send.client_message_id]: action.send } };
    case 'send_acked': {
      const p = state.pending[action.clientMessageId];
      let s = state;
      if (action.message) s = upsertMessage(s, action.message, false);
      if (!s.pending[action.clientMessageId] || !p) return s;
      return { ...s, pending: { ...s.pending, [action.clientMessageId]: { ...p, state: 'sent' } } };
    }
    case 'send_failed': {
      const p = state.pending[action.clientMessageId];
      if (!p) return state;
      return {
        ...state,
        pending: { ...state.pending, [action.clientMessageId]: { ...p, state: 'failed', error: action.error } },
      };
    }
    case 'send_retry': {
      const p = state.pending[action.clientMessageId];
      if (!p) return state;
      return {
        ...state,
        pending: { ...state.pending, [action.clientMessageId]: { ...p, state: 'queued', error: undefined } },
      };
    }
    case 'send_discard': {
      const pending = { ...state.pending };
      delete pending[action.clientMessageId];
      return { ...state, pending };
    }
    case 'typing_expire': {
      let changed = false;
      const typing: ChatState['typing'] = {};
      for (const [room, users] of Object.entries(state.typing)) {
        const kept: Record<string, number> = {};
        for (const [u, until] of Object.entries(users)) {
          if (until > action.now) kept[u] = until;
          else changed = true;
        }
        if (Object.keys(kept).length) typing[room] = kept;
      }
      return changed ? { ...state, typing } : state;
    }
    case 'mentions_seen':
      return { ...state, mentions: state.mentions.filter((m) => m.room_id !== action.roomId) };
    case 'room_left':
      return removeRoom(state, action.roomId);
  }
}

function applyFrame(state: ChatState, frame: ServerFrame, now: number): ChatState {
  switch (frame.type) {
    case 'welcome':
      return { ...state, me: frame.user_id, snapshot: {} };
    case 'presence_snapshot': {
      const snapshot = { ...(state.snapshot ?? {}) };
      for (const u of frame.users) snapshot[u.user_id] = u;
      if (!frame.last) return { ...state, snapshot };
      // Users listed in none of the snapshot's frames are offline: the snapshot replaces all.
      return { ...state, presence: snapshot, snapshot: null, presenceComplete: true };
    }
    case 'presence': {
      const presence = { ...state.presence };
      for (const u of frame.users) presence[u.user_id] = u;
      return { ...state, presence };
    }
    case 'typing': {
      // A thread's typing notice (`thread_id`) belongs to the inbox state.
      if (!frame.room_id || frame.user_id === state.me) return state;
      const room = { ...(state.typing[frame.room_id] ?? {}), [frame.user_id]: now + TYPING_TTL_MS };
      return { ...state, typing: { ...state.typing, [frame.room_id]: room } };
    }
    case 'resync':
      return { ...state, position: frame.position, stale: true };
    case 'live':
      return { ...state, position: Math.max(state.position ?? 0, frame.position) };
    case 'event': {
      if (state.position !== null && frame.position <= state.position) return state;
      return { ...applyEvent(state, frame), position: frame.position };
    }
    default:
      return state;
  }
}

function applyEvent(state: ChatState, ev: RealtimeEvent): ChatState {
  switch (ev.kind) {
    case 'room.created':
    case 'room.updated':
    case 'room.members_changed': {
      const room = ev.data as Room;
      const prev = state.rooms[room.id];
      const unread = prev?.unread ?? 0;
      return { ...state, rooms: { ...state.rooms, [room.id]: { ...room, unread } } };
    }
    case 'room.removed': {
      const d = ev.data as { room_id: string; user_id: string };
      return d.user_id === state.me ? removeRoom(state, d.room_id) : state;
    }
    case 'room.message':
      return upsertMessage(state, ev.data as Message, true);
    case 'room.message_edited':
    case 'room.message_deleted':
      return upsertMessage(state, ev.data as Message, false);
    case 'room.read':
      return applyRead(state, ev.data as ReadMark);
    case 'mention': {
      const m = ev.data as MentionData;
      // A mention in the room the user is reading is seen already.
      if (m.room_id === state.openRoomId) return state;
      if (state.mentions.some((x) => x.message_id === m.message_id)) return state;
      return { ...state, mentions: [...state.mentions, m] };
    }
    default:
      return state;
  }
}

/** Inserts or replaces a message by id, keeping position order; counts it unread when new. */
function upsertMessage(state: ChatState, msg: Message, isNew: boolean): ChatState {
  const prev = state.histories[msg.room_id];
  const existed = prev?.items.some((m) => m.id === msg.id) ?? false;
  const history: RoomHistory = {
    items: mergeMessages(prev?.items ?? [], [msg]),
    hasMore: prev?.hasMore ?? true,
    loaded: prev?.loaded ?? false,
  };
  let rooms = state.rooms;
  const room = rooms[msg.room_id];
  if (room && isNew && !existed) {
    // A REST load made after this message was written already counted it (its
    // last_message_at is not older than the message).
    const known = room.last_message_at !== null && compareTimes(room.last_message_at, msg.created_at) >= 0;
    const fromOther = msg.author_id !== state.me;
    const unread =
      (room.unread ?? 0) + (fromOther && !known && state.openRoomId !== msg.room_id ? 1 : 0);
    const last = known ? room.last_message_at : msg.created_at;
    rooms = { ...rooms, [room.id]: { ...room, unread, last_message_at: last } };
  }
  let typing = state.typing;
  if (isNew && typing[msg.room_id]?.[msg.author_id]) {
    const users = { ...typing[msg.room_id] };
    delete users[msg.author_id];
    typing = { ...typing, [msg.room_id]: users };
  }
  return {
    ...state,
    rooms,
    typing,
    histories: { ...state.histories, [msg.room_id]: history },
    pending: dropDelivered(state.pending, [msg], state.me),
  };
}

function applyRead(state: ChatState, mark: ReadMark): ChatState {
  const items = state.histories[mark.room_id]?.items ?? [];
  const posOf = (id: string | undefined) => items.find((m) => m.id === id)?.position;
  const current = state.readMarks[mark.room_id]?.[mark.user_id];
  const curPos = posOf(current);
  const newPos = posOf(mark.message_id);
  // Marks only move forward (ids are time-ordered UUIDv7 when positions are unknown).
  if (current && (curPos !== undefined && newPos !== undefined ? newPos <= curPos : mark.message_id <= current)) {
    return state;
  }
  const readMarks = {
    ...state.readMarks,
    [mark.room_id]: { ...(state.readMarks[mark.room_id] ?? {}), [mark.user_id]: mark.message_id },
  };
  let rooms = state.rooms;
  const room = rooms[mark.room_id];
  if (mark.user_id === state.me && room && newPos !== undefined) {
    const unread = items.filter((m) => m.position > newPos && m.author_id !== state.me && !m.deleted).length;
    rooms = { ...rooms, [room.id]: { ...room, unread } };
  }
  return { ...state, readMarks, rooms };
}

function removeRoom(state: ChatState, roomId: string): ChatState {
  const rooms = { ...state.rooms };
  delete rooms[roomId];
  const histories = { ...state.histories };
  delete histories[roomId];
  return {
    ...state,
    rooms,
    histories,
    openRoomId: state.openRoomId === roomId ? null : state.openRoomId,
  };
}

/** Merges messages by id (the later copy wins) and sorts them by position. */
export function mergeMessages(base: Message[], incoming: Message[]): Message[] {
  const byId = new Map<string, Message>();
  for (const m of base) byId.set(m.id, m);
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.position - b.position);
}

/** Pending sends that now appear as stored messages are done. */
function dropDelivered(pending: Record<string, PendingSend>, msgs: Message[], me: string | null) {
  let out = pending;
  for (const m of msgs) {
    if (m.author_id === me && m.client_message_id && out[m.client_message_id]) {
      if (out === pending) out = { ...pending };
      delete out[m.client_message_id];
    }
  }
  return out;
}

/** Users typing in a room now, except the user. */
export function typingUsers(state: ChatState, roomId: string, now: number): string[] {
  return Object.entries(state.typing[roomId] ?? {})
    .filter(([u, until]) => until > now && u !== state.me)
    .map(([u]) => u);
}

/** Members (other than the author) whose read mark is at or after the message. */
export function readBy(state: ChatState, msg: Message): string[] {
  const items = state.histories[msg.room_id]?.items ?? [];
  const marks = state.readMarks[msg.room_id] ?? {};
  return Object.entries(marks)
    .filter(([u, id]) => {
      if (u === msg.author_id) return false;
      const pos = items.find((m) => m.id === id)?.position;
      return pos !== undefined ? pos >= msg.position : id >= msg.id;
    })
    .map(([u]) => u);
}

/** The presence to show for a user: the live view, else (before any snapshot) a REST copy. */
export function presenceOf(state: ChatState, userId: string, fallback: Presence | null = null): Presence | null {
  return state.presence[userId] ?? (state.presenceComplete ? null : fallback);
}

export function totalUnread(state: ChatState): number {
  return Object.values(state.rooms).reduce((n, r) => n + (r.unread ?? 0), 0);
}
