// One logged-in workspace: the REST client, the WebSocket connection and the chat state,
// glued as docs/protocol.md asks: state is loaded through REST after `welcome` (first
// connect) or after a `resync`, events keep it current, unacknowledged sends are repeated
// with their client message id after every reconnect.
import type { ApiClient } from '../api/http';
import type { DirectoryEntry, Me, Message, Room, SendResult, ServerFrame, Upload } from '../api/types';
import { RealtimeClient, RealtimeError } from '../realtime/socket';
import type { ConnectionState } from '../realtime/socket';
import { chatReducer, initialChatState } from '../state/chat';
import type { ChatAction, ChatState, PendingSend } from '../state/chat';
import { newClientMessageId } from './ids';
import { createStore, valueStore } from './store';
import type { Store } from './store';

export const HISTORY_PAGE = 50;
/** Least time between two `typing` frames for one room. */
const TYPING_EVERY_MS = 3000;
/** Least time between two `activity` frames. */
const ACTIVITY_EVERY_MS = 30_000;

/** Send failures that repeating cannot fix. */
const FINAL_SEND_ERRORS = new Set([
  'not_found',
  'empty_message',
  'message_too_long',
  'too_many_attachments',
  'invalid_client_message_id',
  'unknown_upload',
  'conflict',
  'invalid_text',
  'malformed_frame',
]);

export class Workspace {
  readonly chat: Store<ChatState, ChatAction>;
  readonly connection = valueStore<ConnectionState>('idle');
  readonly directory = valueStore<DirectoryEntry[]>([]);
  readonly rt: RealtimeClient;
  private typingSent = new Map<string, number>();
  private activitySent = 0;
  private readSent = new Map<string, string>();
  private loading: Promise<void> | null = null;
  private typingTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly api: ApiClient,
    readonly me: Me,
    onSessionEnded: (code: string) => void,
    wsUrl = defaultWsUrl(),
  ) {
    this.chat = createStore<ChatState, ChatAction>(chatReducer, initialChatState(me.user.id));
    this.rt = new RealtimeClient({
      url: wsUrl,
      token: () => api.accessToken,
      refresh: (stale) => api.refresh(stale),
      position: () => this.chat.getState().position,
      onFrame: (f) => this.onFrame(f),
      onState: (s) => this.connection.set(s),
      onSessionEnded,
    });
  }

  start() {
    this.rt.start();
    this.typingTimer = setInterval(() => this.chat.dispatch({ type: 'typing_expire', now: Date.now() }), 1000);
  }

  stop() {
    this.rt.stop();
    if (this.typingTimer) clearInterval(this.typingTimer);
  }

  private onFrame(frame: ServerFrame) {
    const firstConnect = this.chat.getState().position === null;
    this.chat.dispatch({ type: 'frame', frame, now: Date.now() });
    if (frame.type === 'welcome' && firstConnect) this.reloadLogged();
    if (frame.type === 'live') {
      if (this.chat.getState().stale) this.reloadLogged();
      this.flushOutbox();
    }
  }

  private reloadLogged() {
    // A failed load leaves the old view; the next reconnect (or resync) loads again.
    this.reload().catch((e) => console.warn('loading the workspace failed', e));
  }

  /** Loads rooms, the directory and the open room's latest history (after welcome or resync). */
  reload(): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const [rooms] = await Promise.all([this.api.get<Room[]>('/rooms'), this.loadDirectory()]);
        this.chat.dispatch({ type: 'rooms_loaded', rooms });
        const open = this.chat.getState().openRoomId;
        if (open && rooms.some((r) => r.id === open)) await this.loadHistory(open, true);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  async loadDirectory(q = ''): Promise<DirectoryEntry[]> {
    const list = await this.api.get<DirectoryEntry[]>(`/directory${q ? `?q=${encodeURIComponent(q)}` : ''}`);
    if (!q) this.directory.set(list);
    return list;
  }

  async loadHistory(roomId: string, replace: boolean) {
    const h = this.chat.getState().histories[roomId];
    const oldest = !replace && h?.loaded ? h.items[0]?.id : undefined;
    const qs = `limit=${HISTORY_PAGE}${oldest ? `&before=${oldest}` : ''}`;
    const page = await this.api.get<Message[]>(`/rooms/${roomId}/messages?${qs}`);
    this.chat.dispatch({ type: 'history_loaded', roomId, page, limit: HISTORY_PAGE, replace });
  }

  openRoom(roomId: string | null) {
    this.chat.dispatch({ type: 'open_room', roomId });
    if (!roomId) return;
    this.chat.dispatch({ type: 'mentions_seen', roomId });
    const h = this.chat.getState().histories[roomId];
    if (!h?.loaded) void this.loadHistory(roomId, true).then(() => this.markRead(roomId));
    else this.markRead(roomId);
  }

  /** Moves the read mark to the newest message from someone else, once per message. */
  markRead(roomId: string) {
    if (typeof document !== 'undefined' && document.visibilityState === 'hidden') return;
    const s = this.chat.getState();
    const items = s.histories[roomId]?.items ?? [];
    const last = [...items].reverse().find((m) => m.author_id !== s.me && !m.deleted);
    if (!last || this.readSent.get(roomId) === last.id) return;
    if (s.readMarks[roomId]?.[s.me ?? ''] === last.id) return;
    this.readSent.set(roomId, last.id);
    this.rt.request({ type: 'read', room_id: roomId, message_id: last.id }).catch(() => {
      this.readSent.delete(roomId);
    });
  }

  async send(roomId: string, body: string, mentions: string[], files: File[]) {
    const uploads = await Promise.all(files.map((f) => this.api.upload<Upload>(f.name, f)));
    const send: PendingSend = {
      client_message_id: newClientMessageId(),
      room_id: roomId,
      body,
      mentions,
      attachments: uploads.map((u) => u.id),
      state: 'queued',
      created_at: Date.now(),
    };
    this.chat.dispatch({ type: 'send_queued', send });
    this.transmit(send);
  }

  retry(clientMessageId: string) {
    this.chat.dispatch({ type: 'send_retry', clientMessageId });
    const p = this.chat.getState().pending[clientMessageId];
    if (p) this.transmit(p);
  }

  /** Sends every queued message again (after `live`); repeats are stored once by the hub. */
  private flushOutbox() {
    for (const p of Object.values(this.chat.getState().pending)) {
      if (p.state === 'queued' || p.state === 'sent') this.transmit(p);
    }
  }

  private transmit(p: PendingSend) {
    this.rt
      .request({
        type: 'send',
        room_id: p.room_id,
        body: p.body,
        client_message_id: p.client_message_id,
        mentions: p.mentions,
        attachments: p.attachments,
      })
      .then(
        () => this.chat.dispatch({ type: 'send_acked', clientMessageId: p.client_message_id }),
        (e: RealtimeError) => {
          if (FINAL_SEND_ERRORS.has(e.code)) {
            this.chat.dispatch({ type: 'send_failed', clientMessageId: p.client_message_id, error: e.code });
          } else if (e.code !== 'disconnected' && e.code !== 'stopped') {
            // internal_error, rate_limited…: the same id makes a repeat safe; try over REST.
            void this.sendOverRest(p);
          }
          // Disconnected: it stays queued and goes again after the next `live`.
        },
      );
  }

  private async sendOverRest(p: PendingSend) {
    try {
      const r = await this.api.post<SendResult>(`/rooms/${p.room_id}/messages`, {
        body: p.body,
        client_message_id: p.client_message_id,
        mentions: p.mentions,
        attachments: p.attachments,
      });
      this.chat.dispatch({ type: 'send_acked', clientMessageId: p.client_message_id, message: r.message });
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'internal_error';
      this.chat.dispatch({ type: 'send_failed', clientMessageId: p.client_message_id, error: code });
    }
  }

  typing(roomId: string) {
    const now = Date.now();
    if (now - (this.typingSent.get(roomId) ?? 0) < TYPING_EVERY_MS) return;
    if (this.rt.send({ type: 'typing', room_id: roomId })) this.typingSent.set(roomId, now);
  }

  /** The person used keyboard or mouse: keep them `online` rather than idle-away. */
  activity() {
    const now = Date.now();
    if (now - this.activitySent < ACTIVITY_EVERY_MS) return;
    if (this.rt.send({ type: 'activity' })) this.activitySent = now;
  }

  async setStatus(status: 'online' | 'away' | 'busy' | null, text: string, until: number | null) {
    await this.api.put('/me/status', { status, text, until });
  }

  async openDirect(userId: string): Promise<Room> {
    const room = await this.api.post<Room>('/rooms/direct', { user_id: userId });
    this.chat.dispatch({ type: 'room_loaded', room: { unread: 0, ...room } });
    return room;
  }

  async createGroup(name: string, memberIds: string[]): Promise<Room> {
    const room = await this.api.post<Room>('/rooms', { name, member_ids: memberIds });
    this.chat.dispatch({ type: 'room_loaded', room: { unread: 0, ...room } });
    return room;
  }

  async rename(roomId: string, name: string) {
    const room = await this.api.patch<Room>(`/rooms/${roomId}`, { name });
    this.chat.dispatch({ type: 'room_loaded', room: { ...this.chat.getState().rooms[roomId], ...room } });
  }

  async changeMembers(roomId: string, add: string[], remove: string[]) {
    const room = await this.api.post<Room>(`/rooms/${roomId}/members`, { add, remove });
    this.chat.dispatch({ type: 'room_loaded', room: { ...this.chat.getState().rooms[roomId], ...room } });
  }

  async leave(roomId: string) {
    await this.api.post<void>(`/rooms/${roomId}/leave`);
    this.chat.dispatch({ type: 'room_left', roomId });
  }
}

export function defaultWsUrl(): string {
  const l = globalThis.location;
  return `${l.protocol === 'https:' ? 'wss' : 'ws'}://${l.host}/ws`;
}
