// Admin: routing queues (strategy, re-routing limits, members with their capacity).
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import type { Queue, QueueMember } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { describeError } from './Login';
import { useI18n } from './i18n';

const STRATEGIES = ['round_robin', 'least_busy', 'manual'] as const;

interface Form {
  name: string;
  strategy: string;
  vacancy: string;
  away_limit_s: string;
  response_limit_s: string;
  members: Record<string, string>;
}

const EMPTY: Form = { name: '', strategy: 'round_robin', vacancy: '', away_limit_s: '', response_limit_s: '', members: {} };

function toForm(q: Queue): Form {
  const members: Record<string, string> = {};
  for (const m of q.members) members[m.user_id] = String(m.capacity);
  return {
    name: q.name,
    strategy: q.strategy,
    vacancy: q.vacancy ?? '',
    away_limit_s: q.away_limit_s === null ? '' : String(q.away_limit_s),
    response_limit_s: q.response_limit_s === null ? '' : String(q.response_limit_s),
    members,
  };
}

export function AdminQueues({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  const queues = useStore(ws.queues);
  const users = useStore(ws.directory).map((d) => d.user);
  const names = new Map(users.map((u) => [u.id, u.name]));
  const [editing, setEditing] = useState<string | 'new' | null>(null);
  const [form, setForm] = useState<Form>(EMPTY);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    ws.loadQueues().catch((e) => setError(describeError(e, t)));
  }, [ws]);

  const run = async (p: Promise<unknown>) => {
    try {
      await p;
      setError(null);
      setEditing(null);
      await ws.loadQueues();
    } catch (e) {
      setError(describeError(e, t));
    }
  };

  function submit(e: FormEvent) {
    e.preventDefault();
    const num = (s: string) => (s.trim() ? Number(s) : null);
    const members: QueueMember[] = Object.entries(form.members)
      .filter(([, c]) => c.trim() !== '')
      .map(([user_id, c]) => ({ user_id, capacity: Number(c) }));
    const body = {
      name: form.name.trim(),
      strategy: form.strategy,
      vacancy: form.vacancy.trim() || null,
      away_limit_s: num(form.away_limit_s),
      response_limit_s: num(form.response_limit_s),
      members,
    };
    if (editing === 'new') void run(ws.api.post<Queue>('/queues', body));
    else if (editing) void run(ws.api.put<Queue>(`/queues/${editing}`, body));
  }

  return (
    <div data-testid="admin-queues">
      <button
        onClick={() => {
          setForm(EMPTY);
          setEditing('new');
        }}
      >
        {t('queues.new')}
      </button>
      {editing && (
        <form onSubmit={submit} className="card" data-testid="queue-form">
          <label>
            {t('queues.name')}
            <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} required />
          </label>
          <label>
            {t('queues.strategy')}
            <select value={form.strategy} onChange={(e) => setForm({ ...form, strategy: e.target.value })}>
              {STRATEGIES.map((s) => (
                <option key={s} value={s}>
                  {t(`strategy.${s}` as MessageKey)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('queues.vacancy')}
            <input value={form.vacancy} onChange={(e) => setForm({ ...form, vacancy: e.target.value })} />
          </label>
          <label>
            {t('queues.awayLimit')}
            <input type="number" min={0} value={form.away_limit_s} onChange={(e) => setForm({ ...form, away_limit_s: e.target.value })} />
          </label>
          <label>
            {t('queues.responseLimit')}
            <input type="number" min={0} value={form.response_limit_s} onChange={(e) => setForm({ ...form, response_limit_s: e.target.value })} />
          </label>
          <fieldset>
            <legend>{t('queues.members')}</legend>
            {users
              .filter((u) => u.active)
              .map((u) => (
                <label key={u.id} className="radio">
                  <input
                    type="number"
                    min={0}
                    max={1000}
                    style={{ width: '5em' }}
                    aria-label={t('queues.capacity', { name: u.name })}
                    value={form.members[u.id] ?? ''}
                    onChange={(e) => setForm({ ...form, members: { ...form.members, [u.id]: e.target.value } })}
                  />
                  {u.name}
                </label>
              ))}
          </fieldset>
          <button type="submit">{t('admin.save')}</button>
          <button type="button" onClick={() => setEditing(null)}>
            {t('admin.cancel')}
          </button>
        </form>
      )}
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>{t('queues.name')}</th>
            <th>{t('queues.strategy')}</th>
            <th>{t('queues.members')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {queues.map((q) => (
            <tr key={q.id} data-testid="queue-row">
              <td>
                {q.name}
                {q.vacancy && <span className="muted"> · {q.vacancy}</span>}
              </td>
              <td>{t(`strategy.${q.strategy}` as MessageKey)}</td>
              <td>{q.members.map((m) => `${names.get(m.user_id) ?? '…'} (${m.capacity})`).join(', ')}</td>
              <td>
                <button
                  onClick={() => {
                    setForm(toForm(q));
                    setEditing(q.id);
                  }}
                >
                  {t('admin.edit')}
                </button>
                <button className="danger" onClick={() => void run(ws.api.delete(`/queues/${q.id}`))}>
                  {t('admin.delete')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
