// The workspace frame: navigation on the left, the section in the middle, the side panel on
// the right, and the connection banner on top.
import { useEffect, useRef, useState } from 'react';
import type { Workspace } from '../app/workspace';
import { useStore } from '../app/store';
import { totalUnread } from '../state/chat';
import { unreadThreads } from '../state/inbox';
import type { Notice } from '../state/inbox';
import { notify } from '../app/notify';
import type { MessageKey } from '../i18n';
import { Admin } from './Admin';
import { Applicants } from './Applicants';
import { ApplicantPanel } from './ApplicantPanel';
import { Inbox } from './Inbox';
import { Profile } from './Profile';
import { StatusMenu } from './StatusMenu';
import { Team } from './Team';
import { LangSwitch, useI18n } from './i18n';
import { onListKeyDown } from './listKeys';

export type Section = 'inbox' | 'team' | 'applicants' | 'profile' | 'admin';

interface Route {
  section: Section;
  id: string | null;
}

function parseRoute(path: string): Route {
  const [, section, id] = path.split('/');
  const s = (['inbox', 'team', 'applicants', 'profile', 'admin'] as Section[]).find((x) => x === section) ?? 'team';
  return { section: s, id: id || null };
}

export function Frame({ ws, onLogout }: { ws: Workspace; onLogout(everywhere: boolean): void }) {
  const { t } = useI18n();
  const [route, setRoute] = useState<Route>(() => parseRoute(location.pathname));
  const chat = useStore(ws.chat);
  const inbox = useStore(ws.inbox);
  const conn = useStore(ws.connection);
  const isAdmin = ws.me.user.role === 'admin';

  useEffect(() => {
    const h = () => setRoute(parseRoute(location.pathname));
    addEventListener('popstate', h);
    return () => removeEventListener('popstate', h);
  }, []);

  useEffect(() => {
    const act = () => ws.activity();
    const online = () => ws.rt.networkBack();
    addEventListener('keydown', act);
    addEventListener('pointerdown', act);
    addEventListener('online', online);
    return () => {
      removeEventListener('keydown', act);
      removeEventListener('pointerdown', act);
      removeEventListener('online', online);
    };
  }, [ws]);

  const go = (section: Section, id: string | null = null) => {
    const path = `/${section}${id ? `/${id}` : ''}`;
    if (location.pathname !== path) history.pushState(null, '', path);
    setRoute({ section, id });
  };

  // Desktop notifications and the chime: threads newly assigned to me, mentions in notes.
  const names = new Map(useStore(ws.directory).map((d) => [d.user.id, d.user.name]));
  const namesRef = useRef(names);
  namesRef.current = names;
  useEffect(() => {
    ws.onNotice = (n: Notice) => {
      if (n.kind === 'assigned') {
        notify({
          title: t('notify.assigned', { name: n.thread.contact_name ?? t('applicants.unnamed') }),
          body: n.thread.preview ?? '',
          tag: `thread-${n.thread.id}`,
          onClick: () => go('inbox', n.thread.id),
        });
      } else {
        notify({
          title: t('notify.mention', { name: namesRef.current.get(n.mention.by) ?? '…' }),
          body: n.mention.text,
          tag: `mention-${n.mention.message_id}`,
          onClick: () => go('inbox', n.mention.thread_id),
        });
      }
    };
    return () => {
      ws.onNotice = null;
    };
  }, [ws, t]);

  const sections: { id: Section; label: MessageKey; badge?: number }[] = [
    { id: 'inbox', label: 'nav.inbox', badge: unreadThreads(inbox) },
    { id: 'team', label: 'nav.team', badge: totalUnread(chat) },
    { id: 'applicants', label: 'nav.applicants' },
    { id: 'profile', label: 'nav.profile' },
    ...(isAdmin ? [{ id: 'admin' as Section, label: 'nav.admin' as MessageKey }] : []),
  ];
  const onlineCount = Object.values(chat.presence).filter((p) => p.status !== 'offline').length;

  return (
    <div className="frame">
      {(conn === 'reconnecting' || conn === 'displaced') && (
        <div role="alert" className="banner" data-testid="conn-banner">
          {conn === 'reconnecting' ? (
            t('conn.lost')
          ) : (
            <>
              {t('conn.displaced')}
              <button onClick={() => ws.rt.reconnectNow()}>{t('conn.reconnect')}</button>
            </>
          )}
        </div>
      )}
      <nav className="nav" aria-label={t('nav.label')}>
        <div className="brand">{t('app.name')}</div>
        <ul onKeyDown={onListKeyDown}>
          {sections.map((s) => (
            <li key={s.id}>
              <button
                data-nav-item
                data-testid={`nav-${s.id}`}
                aria-current={route.section === s.id ? 'page' : undefined}
                onClick={() => go(s.id)}
              >
                {t(s.label)}
                {!!s.badge && (
                  <span className="badge" data-testid={`nav-${s.id}-badge`} aria-label={t('team.unread', { count: s.badge })}>
                    {s.badge}
                  </span>
                )}
              </button>
            </li>
          ))}
        </ul>
        <div className="nav-bottom">
          <StatusMenu ws={ws} />
          <LangSwitch />
          <button data-testid="logout" onClick={() => onLogout(false)}>
            {t('nav.logout')}
          </button>
          <button className="link" onClick={() => onLogout(true)}>
            {t('nav.logoutAll')}
          </button>
          <span className={`conn conn-${conn}`} data-testid="conn-state" data-state={conn}>
            {conn === 'live' ? t('conn.live') : conn === 'syncing' ? t('conn.syncing') : t('conn.connecting')}
          </span>
        </div>
      </nav>
      <main className="main">
        {route.section === 'inbox' && <Inbox ws={ws} threadId={route.id} open={(id) => go('inbox', id)} />}
        {route.section === 'team' && <Team ws={ws} roomId={route.id} open={(id) => go('team', id)} />}
        {route.section === 'applicants' && <Applicants ws={ws} contactId={route.id} open={(id) => go('applicants', id)} />}
        {route.section === 'profile' && <Profile ws={ws} />}
        {route.section === 'admin' && (isAdmin ? <Admin ws={ws} /> : <p>{t('admin.forbidden')}</p>)}
      </main>
      <aside className="side" aria-label={t('side.title')}>
        {route.section === 'inbox' && route.id && (
          <ApplicantPanel ws={ws} threadId={route.id} openApplicant={(id) => go('applicants', id)} />
        )}
        <section>
          <h2>{t('side.me')}</h2>
          <p>{ws.me.user.name}</p>
          <p className="muted">{ws.me.tenant.name}</p>
          <p className="muted">{t('side.presence', { count: onlineCount })}</p>
        </section>
        <section>
          <h2>{t('side.mentions')}</h2>
          {inbox.mentions.length > 0 && (
            <ul className="mentions" data-testid="thread-mentions" aria-label={t('notify.mentions')}>
              {inbox.mentions.map((m) => (
                <li key={m.message_id}>
                  <button onClick={() => go('inbox', m.thread_id)}>
                    <strong>{t('notify.mention', { name: names.get(m.by) ?? '…' })}</strong>
                    <span>{m.text}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
          {chat.mentions.length === 0 && inbox.mentions.length === 0 ? (
            <p className="muted">{t('side.noMentions')}</p>
          ) : (
            <ul className="mentions">
              {chat.mentions.map((m) => (
                <li key={m.message_id}>
                  <button onClick={() => go('team', m.room_id)}>
                    <strong>{t('team.mentionedYou', { name: names.get(m.author_id) ?? '…' })}</strong>
                    <span>{m.excerpt}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
      </aside>
    </div>
  );
}
