// Admin: channel accounts with their health (live from `channel.health`), a new webhook
// account (its signing secret shown once), enable / disable, secret rotation, queue; below
// them the job-board accounts (AdminBoards.tsx).
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import type { AccountWithSecret, ChannelAccount } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { BoardAccounts } from './AdminBoards';
import { describeError } from './Login';
import { CHANNEL_KINDS, ChannelIcon, channelLabel } from './inboxBits';
import { useI18n } from './i18n';

interface Form {
  kind: string;
  name: string;
  address: string;
  url: string;
  owner_user_id: string;
  queue_id: string;
}

const EMPTY: Form = { kind: 'sms', name: '', address: '', url: '', owner_user_id: '', queue_id: '' };

export function HealthBadge({ account }: { account: ChannelAccount }) {
  const { t } = useI18n();
  const key = `health.${account.health}` as MessageKey;
  const text = t(key);
  return (
    <span className={`health health-${account.health}`} data-testid="health" data-health={account.health}>
      {text === key ? account.health : text}
    </span>
  );
}

export function AdminChannels({ ws }: { ws: Workspace }) {
  const { t, fmt } = useI18n();
  const accounts = Object.values(useStore(ws.inbox).channels).sort((a, b) => a.created_at.localeCompare(b.created_at));
  const queues = useStore(ws.queues);
  const users = useStore(ws.directory).map((d) => d.user);
  const [creating, setCreating] = useState(false);
  const [form, setForm] = useState<Form>(EMPTY);
  const [secret, setSecret] = useState<{ name: string; secret: string } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    ws.loadChannels().catch((e) => setError(describeError(e, t)));
    ws.loadQueues().catch(() => undefined);
  }, [ws]);

  const run = async <T,>(p: Promise<T>): Promise<T | undefined> => {
    try {
      const r = await p;
      setError(null);
      await ws.loadChannels();
      return r;
    } catch (e) {
      setError(describeError(e, t));
      return undefined;
    }
  };

  async function create(e: FormEvent) {
    e.preventDefault();
    const r = await run(
      ws.api.post<AccountWithSecret>('/channel-accounts', {
        kind: form.kind,
        provider: 'webhook',
        name: form.name.trim(),
        address: form.address.trim(),
        settings: form.url.trim() ? { url: form.url.trim() } : {},
        owner_user_id: form.owner_user_id || null,
        queue_id: form.queue_id || null,
      }),
    );
    if (r) {
      setSecret({ name: r.account.name, secret: r.secret });
      setCreating(false);
      setForm(EMPTY);
    }
  }

  async function rotate(a: ChannelAccount) {
    const r = await run(ws.api.post<AccountWithSecret>(`/channel-accounts/${a.id}/rotate-secret`));
    if (r) setSecret({ name: r.account.name, secret: r.secret });
  }

  // The account's own settings are sent back unchanged, except a mailbox's: the hub shows
  // those with empty passwords and a PATCH with settings would store the empty passwords.
  const patch = (a: ChannelAccount, body: Record<string, unknown>) =>
    run(
      ws.api.patch<ChannelAccount>(`/channel-accounts/${a.id}`, a.provider === 'email' ? body : { settings: a.settings, ...body }),
    );

  const set = (k: keyof Form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });

  return (
    <div data-testid="admin-channels">
      <button onClick={() => setCreating(!creating)} aria-expanded={creating}>
        {t('channels.new')}
      </button>
      {creating && (
        <form onSubmit={create} className="card" data-testid="channel-form">
          <label>
            {t('channels.kind')}
            <select value={form.kind} onChange={set('kind')}>
              {CHANNEL_KINDS.map((k) => (
                <option key={k} value={k}>
                  {channelLabel(k, t)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('channels.name')}
            <input value={form.name} onChange={set('name')} required />
          </label>
          <label>
            {t('channels.address')}
            <input value={form.address} onChange={set('address')} required />
          </label>
          <label>
            {t('channels.url')}
            <input type="url" value={form.url} onChange={set('url')} placeholder="https://…" />
          </label>
          <label>
            {t('channels.owner')}
            <select value={form.owner_user_id} onChange={set('owner_user_id')}>
              <option value="">{t('channels.company')}</option>
              {users.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.name}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('channels.queue')}
            <select value={form.queue_id} onChange={set('queue_id')}>
              <option value="">{t('channels.noQueue')}</option>
              {queues.map((q) => (
                <option key={q.id} value={q.id}>
                  {q.name}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">{t('admin.create')}</button>
        </form>
      )}
      {secret && (
        <div className="notice" role="status" data-testid="channel-secret">
          <strong>{secret.name}.</strong> {t('channels.secret')} <code>{secret.secret}</code>{' '}
          <button className="link" onClick={() => setSecret(null)} aria-label={t('admin.cancel')}>
            ✕
          </button>
        </div>
      )}
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>{t('channels.name')}</th>
            <th>{t('channels.address')}</th>
            <th>{t('channels.health')}</th>
            <th>{t('channels.queue')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {accounts.map((a) => (
            <tr key={a.id} data-testid="channel-row" data-account-id={a.id} className={a.enabled ? '' : 'inactive'}>
              <td>
                <ChannelIcon kind={a.kind} /> {a.name}
                {!a.enabled && <span className="muted"> ({t('channels.disabled')})</span>}
                {a.owner_user_id && <span className="muted"> · {users.find((u) => u.id === a.owner_user_id)?.name ?? '…'}</span>}
              </td>
              <td>{a.address}</td>
              <td>
                <HealthBadge account={a} />
                {a.health_since && <div className="muted">{t('channels.since', { time: fmt.dateTime(a.health_since) })}</div>}
                {a.last_error && <div className="error" data-testid="health-error">{t('channels.lastError', { error: a.last_error })}</div>}
                {a.next_retry_at && <div className="muted">{t('channels.nextRetry', { time: fmt.dateTime(a.next_retry_at) })}</div>}
              </td>
              <td>
                <select
                  aria-label={t('channels.queue')}
                  value={a.queue_id ?? ''}
                  onChange={(e) => void patch(a, { queue_id: e.target.value || null })}
                >
                  <option value="">{t('channels.noQueue')}</option>
                  {queues.map((q) => (
                    <option key={q.id} value={q.id}>
                      {q.name}
                    </option>
                  ))}
                </select>
              </td>
              <td>
                <button onClick={() => void patch(a, { enabled: !a.enabled })} data-testid="channel-toggle">
                  {a.enabled ? t('channels.disable') : t('channels.enable')}
                </button>
                {a.provider === 'webhook' && (
                  <button onClick={() => void rotate(a)} data-testid="channel-rotate">
                    {t('channels.rotate')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <BoardAccounts ws={ws} />
    </div>
  );
}
