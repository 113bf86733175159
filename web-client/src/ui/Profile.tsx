// Profile: my signature (added to replies when the signature is "automatic"), desktop
// notifications and sound, my own mailbox (Mailboxes.tsx), and my own templates.
import { useState } from 'react';
import type { FormEvent } from 'react';
import type { User } from '../api/types';
import { notificationsEnabled, notificationsSupported, setNotificationsEnabled } from '../app/notify';
import type { Workspace } from '../app/workspace';
import { describeError } from './Login';
import { Mailboxes } from './Mailboxes';
import { Templates } from './Templates';
import { useI18n } from './i18n';

export function Profile({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  const [signature, setSignature] = useState(ws.me.user.signature ?? '');
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notifyOn, setNotifyOn] = useState(notificationsEnabled);
  const [notifyNote, setNotifyNote] = useState<string | null>(null);

  async function save(e: FormEvent) {
    e.preventDefault();
    try {
      const user = await ws.api.patch<User>('/me', { signature: signature.trim() ? signature : null });
      ws.me.user = user;
      setNotice(t('profile.saved'));
      setError(null);
    } catch (err) {
      setError(describeError(err, t));
      setNotice(null);
    }
  }

  async function toggle(on: boolean) {
    setNotifyOn(on);
    const permission = await setNotificationsEnabled(on);
    if (!on) setNotifyNote(null);
    else if (permission === 'unsupported') setNotifyNote(t('notify.unsupported'));
    else if (permission === 'denied') setNotifyNote(t('notify.denied'));
    else setNotifyNote(null);
  }

  return (
    <section className="profile" aria-labelledby="profile-title">
      <h1 id="profile-title">{t('profile.title')}</h1>
      <p>
        {ws.me.user.name} <span className="muted">{ws.me.user.email}</span>
      </p>
      <form onSubmit={save} className="card">
        <label>
          {t('profile.signature')}
          <textarea rows={3} value={signature} onChange={(e) => setSignature(e.target.value)} maxLength={2000} data-testid="profile-signature" />
        </label>
        <p className="muted">{t('profile.signatureHint')}</p>
        <button type="submit" data-testid="profile-save">
          {t('profile.save')}
        </button>
        {notice && <p role="status">{notice}</p>}
        {error && <p role="alert" className="error">{error}</p>}
      </form>
      <div className="card">
        <label className="radio">
          <input type="checkbox" checked={notifyOn} onChange={(e) => void toggle(e.target.checked)} data-testid="notify-toggle" />
          {t('notify.toggle')}
        </label>
        {!notificationsSupported() && <p className="muted">{t('notify.unsupported')}</p>}
        {notifyNote && <p className="muted">{notifyNote}</p>}
      </div>
      <Mailboxes ws={ws} />
      <h2>{t('profile.templates')}</h2>
      <Templates ws={ws} company={false} />
    </section>
  );
}
