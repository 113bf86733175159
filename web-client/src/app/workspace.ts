// One logged-in workspace: the REST client, the WebSocket connection and the chat state,
// glued as docs/protocol.md asks: state is loaded through REST after `welcome` (first
// connect) or after a `resync`, events keep it current, unacknowledged sends are repeated
// with their client message id after every reconnect.
import type { ApiClient } from '../api/http';
import type {
  ChannelAccount,
  DirectoryEntry,
  Me,
  Message,
  Queue,
  Room,
  SendResult,
  ServerFrame,
  Template,
  Thread,
  ThreadMessage,
  Upload,
} from '../api/types';
import { RealtimeClient, RealtimeError } from '../realtime/socket';
import type { ConnectionState } from '../realtime/socket';
import { chatReducer, initialChatState } from '../state/chat';
import type { ChatAction, ChatState, PendingSend } from '../state/chat';
import { inboxReducer, initialInboxState, noticesFor } from '../state/inbox';
import type { InboxAction, InboxFilter, InboxState, Notice, PendingReply, Scope } from '../state/inbox';
import { newClientMessageId } from './ids';
import { createStore, valueStore } from './store';
import type { Store } from './store';

export const HISTORY_PAGE = 50;
export const THREAD_PAGE = 50;
export const TIMELINE_PAGE = 50;

/** Reply failures that repeating the same request cannot fix (the user must change something). */
const FINAL_REPLY_ERRORS = new Set([
  'no_channel',
  'unknown_channel_account',
  'channel_disabled',
  'no_address',
  'unknown_template',
  'invalid_text',
  'unknown_upload',
  'not_your_sender',
  'thread_merged',
  'forbidden',
  'not_found',
  'validation_failed',
]);

export interface ReplyInput {
  text: string;
  template_id?: string | null;
  channel_account_id?: string | null;
  /** 'auto', 'none' or the edited text. */
  signature?: string;
  subject?: string | null;
  files?: File[];
  channel_kind?: string | null;
}
/** Least time between two `typing` frames for one room or thread. */
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

/** The inbox opens with the scope (mine / unassigned / all) last chosen in this browser. */
const SCOPE_KEY = 'jobers.inbox.scope';

function storedScope(): Scope {
  try {
    const v = globalThis.localStorage?.getItem(SCOPE_KEY);
    return v === 'unassigned' || v === 'all' ? v : 'mine';
  } catch {
    return 'mine';
  }
}

function storeScope(scope: Scope) {
  try {
    globalThis.localStorage?.setItem(SCOPE_KEY, scope);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

export class Workspace {
  readonly chat: Store<ChatState, ChatAction>;
  readonly connection = valueStore<ConnectionState>('idle');
  readonly directory = valueStore<DirectoryEntry[]>([]);
  readonly inbox: Store<InboxState, InboxAction>;
  readonly queues = valueStore<Queue[]>([]);
  readonly templates = valueStore<Template[]>([]);
  /** Called for a thread newly assigned to the user or a mention in a note (notifications). */
  onNotice: ((n: Notice) => void) | null = null;
  readonly rt: RealtimeClient;
  private threadReadSent = new Map<string, string>();
  private inboxLoading: Promise<void> | null = null;
  private typingSent = new Map<string, number>();
  private activitySent = 0;
  private readSent = new Map<string, string>();
  private loading: Promise<void> | null = null;
  private typingTimer: ReturnType<typeof setInterval> | null = null;
  private frameListeners = new Set<(frame: ServerFrame) => void>();

  constructor(
    readonly api: ApiClient,
    readonly me: Me,
    onSessionEnded: (code: string) => void,
    wsUrl = defaultWsUrl(),
  ) {
    this.chat = createStore<ChatState, ChatAction>(chatReducer, initialChatState(me.user.id));
    this.inbox = createStore<InboxState, InboxAction>(inboxReducer, initialInboxState(me.user.id, storedScope()));
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
    this.typingTimer = setInterval(() => {
      const now = Date.now();
      this.chat.dispatch({ type: 'typing_expire', now });
      this.inbox.dispatch({ type: 'typing_expire', now });
    }, 1000);
  }

  stop() {
    this.rt.stop();
    if (this.typingTimer) clearInterval(this.typingTimer);
  }

  private onFrame(frame: ServerFrame) {
    const firstConnect = this.chat.getState().position === null;
    const notices = noticesFor(this.inbox.getState(), frame, this.me.user.id);
    const before = this.inbox.getState();
    const now = Date.now();
    this.chat.dispatch({ type: 'frame', frame, now });
    this.inbox.dispatch({ type: 'frame', frame, now });
    if (frame.type === 'event') this.followMerges(before, frame.kind, frame.data);
    if (frame.type === 'welcome' && firstConnect) {
      this.reloadLogged();
      this.reloadInboxLogged();
    }
    if (frame.type === 'live') {
      if (this.chat.getState().stale) this.reloadLogged();
      if (this.inbox.getState().stale) this.reloadInboxLogged();
      this.flushOutbox();
    }
    if (frame.type === 'event') this.afterThreadEvent(frame.kind, frame.data);
    for (const n of notices) this.onNotice?.(n);
    for (const l of this.frameListeners) l(frame);
  }

  /**
   * Every frame after the stores took it: for panels that keep their own REST data current
   * (applications, board imports). `live` follows every (re)connect: reload what may be stale.
   */
  subscribeFrames(listener: (frame: ServerFrame) => void): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  private afterThreadEvent(kind: string, data: unknown) {
    const s = this.inbox.getState();
    const open = s.openThreadId;
    if (!open) return;
    if (kind === 'thread.message') {
      const m = data as ThreadMessage;
      if (m.thread_id === open && m.direction === 'in') this.markThreadRead(open, m.id);
    }
  }

  /**
   * A merge or its undo moved messages between threads: the reducer dropped the timelines
   * concerned, and the view may have followed the open thread into the surviving one. Loads
   * the open thread (when it changed) and its timeline again.
   */
  private followMerges(before: InboxState, kind: string, data: unknown) {
    const after = this.inbox.getState();
    const open = after.openThreadId;
    if (!open || after.timelines[open]) return;
    const was = before.openThreadId;
    const dropped = was !== null && before.timelines[was] !== undefined;
    const followed = kind === 'thread.updated' && (data as Thread).merged_into !== null;
    if (!dropped && !followed) return;
    if (open !== was) void this.loadThread(open).catch(() => undefined);
    void this.loadTimeline(open, true).catch(() => undefined);
  }

  // --- the inbox -----------------------------------------------------------------------

  private reloadInboxLogged() {
    this.reloadInbox().catch((e) => console.warn('loading the inbox failed', e));
  }

  /** Loads the list's first page, the open thread and its timeline, and the channel accounts. */
  reloadInbox(): Promise<void> {
    if (this.inboxLoading) return this.inboxLoading;
    this.inboxLoading = (async () => {
      try {
        const open = this.inbox.getState().openThreadId;
        await Promise.all([
          this.loadThreads(false),
          this.loadChannels(),
          open ? this.loadThread(open).then(() => this.loadTimeline(open, true)) : null,
        ]);
      } finally {
        this.inboxLoading = null;
      }
    })();
    return this.inboxLoading;
  }

  setInboxFilter(filter: InboxFilter) {
    this.inbox.dispatch({ type: 'filter_set', filter });
    storeScope(filter.scope);
    return this.loadThreads(false);
  }

  /** The first page (`more` false) or the next one, for the current filter. */
  async loadThreads(more: boolean) {
    const s = this.inbox.getState();
    const f = s.filter;
    const p = new URLSearchParams({ scope: f.scope, limit: String(THREAD_PAGE) });
    if (f.state) p.set('state', f.state);
    if (f.channel) p.set('channel', f.channel);
    if (f.queue_id) p.set('queue_id', f.queue_id);
    if (f.vacancy.trim()) p.set('vacancy', f.vacancy.trim());
    if (f.q.trim()) p.set('q', f.q.trim());
    const last = more ? s.threads[s.order[s.order.length - 1]] : undefined;
    if (last) {
      p.set('before_time', last.last_message_at);
      p.set('before_id', last.id);
    }
    // Events that come while the first page is read are kept beside it (the reducer).
    if (!more) this.inbox.dispatch({ type: 'threads_loading' });
    const page = await this.api.get<Thread[]>(`/threads?${p}`);
    // The filter changed while the page loaded: the page is of no use.
    if (this.inbox.getState().filter !== f) return;
    this.inbox.dispatch({ type: 'threads_loaded', page, limit: THREAD_PAGE, replace: !more });
  }

  async loadThread(id: string): Promise<Thread> {
    const thread = await this.api.get<Thread>(`/threads/${id}`);
    this.inbox.dispatch({ type: 'thread_loaded', thread });
    return thread;
  }

  async loadTimeline(threadId: string, replace: boolean) {
    const tl = this.inbox.getState().timelines[threadId];
    const oldest = !replace && tl?.loaded ? tl.items[0]?.id : undefined;
    const qs = `limit=${TIMELINE_PAGE}${oldest ? `&before=${oldest}` : ''}`;
    const page = await this.api.get<ThreadMessage[]>(`/threads/${threadId}/messages?${qs}`);
    this.inbox.dispatch({ type: 'timeline_loaded', threadId, page, limit: TIMELINE_PAGE, replace });
  }

  async loadChannels(): Promise<ChannelAccount[]> {
    const accounts = await this.api.get<ChannelAccount[]>('/channel-accounts');
    this.inbox.dispatch({ type: 'channels_loaded', accounts });
    return accounts;
  }

  async loadQueues(): Promise<Queue[]> {
    const list = await this.api.get<Queue[]>('/queues');
    this.queues.set(list);
    return list;
  }

  async loadTemplates(): Promise<Template[]> {
    const list = await this.api.get<Template[]>('/templates');
    this.templates.set(list);
    return list;
  }

  openThread(id: string | null) {
    this.inbox.dispatch({ type: 'open_thread', threadId: id });
    if (!id) return;
    const s = this.inbox.getState();
    const load = s.threads[id] ? Promise.resolve() : this.loadThread(id).then(() => undefined);
    void load.catch(() => undefined);
    if (!s.timelines[id]?.loaded) void this.loadTimeline(id, true).catch(() => undefined);
    this.markThreadRead(id, `open:${Date.now()}`);
  }

  /** `POST /threads/{id}/read`, once per newest inbound message seen. */
  markThreadRead(id: string, marker: string) {
    if (typeof document !== 'undefined' && document.visibilityState === 'hidden') return;
    if (this.threadReadSent.get(id) === marker) return;
    this.threadReadSent.set(id, marker);
    this.api.post<Thread>(`/threads/${id}/read`).then(
      (thread) => this.inbox.dispatch({ type: 'thread_loaded', thread }),
      () => this.threadReadSent.delete(id),
    );
  }

  async reply(threadId: string, input: ReplyInput) {
    const uploads = await Promise.all((input.files ?? []).map((f) => this.api.upload<Upload>(f.name, f)));
    const client_message_id = newClientMessageId();
    const body: Record<string, unknown> = { client_message_id };
    if (input.template_id) body.template_id = input.template_id;
    else body.text = input.text;
    if (input.channel_account_id) body.channel_account_id = input.channel_account_id;
    if (input.signature !== undefined) body.signature = input.signature;
    if (input.subject) body.subject = input.subject;
    if (uploads.length) body.attachments = uploads.map((u) => u.id);
    const reply: PendingReply = {
      client_message_id,
      thread_id: threadId,
      kind: 'reply',
      text: input.text,
      body,
      channel_kind: input.channel_kind ?? null,
      state: 'sending',
      created_at: new Date().toISOString(),
    };
    this.inbox.dispatch({ type: 'reply_queued', reply });
    await this.transmitReply(reply);
  }

  async note(threadId: string, text: string, mentions: string[]) {
    const client_message_id = newClientMessageId();
    const reply: PendingReply = {
      client_message_id,
      thread_id: threadId,
      kind: 'note',
      text,
      body: { text, mentions, client_message_id },
      channel_kind: null,
      state: 'sending',
      created_at: new Date().toISOString(),
    };
    this.inbox.dispatch({ type: 'reply_queued', reply });
    await this.transmitReply(reply);
  }

  retryReply(clientMessageId: string) {
    const p = this.inbox.getState().pending[clientMessageId];
    if (!p) return;
    this.inbox.dispatch({ type: 'reply_retry', clientMessageId });
    void this.transmitReply(p);
  }

  /** Sends (or repeats, with the same client message id) a reply or note over REST. */
  private async transmitReply(p: PendingReply) {
    const path = `/threads/${p.thread_id}/${p.kind === 'note' ? 'notes' : 'messages'}`;
    for (let attempt = 0; ; attempt++) {
      try {
        const message = await this.api.post<ThreadMessage>(path, p.body);
        this.inbox.dispatch({ type: 'message_stored', message });
        return;
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'network';
        // Network trouble and server errors are repeated a few times (the id makes it safe).
        if (!FINAL_REPLY_ERRORS.has(code) && code !== 'session_expired' && attempt < 3) {
          await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
          continue;
        }
        this.inbox.dispatch({ type: 'reply_failed', clientMessageId: p.client_message_id, error: code });
        return;
      }
    }
  }

  /** Sends a failed reply again through the outbox (`…/retry`). */
  async retryDelivery(threadId: string, messageId: string) {
    const message = await this.api.post<ThreadMessage>(`/threads/${threadId}/messages/${messageId}/retry`);
    this.inbox.dispatch({ type: 'message_stored', message });
  }

  async assign(threadId: string, userId: string | null) {
    const thread = await this.api.post<Thread>(`/threads/${threadId}/assign`, { user_id: userId });
    this.inbox.dispatch({ type: 'thread_loaded', thread });
  }

  async setThreadState(threadId: string, state: 'open' | 'pending' | 'closed') {
    const thread = await this.api.post<Thread>(`/threads/${threadId}/state`, { state });
    this.inbox.dispatch({ type: 'thread_loaded', thread });
  }

  async moveToQueue(threadId: string, queueId: string) {
    const thread = await this.api.post<Thread>(`/threads/${threadId}/queue`, { queue_id: queueId });
    this.inbox.dispatch({ type: 'thread_loaded', thread });
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

  /** Changes the text of one's own message; the room sees `room.message_edited`. */
  async editMessage(messageId: string, body: string) {
    await this.rt.request({ type: 'edit', message_id: messageId, body });
  }

  /** Deletes one's own message; the room sees `room.message_deleted`. */
  async deleteMessage(messageId: string) {
    await this.rt.request({ type: 'delete', message_id: messageId });
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

  /** The user types in a thread's composer (reply or note): the other staff see it. */
  typingInThread(threadId: string) {
    const key = `thread:${threadId}`;
    const now = Date.now();
    if (now - (this.typingSent.get(key) ?? 0) < TYPING_EVERY_MS) return;
    if (this.rt.send({ type: 'typing', thread_id: threadId })) this.typingSent.set(key, now);
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
