import { describe, expect, it } from 'vitest';
import { auditQuery, detailsText } from '../src/ui/audit';

describe('the audit log screen', () => {
  it('asks for a page with the filter and the cursor', () => {
    expect(auditQuery({ action: '', actor: '' })).toBe('limit=100');
    expect(auditQuery({ action: 'login', actor: 'u1' }, 'e9', 50)).toBe('limit=50&action=login&actor_user_id=u1&before=e9');
  });

  it('reads details as key: value pairs, empty ones left out', () => {
    expect(detailsText({ from: 'recruiter', to: 'admin' })).toBe('from: recruiter; to: admin');
    expect(detailsText({ email: 'a@b.c', retry_after_secs: 60, user_agent: null })).toBe('email: a@b.c; retry_after_secs: 60');
    expect(detailsText({ who: { role: 'admin' } })).toBe('who: {"role":"admin"}');
    expect(detailsText(null)).toBe('');
    expect(detailsText({})).toBe('');
  });
});
