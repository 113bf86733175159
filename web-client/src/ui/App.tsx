// The top of the page: restores the session from the refresh cookie, shows the login page or
// the workspace, and returns to the login page (with the reason) when the session ends.
import { useCallback, useEffect, useState } from 'react';
import { ApiClient, broadcastTokenChannel, browserLock } from '../api/http';
import type { Me } from '../api/types';
import { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { Login } from './Login';
import { Frame } from './Frame';
import { I18nProvider, useI18n } from './i18n';

const api = new ApiClient({ lock: browserLock(), channel: broadcastTokenChannel() });

type Auth = { kind: 'loading' } | { kind: 'login'; notice?: MessageKey } | { kind: 'in'; ws: Workspace };

declare global {
  interface Window {
    __jobers?: { drop(holdMs?: number): void; reconnect(): void; state(): unknown };
  }
}

function noticeFor(code: string): MessageKey {
  return code === 'account_deactivated' ? 'login.deactivated' : 'login.expired';
}

function Root() {
  const [auth, setAuth] = useState<Auth>({ kind: 'loading' });
  const { t } = useI18n();

  const enter = useCallback(async () => {
    const me = await api.get<Me>('/me');
    const ws = new Workspace(api, me, (code) => setAuth({ kind: 'login', notice: noticeFor(code) }));
    ws.start();
    setAuth({ kind: 'in', ws });
  }, []);

  useEffect(() => {
    let cancelled = false;
    api.resume().then(
      (ok) => {
        if (cancelled) return;
        if (ok) enter().catch(() => setAuth({ kind: 'login' }));
        else setAuth({ kind: 'login' });
      },
      () => !cancelled && setAuth({ kind: 'login' }),
    );
    return () => {
      cancelled = true;
    };
  }, [enter]);

  useEffect(
    () => api.onSessionExpired((code) => setAuth({ kind: 'login', notice: noticeFor(code) })),
    [],
  );

  // The workspace of a previous login stops when it is replaced.
  const ws = auth.kind === 'in' ? auth.ws : null;
  useEffect(() => {
    if (!ws) return;
    if (localStorage.getItem('jobers.testHooks') === '1') {
      window.__jobers = {
        drop: (ms) => ws.rt.dropForTest(ms),
        reconnect: () => ws.rt.reconnectNow(),
        state: () => ws.chat.getState(),
      };
    }
    return () => ws.stop();
  }, [ws]);

  if (auth.kind === 'loading') return <div className="loading">{t('conn.connecting')}</div>;
  if (auth.kind === 'login') {
    return <Login api={api} notice={auth.notice} onLoggedIn={() => enter()} />;
  }
  return (
    <Frame
      ws={auth.ws}
      onLogout={async (everywhere) => {
        // Stop first: the hub closes this tab's socket (4003) as part of the logout.
        auth.ws.stop();
        if (everywhere) await api.logoutAll().catch(() => undefined);
        else await api.logout().catch(() => undefined);
        setAuth({ kind: 'login', notice: 'login.loggedOut' });
      }}
    />
  );
}

export function App() {
  return (
    <I18nProvider>
      <Root />
    </I18nProvider>
  );
}
