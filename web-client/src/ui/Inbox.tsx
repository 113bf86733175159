// The inbox: applicant threads of every channel, filtered (mine / unassigned / all, channel,
// state, vacancy, search), paged by cursor, kept current by `thread.*` events; the open
// thread on the right (ThreadView) and the applicant card in the side panel (Frame).
import { useEffect, useMemo, useRef, useState } from 'react';
import type { Thread, User } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import { listThreads } from '../state/inbox';
import type { InboxFilter, Scope } from '../state/inbox';
import type { MessageKey } from '../i18n';
import { describeError } from './Login';
import { ThreadView } from './ThreadView';
import { CHANNEL_KINDS, ChannelIcon, channelLabel, formatDuration, useNow } from './inboxBits';
import { useI18n } from './i18n';
import { VirtualList } from './VirtualList';

const SCOPES: Scope[] = ['mine', 'unassigned', 'all'];
const STATES = ['open', 'pending', 'closed'] as const;

export function Inbox({ ws, threadId, open }: { ws: Workspace; threadId: string | null; open(id: string | null): void }) {
  const { t } = useI18n();
  const inbox = useStore(ws.inbox);
  const directory = useStore(ws.directory);
  const users = useMemo(() => new Map(directory.map((d) => [d.user.id, d.user])), [directory]);

  useEffect(() => {
    ws.loadQueues().catch(() => undefined);
  }, [ws]);

  useEffect(() => {
    ws.openThread(threadId);
    return () => ws.openThread(null);
  }, [ws, threadId]);

  // The open thread was merged into another: follow it.
  const merged = threadId ? inbox.threads[threadId]?.merged_into : null;
  useEffect(() => {
    if (merged && inbox.openThreadId === merged) open(merged);
  }, [merged, inbox.openThreadId]);

  return (
    <div className="inbox">
      <ThreadList ws={ws} users={users} threadId={threadId} open={open} />
      {threadId ? (
        <ThreadView key={threadId} ws={ws} threadId={threadId} users={users} />
      ) : (
        <section className="thread empty">{t('inbox.pick')}</section>
      )}
    </div>
  );
}

function ThreadList({ ws, users, threadId, open }: { ws: Workspace; users: Map<string, User>; threadId: string | null; open(id: string): void }) {
  const { t } = useI18n();
  const inbox = useStore(ws.inbox);
  const [q, setQ] = useState(inbox.filter.q);
  const [vacancy, setVacancy] = useState(inbox.filter.vacancy);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const now = useNow();
  const f = inbox.filter;
  const queueNames = new Map(useStore(ws.queues).map((x) => [x.id, x.name]));

  // The next page loads as the list nears its end; after a failure only "Show more" retries.
  const paging = useRef({ busy: false, failed: false });
  const loadMore = (byUser: boolean) => {
    const s = ws.inbox.getState();
    if (paging.current.busy || !s.loaded || !s.hasMore || (paging.current.failed && !byUser)) return;
    paging.current.busy = true;
    ws.loadThreads(true).then(
      () => {
        paging.current.failed = false;
        setError(null);
      },
      (e) => {
        paging.current.failed = true;
        setError(describeError(e, t));
      },
    ).finally(() => (paging.current.busy = false));
  };

  const apply = (patch: Partial<InboxFilter>) => {
    setBusy(true);
    ws.setInboxFilter({ ...ws.inbox.getState().filter, ...patch }).then(
      () => setError(null),
      (e) => setError(describeError(e, t)),
    ).finally(() => setBusy(false));
  };

  // First load (the workspace loads it after `welcome`; this covers a later visit).
  useEffect(() => {
    if (!ws.inbox.getState().loaded) apply({});
  }, []);

  // Search and vacancy run after a pause in typing.
  useEffect(() => {
    if (q === f.q && vacancy === f.vacancy) return;
    const timer = setTimeout(() => apply({ q, vacancy }), 300);
    return () => clearTimeout(timer);
  }, [q, vacancy]);

  const threads = listThreads(inbox);
  return (
    <section className="thread-list" aria-labelledby="inbox-title">
      <h1 id="inbox-title">{t('inbox.title')}</h1>
      <div className="filters" role="group" aria-label={t('inbox.filters')}>
        <div role="radiogroup" aria-label={t('inbox.scope')} className="tabs" data-testid="inbox-scope">
          {SCOPES.map((s) => (
            <button
              key={s}
              role="radio"
              aria-checked={f.scope === s}
              aria-selected={f.scope === s}
              data-scope={s}
              onClick={() => apply({ scope: s })}
            >
              {t(`inbox.scope.${s}` as MessageKey)}
            </button>
          ))}
        </div>
        <input
          type="search"
          aria-label={t('inbox.search')}
          placeholder={t('inbox.search')}
          value={q}
          onChange={(e) => setQ(e.target.value)}
          data-testid="inbox-search"
        />
        <div className="filter-row">
          <label>
            <span className="sr-only">{t('inbox.channel')}</span>
            <select value={f.channel} onChange={(e) => apply({ channel: e.target.value })} data-testid="inbox-channel">
              <option value="">{t('inbox.anyChannel')}</option>
              {CHANNEL_KINDS.map((k) => (
                <option key={k} value={k}>
                  {channelLabel(k, t)}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span className="sr-only">{t('inbox.state')}</span>
            <select value={f.state} onChange={(e) => apply({ state: e.target.value as InboxFilter['state'] })} data-testid="inbox-state">
              <option value="">{t('inbox.anyState')}</option>
              {STATES.map((s) => (
                <option key={s} value={s}>
                  {t(`state.${s}` as MessageKey)}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span className="sr-only">{t('inbox.vacancy')}</span>
            <input placeholder={t('inbox.vacancy')} value={vacancy} onChange={(e) => setVacancy(e.target.value)} data-testid="inbox-vacancy" />
          </label>
        </div>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      {inbox.loaded && threads.length === 0 && <p className="muted">{t('inbox.empty')}</p>}
      {!inbox.loaded && <p className="muted">{t('inbox.loading')}</p>}
      <VirtualList
        items={threads}
        itemKey={threadKey}
        estimateSize={72}
        keyboard
        onEndReached={() => loadMore(false)}
        renderItem={(th) => (
          <ThreadItem thread={th} users={users} queue={th.queue_id ? queueNames.get(th.queue_id) : undefined} now={now} me={ws.me.user.id} current={th.id === threadId} open={open} />
        )}
        scrollerProps={{ className: 'thread-scroll', 'data-testid': 'threads-scroller' }}
        listProps={{ 'data-testid': 'threads', 'aria-busy': busy, 'aria-label': t('inbox.title') }}
        footer={
          inbox.hasMore && (
            <button onClick={() => loadMore(true)} data-testid="inbox-more">
              {t('inbox.more')}
            </button>
          )
        }
      />
    </section>
  );
}

const threadKey = (th: Thread) => th.id;

function ThreadItem(p: { thread: Thread; queue?: string; users: Map<string, User>; now: number; me: string; current: boolean; open(id: string): void }) {
  const { t, fmt } = useI18n();
  const th = p.thread;
  const waitingSince = th.state !== 'closed' ? th.awaiting_reply_since : null;
  const assignee = th.assignee_id ? (th.assignee_id === p.me ? t('thread.you') : p.users.get(th.assignee_id)?.name ?? '…') : t('inbox.unassigned');
  return (
    <button
      data-nav-item
      data-testid="thread-item"
      data-thread-id={th.id}
      aria-current={p.current ? 'true' : undefined}
      className={`thread-item${th.unread ? ' unread' : ''}`}
      onClick={() => p.open(th.id)}
    >
      <span className="ti-top">
        <ChannelIcon kind={th.last_channel_kind} />
        <strong className="ti-name">{th.contact_name ?? t('applicants.unnamed')}</strong>
        {th.unread > 0 && (
          <span className="badge" data-testid="thread-unread" aria-label={t('inbox.unread', { count: th.unread })}>
            {th.unread}
          </span>
        )}
        <time className="muted" dateTime={th.last_message_at}>
          {fmt.time(th.last_message_at)}
        </time>
      </span>
      <span className="ti-preview">{th.preview ?? ''}</span>
      <span className="ti-meta muted">
        <span data-testid="thread-assignee">{assignee}</span>
        {' · '}
        <span data-testid="thread-state" data-state={th.state}>
          {t(`state.${th.state}` as MessageKey)}
        </span>
        {p.queue && <> · <span data-testid="thread-queue">{p.queue}</span></>}
        {th.vacancy && <> · {th.vacancy}</>}
        {waitingSince && (
          <>
            {' · '}
            <span className="waiting" data-testid="thread-waiting">
              {t('inbox.waiting', { duration: formatDuration(p.now - Date.parse(waitingSince), t) })}
            </span>
          </>
        )}
      </span>
    </button>
  );
}
