import { describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../src/api/http';
import type { Contact, MergeSuggestion } from '../src/api/types';
import { loadSuggestions, mergeInto, undoMerge, usableSuggestions } from '../src/state/merges';

function contact(id: string, name = 'Анна Петрова'): Contact {
  return { id, name, city: null, identities: [], created_at: '2026-11-27T09:00:00Z', updated_at: '2026-11-27T09:00:00Z' };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** An ApiClient whose hub answers `answer(method, path, body)`; the requests are recorded. */
function client(answer: (method: string, path: string, body: unknown) => Response) {
  const calls: { method: string; path: string; body: unknown }[] = [];
  const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    const path = String(url).replace('/api/v1', '');
    // The session comes from the refresh cookie, as after a page load.
    if (path === '/auth/refresh') return json(200, { access_token: 't', expires_in: 900, refresh_token: 'r', user: {} });
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method: init?.method ?? 'GET', path, body });
    return answer(init?.method ?? 'GET', path, body);
  });
  const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch });
  return { api, calls };
}

describe('merge suggestions', () => {
  it('the_applicant_itself_and_repeats_are_left_out_and_reasons_come_in_order', () => {
    const list: MergeSuggestion[] = [
      { contact: contact('c1'), reasons: ['same_phone', 'same_name', 'same_phone'] },
      { contact: contact('me'), reasons: ['same_name'] },
      { contact: contact('c1'), reasons: ['same_name'] },
      { contact: contact('c2'), reasons: ['something_new', 'same_email_local_part'] },
    ];
    expect(usableSuggestions(list, 'me')).toEqual([
      { contact: contact('c1'), reasons: ['same_name', 'same_phone'] },
      { contact: contact('c2'), reasons: ['same_email_local_part', 'something_new'] },
    ]);
    const many = Array.from({ length: 14 }, (_, i) => ({ contact: contact(`x${i}`), reasons: ['same_name'] }));
    expect(usableSuggestions(many, 'me')).toHaveLength(10);
  });

  it('suggestions_load_from_the_hub_and_a_404_means_none', async () => {
    const { api, calls } = client((_m, path) =>
      path === '/contacts/me/suggestions'
        ? json(200, [{ contact: contact('c1'), reasons: ['same_name'] }])
        : json(404, { error: 'not_found', message: 'no' }),
    );
    expect(await loadSuggestions(api, 'me')).toEqual([{ contact: contact('c1'), reasons: ['same_name'] }]);
    expect(calls[0]).toMatchObject({ method: 'GET', path: '/contacts/me/suggestions' });
    // An older hub without the endpoint, or an applicant merged away meanwhile.
    expect(await loadSuggestions(api, 'gone')).toBeNull();
  });

  it('other_failures_are_told', async () => {
    const { api } = client(() => json(500, { error: 'internal_error', message: 'boom' }));
    await expect(loadSuggestions(api, 'me')).rejects.toMatchObject({ code: 'internal_error' });
  });

  it('merge_keeps_the_panels_applicant_and_undo_calls_the_undo_endpoint', async () => {
    const merge = { id: 'mg1', survivor_id: 'me', merged_id: 'c1', moved_identities: ['i1'], reason: 'manual', at: '2026-11-27T09:01:00Z' };
    const { api, calls } = client((method, path) => {
      if (method === 'POST' && path === '/contacts/me/merge') return json(200, merge);
      if (method === 'POST' && path === '/contact-merges/mg1/undo') return json(200, { ...merge, undone_at: '2026-11-27T09:02:00Z' });
      return json(404, { error: 'not_found', message: 'no' });
    });
    expect(await mergeInto(api, 'me', 'c1')).toEqual(merge);
    expect(calls[0]).toEqual({ method: 'POST', path: '/contacts/me/merge', body: { contact_id: 'c1' } });
    expect((await undoMerge(api, 'mg1')).undone_at).toBe('2026-11-27T09:02:00Z');
    expect(calls[1]).toMatchObject({ method: 'POST', path: '/contact-merges/mg1/undo' });
  });
});
