// The client's picture of the applicant inbox, changed only by `inboxReducer`.
//
// Fed like the chat state (src/state/chat.ts): REST pages (the thread list, timelines) and
// WebSocket events (`thread.updated`, `thread.message`, `thread.message_updated`,
// `thread.mention`, `channel.health`), applied in position order and at most once. Threads
// and messages carry `updated_at`, so a copy older than the one held (a REST answer that
// raced an event) never replaces a newer one: a reply's delivery state only moves on.
// Typing notices of threads (`typing` frames with `thread_id`) expire like the rooms' ones.
import type {
  ChannelAccount,
  ContactMerge,
  ServerFrame,
  Thread,
  ThreadMention,
  ThreadMessage,
  ThreadState,
} from '../api/types';
import { TYPING_TTL_MS } from './chat';
import { compareTimes } from './time';

export type Scope = 'mine' | 'unassigned' | 'all';

export interface InboxFilter {
  scope: Scope;
  /** '' for any state. */
  state: '' | ThreadState;
  /** Channel kind of the last message; '' for any. */
  channel: string;
  /** Exact vacancy; '' for any. */
  vacancy: string;
  queue_id: string;
  /** Search: applicant name, email, phone (matched by the hub). */
  q: string;
}

export const DEFAULT_FILTER: InboxFilter = { scope: 'mine', state: '', channel: '', vacancy: '', queue_id: '', q: '' };

export interface Timeline {
  /** Messages of the thread, oldest first, without repeats. */
  items: ThreadMessage[];
  /** Older messages exist on the server (a REST page came back full). */
  hasMore: boolean;
  /** At least one REST page was loaded since the last (re)load. */
  loaded: boolean;
}

/** A reply or note the user sent that the hub has not yet confirmed. */
export interface PendingReply {
  client_message_id: string;
  thread_id: string;
  kind: 'reply' | 'note';
  text: string;
  /** The request body (repeated as is on Retry: the same client message id). */
  body: Record<string, unknown>;
  channel_kind: string | null;
  state: 'sending' | 'failed';
  error?: string;
  created_at: string;
}

export interface InboxState {
  me: string | null;
  position: number | null;
  filter: InboxFilter;
  /** Every thread the client knows (the list's and the open one). */
  threads: Record<string, Thread>;
  /** The list: ids of threads matching the filter, newest activity first. */
  order: string[];
  /** More threads exist beyond the last loaded page. */
  hasMore: boolean;
  /** The list was loaded for the current filter. */
  loaded: boolean;
  timelines: Record<string, Timeline>;
  pending: Record<string, PendingReply>;
  openThreadId: string | null;
  channels: Record<string, ChannelAccount>;
  mentions: ThreadMention[];
  /** thread id → staff user id → time (ms) the typing notice expires. */
  typing: Record<string, Record<string, number>>;
  /** A `resync` arrived: the list and the open timeline must be reloaded through REST. */
  stale: boolean;
  /**
   * While a first page is being loaded: the threads events brought since the load began. The
   * page may have been read before some of them changed; they are kept beside it (see
   * `threads_loaded`). Null when no first page is loading.
   */
  sinceLoad: Record<string, true> | null;
}

export function initialInboxState(me: string | null = null, scope: Scope = DEFAULT_FILTER.scope): InboxState {
  return {
    me,
    position: null,
    filter: { ...DEFAULT_FILTER, scope },
    threads: {},
    order: [],
    hasMore: false,
    loaded: false,
    timelines: {},
    pending: {},
    openThreadId: null,
    channels: {},
    mentions: [],
    typing: {},
    stale: false,
    sinceLoad: null,
  };
}

export type InboxAction =
  /** `now` (ms) dates typing notices; without it the clock is read. */
  | { type: 'frame'; frame: ServerFrame; now?: number }
  | { type: 'filter_set'; filter: InboxFilter }
  /** A first page of the list is being asked for (before the request goes out). */
  | { type: 'threads_loading' }
  /** A REST page of the list, in the API's order; `replace` for the first page. */
  | { type: 'threads_loaded'; page: Thread[]; limit: number; replace: boolean }
  | { type: 'thread_loaded'; thread: Thread }
  /** A REST page of a timeline, newest first as the API gives it. */
  | { type: 'timeline_loaded'; threadId: string; page: ThreadMessage[]; limit: number; replace: boolean }
  | { type: 'open_thread'; threadId: string | null }
  | { type: 'message_stored'; message: ThreadMessage }
  | { type: 'reply_queued'; reply: PendingReply }
  | { type: 'reply_failed'; clientMessageId: string; error: string }
  | { type: 'reply_retry'; clientMessageId: string }
  | { type: 'reply_discard'; clientMessageId: string }
  | { type: 'channels_loaded'; accounts: ChannelAccount[] }
  | { type: 'mentions_seen'; threadId: string }
  | { type: 'typing_expire'; now: number };

export function inboxReducer(state: InboxState, action: InboxAction): InboxState {
  switch (action.type) {
    case 'frame':
      return applyFrame(state, action.frame, action.now ?? Date.now());
    case 'filter_set':
      return { ...state, filter: action.filter, order: [], hasMore: false, loaded: false, sinceLoad: {} };
    case 'threads_loading':
      // A load already under way keeps its record: it began earlier, so it holds more.
      return state.sinceLoad ? state : { ...state, sinceLoad: {} };
    case 'threads_loaded': {
      // Sets and one copy of the thread map per page: the list may hold 10,000 threads.
      const threads = putThreads(state.threads, action.page);
      const pageIds = action.page.filter((t) => !t.merged_into).map((t) => t.id);
      const inPage = new Set(pageIds);
      const listed = new Set(state.order);
      let ids: string[];
      if (action.replace) {
        // The page may have been read before the events that came while it loaded (the hub
        // publishes after committing): a thread they brought that still matches stays, unless
        // a full page ends before it (it shows when the user pages there). Threads held from
        // before the load that the page lacks are gone from the list (the page is the hub's
        // word), whatever their held copy says: events may have been missed (a resync).
        const brought = Object.keys(state.sinceLoad ?? {});
        const full = action.page.length >= action.limit;
        const lastOfPage = pageIds.length ? threads[pageIds[pageIds.length - 1]] : undefined;
        const live = brought.filter(
          (id) =>
            !inPage.has(id) &&
            takesIn(threads[id], state.filter, state.me) &&
            (!full || !lastOfPage || compareThreads(threads[id], lastOfPage) < 0),
        );
        ids = [...live, ...pageIds];
      } else {
        ids = [...state.order, ...pageIds.filter((id) => !listed.has(id))];
      }
      // The held copy may be newer than the page's and match the filter no more.
      const pageCopy = new Map(action.page.map((t) => [t.id, t]));
      ids = ids.filter((id) => threads[id] === pageCopy.get(id) || (!action.replace && listed.has(id)) || matchesFilter(threads[id], state.filter, state.me));
      ids = ids.filter((id) => !threads[id].merged_into);
      return {
        ...state,
        threads: zeroOpenUnread(threads, state.openThreadId),
        order: sortIds(ids, threads),
        hasMore: action.page.length >= action.limit,
        loaded: true,
        stale: false,
        sinceLoad: action.replace ? null : state.sinceLoad,
      };
    }
    case 'thread_loaded': {
      const threads = zeroOpenUnread(putThread(state.threads, action.thread), state.openThreadId);
      return placeInList({ ...state, threads }, threads[action.thread.id]);
    }
    case 'timeline_loaded': {
      const prev = state.timelines[action.threadId];
      const base = action.replace || !prev ? [] : prev.items;
      let items = mergeThreadMessages(base, action.page);
      if (action.replace && prev) {
        // Keep live messages newer than the reloaded page that arrived while it loaded.
        // Held copies of the page's messages that are newer (a later delivery state) win.
        const newest = items.length ? items[items.length - 1] : null;
        const inPage = new Set(action.page.map((m) => m.id));
        items = mergeThreadMessages(
          items,
          prev.items.filter((m) => inPage.has(m.id) || !newest || compareMessages(m, newest) > 0),
        );
      }
      const timeline: Timeline = { items, hasMore: action.page.length >= action.limit, loaded: true };
      return {
        ...state,
        timelines: { ...state.timelines, [action.threadId]: timeline },
        pending: dropConfirmed(state.pending, action.page),
      };
    }
    case 'open_thread': {
      const s = { ...state, openThreadId: action.threadId };
      if (action.threadId) {
        s.threads = zeroOpenUnread(s.threads, action.threadId);
        s.mentions = s.mentions.filter((m) => m.thread_id !== action.threadId);
      }
      return s;
    }
    case 'message_stored':
      return upsertMessage(state, action.message);
    case 'reply_queued':
      return { ...state, pending: { ...state.pending, [action.reply.client_message_id]: action.reply } };
    case 'reply_failed':
      return patchPending(state, action.clientMessageId, { state: 'failed', error: action.error });
    case 'reply_retry':
      return patchPending(state, action.clientMessageId, { state: 'sending', error: undefined });
    case 'reply_discard': {
      if (!state.pending[action.clientMessageId]) return state;
      const pending = { ...state.pending };
      delete pending[action.clientMessageId];
      return { ...state, pending };
    }
    case 'channels_loaded': {
      const channels: Record<string, ChannelAccount> = {};
      for (const a of action.accounts) channels[a.id] = a;
      return { ...state, channels };
    }
    case 'mentions_seen':
      return { ...state, mentions: state.mentions.filter((m) => m.thread_id !== action.threadId) };
    case 'typing_expire': {
      let changed = false;
      const typing: InboxState['typing'] = {};
      for (const [thread, users] of Object.entries(state.typing)) {
        const kept: Record<string, number> = {};
        for (const [u, until] of Object.entries(users)) {
          if (until > action.now) kept[u] = until;
          else changed = true;
        }
        if (Object.keys(kept).length) typing[thread] = kept;
      }
      return changed ? { ...state, typing } : state;
    }
  }
}

function applyFrame(state: InboxState, frame: ServerFrame, now: number): InboxState {
  switch (frame.type) {
    case 'welcome':
      return { ...state, me: frame.user_id };
    case 'typing': {
      // Room typing belongs to the chat state; the hub sends no copy to the typist.
      if (!frame.thread_id || frame.user_id === state.me) return state;
      const users = { ...(state.typing[frame.thread_id] ?? {}), [frame.user_id]: now + TYPING_TTL_MS };
      return { ...state, typing: { ...state.typing, [frame.thread_id]: users } };
    }
    case 'resync':
      return { ...state, position: frame.position, stale: true };
    case 'live':
      return { ...state, position: Math.max(state.position ?? 0, frame.position) };
    case 'event': {
      if (state.position !== null && frame.position <= state.position) return state;
      return { ...applyEvent(state, frame.kind, frame.data), position: frame.position };
    }
    default:
      return state;
  }
}

function applyEvent(state: InboxState, kind: string, data: unknown): InboxState {
  switch (kind) {
    case 'thread.updated':
      return applyThread(state, data as Thread);
    case 'thread.message':
    case 'thread.message_updated':
      return upsertMessage(state, data as ThreadMessage);
    case 'thread.mention': {
      const m = data as ThreadMention;
      if (m.thread_id === state.openThreadId) return state;
      if (state.mentions.some((x) => x.message_id === m.message_id)) return state;
      return { ...state, mentions: [...state.mentions, m] };
    }
    case 'channel.health': {
      const a = data as ChannelAccount;
      return { ...state, channels: { ...state.channels, [a.id]: a } };
    }
    case 'contact.merge_undone': {
      // The survivor's thread gave messages back (a thread not held before the undo gets no
      // `merged_into` to follow): reload the timelines of both applicants' threads.
      const m = data as ContactMerge;
      const people = new Set([m.survivor_id, m.merged_id]);
      let timelines = state.timelines;
      for (const id of Object.keys(timelines)) {
        if (!people.has(state.threads[id]?.contact_id ?? '')) continue;
        if (timelines === state.timelines) timelines = { ...timelines };
        delete timelines[id];
      }
      return timelines === state.timelines ? state : { ...state, timelines };
    }
    default:
      return state;
  }
}

function applyThread(state: InboxState, thread: Thread): InboxState {
  const known = state.threads[thread.id];
  if (known && compareTimes(known.updated_at, thread.updated_at) > 0) return state;
  let threads = zeroOpenUnread({ ...state.threads, [thread.id]: thread }, state.openThreadId);
  const sinceLoad = state.sinceLoad && !state.sinceLoad[thread.id] ? { ...state.sinceLoad, [thread.id]: true as const } : state.sinceLoad;
  let s: InboxState = { ...state, threads, sinceLoad };
  if (thread.merged_into) {
    // Its messages now belong to the surviving thread: reload both timelines.
    const timelines = { ...s.timelines };
    delete timelines[thread.id];
    delete timelines[thread.merged_into];
    s = {
      ...s,
      timelines,
      order: s.order.filter((id) => id !== thread.id),
      openThreadId: s.openThreadId === thread.id ? thread.merged_into : s.openThreadId,
    };
    threads = s.threads;
    return s;
  }
  if (known?.merged_into) {
    // A merge undone: some messages went back from the survivor; reload both timelines.
    const timelines = { ...s.timelines };
    delete timelines[thread.id];
    delete timelines[known.merged_into];
    s = { ...s, timelines };
  }
  return placeInList(s, threads[thread.id]);
}

/** Puts a thread into the list, or takes it out, as the filter says; keeps the list's order. */
function placeInList(state: InboxState, thread: Thread): InboxState {
  const inList = state.order.includes(thread.id);
  let keep = inList ? matchesFilter(thread, state.filter, state.me) : takesIn(thread, state.filter, state.me);
  // Beyond the loaded pages the thread shows up when the user pages there.
  if (keep && !inList && state.hasMore && state.order.length) {
    const last = state.threads[state.order[state.order.length - 1]];
    if (last && compareThreads(thread, last) > 0) keep = false;
  }
  if (!state.loaded) keep = keep && inList;
  const without = inList ? state.order.filter((id) => id !== thread.id) : state.order;
  const order = keep ? insertSorted(without, thread, state.threads) : without;
  if (!keep && !inList) return state;
  return { ...state, order };
}

/**
 * Whether a thread not yet listed joins the list: it matches the filter and, under a search,
 * its name (the hub matched phones and emails too, so a listed one stays on the filter alone).
 */
function takesIn(thread: Thread, f: InboxFilter, me: string | null): boolean {
  return matchesFilter(thread, f, me) && (!f.q.trim() || nameMatches(thread, f.q));
}

function nameMatches(thread: Thread, q: string): boolean {
  return (thread.contact_name ?? '').toLowerCase().includes(q.trim().toLowerCase());
}

/** Whether a thread belongs in the list under the filter (the search aside, see placeInList). */
export function matchesFilter(t: Thread, f: InboxFilter, me: string | null): boolean {
  if (t.merged_into) return false;
  if (f.scope === 'mine' && t.assignee_id !== me) return false;
  if (f.scope === 'unassigned' && t.assignee_id !== null) return false;
  if (f.state && t.state !== f.state) return false;
  if (f.channel && t.last_channel_kind !== f.channel) return false;
  if (f.vacancy && t.vacancy !== f.vacancy) return false;
  if (f.queue_id && t.queue_id !== f.queue_id) return false;
  return true;
}

/** The list's order: newest activity first, then by id (as the API's cursor). */
export function compareThreads(a: Thread, b: Thread): number {
  const byTime = compareTimes(b.last_message_at, a.last_message_at);
  if (byTime !== 0) return byTime;
  return a.id === b.id ? 0 : a.id > b.id ? -1 : 1;
}

function sortIds(ids: string[], threads: Record<string, Thread>): string[] {
  const unique = [...new Set(ids)];
  // A next page usually just follows the list: no sorting needed.
  for (let i = 1; i < unique.length; i++) {
    if (compareThreads(threads[unique[i - 1]], threads[unique[i]]) > 0) {
      return unique.sort((a, b) => compareThreads(threads[a], threads[b]));
    }
  }
  return unique;
}

/** `order` (sorted, without `thread`) with `thread` put in its place. */
function insertSorted(order: string[], thread: Thread, threads: Record<string, Thread>): string[] {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareThreads(threads[order[mid]], thread) < 0) lo = mid + 1;
    else hi = mid;
  }
  return [...order.slice(0, lo), thread.id, ...order.slice(lo)];
}

function putThread(threads: Record<string, Thread>, t: Thread): Record<string, Thread> {
  const known = threads[t.id];
  if (known && compareTimes(known.updated_at, t.updated_at) > 0) return threads;
  return { ...threads, [t.id]: t };
}

/** `putThread` for a page: the map is copied once, not once per thread. */
function putThreads(threads: Record<string, Thread>, page: Thread[]): Record<string, Thread> {
  let out = threads;
  for (const t of page) {
    const known = out[t.id];
    if (known && compareTimes(known.updated_at, t.updated_at) > 0) continue;
    if (out === threads) out = { ...threads };
    out[t.id] = t;
  }
  return out;
}

/** The thread the user is reading has nothing unread for them (the client marks it read). */
function zeroOpenUnread(threads: Record<string, Thread>, openId: string | null): Record<string, Thread> {
  if (!openId || !threads[openId] || threads[openId].unread === 0) return threads;
  return { ...threads, [openId]: { ...threads[openId], unread: 0 } };
}

/** Timeline order: creation time, then id (UUIDv7, time-ordered). */
export function compareMessages(a: ThreadMessage, b: ThreadMessage): number {
  const byTime = compareTimes(a.created_at, b.created_at);
  if (byTime !== 0) return byTime;
  return a.id === b.id ? 0 : a.id < b.id ? -1 : 1;
}

/** Merges messages by id, the copy with the later `updated_at` winning, in timeline order. */
export function mergeThreadMessages(base: ThreadMessage[], incoming: ThreadMessage[]): ThreadMessage[] {
  const byId = new Map<string, ThreadMessage>();
  for (const m of base) byId.set(m.id, m);
  for (const m of incoming) {
    const held = byId.get(m.id);
    if (!held || !isOlder(m, held)) byId.set(m.id, m);
  }
  return [...byId.values()].sort(compareMessages);
}

const DELIVERY_RANK: Record<string, number> = { queued: 0, sent: 1, delivered: 2, read: 3 };

/** `m` is an older copy than `held`: written before it, or an equal time with less progress. */
function isOlder(m: ThreadMessage, held: ThreadMessage): boolean {
  const byTime = compareTimes(m.updated_at, held.updated_at);
  if (byTime !== 0) return byTime < 0;
  const a = DELIVERY_RANK[m.delivery_state ?? ''];
  const b = DELIVERY_RANK[held.delivery_state ?? ''];
  return a !== undefined && b !== undefined && a < b;
}

function upsertMessage(state: InboxState, msg: ThreadMessage): InboxState {
  const prev = state.timelines[msg.thread_id];
  const timeline: Timeline = {
    items: mergeThreadMessages(prev?.items ?? [], [msg]),
    hasMore: prev?.hasMore ?? true,
    loaded: prev?.loaded ?? false,
  };
  // The typist's reply or note has come: they are done typing.
  let typing = state.typing;
  const author = msg.author_user_id;
  if (author && typing[msg.thread_id]?.[author]) {
    const users = { ...typing[msg.thread_id] };
    delete users[author];
    typing = { ...typing };
    if (Object.keys(users).length) typing[msg.thread_id] = users;
    else delete typing[msg.thread_id];
  }
  return {
    ...state,
    typing,
    timelines: { ...state.timelines, [msg.thread_id]: timeline },
    pending: dropConfirmed(state.pending, [msg]),
  };
}

function dropConfirmed(pending: Record<string, PendingReply>, msgs: ThreadMessage[]) {
  let out = pending;
  for (const m of msgs) {
    if (m.client_message_id && out[m.client_message_id]) {
      if (out === pending) out = { ...pending };
      delete out[m.client_message_id];
    }
  }
  return out;
}

function patchPending(state: InboxState, id: string, patch: Partial<PendingReply>): InboxState {
  const p = state.pending[id];
  if (!p) return state;
  return { ...state, pending: { ...state.pending, [id]: { ...p, ...patch } } };
}

/** The list as threads. */
export function listThreads(state: InboxState): Thread[] {
  return state.order.map((id) => state.threads[id]);
}

/** A timeline entry: a stored message, or a pending one (shown as queued). */
export type TimelineEntry = { kind: 'stored'; message: ThreadMessage } | { kind: 'pending'; reply: PendingReply };

export function timelineEntries(state: InboxState, threadId: string): TimelineEntry[] {
  const stored = (state.timelines[threadId]?.items ?? []).map((message) => ({ kind: 'stored' as const, message }));
  const pending = Object.values(state.pending)
    .filter((p) => p.thread_id === threadId)
    .sort((a, b) => compareTimes(a.created_at, b.created_at))
    .map((reply) => ({ kind: 'pending' as const, reply }));
  return [...stored, ...pending];
}

/** Staff typing in a thread's composer now, except the user. */
export function threadTypingUsers(state: InboxState, threadId: string, now: number): string[] {
  return Object.entries(state.typing[threadId] ?? {})
    .filter(([u, until]) => until > now && u !== state.me)
    .map(([u]) => u);
}

/** Unread threads in the list. */
export function unreadThreads(state: InboxState): number {
  return state.order.filter((id) => state.threads[id].unread > 0).length;
}

/** Something the user should hear about: a thread newly assigned to them, or a mention. */
export type Notice =
  | { kind: 'assigned'; thread: Thread }
  | { kind: 'mention'; mention: ThreadMention; thread: Thread | null };

/**
 * What a frame tells the user, given the state before it: a `thread.updated` that makes them
 * the assignee (and did not before), or a `thread.mention`. Repeats (at or below the
 * position held) tell nothing.
 */
export function noticesFor(before: InboxState, frame: ServerFrame, me: string): Notice[] {
  if (frame.type !== 'event') return [];
  if (before.position !== null && frame.position <= before.position) return [];
  if (frame.kind === 'thread.updated') {
    const t = frame.data as Thread;
    const prev = before.threads[t.id];
    if (t.assignee_id === me && prev?.assignee_id !== me && !t.merged_into && t.state !== 'closed') {
      if (prev && compareTimes(prev.updated_at, t.updated_at) > 0) return [];
      return [{ kind: 'assigned', thread: t }];
    }
  }
  if (frame.kind === 'thread.mention') {
    const m = frame.data as ThreadMention;
    return [{ kind: 'mention', mention: m, thread: before.threads[m.thread_id] ?? null }];
  }
  return [];
}

/** Delivery states in their order; `failed` stands apart. */
export const DELIVERY_STEPS = ['queued', 'sent', 'delivered', 'read'] as const;
