// One applicant thread: the header with its actions (take, assign, close / reopen, queue),
// one timeline of every channel's messages, replies and internal notes (delivery states,
// Retry, email HTML through DOMPurify with quoted text collapsed, attachments), who of the
// staff is typing in it, and the composer.
import { useEffect, useRef, useState } from 'react';
import type { Thread, ThreadMessage, User } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import { threadTypingUsers, timelineEntries } from '../state/inbox';
import type { PendingReply, TimelineEntry } from '../state/inbox';
import { sanitizer, splitQuotedText } from '../text/sanitize';
import type { MessageKey } from '../i18n';
import { AttachmentView } from './Attachment';
import { describeError } from './Login';
import { MessageBody } from './Team';
import { ThreadComposer } from './ThreadComposer';
import { ChannelIcon } from './inboxBits';
import { useI18n } from './i18n';
import { VirtualList } from './VirtualList';

export function ThreadView({ ws, threadId, users }: { ws: Workspace; threadId: string; users: Map<string, User> }) {
  const { t } = useI18n();
  const inbox = useStore(ws.inbox);
  const thread = inbox.threads[threadId];
  const timeline = inbox.timelines[threadId];
  const entries = timelineEntries(inbox, threadId);
  const [olderError, setOlderError] = useState<string | null>(null);
  const loadingOlder = useRef(false);

  // Older pages load as the view nears the top; after a failure only the button retries.
  const loadOlder = (byUser: boolean) => {
    const tl = ws.inbox.getState().timelines[threadId];
    if (loadingOlder.current || !tl?.loaded || !tl.hasMore || (olderError && !byUser)) return;
    loadingOlder.current = true;
    ws.loadTimeline(threadId, false)
      .then(
        () => setOlderError(null),
        (e) => setOlderError(describeError(e, t)),
      )
      .finally(() => (loadingOlder.current = false));
  };
  // The user's own newest send brings the view to the end.
  const lastPending = [...entries].reverse().find((e) => e.kind === 'pending');

  if (!thread) return <section className="thread empty">{t('inbox.loading')}</section>;
  return (
    <section className="thread" aria-labelledby="thread-title" data-testid="thread-view" data-thread-id={thread.id}>
      <ThreadHeader ws={ws} thread={thread} users={users} />
      {thread.merged_into && <p className="notice">{t('thread.merged')}</p>}
      <VirtualList
        as="ol"
        anchor="bottom"
        items={entries}
        itemKey={entryKey}
        estimateSize={90}
        onStartReached={() => loadOlder(false)}
        followEnd={lastPending?.kind === 'pending' ? lastPending.reply.client_message_id : null}
        renderItem={(e) => <Entry ws={ws} thread={thread} entry={e} users={users} />}
        scrollerProps={{ className: 'timeline', 'data-testid': 'timeline', tabIndex: 0, role: 'region', 'aria-label': t('thread.timeline') }}
        listProps={{ 'data-testid': 'timeline-list' }}
        header={
          timeline?.hasMore &&
          timeline.loaded && (
            <div className="older">
              <button onClick={() => loadOlder(true)} data-testid="timeline-older">
                {t('thread.loadOlder')}
              </button>
              {olderError && <span className="error">{olderError}</span>}
            </div>
          )
        }
      />
      <ThreadTyping ws={ws} threadId={thread.id} users={users} />
      <ThreadComposer key={thread.id} ws={ws} thread={thread} users={users} />
    </section>
  );
}

/** "Olga is typing…": other staff typing in this thread's composer (notices expire by themselves). */
function ThreadTyping({ ws, threadId, users }: { ws: Workspace; threadId: string; users: Map<string, User> }) {
  const { t } = useI18n();
  const inbox = useStore(ws.inbox);
  // The workspace drops expired notices every second, which renders this again.
  const names = threadTypingUsers(inbox, threadId, Date.now()).map((id) => users.get(id)?.name ?? '…');
  return (
    <div className="typing thread-typing" aria-live="polite" data-testid="thread-typing">
      {names.length > 0 && t('thread.typing', { names: names.join(', ') })}
    </div>
  );
}

function entryKey(e: TimelineEntry): string {
  return e.kind === 'pending' ? `c:${e.reply.client_message_id}` : e.message.client_message_id ? `c:${e.message.client_message_id}` : e.message.id;
}

function ThreadHeader({ ws, thread, users }: { ws: Workspace; thread: Thread; users: Map<string, User> }) {
  const { t, fmt } = useI18n();
  const me = ws.me.user;
  const supervisor = me.role === 'supervisor' || me.role === 'admin';
  const queues = useStore(ws.queues);
  const [assignTo, setAssignTo] = useState('');
  const [queueTo, setQueueTo] = useState('');
  const [error, setError] = useState<string | null>(null);
  const run = (p: Promise<unknown>) => p.then(() => setError(null), (e) => setError(describeError(e, t)));
  const assignee = thread.assignee_id ? users.get(thread.assignee_id)?.name ?? '…' : null;
  const canTake = thread.assignee_id !== me.id && (supervisor || thread.assignee_id === null);

  return (
    <header className="thread-head">
      <h1 id="thread-title">
        <ChannelIcon kind={thread.last_channel_kind} /> {thread.contact_name ?? t('applicants.unnamed')}
      </h1>
      <p className="muted">
        <span data-testid="thread-head-state" data-state={thread.state}>
          {t(`state.${thread.state}` as MessageKey)}
        </span>
        {' · '}
        {t('thread.assignee')}: <span data-testid="thread-head-assignee">{thread.assignee_id === me.id ? t('thread.you') : assignee ?? t('inbox.unassigned')}</span>
        {thread.vacancy && <> · {thread.vacancy}</>}
        {thread.subject && <> · {thread.subject}</>}
      </p>
      {supervisor && thread.reroute_reason && (
        <p className="notice" data-testid="reroute-reason">
          {t('thread.rerouted', { reason: rerouteLabel(thread.reroute_reason, t) })}
          {thread.rerouted_from && <> ({users.get(thread.rerouted_from)?.name ?? '…'})</>}
          {thread.rerouted_at && <> · {fmt.dateTime(thread.rerouted_at)}</>}
        </p>
      )}
      <div className="thread-actions" role="group" aria-label={t('thread.actions')}>
        {canTake && (
          <button onClick={() => run(ws.assign(thread.id, me.id))} data-testid="thread-take">
            {t('thread.take')}
          </button>
        )}
        {thread.state === 'closed' ? (
          <button onClick={() => run(ws.setThreadState(thread.id, 'open'))} data-testid="thread-reopen">
            {t('thread.reopen')}
          </button>
        ) : (
          <button onClick={() => run(ws.setThreadState(thread.id, 'closed'))} data-testid="thread-close">
            {t('thread.close')}
          </button>
        )}
        {supervisor && (
          <form
            className="inline"
            onSubmit={(e) => {
              e.preventDefault();
              run(ws.assign(thread.id, assignTo || null));
            }}
          >
            <label>
              <span className="sr-only">{t('thread.assignTo')}</span>
              <select value={assignTo} onChange={(e) => setAssignTo(e.target.value)} data-testid="thread-assign-select">
                <option value="">{t('thread.nobody')}</option>
                {[...users.values()]
                  .filter((u) => u.active)
                  .map((u) => (
                    <option key={u.id} value={u.id}>
                      {u.name}
                    </option>
                  ))}
              </select>
            </label>
            <button type="submit">{t('thread.assign')}</button>
          </form>
        )}
        {supervisor && queues.length > 0 && (
          <form
            className="inline"
            onSubmit={(e) => {
              e.preventDefault();
              if (queueTo) run(ws.moveToQueue(thread.id, queueTo));
            }}
          >
            <label>
              <span className="sr-only">{t('thread.queue')}</span>
              <select value={queueTo || thread.queue_id || ''} onChange={(e) => setQueueTo(e.target.value)}>
                {queues.map((q) => (
                  <option key={q.id} value={q.id}>
                    {q.name}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">{t('thread.move')}</button>
          </form>
        )}
      </div>
      {error && <p role="alert" className="error">{error}</p>}
    </header>
  );
}

export function rerouteLabel(reason: string, t: (k: MessageKey) => string): string {
  const key = `reroute.${reason}` as MessageKey;
  const text = t(key);
  return text === key ? reason : text;
}

function Entry({ ws, thread, entry, users }: { ws: Workspace; thread: Thread; entry: TimelineEntry; users: Map<string, User> }) {
  if (entry.kind === 'pending') return <PendingEntry ws={ws} p={entry.reply} users={users} />;
  return <MessageEntry ws={ws} thread={thread} m={entry.message} users={users} />;
}

function MessageEntry({ ws, thread, m, users }: { ws: Workspace; thread: Thread; m: ThreadMessage; users: Map<string, User> }) {
  const { t, fmt } = useI18n();
  const [error, setError] = useState<string | null>(null);
  const author =
    m.direction === 'in'
      ? thread.contact_name ?? t('thread.applicant')
      : m.author_user_id
        ? m.author_user_id === ws.me.user.id
          ? ws.me.user.name
          : users.get(m.author_user_id)?.name ?? '…'
        : '';
  return (
    <div
      className={`tmsg tmsg-${m.direction}`}
      data-testid="thread-message"
      data-direction={m.direction}
      data-message-id={m.id}
      data-delivery={m.delivery_state ?? undefined}
    >
      <div className="meta">
        {m.direction === 'note' ? (
          <span className="note-tag" data-testid="note-tag">
            ✎ {t('thread.note')}
          </span>
        ) : m.direction === 'system' ? (
          <span className="muted">{t('thread.system')}</span>
        ) : (
          <>
            <ChannelIcon kind={m.channel_kind} />
          </>
        )}{' '}
        <strong>{author}</strong>
        {m.direction === 'in' && m.remote_address && <span className="muted"> {m.remote_address}</span>}{' '}
        <time dateTime={m.created_at} className="muted">
          {fmt.dateTime(m.created_at)}
        </time>
      </div>
      {m.subject && m.channel_kind === 'email' && <div className="subject">{m.subject}</div>}
      {m.html ? (
        <EmailHtml html={m.html} />
      ) : m.direction === 'note' ? (
        <MessageBody body={m.text} mentions={m.mentions} users={users} />
      ) : (
        <PlainText text={m.text} email={m.channel_kind === 'email'} />
      )}
      {m.attachments.length > 0 && (
        <ul className="attachments">
          {m.attachments.map((a) => (
            <li key={a.upload_id}>
              <AttachmentView api={ws.api} attachment={a} />
            </li>
          ))}
        </ul>
      )}
      {m.direction === 'out' && m.delivery_state && (
        <div className={`delivery delivery-${m.delivery_state}`} data-testid="delivery" data-state={m.delivery_state}>
          {m.delivery_state === 'failed' ? (
            <>
              <span className="error">{t('delivery.failed', { reason: m.failure_reason ?? '' })}</span>{' '}
              <button
                onClick={() => ws.retryDelivery(m.thread_id, m.id).then(() => setError(null), (e) => setError(describeError(e, t)))}
                data-testid="delivery-retry"
              >
                {t('thread.retry')}
              </button>
            </>
          ) : (
            <span className="muted">
              {deliveryMark(m.delivery_state)} {t(`delivery.${m.delivery_state}` as MessageKey)}
            </span>
          )}
          {error && <span role="alert" className="error"> {error}</span>}
        </div>
      )}
    </div>
  );
}

function deliveryMark(state: string): string {
  return state === 'read' || state === 'delivered' ? '✓✓' : state === 'sent' ? '✓' : '…';
}

function PendingEntry({ ws, p, users }: { ws: Workspace; p: PendingReply; users: Map<string, User> }) {
  const { t } = useI18n();
  const note = p.kind === 'note';
  return (
    <div
      className={`tmsg tmsg-${note ? 'note' : 'out'} pending`}
      data-testid="thread-message"
      data-direction={note ? 'note' : 'out'}
      data-pending="true"
      data-delivery={note ? undefined : 'queued'}
    >
      <div className="meta">
        {note ? (
          <span className="note-tag" data-testid="note-tag">
            ✎ {t('thread.note')}
          </span>
        ) : (
          <>
            <ChannelIcon kind={p.channel_kind} />
          </>
        )}{' '}
        <strong>{ws.me.user.name}</strong>
      </div>
      {note ? <MessageBody body={p.text} mentions={[]} users={users} /> : <span className="body">{p.text}</span>}
      <div className="delivery muted" data-testid="delivery" data-state={note ? undefined : p.state === 'failed' ? 'not-sent' : 'queued'}>
        {p.state === 'failed' ? (
          <>
            <span className="error">{t('delivery.notSent', { error: p.error ?? '' })}</span>{' '}
            <button onClick={() => ws.retryReply(p.client_message_id)}>{t('thread.retry')}</button>
            <button onClick={() => ws.inbox.dispatch({ type: 'reply_discard', clientMessageId: p.client_message_id })}>
              {t('thread.discard')}
            </button>
          </>
        ) : (
          <>… {t('delivery.sending')}</>
        )}
      </div>
    </div>
  );
}

function PlainText({ text, email }: { text: string; email: boolean }) {
  const { t } = useI18n();
  const [shown, setShown] = useState(false);
  const parts = email ? splitQuotedText(text) : { main: text, quoted: '' };
  return (
    <div className="body">
      {parts.main}
      {parts.quoted && (
        <>
          <button className="link quoted-toggle" aria-expanded={shown} onClick={() => setShown(!shown)}>
            {shown ? t('thread.hideQuoted') : t('thread.showQuoted')}
          </button>
          {shown && <div className="quoted">{parts.quoted}</div>}
        </>
      )}
    </div>
  );
}

/** Email HTML: sanitised by DOMPurify before it reaches the DOM; quoted text collapsed. */
function EmailHtml({ html }: { html: string }) {
  const { t } = useI18n();
  const [shown, setShown] = useState(false);
  const [parts, setParts] = useState<{ main: string; quoted: string } | null>(null);
  useEffect(() => {
    setParts(sanitizer().split(html));
  }, [html]);
  if (!parts) return null;
  return (
    <div className="email-body" data-testid="email-body">
      <div className="email-html" dangerouslySetInnerHTML={{ __html: parts.main }} />
      {parts.quoted && (
        <>
          <button className="link quoted-toggle" aria-expanded={shown} onClick={() => setShown(!shown)} data-testid="quoted-toggle">
            {shown ? t('thread.hideQuoted') : t('thread.showQuoted')}
          </button>
          {shown && <div className="quoted email-html" dangerouslySetInnerHTML={{ __html: parts.quoted }} />}
        </>
      )}
    </div>
  );
}
