import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ServerFrame } from '../src/api/types';
import { BACKOFF_MAX_MS, RealtimeClient, backoffDelay, closeAction } from '../src/realtime/socket';
import type { ConnectionState, SocketLike } from '../src/realtime/socket';

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.closedWith = code;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(f: ServerFrame) {
    this.onmessage?.({ data: JSON.stringify(f) });
  }
  serverClose(code: number, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  handshake(position: number) {
    this.open();
    this.frame({ type: 'welcome', v: 1, ref: 'hello', user_id: 'u', session_id: 's', node: 'n', position });
    this.frame({ type: 'presence_snapshot', users: [], last: true });
    this.frame({ type: 'live', position });
  }
}

function setup(overrides: Partial<ConstructorParameters<typeof RealtimeClient>[0]> = {}) {
  const sockets: FakeSocket[] = [];
  const frames: ServerFrame[] = [];
  const states: ConnectionState[] = [];
  let position: number | null = null;
  let token = 'tok-1';
  const refresh = vi.fn(async (_stale: string | null) => (token = 'tok-2'));
  const ended = vi.fn();
  const client = new RealtimeClient({
    url: 'ws://hub/ws',
    token: () => token,
    refresh,
    position: () => position,
    onFrame: (f) => {
      frames.push(f);
      if (f.type === 'event' || f.type === 'live' || f.type === 'resync') position = Math.max(position ?? 0, f.position);
    },
    onState: (s) => states.push(s),
    onSessionEnded: ended,
    createSocket: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    random: () => 0.5,
    pingIntervalMs: 1000,
    pongTimeoutMs: 500,
    ...overrides,
  });
  return { client, sockets, frames, states, refresh, ended, last: () => sockets[sockets.length - 1] };
}

describe('backoff', () => {
  it('grows_exponentially_with_jitter_and_is_capped', () => {
    expect(backoffDelay(0, () => 0)).toBe(250);
    expect(backoffDelay(0, () => 1)).toBe(500);
    expect(backoffDelay(3, () => 0.5)).toBe(3000);
    expect(backoffDelay(50, () => 1)).toBe(BACKOFF_MAX_MS);
    expect(backoffDelay(50, () => 0)).toBe(BACKOFF_MAX_MS / 2);
  });
});

describe('close codes', () => {
  it('map_to_the_documented_reactions', () => {
    expect(closeAction(1006, '')).toBe('reconnect');
    expect(closeAction(1001, 'server_shutdown')).toBe('reconnect_now');
    expect(closeAction(4008, 'slow_consumer')).toBe('reconnect');
    expect(closeAction(4013, 'resume_required')).toBe('reconnect');
    expect(closeAction(4012, 'heartbeat_timeout')).toBe('reconnect');
    expect(closeAction(4002, 'token_expired')).toBe('refresh');
    expect(closeAction(4001, 'invalid_token')).toBe('refresh');
    expect(closeAction(4001, 'expected_hello')).toBe('stop');
    expect(closeAction(4003, 'session_revoked')).toBe('login');
    expect(closeAction(4004, 'account_deactivated')).toBe('login');
    expect(closeAction(4009, 'too_many_connections')).toBe('manual');
  });
});

describe('RealtimeClient', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('first_hello_has_no_since_and_a_reconnect_resumes_from_the_last_position', () => {
    const t = setup();
    t.client.start();
    t.last().open();
    expect(t.last().sent[0]).toEqual({ type: 'hello', v: 1, token: 'tok-1', ref: 'hello' });
    t.last().frame({ type: 'welcome', v: 1, ref: 'hello', user_id: 'u', session_id: 's', node: 'n', position: 50 });
    t.last().frame({ type: 'presence_snapshot', users: [], last: true });
    t.last().frame({ type: 'live', position: 50 });
    t.last().frame({ type: 'event', position: 52, kind: 'room.read', data: {} });
    expect(t.client.connectionState).toBe('live');
    t.last().serverClose(1006);
    expect(t.client.connectionState).toBe('reconnecting');
    vi.advanceTimersByTime(backoffDelay(0, () => 0.5));
    expect(t.sockets).toHaveLength(2);
    t.last().open();
    expect(t.last().sent[0]).toMatchObject({ type: 'hello', since: 52 });
  });

  it('reconnect_attempts_back_off_and_reset_after_live', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(1);
    t.last().serverClose(1006);
    vi.advanceTimersByTime(375); // attempt 0 with random 0.5
    expect(t.sockets).toHaveLength(2);
    t.last().serverClose(1006); // never opened
    vi.advanceTimersByTime(749);
    expect(t.sockets).toHaveLength(2);
    vi.advanceTimersByTime(1); // attempt 1: 750 ms
    expect(t.sockets).toHaveLength(3);
    t.last().serverClose(1006);
    vi.advanceTimersByTime(1499);
    expect(t.sockets).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(t.sockets).toHaveLength(4);
    t.last().handshake(1);
    t.last().serverClose(4008, 'slow_consumer');
    vi.advanceTimersByTime(375);
    expect(t.sockets).toHaveLength(5);
  });

  it('token_expired_refreshes_then_reconnects_with_the_new_token', async () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    t.last().serverClose(4002, 'token_expired');
    await vi.advanceTimersByTimeAsync(0);
    expect(t.refresh).toHaveBeenCalledTimes(1);
    expect(t.refresh).toHaveBeenCalledWith('tok-1');
    await vi.advanceTimersByTimeAsync(500);
    t.last().open();
    expect(t.last().sent[0]).toMatchObject({ type: 'hello', token: 'tok-2', since: 3 });
  });

  it('a_revoked_session_stops_and_asks_for_login', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    t.last().serverClose(4003, 'session_revoked');
    expect(t.ended).toHaveBeenCalledWith('session_revoked');
    vi.advanceTimersByTime(60_000);
    expect(t.sockets).toHaveLength(1);
    expect(t.client.connectionState).toBe('idle');
  });

  it('a_failed_refresh_ends_the_session', async () => {
    const t = setup({
      refresh: async () => {
        throw Object.assign(new Error('x'), { name: 'SessionExpiredError', code: 'invalid_refresh_token' });
      },
    });
    t.client.start();
    t.last().handshake(3);
    t.last().serverClose(4002, 'token_expired');
    await vi.advanceTimersByTimeAsync(10);
    expect(t.ended).toHaveBeenCalledWith('invalid_refresh_token');
  });

  it('too_many_connections_waits_for_the_user', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    t.last().serverClose(4009, 'too_many_connections');
    vi.advanceTimersByTime(120_000);
    expect(t.sockets).toHaveLength(1);
    expect(t.client.connectionState).toBe('displaced');
    t.client.reconnectNow();
    expect(t.sockets).toHaveLength(2);
  });

  it('a_missing_pong_drops_the_connection_and_reconnects', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    vi.advanceTimersByTime(1000);
    expect(t.last().sent.at(-1)).toMatchObject({ type: 'ping' });
    const ref = t.last().sent.at(-1)!.ref as string;
    t.last().frame({ type: 'pong', ref });
    vi.advanceTimersByTime(1000); // next ping, never answered
    vi.advanceTimersByTime(500);
    expect(t.sockets[0].closedWith).toBe(4000);
    expect(t.client.connectionState).toBe('reconnecting');
    vi.advanceTimersByTime(375);
    expect(t.sockets).toHaveLength(2);
  });

  it('requests_resolve_on_ack_reject_on_error_and_fail_on_disconnect', async () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    const ok = t.client.request({ type: 'send', room_id: 'r', body: 'x', client_message_id: 'c1' });
    const bad = t.client.request({ type: 'send', room_id: 'gone', body: 'x', client_message_id: 'c2' });
    const lost = t.client.request({ type: 'read', room_id: 'r', message_id: 'm' });
    const [s1, s2] = t.last().sent.slice(-3);
    t.last().frame({ type: 'ack', ref: s1.ref as string, client_message_id: 'c1', message_id: 'm1', position: 4, duplicate: false });
    t.last().frame({ type: 'error', ref: s2.ref as string, code: 'not_found', message: 'not found' });
    t.last().serverClose(1006);
    await expect(ok).resolves.toMatchObject({ message_id: 'm1' });
    await expect(bad).rejects.toMatchObject({ code: 'not_found' });
    await expect(lost).rejects.toMatchObject({ code: 'disconnected' });
    await expect(t.client.request({ type: 'ping' })).rejects.toMatchObject({ code: 'disconnected' });
  });

  it('rate_limited_waits_at_least_five_seconds', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    t.last().serverClose(4029, 'rate_limited');
    vi.advanceTimersByTime(4999);
    expect(t.sockets).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(t.sockets).toHaveLength(2);
  });

  it('stop_closes_and_never_reconnects', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(3);
    t.client.stop();
    t.sockets[0].serverClose(1000);
    vi.advanceTimersByTime(60_000);
    expect(t.sockets).toHaveLength(1);
    expect(t.states.at(-1)).toBe('idle');
  });
});

describe('RealtimeClient test hook', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a_held_drop_stays_away_until_reconnect_now_and_then_resumes', () => {
    const t = setup();
    t.client.start();
    t.last().handshake(7);
    t.client.dropForTest();
    expect(t.sockets[0].closedWith).toBe(4000);
    t.sockets[0].serverClose(4000, 'test_drop');
    expect(t.client.connectionState).toBe('reconnecting');
    vi.advanceTimersByTime(120_000);
    expect(t.sockets).toHaveLength(1);
    t.client.reconnectNow();
    expect(t.sockets).toHaveLength(2);
    t.last().open();
    expect(t.last().sent[0]).toMatchObject({ type: 'hello', since: 7 });
  });
});
