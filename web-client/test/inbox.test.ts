import { describe, expect, it } from 'vitest';
import type { ServerFrame, Thread, ThreadMessage } from '../src/api/types';
import {
  DEFAULT_FILTER,
  inboxReducer,
  initialInboxState,
  listThreads,
  noticesFor,
  threadTypingUsers,
  timelineEntries,
  unreadThreads,
} from '../src/state/inbox';
import type { InboxAction, InboxState } from '../src/state/inbox';
import { TYPING_TTL_MS } from '../src/state/chat';

const ME = 'u-me';
const OTHER = 'u-other';

function thread(id: string, patch: Partial<Thread> = {}): Thread {
  return {
    id,
    contact_id: `c-${id}`,
    contact_name: `Имя ${id}`,
    state: 'open',
    assignee_id: ME,
    queue_id: 'q1',
    vacancy: 'Курьер',
    subject: null,
    preview: 'Здравствуйте',
    unread: 1,
    last_channel_account_id: 'a-sms',
    last_channel_kind: 'sms',
    last_message_at: '2026-11-27T09:00:00.000Z',
    last_inbound_at: null,
    awaiting_reply_since: null,
    waiting_since: null,
    assigned_at: null,
    first_inbound_at: null,
    first_response_at: null,
    resolved_at: null,
    reroute_reason: null,
    rerouted_from: null,
    rerouted_at: null,
    merged_into: null,
    created_at: '2026-11-27T09:00:00.000Z',
    updated_at: '2026-11-27T09:00:00.000Z',
    ...patch,
  };
}

function msg(id: string, patch: Partial<ThreadMessage> = {}): ThreadMessage {
  return {
    id,
    thread_id: 't1',
    direction: 'out',
    channel_account_id: 'a-sms',
    channel_kind: 'sms',
    author_user_id: ME,
    remote_address: '+375291234567',
    subject: null,
    text: `text ${id}`,
    html: null,
    attachments: [],
    mentions: [],
    external_id: null,
    client_message_id: null,
    delivery_state: null,
    failure_reason: null,
    auto_submitted: false,
    created_at: '2026-11-27T09:00:00.000Z',
    updated_at: '2026-11-27T09:00:00.000Z',
    ...patch,
  };
}

let pos = 100;
function ev(kind: string, data: unknown, position = ++pos): ServerFrame {
  return { type: 'event', position, kind, data } as ServerFrame;
}

function run(state: InboxState, ...actions: InboxAction[]): InboxState {
  return actions.reduce(inboxReducer, state);
}

function loaded(threads: Thread[], filter = DEFAULT_FILTER, limit = 50): InboxState {
  return run(initialInboxState(ME), { type: 'filter_set', filter }, { type: 'threads_loaded', page: threads, limit, replace: true });
}

const at = (min: number) => new Date(Date.UTC(2026, 10, 27, 9, min)).toISOString();

describe('inbox list', () => {
  it('a_thread_updated_event_inserts_a_new_matching_thread_in_activity_order', () => {
    let s = loaded([thread('b', { last_message_at: at(5) }), thread('a', { last_message_at: at(1) })]);
    expect(listThreads(s).map((t) => t.id)).toEqual(['b', 'a']);
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('c', { last_message_at: at(3), updated_at: at(3) })) });
    expect(listThreads(s).map((t) => t.id)).toEqual(['b', 'c', 'a']);
    // A new message moves a thread to the top.
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { last_message_at: at(9), updated_at: at(9), preview: 'новое' })) });
    expect(listThreads(s).map((t) => t.id)).toEqual(['a', 'b', 'c']);
    expect(s.threads.a.preview).toBe('новое');
  });

  it('events_are_applied_once_and_in_position_order', () => {
    let s = loaded([thread('a', { last_message_at: at(1) })]);
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { updated_at: at(5), unread: 3 }), 500) });
    // A repeat (same or lower position) changes nothing, even with other data.
    const again = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { updated_at: at(6), unread: 9 }), 500) });
    expect(again).toBe(s);
    const older = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { updated_at: at(7), unread: 9 }), 499) });
    expect(older.threads.a.unread).toBe(3);
  });

  it('an_older_copy_from_rest_never_replaces_a_newer_one_from_an_event', () => {
    let s = loaded([thread('a', { updated_at: at(1), unread: 1 })]);
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { updated_at: at(4), unread: 2, state: 'pending' })) });
    s = run(s, { type: 'thread_loaded', thread: thread('a', { updated_at: at(2), unread: 1 }) });
    expect(s.threads.a.state).toBe('pending');
    expect(s.threads.a.unread).toBe(2);
  });

  it('the_filter_decides_membership_on_every_update', () => {
    const mine = { ...DEFAULT_FILTER, scope: 'mine' as const };
    let s = loaded([thread('a', { assignee_id: ME })], mine);
    // Assigned to someone else: it leaves "mine".
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { assignee_id: OTHER, updated_at: at(2) })) });
    expect(s.order).toEqual([]);
    // Threads of others do not enter; a thread assigned to me does.
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('b', { assignee_id: OTHER, updated_at: at(2) })) });
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('c', { assignee_id: ME, updated_at: at(2) })) });
    expect(s.order).toEqual(['c']);

    const unassigned = loaded([], { ...DEFAULT_FILTER, scope: 'unassigned' });
    const u = run(
      unassigned,
      { type: 'frame', frame: ev('thread.updated', thread('x', { assignee_id: null })) },
      { type: 'frame', frame: ev('thread.updated', thread('y', { assignee_id: ME })) },
    );
    expect(u.order).toEqual(['x']);

    const closedEmail = loaded([], { ...DEFAULT_FILTER, scope: 'all', state: 'closed', channel: 'email', vacancy: 'Курьер' });
    const c = run(
      closedEmail,
      { type: 'frame', frame: ev('thread.updated', thread('e1', { state: 'closed', last_channel_kind: 'email' })) },
      { type: 'frame', frame: ev('thread.updated', thread('e2', { state: 'open', last_channel_kind: 'email' })) },
      { type: 'frame', frame: ev('thread.updated', thread('e3', { state: 'closed', last_channel_kind: 'sms' })) },
      { type: 'frame', frame: ev('thread.updated', thread('e4', { state: 'closed', last_channel_kind: 'email', vacancy: 'Повар' })) },
    );
    expect(c.order).toEqual(['e1']);
  });

  it('a_search_takes_in_new_threads_only_by_name_but_keeps_those_the_hub_found', () => {
    let s = loaded([thread('p', { contact_name: 'Пётр' })], { ...DEFAULT_FILTER, scope: 'all', q: '7654321' });
    s = run(
      s,
      { type: 'frame', frame: ev('thread.updated', thread('p', { contact_name: 'Пётр', updated_at: at(3) })) },
      { type: 'frame', frame: ev('thread.updated', thread('z', { contact_name: 'Зоя' })) },
    );
    expect(s.order).toEqual(['p']);
    let n = loaded([], { ...DEFAULT_FILTER, scope: 'all', q: 'анна' });
    n = run(n, { type: 'frame', frame: ev('thread.updated', thread('an', { contact_name: 'Анна Иванова' })) });
    expect(n.order).toEqual(['an']);
  });

  it('a_thread_beyond_the_loaded_pages_waits_for_paging', () => {
    // The page was full: more exist after the last loaded thread.
    let s = loaded([thread('new', { last_message_at: at(9) }), thread('mid', { last_message_at: at(5) })], { ...DEFAULT_FILTER, scope: 'all' }, 2);
    expect(s.hasMore).toBe(true);
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('old', { last_message_at: at(1) })) });
    expect(s.order).toEqual(['new', 'mid']);
    s = run(s, { type: 'threads_loaded', page: [thread('old', { last_message_at: at(1) })], limit: 2, replace: false });
    expect(s.order).toEqual(['new', 'mid', 'old']);
    expect(s.hasMore).toBe(false);
  });

  it('a_merged_thread_leaves_the_list_and_the_open_view_follows_the_survivor', () => {
    let s = loaded([thread('a', { last_message_at: at(2) }), thread('b', { last_message_at: at(1) })], { ...DEFAULT_FILTER, scope: 'all' });
    s = run(
      s,
      { type: 'open_thread', threadId: 'b' },
      { type: 'timeline_loaded', threadId: 'b', page: [msg('m1', { thread_id: 'b' })], limit: 50, replace: true },
      { type: 'timeline_loaded', threadId: 'a', page: [msg('m2', { thread_id: 'a' })], limit: 50, replace: true },
    );
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('b', { merged_into: 'a', updated_at: at(3) })) });
    expect(s.order).toEqual(['a']);
    expect(s.openThreadId).toBe('a');
    // Both timelines are dropped, to be reloaded.
    expect(s.timelines.a).toBeUndefined();
    expect(s.timelines.b).toBeUndefined();
    // A merged thread in a REST page is not listed either.
    const r = run(s, { type: 'threads_loaded', page: [thread('b', { merged_into: 'a', updated_at: at(4) })], limit: 50, replace: true });
    expect(r.order).not.toContain('b');
  });

  it('an_undone_merge_brings_the_thread_back_and_drops_both_timelines', () => {
    let s = loaded([thread('a', { last_message_at: at(2) }), thread('b', { last_message_at: at(1) })], { ...DEFAULT_FILTER, scope: 'all' });
    s = run(s, { type: 'open_thread', threadId: 'a' }, { type: 'frame', frame: ev('thread.updated', thread('b', { merged_into: 'a', updated_at: at(3) })) });
    s = run(s, { type: 'timeline_loaded', threadId: 'a', page: [msg('m1', { thread_id: 'a' }), msg('m2', { thread_id: 'a' })], limit: 50, replace: true });
    expect(s.order).toEqual(['a']);
    // The undo: the merged thread stands on its own again, and took its messages back.
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('b', { merged_into: null, updated_at: at(4) })) });
    expect(s.order).toEqual(['a', 'b']);
    expect(s.openThreadId).toBe('a');
    expect(s.timelines.a).toBeUndefined();
    // A client that never held the merged copy learns it from contact.merge_undone.
    let r = loaded([thread('a', { last_message_at: at(2), contact_id: 'c-a' })], { ...DEFAULT_FILTER, scope: 'all' });
    r = run(r, { type: 'timeline_loaded', threadId: 'a', page: [msg('m1', { thread_id: 'a' })], limit: 50, replace: true });
    r = run(r, { type: 'timeline_loaded', threadId: 'x', page: [msg('m9', { thread_id: 'x' })], limit: 50, replace: true });
    const undone = { id: 'mg1', survivor_id: 'c-a', merged_id: 'c-b', moved_identities: [], reason: 'manual', at: at(3), undone_at: at(4) };
    r = run(r, { type: 'frame', frame: ev('contact.merge_undone', undone) });
    expect(r.timelines.a).toBeUndefined();
    expect(r.timelines.x).toBeDefined();
  });

  it('unread_counts_come_from_the_hub_and_the_open_thread_has_none', () => {
    let s = loaded([thread('a', { unread: 2 }), thread('b', { unread: 0 })], { ...DEFAULT_FILTER, scope: 'all' });
    expect(unreadThreads(s)).toBe(1);
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('b', { unread: 1, updated_at: at(2) })) });
    expect(unreadThreads(s)).toBe(2);
    s = run(s, { type: 'open_thread', threadId: 'a' });
    expect(s.threads.a.unread).toBe(0);
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('a', { unread: 5, updated_at: at(3) })) });
    expect(s.threads.a.unread).toBe(0);
    expect(unreadThreads(s)).toBe(1);
  });

  it('threads_assigned_while_the_first_page_loads_all_show_when_it_arrives', () => {
    // The hub routed five threads to me in one go (one time) while the page was being read:
    // the page has two of them, the events brought all five before the page's answer.
    let s = run(initialInboxState(ME), { type: 'frame', frame: { type: 'welcome', user_id: ME } as ServerFrame }, { type: 'threads_loading' });
    const five = ['a', 'b', 'c', 'd', 'e'].map((id, i) => thread(id, { last_message_at: at(i), updated_at: at(30) }));
    for (const t of five) s = run(s, { type: 'frame', frame: ev('thread.updated', t) });
    expect(s.order).toEqual([]);
    s = run(s, { type: 'threads_loaded', page: [five[1], five[0]], limit: 50, replace: true });
    expect(listThreads(s).map((t) => t.id)).toEqual(['e', 'd', 'c', 'b', 'a']);
  });

  it('a_reload_keeps_only_threads_events_brought_while_it_loaded', () => {
    let s = loaded([thread('old', { last_message_at: at(1), updated_at: at(1) }), thread('gone', { last_message_at: at(0), updated_at: at(1) })]);
    s = run(s, { type: 'frame', frame: { type: 'resync', position: 900 } }, { type: 'threads_loading' });
    // Brought while loading: one still mine, one taken by a colleague after it came.
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('new', { last_message_at: at(5), updated_at: at(20) }), 901) });
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('moved', { last_message_at: at(6), updated_at: at(20) }), 902) });
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('moved', { last_message_at: at(6), updated_at: at(21), assignee_id: OTHER }), 903) });
    // `gone` was reassigned during the gap: the page (the hub's word) no longer has it.
    s = run(s, { type: 'threads_loaded', page: [thread('old', { last_message_at: at(1), updated_at: at(1) })], limit: 50, replace: true });
    expect(listThreads(s).map((t) => t.id)).toEqual(['new', 'old']);
    // The next reload starts afresh: `new`, not in its page, is not kept by the last one's events.
    s = run(s, { type: 'threads_loading' }, { type: 'threads_loaded', page: [thread('old', { last_message_at: at(1), updated_at: at(1) })], limit: 50, replace: true });
    expect(listThreads(s).map((t) => t.id)).toEqual(['old']);
  });

  it('a_thread_brought_while_a_full_page_loads_beyond_its_end_waits_for_paging', () => {
    let s = run(initialInboxState(ME), { type: 'threads_loading' });
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('far', { last_message_at: at(0), updated_at: at(20) })) });
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('near', { last_message_at: at(4), updated_at: at(20) })) });
    const page = [thread('p2', { last_message_at: at(5) }), thread('p1', { last_message_at: at(3) })];
    s = run(s, { type: 'threads_loaded', page, limit: 2, replace: true });
    expect(listThreads(s).map((t) => t.id)).toEqual(['p2', 'near', 'p1']);
    expect(s.hasMore).toBe(true);
  });

  it('a_resync_marks_the_inbox_stale_until_the_list_is_loaded_again', () => {
    let s = loaded([thread('a')]);
    s = run(s, { type: 'frame', frame: { type: 'resync', position: 900 } });
    expect(s.stale).toBe(true);
    expect(s.position).toBe(900);
    s = run(s, { type: 'threads_loaded', page: [thread('a')], limit: 50, replace: true });
    expect(s.stale).toBe(false);
  });

  it('notices_tell_about_threads_newly_assigned_to_me_and_mentions', () => {
    const s = loaded([thread('a', { assignee_id: null })], { ...DEFAULT_FILTER, scope: 'all' });
    const assigned = ev('thread.updated', thread('a', { assignee_id: ME, updated_at: at(2) }));
    expect(noticesFor(s, assigned, ME).map((n) => n.kind)).toEqual(['assigned']);
    const after = run(s, { type: 'frame', frame: assigned });
    // Still mine after a new message: no second notice.
    expect(noticesFor(after, ev('thread.updated', thread('a', { assignee_id: ME, updated_at: at(3) })), ME)).toEqual([]);
    expect(noticesFor(s, ev('thread.updated', thread('b', { assignee_id: OTHER })), ME)).toEqual([]);
    const mention = ev('thread.mention', { thread_id: 'a', message_id: 'n1', by: OTHER, text: '@me посмотри' });
    expect(noticesFor(s, mention, ME)[0]).toMatchObject({ kind: 'mention', mention: { message_id: 'n1' } });
    const m = run(s, { type: 'frame', frame: mention });
    expect(m.mentions).toHaveLength(1);
    expect(run(m, { type: 'open_thread', threadId: 'a' }).mentions).toHaveLength(0);
  });
});

describe('timeline and delivery states', () => {
  const q = (state: ThreadMessage['delivery_state'], min: number, patch: Partial<ThreadMessage> = {}) =>
    msg('r1', { delivery_state: state, updated_at: at(min), client_message_id: 'cm-1', ...patch });

  it('a_reply_moves_queued_sent_delivered_read_and_never_back', () => {
    let s = run(initialInboxState(ME), { type: 'timeline_loaded', threadId: 't1', page: [], limit: 50, replace: true });
    const states = () => s.timelines.t1.items.map((m) => m.delivery_state);
    s = run(s, { type: 'frame', frame: ev('thread.message', q('queued', 1)) });
    expect(states()).toEqual(['queued']);
    s = run(s, { type: 'frame', frame: ev('thread.message_updated', q('sent', 2)) });
    expect(states()).toEqual(['sent']);
    // The POST's answer (queued, older) arrives late: it does not move the state back.
    s = run(s, { type: 'message_stored', message: q('queued', 1) });
    expect(states()).toEqual(['sent']);
    s = run(s, { type: 'frame', frame: ev('thread.message_updated', q('delivered', 3)) });
    s = run(s, { type: 'frame', frame: ev('thread.message_updated', q('read', 4)) });
    expect(states()).toEqual(['read']);
    // A REST page loaded before the read report does not undo it either.
    s = run(s, { type: 'timeline_loaded', threadId: 't1', page: [q('delivered', 3)], limit: 50, replace: true });
    expect(states()).toEqual(['read']);
    // Equal times: the further state wins.
    s = run(s, { type: 'message_stored', message: q('delivered', 4) });
    expect(states()).toEqual(['read']);
  });

  it('a_failed_reply_carries_its_reason_and_retry_queues_it_again', () => {
    let s = run(initialInboxState(ME), { type: 'frame', frame: ev('thread.message', q('queued', 1)) });
    s = run(s, { type: 'frame', frame: ev('thread.message_updated', q('failed', 2, { failure_reason: 'gave up after 5 attempts' })) });
    expect(s.timelines.t1.items[0]).toMatchObject({ delivery_state: 'failed', failure_reason: 'gave up after 5 attempts' });
    // POST …/retry answers with the message queued again (newer).
    s = run(s, { type: 'message_stored', message: q('queued', 3, { failure_reason: null }) });
    expect(s.timelines.t1.items[0].delivery_state).toBe('queued');
    s = run(s, { type: 'frame', frame: ev('thread.message_updated', q('sent', 4)) });
    expect(s.timelines.t1.items[0].delivery_state).toBe('sent');
  });

  it('a_pending_reply_shows_until_the_stored_message_with_its_client_id_arrives', () => {
    let s = initialInboxState(ME);
    s = run(s, {
      type: 'reply_queued',
      reply: { client_message_id: 'cm-1', thread_id: 't1', kind: 'reply', text: 'Да', body: {}, channel_kind: 'sms', state: 'sending', created_at: at(1) },
    });
    expect(timelineEntries(s, 't1').map((e) => e.kind)).toEqual(['pending']);
    s = run(s, { type: 'reply_failed', clientMessageId: 'cm-1', error: 'network' });
    expect(s.pending['cm-1'].state).toBe('failed');
    s = run(s, { type: 'reply_retry', clientMessageId: 'cm-1' });
    expect(s.pending['cm-1'].state).toBe('sending');
    s = run(s, { type: 'frame', frame: ev('thread.message', q('queued', 1)) });
    expect(timelineEntries(s, 't1').map((e) => e.kind)).toEqual(['stored']);
  });

  it('the_timeline_is_in_time_order_with_history_pages_before_it', () => {
    let s = run(initialInboxState(ME), {
      type: 'timeline_loaded',
      threadId: 't1',
      page: [msg('m3', { created_at: at(3) }), msg('m2', { created_at: at(2) })],
      limit: 2,
      replace: true,
    });
    expect(s.timelines.t1.hasMore).toBe(true);
    s = run(s, { type: 'frame', frame: ev('thread.message', msg('m4', { created_at: at(4), direction: 'in' })) });
    s = run(s, { type: 'timeline_loaded', threadId: 't1', page: [msg('m1', { created_at: at(1) })], limit: 2, replace: false });
    expect(s.timelines.t1.items.map((m) => m.id)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(s.timelines.t1.hasMore).toBe(false);
    // A reload keeps live messages newer than the page.
    s = run(s, { type: 'frame', frame: ev('thread.message', msg('m5', { created_at: at(5), direction: 'note' })) });
    s = run(s, { type: 'timeline_loaded', threadId: 't1', page: [msg('m4', { created_at: at(4) }), msg('m3', { created_at: at(3) })], limit: 2, replace: true });
    expect(s.timelines.t1.items.map((m) => m.id)).toEqual(['m3', 'm4', 'm5']);
  });

  it('channel_health_events_replace_the_account', () => {
    let s = run(initialInboxState(ME), {
      type: 'channels_loaded',
      accounts: [{ id: 'a1', health: 'ok', name: 'SMS' } as never],
    });
    s = run(s, { type: 'frame', frame: ev('channel.health', { id: 'a1', health: 'down', last_error: 'no_network', name: 'SMS' }) });
    expect(s.channels.a1).toMatchObject({ health: 'down', last_error: 'no_network' });
  });
});

describe('a large inbox', () => {
  const sec = (s: number) => new Date(Date.UTC(2026, 10, 27, 9) - s * 1000).toISOString();

  it('ten_thousand_threads_load_page_by_page_in_order_without_quadratic_work', () => {
    const all = Array.from({ length: 10_000 }, (_, i) =>
      thread(`t${String(i).padStart(5, '0')}`, { assignee_id: null, last_message_at: sec(i) }),
    );
    const all_filter = { ...DEFAULT_FILTER, scope: 'all' as const };
    let s = loaded(all.slice(0, 50), all_filter);
    const started = performance.now();
    for (let p = 1; p < 200; p++) {
      s = run(s, { type: 'threads_loaded', page: all.slice(p * 50, p * 50 + 50), limit: 50, replace: false });
    }
    const took = performance.now() - started;
    expect(s.order.length).toBe(10_000);
    expect(s.order[0]).toBe('t00000');
    expect(s.order[9_999]).toBe('t09999');
    expect(s.hasMore).toBe(true);
    // Linear work per page takes about a second for all 200 pages here; quadratic work
    // (includes() in the filters) would take minutes.
    expect(took).toBeLessThan(5000);

    // A live update of a thread far down puts it at the top, the rest in order.
    s = run(s, { type: 'frame', frame: ev('thread.updated', { ...s.threads.t09000, last_message_at: sec(-10), updated_at: sec(-10) }) });
    expect(s.order[0]).toBe('t09000');
    expect(s.order[1]).toBe('t00000');
    expect(s.order.length).toBe(10_000);
    // A new thread lands in its place by activity time.
    s = run(s, { type: 'frame', frame: ev('thread.updated', thread('new', { assignee_id: null, last_message_at: sec(2.5), updated_at: sec(2.5) })) });
    expect(s.order.slice(0, 6)).toEqual(['t09000', 't00000', 't00001', 't00002', 'new', 't00003']);
  });
});

describe('timestamps on a whole second', () => {
  it('a_time_without_fraction_sorts_by_its_instant_not_as_text', () => {
    // The hub leaves out ".000" on a whole second: "…:05Z" is earlier than "…:05.500Z".
    const s = loaded(
      [thread('late', { last_message_at: '2026-11-27T09:00:05.500Z' }), thread('whole', { last_message_at: '2026-11-27T09:00:05Z' })],
      { ...DEFAULT_FILTER, scope: 'all' },
    );
    expect(listThreads(s).map((t) => t.id)).toEqual(['late', 'whole']);
    const held = run(s, { type: 'frame', frame: ev('thread.updated', thread('whole', { last_message_at: '2026-11-27T09:00:05Z', updated_at: '2026-11-27T09:00:06Z', unread: 7 })) });
    // An older copy (by instant) does not replace it.
    const stale = run(held, { type: 'frame', frame: ev('thread.updated', thread('whole', { updated_at: '2026-11-27T09:00:05.900Z', unread: 1 })) });
    expect(stale.threads.whole.unread).toBe(7);
  });

  it('timeline_messages_on_a_whole_second_keep_their_order', () => {
    const s = run(initialInboxState(ME), {
      type: 'timeline_loaded',
      threadId: 't1',
      page: [msg('b', { created_at: '2026-11-27T09:00:05.001Z' }), msg('a', { created_at: '2026-11-27T09:00:05Z' })],
      limit: 50,
      replace: true,
    });
    expect(s.timelines.t1.items.map((m) => m.id)).toEqual(['a', 'b']);
  });
});

describe('typing in threads', () => {
  const typing = (thread_id: string, user_id: string): ServerFrame => ({ type: 'typing', thread_id, user_id });

  it('a_notice_shows_for_the_thread_and_expires_after_the_rooms_timeout', () => {
    let s = run(initialInboxState(ME), { type: 'frame', frame: typing('t1', OTHER), now: 1000 });
    expect(threadTypingUsers(s, 't1', 1000)).toEqual([OTHER]);
    expect(threadTypingUsers(s, 't2', 1000)).toEqual([]);
    expect(threadTypingUsers(s, 't1', 1000 + TYPING_TTL_MS - 1)).toEqual([OTHER]);
    expect(threadTypingUsers(s, 't1', 1000 + TYPING_TTL_MS)).toEqual([]);
    // Another frame keeps it up; the expiry drops it from the state.
    s = run(s, { type: 'frame', frame: typing('t1', OTHER), now: 4000 });
    s = run(s, { type: 'typing_expire', now: 1000 + TYPING_TTL_MS + 1 });
    expect(threadTypingUsers(s, 't1', 1000 + TYPING_TTL_MS + 1)).toEqual([OTHER]);
    s = run(s, { type: 'typing_expire', now: 4000 + TYPING_TTL_MS });
    expect(s.typing).toEqual({});
    // Nothing expired: the same state (no render).
    expect(run(s, { type: 'typing_expire', now: 99_000 })).toBe(s);
  });

  it('room_typing_and_my_own_are_not_thread_typing', () => {
    let s = run(initialInboxState(ME), { type: 'frame', frame: { type: 'typing', room_id: 'r1', user_id: OTHER }, now: 1000 });
    expect(s.typing).toEqual({});
    s = run(s, { type: 'frame', frame: typing('t1', ME), now: 1000 });
    expect(s.typing).toEqual({});
  });

  it('the_typists_reply_or_note_ends_the_notice', () => {
    let s = run(
      initialInboxState(ME),
      { type: 'frame', frame: typing('t1', OTHER), now: 1000 },
      { type: 'frame', frame: typing('t1', 'u-third'), now: 1000 },
    );
    s = run(s, { type: 'frame', frame: ev('thread.message', msg('n1', { direction: 'note', author_user_id: OTHER })), now: 1500 });
    expect(threadTypingUsers(s, 't1', 1500)).toEqual(['u-third']);
    // An applicant's message ends nobody's notice.
    s = run(s, { type: 'frame', frame: ev('thread.message', msg('i1', { direction: 'in', author_user_id: null })), now: 1600 });
    expect(threadTypingUsers(s, 't1', 1600)).toEqual(['u-third']);
    s = run(s, { type: 'frame', frame: ev('thread.message', msg('o1', { author_user_id: 'u-third' })), now: 1700 });
    expect(s.typing).toEqual({});
  });
});
