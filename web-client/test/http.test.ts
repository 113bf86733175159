import { describe, expect, it, vi } from 'vitest';
import { ApiClient, SessionExpiredError, inProcessLock, storageLock } from '../src/api/http';
import type { TokenChannel, TokenMessage } from '../src/api/http';

function json(status: number, body: unknown): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

/** A hub that accepts one current access token and rotates refresh tokens like the real one. */
function fakeHub(opts: { refreshDelayMs?: number; refreshFails?: boolean } = {}) {
  let current = 'access-0';
  let gen = 0;
  const calls = { refresh: 0, me: [] as string[] };
  const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    const path = String(url);
    if (path.endsWith('/auth/refresh')) {
      calls.refresh++;
      await new Promise((r) => setTimeout(r, opts.refreshDelayMs ?? 5));
      if (opts.refreshFails) return json(401, { error: 'refresh_token_reused', message: 'reused' });
      current = `access-${++gen}`;
      return json(200, { access_token: current, expires_in: 900, refresh_token: 'r', user: {} });
    }
    const auth = new Headers(init?.headers).get('Authorization');
    calls.me.push(auth ?? '');
    if (auth !== `Bearer ${current}`) return json(401, { error: 'token_expired', message: 'expired' });
    return json(200, { ok: true });
  });
  return {
    fetchImpl,
    calls,
    expire() {
      current = 'access-server-only';
    },
  };
}

describe('ApiClient refresh', () => {
  it('concurrent_401s_share_a_single_refresh_and_retry_with_the_new_token', async () => {
    const hub = fakeHub({ refreshDelayMs: 20 });
    const api = new ApiClient({ fetch: hub.fetchImpl as typeof fetch });
    await api.resume(); // page load: token from the cookie
    expect(hub.calls.refresh).toBe(1);
    hub.expire();
    const results = await Promise.all([api.get('/me'), api.get('/rooms'), api.get('/directory')]);
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(hub.calls.refresh).toBe(2);
    expect(api.accessToken).toBe('access-2');
  });

  it('a_request_that_fails_after_another_refresh_finished_does_not_refresh_again', async () => {
    const hub = fakeHub();
    const api = new ApiClient({ fetch: hub.fetchImpl as typeof fetch });
    await api.resume();
    // The stale token is not the current one any more: no second refresh.
    const t = await api.refresh('some-older-token');
    expect(t).toBe('access-1');
    expect(hub.calls.refresh).toBe(1);
  });

  it('refresh_refused_reports_session_expired_once_and_clears_the_token', async () => {
    const failing = fakeHub({ refreshFails: true });
    const api2 = new ApiClient({ fetch: failing.fetchImpl as typeof fetch });
    const expired = vi.fn();
    api2.onSessionExpired(expired);
    await expect(Promise.all([api2.get('/me'), api2.get('/rooms')])).rejects.toBeInstanceOf(SessionExpiredError);
    await new Promise((r) => setTimeout(r, 30));
    expect(failing.calls.refresh).toBe(1);
    expect(api2.accessToken).toBeNull();
    expect(expired).toHaveBeenCalled();
    expect(expired.mock.calls[0][0]).toBe('refresh_token_reused');
  });

  it('a_revoked_session_goes_to_login_without_trying_to_refresh', async () => {
    const fetchImpl = vi.fn(async (url: string | URL | Request) =>
      String(url).endsWith('/auth/refresh')
        ? json(200, { access_token: 'a', expires_in: 900, refresh_token: 'r', user: {} })
        : json(401, { error: 'session_revoked', message: 'revoked' }),
    );
    const api = new ApiClient({ fetch: fetchImpl as typeof fetch });
    await api.resume();
    const expired = vi.fn();
    api.onSessionExpired(expired);
    await expect(api.get('/me')).rejects.toBeInstanceOf(SessionExpiredError);
    expect(fetchImpl.mock.calls.filter((c) => String(c[0]).endsWith('/auth/refresh'))).toHaveLength(1);
    expect(expired).toHaveBeenCalledWith('session_revoked');
  });

  it('a_token_from_another_tab_is_adopted_instead_of_refreshing', async () => {
    const listeners: ((m: TokenMessage) => void)[] = [];
    const channel: TokenChannel = { publish: () => {}, subscribe: (l) => (listeners.push(l), () => {}) };
    const hub = fakeHub();
    const api = new ApiClient({ fetch: hub.fetchImpl as typeof fetch, channel });
    await api.resume();
    hub.expire();
    // Another tab refreshed meanwhile and tells us.
    await hub.fetchImpl('/api/v1/auth/refresh', { method: 'POST' });
    const fromOtherTab = 'access-2';
    listeners.forEach((l) => l({ type: 'token', token: fromOtherTab }));
    const before = hub.calls.refresh;
    expect(await api.get('/me')).toEqual({ ok: true });
    expect(hub.calls.refresh).toBe(before);
  });

  it('refreshes_are_serialised_across_clients_sharing_a_lock', async () => {
    // Two tabs: each refresh must start only after the previous one finished.
    const lock = inProcessLock();
    let inFlight = 0;
    let maxInFlight = 0;
    const fetchImpl = vi.fn(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
      return json(200, { access_token: `a${Math.random()}`, expires_in: 900, refresh_token: 'r', user: {} });
    });
    const tabs = [0, 1, 2].map(() => new ApiClient({ fetch: fetchImpl as typeof fetch, lock }));
    await Promise.all(tabs.map((t) => t.refresh(null)));
    expect(fetchImpl).toHaveBeenCalledTimes(3);
    expect(maxInFlight).toBe(1);
  });

  it('the_storage_lock_lets_one_holder_at_a_time', async () => {
    const mem = new Map<string, string>();
    const storage = {
      getItem: (k: string) => mem.get(k) ?? null,
      setItem: (k: string, v: string) => void mem.set(k, v),
      removeItem: (k: string) => void mem.delete(k),
    };
    const a = storageLock(storage, 10_000, (ms) => new Promise((r) => setTimeout(r, ms / 10)));
    const b = storageLock(storage, 10_000, (ms) => new Promise((r) => setTimeout(r, ms / 10)));
    let inside = 0;
    let max = 0;
    const work = async () => {
      inside++;
      max = Math.max(max, inside);
      await new Promise((r) => setTimeout(r, 15));
      inside--;
    };
    await Promise.all([a.run(work), b.run(work), a.run(work)]);
    expect(max).toBe(1);
    expect(mem.size).toBe(0);
  });
});
