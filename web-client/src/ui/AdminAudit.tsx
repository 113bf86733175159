// The audit log (admins): who did what and when, newest first, in the user's locale; filtered
// by action and by the staff member who did it; pages of AUDIT_PAGE by the id cursor.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { AuditEntry, User } from '../api/types';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { AUDIT_ACTIONS, AUDIT_PAGE, auditQuery, detailsText } from './audit';
import type { AuditFilter } from './audit';
import { describeError } from './Login';
import { useI18n } from './i18n';

export function AdminAudit({ ws }: { ws: Workspace }) {
  const { t, fmt } = useI18n();
  const [filter, setFilter] = useState<AuditFilter>({ action: '', actor: '' });
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [users, setUsers] = useState<User[]>([]);
  const names = useMemo(() => new Map(users.map((u) => [u.id, u.name])), [users]);
  // A newer request (another filter) wins over a page still loading.
  const request = useRef(0);

  useEffect(() => {
    ws.api.get<User[]>('/users?include_inactive=true').then(setUsers, () => undefined);
  }, [ws]);

  async function load(more: boolean) {
    const id = ++request.current;
    setBusy(true);
    try {
      const page = await ws.api.get<AuditEntry[]>(`/audit?${auditQuery(filter, more ? entries[entries.length - 1]?.id : undefined)}`);
      if (id !== request.current) return;
      setEntries(more ? [...entries, ...page] : page);
      setHasMore(page.length >= AUDIT_PAGE);
      setLoaded(true);
      setError(null);
    } catch (e) {
      if (id === request.current) setError(describeError(e, t));
    } finally {
      if (id === request.current) setBusy(false);
    }
  }

  useEffect(() => {
    void load(false);
  }, [filter]);

  const label = (prefix: string, code: string) => {
    const key = `${prefix}.${code}` as MessageKey;
    const text = t(key);
    return text === key ? code : text;
  };

  return (
    <div className="audit" data-testid="audit">
      <div className="filter-row" role="group" aria-label={t('inbox.filters')}>
        <label>
          {t('audit.action')}
          <select value={filter.action} onChange={(e) => setFilter({ ...filter, action: e.target.value })} data-testid="audit-action-filter">
            <option value="">{t('audit.anyAction')}</option>
            {AUDIT_ACTIONS.map((a) => (
              <option key={a} value={a}>
                {label('audit.action', a)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('audit.actor')}
          <select value={filter.actor} onChange={(e) => setFilter({ ...filter, actor: e.target.value })} data-testid="audit-actor-filter">
            <option value="">{t('audit.anyActor')}</option>
            {users.map((u) => (
              <option key={u.id} value={u.id}>
                {u.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      {loaded && entries.length === 0 && <p className="muted">{t('audit.empty')}</p>}
      <table aria-busy={busy} data-testid="audit-table">
        <thead>
          <tr>
            <th>{t('audit.time')}</th>
            <th>{t('audit.actor')}</th>
            <th>{t('audit.action')}</th>
            <th>{t('audit.target')}</th>
            <th>{t('audit.details')}</th>
            <th>{t('audit.source')}</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr key={e.id} data-testid="audit-row" data-action={e.action} data-actor={e.actor_user_id ?? ''}>
              <td>
                <time dateTime={e.at}>{fmt.dateTime(e.at)}</time>
              </td>
              <td>{e.actor_user_id ? names.get(e.actor_user_id) ?? e.actor_user_id : <span className="muted">{t('audit.system')}</span>}</td>
              <td>{label('audit.action', e.action)}</td>
              <td title={e.target_id ?? undefined}>
                {e.target_type && label('audit.target', e.target_type)}
                {e.target_id && ` ${e.target_type === 'user' ? names.get(e.target_id) ?? e.target_id : `…${e.target_id.slice(-8)}`}`}
              </td>
              <td className="pre">{detailsText(e.details)}</td>
              <td>{e.source ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {hasMore && (
        <button onClick={() => void load(true)} disabled={busy} data-testid="audit-more">
          {t('audit.more')}
        </button>
      )}
    </div>
  );
}
