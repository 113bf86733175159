import { describe, expect, it } from 'vitest';
import type { Message, Room, ServerFrame } from '../src/api/types';
import { chatReducer, initialChatState, readBy, typingUsers, TYPING_TTL_MS } from '../src/state/chat';
import type { ChatAction, ChatState } from '../src/state/chat';

const ME = 'u-olga';
const IVAN = 'u-ivan';

function room(id: string, extra: Partial<Room> = {}): Room {
  return {
    id,
    kind: 'direct',
    name: null,
    member_ids: [IVAN, ME],
    created_by: ME,
    created_at: '2026-11-27T09:00:00.000Z',
    last_message_at: null,
    unread: 0,
    ...extra,
  };
}

function msg(id: string, position: number, extra: Partial<Message> = {}): Message {
  return {
    id,
    room_id: 'r1',
    author_id: IVAN,
    body: `body ${id}`,
    client_message_id: `c-${id}`,
    mentions: [],
    attachments: [],
    position,
    created_at: new Date(Date.UTC(2026, 10, 27, 10, 0, position)).toISOString(),
    edited_at: null,
    deleted: false,
    ...extra,
  };
}

const ev = (position: number, kind: string, data: unknown): ServerFrame =>
  ({ type: 'event', position, kind, data }) as ServerFrame;

function run(state: ChatState, ...frames: ServerFrame[]): ChatState {
  return frames.reduce((s, frame) => chatReducer(s, { type: 'frame', frame, now: 1000 }), state);
}

function connected(): ChatState {
  let s = run(initialChatState(), { type: 'welcome', v: 1, ref: null, user_id: ME, session_id: 's', node: 'n', position: 10 });
  s = chatReducer(s, { type: 'rooms_loaded', rooms: [room('r1')] });
  return run(s, { type: 'presence_snapshot', users: [], last: true }, { type: 'live', position: 10 });
}

describe('chat state', () => {
  it('messages_are_kept_in_position_order_whatever_order_they_arrive_in', () => {
    let s = connected();
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: [msg('m5', 5), msg('m3', 3)], limit: 50, replace: true });
    s = run(s, ev(12, 'room.message', msg('m12', 12)), ev(11, 'room.message', msg('m11', 11)));
    // 11 arrived after 12 and is at or below the last position: a repeat, ignored.
    expect(s.histories.r1.items.map((m) => m.position)).toEqual([3, 5, 12]);
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: [msg('m11', 11)], limit: 50, replace: false });
    expect(s.histories.r1.items.map((m) => m.position)).toEqual([3, 5, 11, 12]);
  });

  it('a_replayed_event_is_applied_once', () => {
    let s = connected();
    const e = ev(11, 'room.message', msg('m11', 11));
    s = run(s, e, e);
    expect(s.histories.r1.items).toHaveLength(1);
    expect(s.rooms.r1.unread).toBe(1);
    expect(s.position).toBe(11);
    // After a reconnect the replay repeats nothing we have, and the unread count holds.
    s = run(s, { type: 'welcome', v: 1, ref: null, user_id: ME, session_id: 's', node: 'n', position: 12 }, e,
      ev(12, 'room.message', msg('m12', 12)), { type: 'live', position: 12 });
    expect(s.histories.r1.items.map((m) => m.id)).toEqual(['m11', 'm12']);
    expect(s.rooms.r1.unread).toBe(2);
  });

  it('an_event_already_reflected_in_the_rest_load_does_not_count_twice', () => {
    let s = connected();
    const m = msg('m11', 11);
    s = chatReducer(s, { type: 'rooms_loaded', rooms: [room('r1', { unread: 1, last_message_at: m.created_at })] });
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: [m], limit: 50, replace: true });
    s = run(s, ev(11, 'room.message', m));
    expect(s.rooms.r1.unread).toBe(1);
    expect(s.histories.r1.items).toHaveLength(1);
  });

  it('messages_in_the_open_room_are_not_unread_and_own_messages_never_are', () => {
    let s = connected();
    s = chatReducer(s, { type: 'open_room', roomId: 'r1' });
    s = run(s, ev(11, 'room.message', msg('m11', 11)), ev(12, 'room.message', msg('m12', 12, { author_id: ME })));
    expect(s.rooms.r1.unread).toBe(0);
    s = chatReducer(s, { type: 'open_room', roomId: null });
    s = run(s, ev(13, 'room.message', msg('m13', 13, { author_id: ME })), ev(14, 'room.message', msg('m14', 14)));
    expect(s.rooms.r1.unread).toBe(1);
  });

  it('resync_marks_the_state_stale_and_takes_the_position_and_a_reload_clears_it', () => {
    let s = connected();
    s = run(s, ev(11, 'room.message', msg('m11', 11)));
    s = run(s, { type: 'welcome', v: 1, ref: null, user_id: ME, session_id: 's', node: 'n', position: 900 },
      { type: 'resync', position: 900 }, { type: 'live', position: 900 });
    expect(s.stale).toBe(true);
    expect(s.position).toBe(900);
    s = chatReducer(s, { type: 'rooms_loaded', rooms: [room('r1', { unread: 4 })] });
    expect(s.stale).toBe(false);
    expect(s.rooms.r1.unread).toBe(4);
    // Events after the resync position apply; older ones are repeats.
    s = run(s, ev(899, 'room.message', msg('m899', 899)), ev(901, 'room.message', msg('m901', 901)));
    expect(s.histories.r1.items.map((m) => m.id)).toEqual(['m11', 'm901']);
  });

  it('live_never_moves_the_position_back', () => {
    let s = connected();
    s = run(s, ev(20, 'room.message', msg('m20', 20)), { type: 'live', position: 15 });
    expect(s.position).toBe(20);
  });

  it('presence_snapshot_frames_replace_the_view_and_unlisted_users_are_offline', () => {
    let s = connected();
    s = run(s, { type: 'presence', users: [{ user_id: 'u-gone', status: 'online' }] });
    expect(s.presence['u-gone'].status).toBe('online');
    s = run(s,
      { type: 'welcome', v: 1, ref: null, user_id: ME, session_id: 's', node: 'n', position: 10 },
      { type: 'presence_snapshot', users: [{ user_id: IVAN, status: 'busy', text: 'Interview' }], last: false },
    );
    // Until the last frame, the old view stays.
    expect(s.presence['u-gone']).toBeDefined();
    s = run(s, { type: 'presence_snapshot', users: [{ user_id: ME, status: 'online' }], last: true });
    expect(Object.keys(s.presence).sort()).toEqual([IVAN, ME].sort());
    expect(s.presence[IVAN].text).toBe('Interview');
    s = run(s, { type: 'presence', users: [{ user_id: IVAN, status: 'offline' }] });
    expect(s.presence[IVAN].status).toBe('offline');
  });

  it('typing_notices_expire_and_end_when_the_typist_sends', () => {
    let s = connected();
    s = chatReducer(s, { type: 'frame', frame: { type: 'typing', room_id: 'r1', user_id: IVAN }, now: 1000 });
    expect(typingUsers(s, 'r1', 1000)).toEqual([IVAN]);
    expect(typingUsers(s, 'r1', 1000 + TYPING_TTL_MS + 1)).toEqual([]);
    s = run(s, ev(11, 'room.message', msg('m11', 11)));
    expect(typingUsers(s, 'r1', 1001)).toEqual([]);
    s = chatReducer(s, { type: 'frame', frame: { type: 'typing', room_id: 'r1', user_id: IVAN }, now: 1000 });
    s = chatReducer(s, { type: 'typing_expire', now: 1000 + TYPING_TTL_MS + 1 });
    expect(s.typing).toEqual({});
    // A thread's typing notice is the inbox's, not a room's.
    s = chatReducer(s, { type: 'frame', frame: { type: 'typing', thread_id: 't1', user_id: IVAN }, now: 1000 });
    expect(s.typing).toEqual({});
  });

  it('a_pending_send_ends_when_its_message_arrives_and_is_not_duplicated', () => {
    let s = connected();
    const send: ChatAction = {
      type: 'send_queued',
      send: { client_message_id: 'c-1', room_id: 'r1', body: 'hi', mentions: [], attachments: [], state: 'queued', created_at: 0 },
    };
    s = chatReducer(s, send);
    s = chatReducer(s, { type: 'send_acked', clientMessageId: 'c-1' });
    expect(s.pending['c-1'].state).toBe('sent');
    const m = msg('m11', 11, { author_id: ME, client_message_id: 'c-1', body: 'hi' });
    s = run(s, ev(11, 'room.message', m));
    expect(s.pending['c-1']).toBeUndefined();
    expect(s.histories.r1.items).toHaveLength(1);
  });

  it('edits_and_deletes_replace_the_message_in_place', () => {
    let s = connected();
    s = run(s, ev(11, 'room.message', msg('m11', 11)), ev(12, 'room.message', msg('m12', 12)));
    s = run(s, ev(13, 'room.message_edited', msg('m11', 11, { body: 'new', edited_at: '2026-11-27T11:00:00Z' })));
    s = run(s, ev(14, 'room.message_deleted', msg('m12', 12, { body: '', deleted: true })));
    expect(s.histories.r1.items.map((m) => [m.id, m.body, m.deleted])).toEqual([['m11', 'new', false], ['m12', '', true]]);
  });

  it('read_marks_move_forward_only_and_my_mark_updates_unread', () => {
    let s = connected();
    s = run(s, ev(11, 'room.message', msg('m11', 11, { author_id: ME })), ev(12, 'room.message', msg('m12', 12)), ev(13, 'room.message', msg('m13', 13)));
    expect(s.rooms.r1.unread).toBe(2);
    s = run(s, ev(14, 'room.read', { room_id: 'r1', user_id: IVAN, message_id: 'm11', at: '' }));
    expect(readBy(s, s.histories.r1.items[0])).toEqual([IVAN]);
    s = run(s, ev(15, 'room.read', { room_id: 'r1', user_id: ME, message_id: 'm12', at: '' }));
    expect(s.rooms.r1.unread).toBe(1);
    s = run(s, ev(16, 'room.read', { room_id: 'r1', user_id: ME, message_id: 'm11', at: '' }));
    expect(s.readMarks.r1[ME]).toBe('m12');
  });

  it('a_room_i_was_removed_from_disappears_and_membership_changes_keep_unread', () => {
    let s = connected();
    s = run(s, ev(11, 'room.message', msg('m11', 11)));
    s = run(s, ev(12, 'room.members_changed', room('r1', { kind: 'group', name: 'G', member_ids: [ME, IVAN, 'u-x'] })));
    expect(s.rooms.r1.unread).toBe(1);
    expect(s.rooms.r1.member_ids).toHaveLength(3);
    s = run(s, ev(13, 'room.removed', { room_id: 'r1', user_id: ME }));
    expect(s.rooms.r1).toBeUndefined();
    expect(s.histories.r1).toBeUndefined();
  });

  it('mentions_are_collected_once', () => {
    let s = connected();
    const m = { room_id: 'r1', message_id: 'm11', author_id: IVAN, excerpt: 'hi @olga' };
    s = run(s, ev(11, 'mention', m));
    s = run(s, ev(12, 'mention', m));
    expect(s.mentions).toHaveLength(1);
    s = chatReducer(s, { type: 'mentions_seen', roomId: 'r1' });
    expect(s.mentions).toHaveLength(0);
  });
});

describe('presence and mentions in view', () => {
  it('after_a_complete_snapshot_a_user_missing_from_it_is_offline_even_if_rest_said_online', async () => {
    const { presenceOf } = await import('../src/state/chat');
    const rest = { user_id: IVAN, status: 'online' as const };
    let s = initialChatState(ME);
    expect(presenceOf(s, IVAN, rest)?.status).toBe('online');
    s = run(s, { type: 'welcome', v: 1, ref: null, user_id: ME, session_id: 's', node: 'n', position: 1 },
      { type: 'presence_snapshot', users: [{ user_id: ME, status: 'online' }], last: true });
    expect(presenceOf(s, IVAN, rest)).toBeNull();
  });

  it('a_mention_in_the_open_room_is_not_listed_as_new', () => {
    let s = connected();
    s = chatReducer(s, { type: 'open_room', roomId: 'r1' });
    s = run(s, ev(11, 'mention', { room_id: 'r1', message_id: 'm11', author_id: IVAN, excerpt: '@olga' }));
    expect(s.mentions).toHaveLength(0);
  });
});

describe('history paging', () => {
  it('a_full_page_means_more_history_and_a_short_older_page_is_the_end', () => {
    let s = connected();
    const page1 = [msg('m5', 5), msg('m4', 4)];
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: page1, limit: 2, replace: true });
    expect(s.histories.r1.hasMore).toBe(true);
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: [msg('m3', 3)], limit: 2, replace: false });
    expect(s.histories.r1.hasMore).toBe(false);
    expect(s.histories.r1.items.map((m) => m.id)).toEqual(['m3', 'm4', 'm5']);
  });

  it('a_reload_replaces_history_but_keeps_live_messages_newer_than_the_page', () => {
    let s = connected();
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: [msg('m5', 5)], limit: 50, replace: true });
    s = run(s, ev(20, 'room.message', msg('m20', 20)));
    s = chatReducer(s, { type: 'history_loaded', roomId: 'r1', page: [msg('m6', 6), msg('m5', 5)], limit: 50, replace: true });
    expect(s.histories.r1.items.map((m) => m.id)).toEqual(['m5', 'm6', 'm20']);
  });
});
