import { useState } from 'react';
import type { FormEvent } from 'react';
import { ApiError } from '../api/http';
import type { ApiClient } from '../api/http';
import type { MessageKey } from '../i18n';
import { LangSwitch, useI18n } from './i18n';

export function Login(props: { api: ApiClient; notice?: MessageKey; onLoggedIn(): Promise<void> }) {
  const { t } = useI18n();
  const [tenant, setTenant] = useState(() => localStorage.getItem('jobers.tenant') ?? '');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.api.login(tenant.trim(), email.trim(), password);
      localStorage.setItem('jobers.tenant', tenant.trim());
      await props.onLoggedIn();
    } catch (err) {
      setError(describeError(err, t));
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form onSubmit={submit} aria-labelledby="login-title" className="card">
        <h1 id="login-title">{t('login.title')}</h1>
        {props.notice && (
          <p role="status" className="notice" data-testid="login-notice">
            {t(props.notice)}
          </p>
        )}
        <label>
          {t('login.tenant')}
          <input name="tenant" value={tenant} onChange={(e) => setTenant(e.target.value)} required autoComplete="organization" />
        </label>
        <label>
          {t('login.email')}
          <input name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} required autoComplete="username" />
        </label>
        <label>
          {t('login.password')}
          <input name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="current-password" />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? t('login.busy') : t('login.submit')}
        </button>
        <LangSwitch />
      </form>
    </main>
  );
}

export function describeError(err: unknown, t: ReturnType<typeof useI18n>['t']): string {
  if (err instanceof ApiError) {
    if (err.code === 'too_many_attempts') return t('error.too_many_attempts', { seconds: err.retryAfter ?? 60 });
    const key = `error.${err.code}` as MessageKey;
    const text = t(key);
    return text === key ? t('error.generic', { message: err.message }) : text;
  }
  if (err instanceof TypeError) return t('error.network');
  return t('error.generic', { message: String(err) });
}
