// Profile → "My mailbox": the user's own mailboxes (email accounts with `owner_user_id` = me)
// with their address and health (live from `channel.health`), a form to add one (SMTP and
// IMAP: server, port, security, username, password), to change it (the passwords are asked
// for again: the hub never shows them and takes settings only whole) and to switch it off or
// on. The form's request bodies are built in src/state/mailbox.ts.
import { useEffect, useState } from 'react';
import type { FormEvent, ReactNode } from 'react';
import { ApiError } from '../api/http';
import type { AccountWithSecret, ChannelAccount } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import {
  SECURITIES,
  createMailboxBody,
  emptyMailboxForm,
  formFromAccount,
  mailboxProblems,
  myMailboxes,
  patchMailboxBody,
  withSecurity,
} from '../state/mailbox';
import type { MailboxForm, Security, ServerForm } from '../state/mailbox';
import { HealthBadge } from './AdminChannels';
import { describeError } from './Login';
import { useI18n } from './i18n';

export function Mailboxes({ ws }: { ws: Workspace }) {
  const { t, fmt } = useI18n();
  const me = ws.me.user;
  const mine = myMailboxes(Object.values(useStore(ws.inbox).channels), me.id);
  /** 'new', an account id being changed, or nothing open. */
  const [editing, setEditing] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    ws.loadChannels().catch((e) => setError(describeError(e, t)));
  }, [ws]);

  const failed = (e: unknown) =>
    setError(e instanceof ApiError && e.status === 403 ? t('mailbox.forbidden') : describeError(e, t));

  async function toggle(a: ChannelAccount) {
    try {
      // No settings: a PATCH with settings would replace the stored passwords.
      await ws.api.patch<ChannelAccount>(`/channel-accounts/${a.id}`, { enabled: !a.enabled });
      await ws.loadChannels();
      setError(null);
    } catch (e) {
      failed(e);
    }
  }

  async function submit(form: MailboxForm, account: ChannelAccount | null) {
    try {
      if (account) await ws.api.patch<ChannelAccount>(`/channel-accounts/${account.id}`, patchMailboxBody(form));
      else await ws.api.post<AccountWithSecret>('/channel-accounts', createMailboxBody(form, me.id));
      await ws.loadChannels();
      setEditing(null);
      setError(null);
      setNotice(t(account ? 'mailbox.saved' : 'mailbox.created'));
    } catch (e) {
      failed(e);
    }
  }

  const open = (id: string | null) => {
    setEditing(id);
    setNotice(null);
    setError(null);
  };

  return (
    <section className="card mailboxes" aria-labelledby="mailbox-title" data-testid="mailboxes">
      <h2 id="mailbox-title">{t('mailbox.title')}</h2>
      <p className="muted">{t('mailbox.intro')}</p>
      {mine.length === 0 && editing !== 'new' && <p className="muted">{t('mailbox.none')}</p>}
      <ul className="mailbox-list">
        {mine.map((a) => (
          <li key={a.id} data-testid="mailbox" data-account-id={a.id} data-enabled={a.enabled} className={a.enabled ? '' : 'inactive'}>
            <strong>{a.name}</strong> <span data-testid="mailbox-address">{a.address}</span>
            {!a.enabled && <span className="muted"> ({t('mailbox.disabled')})</span>}{' '}
            <HealthBadge account={a} />
            {a.health_since && <span className="muted"> {t('channels.since', { time: fmt.dateTime(a.health_since) })}</span>}
            {a.last_error && (
              <div className="error" data-testid="mailbox-error">
                {t('channels.lastError', { error: a.last_error })}
              </div>
            )}
            {a.next_retry_at && <div className="muted">{t('channels.nextRetry', { time: fmt.dateTime(a.next_retry_at) })}</div>}
            <div className="actions">
              <button onClick={() => open(editing === a.id ? null : a.id)} aria-expanded={editing === a.id} data-testid="mailbox-edit">
                {t('mailbox.edit')}
              </button>{' '}
              <button onClick={() => void toggle(a)} data-testid="mailbox-toggle">
                {a.enabled ? t('mailbox.disable') : t('mailbox.enable')}
              </button>
            </div>
            {editing === a.id && (
              <MailboxFormView initial={formFromAccount(a)} editing onSubmit={(f) => submit(f, a)} onCancel={() => open(null)} />
            )}
          </li>
        ))}
      </ul>
      {editing === 'new' ? (
        <MailboxFormView initial={emptyMailboxForm(me.name, me.email)} editing={false} onSubmit={(f) => submit(f, null)} onCancel={() => open(null)} />
      ) : (
        <button onClick={() => open('new')} data-testid="mailbox-add">
          {t('mailbox.add')}
        </button>
      )}
      {notice && <p role="status">{notice}</p>}
      {error && (
        <p role="alert" className="error" data-testid="mailbox-failure">
          {error}
        </p>
      )}
    </section>
  );
}

function MailboxFormView({
  initial,
  editing,
  onSubmit,
  onCancel,
}: {
  initial: MailboxForm;
  editing: boolean;
  onSubmit(f: MailboxForm): Promise<void>;
  onCancel(): void;
}) {
  const { t } = useI18n();
  const [form, setForm] = useState<MailboxForm>(initial);
  // After a first try the problems follow the form as it is corrected.
  const [tried, setTried] = useState(false);
  const problems = tried ? mailboxProblems(form) : [];
  const [busy, setBusy] = useState(false);
  const prefix = editing ? 'mailbox-edit' : 'mailbox-new';

  async function save(e: FormEvent) {
    e.preventDefault();
    setTried(true);
    if (mailboxProblems(form).length) return;
    setBusy(true);
    try {
      await onSubmit(form);
    } finally {
      setBusy(false);
    }
  }

  const top = (k: 'name' | 'address' | 'display_name' | 'reply_domain') => (e: { target: { value: string } }) =>
    setForm({ ...form, [k]: e.target.value });

  return (
    <form onSubmit={save} className="mailbox-form" data-testid="mailbox-form" noValidate>
      <label>
        {t('mailbox.address')}
        <input type="email" autoComplete="off" value={form.address} onChange={top('address')} required data-testid="mailbox-field-address" />
      </label>
      <label>
        {t('mailbox.displayName')}
        <input value={form.display_name} onChange={top('display_name')} required data-testid="mailbox-field-display-name" />
      </label>
      <label>
        {t('mailbox.name')}
        <input value={form.name} onChange={top('name')} placeholder={form.address || undefined} data-testid="mailbox-field-name" />
      </label>
      <ServerFields
        kind="smtp"
        legend={t('mailbox.smtp')}
        server={form.smtp}
        prefix={prefix}
        onChange={(smtp) => setForm({ ...form, smtp })}
      />
      <ServerFields
        kind="imap"
        legend={t('mailbox.imap')}
        server={form.imap}
        prefix={prefix}
        onChange={(imap) => setForm({ ...form, imap: { ...form.imap, ...imap } })}
      >
        <label>
          {t('mailbox.folder')}
          <input value={form.imap.folder} onChange={(e) => setForm({ ...form, imap: { ...form.imap, folder: e.target.value } })} data-testid="mailbox-field-imap-folder" />
        </label>
      </ServerFields>
      <label>
        {t('mailbox.replyDomain')}
        <input value={form.reply_domain} onChange={top('reply_domain')} data-testid="mailbox-field-reply-domain" />
      </label>
      {editing && <p className="muted">{t('mailbox.passwordsAgain')}</p>}
      {problems.length > 0 && (
        <ul role="alert" className="error" data-testid="mailbox-problems">
          {problems.map((p) => (
            <li key={p}>{t(p as MessageKey)}</li>
          ))}
        </ul>
      )}
      <button type="submit" disabled={busy} data-testid="mailbox-save">
        {editing ? t('mailbox.save') : t('mailbox.create')}
      </button>{' '}
      <button type="button" onClick={onCancel}>
        {t('admin.cancel')}
      </button>
    </form>
  );
}

function ServerFields({
  kind,
  legend,
  server,
  prefix,
  onChange,
  children,
}: {
  kind: 'smtp' | 'imap';
  legend: string;
  server: ServerForm;
  prefix: string;
  onChange(s: ServerForm): void;
  children?: ReactNode;
}) {
  const { t } = useI18n();
  const set = (k: 'host' | 'port' | 'username' | 'password') => (e: { target: { value: string } }) =>
    onChange({ ...server, [k]: e.target.value });
  const id = (field: string) => `${prefix}-${kind}-${field}`;
  return (
    <fieldset data-testid={`mailbox-${kind}`}>
      <legend>{legend}</legend>
      <label htmlFor={id('host')}>{t('mailbox.host')}</label>
      <input id={id('host')} value={server.host} onChange={set('host')} autoComplete="off" required data-testid={`mailbox-field-${kind}-host`} />
      <label htmlFor={id('port')}>{t('mailbox.port')}</label>
      <input id={id('port')} inputMode="numeric" value={server.port} onChange={set('port')} required data-testid={`mailbox-field-${kind}-port`} />
      <label htmlFor={id('security')}>{t('mailbox.security')}</label>
      <select
        id={id('security')}
        value={server.security}
        onChange={(e) => onChange(withSecurity(server, kind, e.target.value as Security))}
        data-testid={`mailbox-field-${kind}-security`}
      >
        {SECURITIES.map((s) => (
          <option key={s} value={s}>
            {t(`mailbox.security.${s}` as MessageKey)}
          </option>
        ))}
      </select>
      <label htmlFor={id('username')}>{t('mailbox.username')}</label>
      <input
        id={id('username')}
        value={server.username}
        onChange={set('username')}
        autoComplete="off"
        placeholder={t('mailbox.sameAsAddress')}
        data-testid={`mailbox-field-${kind}-username`}
      />
      <label htmlFor={id('password')}>{t('mailbox.password')}</label>
      <input
        id={id('password')}
        type="password"
        value={server.password}
        onChange={set('password')}
        autoComplete="new-password"
        placeholder={kind === 'imap' ? t('mailbox.sameAsSmtp') : undefined}
        required={kind === 'smtp'}
        data-testid={`mailbox-field-${kind}-password`}
      />
      {children}
    </fieldset>
  );
}
