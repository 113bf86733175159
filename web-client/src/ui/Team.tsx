// Team: the staff directory with live presence, the user's chats with unread counts, and the
// open chat (history, typing, read receipts, mentions, attachments, composer).
import { useEffect, useMemo, useRef, useState } from 'react';
import type { FormEvent, KeyboardEvent } from 'react';
import type { DirectoryEntry, Message, Room, User } from '../api/types';
import type { Workspace } from '../app/workspace';
import { useStore } from '../app/store';
import { presenceOf, readBy, typingUsers } from '../state/chat';
import { compareTimes } from '../state/time';
import type { ChatState, PendingSend } from '../state/chat';
import { describeError } from './Login';
import { PresenceDot, PresenceText } from './Presence';
import { useI18n } from './i18n';
import { onListKeyDown } from './listKeys';
import { AttachmentView } from './Attachment';
import { VirtualList } from './VirtualList';

export function Team({ ws, roomId, open }: { ws: Workspace; roomId: string | null; open(id: string | null): void }) {
  const chat = useStore(ws.chat);
  const directory = useStore(ws.directory);
  const users = useMemo(() => new Map(directory.map((d) => [d.user.id, d.user])), [directory]);

  useEffect(() => {
    ws.openRoom(roomId && chat.rooms[roomId] ? roomId : null);
    return () => ws.openRoom(null);
    // Re-run when the room appears (after the rooms list loads).
  }, [ws, roomId, !!(roomId && chat.rooms[roomId])]);

  return (
    <div className="team">
      <div className="team-lists">
        <Directory ws={ws} chat={chat} open={open} />
        <Chats ws={ws} chat={chat} users={users} roomId={roomId} open={open} />
      </div>
      {roomId && chat.rooms[roomId] ? (
        <RoomView key={roomId} ws={ws} chat={chat} room={chat.rooms[roomId]} users={users} />
      ) : (
        <EmptyRoom />
      )}
    </div>
  );
}

function EmptyRoom() {
  const { t } = useI18n();
  return <section className="room empty">{t('team.pickChat')}</section>;
}

function Directory({ ws, chat, open }: { ws: Workspace; chat: ChatState; open(id: string): void }) {
  const { t } = useI18n();
  const all = useStore(ws.directory);
  const [q, setQ] = useState('');
  const [found, setFound] = useState<DirectoryEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!q.trim()) {
      setFound(null);
      return;
    }
    const timer = setTimeout(() => {
      ws.loadDirectory(q.trim()).then(setFound, (e) => setError(describeError(e, t)));
    }, 200);
    return () => clearTimeout(timer);
  }, [q, ws, t]);

  const list = (found ?? all).filter((d) => d.user.id !== ws.me.user.id);
  return (
    <section className="directory" aria-labelledby="dir-title">
      <h2 id="dir-title">{t('team.directory')}</h2>
      <input
        type="search"
        aria-label={t('team.search')}
        placeholder={t('team.search')}
        value={q}
        onChange={(e) => setQ(e.target.value)}
        data-testid="directory-search"
      />
      {error && <p role="alert" className="error">{error}</p>}
      <ul onKeyDown={onListKeyDown} data-testid="directory">
        {list.map((d) => {
          const presence = presenceOf(chat, d.user.id, d.presence);
          return (
            <li key={d.user.id} data-testid={`person-${d.user.email}`}>
              <button
                data-nav-item
                onClick={() => ws.openDirect(d.user.id).then((r) => open(r.id), (e) => setError(describeError(e, t)))}
                title={t('team.message')}
              >
                <PresenceDot presence={presence} />
                <span className="person">
                  <span className="name">{d.user.name}</span>
                  <span className="muted">
                    {[d.department_name].filter(Boolean).join('')}
                    {d.department_name && (presence?.text || presence?.until) ? ' · ' : ''}
                    <PresenceText presence={presence} />
                  </span>
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

export function roomTitle(room: Room, me: string, users: Map<string, User>): string {
  if (room.kind === 'group') return room.name ?? '';
  const other = room.member_ids.find((id) => id !== me) ?? me;
  return users.get(other)?.name ?? '…';
}

function Chats(props: { ws: Workspace; chat: ChatState; users: Map<string, User>; roomId: string | null; open(id: string): void }) {
  const { ws, chat, users } = props;
  const { t } = useI18n();
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [members, setMembers] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const rooms = Object.values(chat.rooms).sort((a, b) =>
    compareTimes(b.last_message_at ?? b.created_at, a.last_message_at ?? a.created_at),
  );

  async function create(e: FormEvent) {
    e.preventDefault();
    try {
      const room = await ws.createGroup(name.trim(), members);
      setCreating(false);
      setName('');
      setMembers([]);
      props.open(room.id);
    } catch (err) {
      setError(describeError(err, t));
    }
  }

  return (
    <section className="chats" aria-labelledby="chats-title">
      <h2 id="chats-title">{t('team.chats')}</h2>
      <button onClick={() => setCreating(!creating)} aria-expanded={creating}>
        {t('team.newGroup')}
      </button>
      {creating && (
        <form onSubmit={create} className="card">
          <label>
            {t('team.groupName')}
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
          </label>
          <fieldset className="member-picks">
            <legend>{t('team.members')}</legend>
            {[...users.values()]
              .filter((u) => u.id !== ws.me.user.id)
              .map((u) => (
                <label key={u.id} className="radio">
                  <input
                    type="checkbox"
                    checked={members.includes(u.id)}
                    onChange={(e) => setMembers(e.target.checked ? [...members, u.id] : members.filter((m) => m !== u.id))}
                  />
                  {u.name}
                </label>
              ))}
          </fieldset>
          {error && <p role="alert" className="error">{error}</p>}
          <button type="submit">{t('team.create')}</button>
          <button type="button" onClick={() => setCreating(false)}>
            {t('team.cancel')}
          </button>
        </form>
      )}
      {rooms.length === 0 && <p className="muted">{t('team.noChats')}</p>}
      <ul onKeyDown={onListKeyDown} data-testid="rooms">
        {rooms.map((r) => {
          const other = r.kind === 'direct' ? r.member_ids.find((id) => id !== ws.me.user.id) : undefined;
          return (
            <li key={r.id}>
              <button
                data-nav-item
                data-testid="room-item"
                aria-current={props.roomId === r.id ? 'true' : undefined}
                onClick={() => props.open(r.id)}
              >
                {other && <PresenceDot presence={chat.presence[other]} />}
                <span className="name">{roomTitle(r, ws.me.user.id, users)}</span>
                {!!r.unread && (
                  <span className="badge" data-testid="room-unread" aria-label={t('team.unread', { count: r.unread })}>
                    {r.unread}
                  </span>
                )}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function RoomView({ ws, chat, room, users }: { ws: Workspace; chat: ChatState; room: Room; users: Map<string, User> }) {
  const { t } = useI18n();
  const history = chat.histories[room.id];
  const items = history?.items ?? [];
  const pending = Object.values(chat.pending).filter((p) => p.room_id === room.id);
  const entries: RoomEntry[] = [...items.map((m) => ({ kind: 'stored' as const, m })), ...pending.map((p) => ({ kind: 'pending' as const, p }))];
  const [now, setNow] = useState(Date.now());
  const [showMembers, setShowMembers] = useState(false);
  const loadingOlder = useRef(false);

  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  // New messages in the open room are read (the list stays at the newest while the user is there).
  const lastId = items[items.length - 1]?.id;
  useEffect(() => {
    ws.markRead(room.id);
  }, [ws, room.id, lastId, pending.length]);

  const loadOlder = () => {
    if (loadingOlder.current || !history?.loaded || !history.hasMore) return;
    loadingOlder.current = true;
    ws.loadHistory(room.id, false)
      .catch(() => undefined)
      .finally(() => (loadingOlder.current = false));
  };
  // Screen readers hear the newest message from someone else (the list itself changes as it scrolls).
  const newest = [...items].reverse().find((m) => m.author_id !== ws.me.user.id && !m.deleted);

  useEffect(() => {
    const h = () => ws.markRead(room.id);
    document.addEventListener('visibilitychange', h);
    return () => document.removeEventListener('visibilitychange', h);
  }, [ws, room.id]);

  const typists = typingUsers(chat, room.id, now).map((id) => users.get(id)?.name ?? '…');
  const title = roomTitle(room, ws.me.user.id, users);

  return (
    <section className="room" aria-labelledby="room-title">
      <header className="room-head">
        <h1 id="room-title">{title}</h1>
        {room.kind === 'group' && (
          <button aria-expanded={showMembers} onClick={() => setShowMembers(!showMembers)}>
            {t('team.members')} ({room.member_ids.length})
          </button>
        )}
      </header>
      {showMembers && room.kind === 'group' && <Members ws={ws} room={room} users={users} />}
      <VirtualList
        as="ol"
        anchor="bottom"
        items={entries}
        itemKey={(e) => roomEntryKey(ws.me.user.id, e)}
        estimateSize={60}
        onStartReached={loadOlder}
        followEnd={pending[pending.length - 1]?.client_message_id ?? null}
        renderItem={(e) =>
          e.kind === 'stored' ? <MessageView ws={ws} chat={chat} msg={e.m} users={users} /> : <PendingView ws={ws} p={e.p} />
        }
        scrollerProps={{ className: 'messages', 'data-testid': 'messages' }}
        header={
          history?.hasMore && (
            <div className="older">
              <button onClick={() => void ws.loadHistory(room.id, false)}>{t('team.loadOlder')}</button>
            </div>
          )
        }
      />
      <div className="sr-only" aria-live="polite" data-testid="messages-live">
        {newest && `${users.get(newest.author_id)?.name ?? ''}: ${newest.body}`}
      </div>
      <div className="typing" aria-live="polite" data-testid="typing">
        {typists.length > 0 && t('team.typing', { names: typists.join(', ') })}
      </div>
      <Composer ws={ws} room={room} users={users} />
    </section>
  );
}

type RoomEntry = { kind: 'stored'; m: Message } | { kind: 'pending'; p: PendingSend };

/** The user's own sends are keyed by their client id, so a sent message keeps its place (and height) when stored. */
function roomEntryKey(me: string, e: RoomEntry): string {
  if (e.kind === 'pending') return `c:${e.p.client_message_id}`;
  return e.m.client_message_id && e.m.author_id === me ? `c:${e.m.client_message_id}` : e.m.id;
}

/** The body as plain text (React escapes it), with the mentioned members' names marked. */
export function MessageBody({ body, mentions, users }: { body: string; mentions: string[]; users: Map<string, User> }) {
  const names = mentions.map((id) => users.get(id)?.name).filter((n): n is string => !!n);
  if (!names.length) return <span className="body">{body}</span>;
  const pattern = new RegExp(`(${names.map((n) => `@${escapeRegExp(n)}`).join('|')})`, 'g');
  return (
    <span className="body">
      {body.split(pattern).map((part, i) => (i % 2 === 1 ? <mark key={i}>{part}</mark> : part))}
    </span>
  );
}

function escapeRegExp(s: string) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function MessageView({ ws, chat, msg, users }: { ws: Workspace; chat: ChatState; msg: Message; users: Map<string, User> }) {
  const { t, fmt } = useI18n();
  const mine = msg.author_id === ws.me.user.id;
  const readers = mine ? readBy(chat, msg).map((id) => users.get(id)?.name ?? '…') : [];
  const [editing, setEditing] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const act = (p: Promise<void>, done: () => void) => {
    setError(null);
    p.then(done, (e: unknown) => setError(describeError(e, t)));
  };
  const saveEdit = () => {
    const body = (editing ?? '').trim();
    if (!body || body === msg.body) return setEditing(null);
    act(ws.editMessage(msg.id, body), () => setEditing(null));
  };
  return (
    <div className={`message${mine ? ' mine' : ''}`} data-testid="message" data-message-id={msg.id}>
      <div className="meta">
        <strong>{users.get(msg.author_id)?.name ?? '…'}</strong>{' '}
        <time dateTime={msg.created_at}>{fmt.time(msg.created_at)}</time>
        {msg.edited_at && <span className="muted"> · {t('team.edited')}</span>}
      </div>
      {msg.deleted ? (
        <em className="muted">{t('team.deleted')}</em>
      ) : editing !== null ? (
        <div className="edit" data-testid="message-edit">
          <textarea
            aria-label={t('team.editLabel')}
            value={editing}
            autoFocus
            onChange={(e) => setEditing(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && !e.shiftKey) {
                e.preventDefault();
                saveEdit();
              } else if (e.key === 'Escape') {
                setEditing(null);
              }
            }}
            data-testid="message-edit-text"
          />
          <button onClick={saveEdit} data-testid="message-edit-save">
            {t('team.save')}
          </button>{' '}
          <button onClick={() => setEditing(null)}>{t('admin.cancel')}</button>
        </div>
      ) : (
        <MessageBody body={msg.body} mentions={msg.mentions} users={users} />
      )}
      {mine && !msg.deleted && editing === null && (
        <div className="message-actions">
          {confirmDelete ? (
            <span role="group" aria-label={t('team.deleteConfirm')} data-testid="message-delete-confirm">
              {t('team.deleteConfirm')}{' '}
              <button onClick={() => act(ws.deleteMessage(msg.id), () => setConfirmDelete(false))} data-testid="message-delete-yes">
                {t('team.delete')}
              </button>{' '}
              <button onClick={() => setConfirmDelete(false)}>{t('admin.cancel')}</button>
            </span>
          ) : (
            <>
              <button className="link" onClick={() => setEditing(msg.body)} data-testid="message-edit-start">
                {t('team.edit')}
              </button>{' '}
              <button className="link" onClick={() => setConfirmDelete(true)} data-testid="message-delete">
                {t('team.delete')}
              </button>
            </>
          )}
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {msg.attachments.length > 0 && (
        <ul className="attachments">
          {msg.attachments.map((a) => (
            <li key={a.upload_id}>
              <AttachmentView api={ws.api} attachment={a} />
            </li>
          ))}
        </ul>
      )}
      {readers.length > 0 && (
        <div className="read-by muted" data-testid="read-by">
          ✓✓ {t('team.readBy', { names: readers.join(', ') })}
        </div>
      )}
    </div>
  );
}

function PendingView({ ws, p }: { ws: Workspace; p: PendingSend }) {
  const { t } = useI18n();
  return (
    <div className="message mine pending" data-testid="pending-message">
      <span className="body">{p.body}</span>
      <div className="muted">
        {p.state === 'failed' ? (
          <>
            {t('team.failed', { error: p.error ?? '' })}{' '}
            <button onClick={() => ws.retry(p.client_message_id)}>{t('team.retry')}</button>
            <button onClick={() => ws.chat.dispatch({ type: 'send_discard', clientMessageId: p.client_message_id })}>
              {t('team.discard')}
            </button>
          </>
        ) : (
          t('team.sending')
        )}
      </div>
    </div>
  );
}

function Composer({ ws, room, users }: { ws: Workspace; room: Room; users: Map<string, User> }) {
  const { t } = useI18n();
  const [text, setText] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [mentioned, setMentioned] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [pick, setPick] = useState(0);
  const fileRef = useRef<HTMLInputElement>(null);

  const query = /(?:^|\s)@([^\s@]*)$/.exec(text)?.[1];
  const candidates =
    query === undefined
      ? []
      : room.member_ids
          .filter((id) => id !== ws.me.user.id)
          .map((id) => users.get(id))
          .filter((u): u is User => !!u && u.name.toLowerCase().includes(query.toLowerCase()))
          .slice(0, 6);

  function choose(u: User) {
    setText(text.replace(/@([^\s@]*)$/, `@${u.name} `));
    if (!mentioned.includes(u.id)) setMentioned([...mentioned, u.id]);
    setPick(0);
  }

  async function send() {
    const body = text.trim();
    if (!body && !files.length) return;
    const mentions = mentioned.filter((id) => body.includes(`@${users.get(id)?.name}`));
    const sending = files;
    setText('');
    setFiles([]);
    setMentioned([]);
    if (fileRef.current) fileRef.current.value = '';
    try {
      await ws.send(room.id, body, mentions, sending);
      setError(null);
    } catch (e) {
      setError(describeError(e, t));
      setText(body);
      setFiles(sending);
    }
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (candidates.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setPick((pick + (e.key === 'ArrowDown' ? 1 : candidates.length - 1)) % candidates.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        choose(candidates[Math.min(pick, candidates.length - 1)]);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  }

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {candidates.length > 0 && (
        <ul className="mention-picker" role="listbox" aria-label="@">
          {candidates.map((u, i) => (
            <li key={u.id} role="option" aria-selected={i === pick}>
              <button type="button" onMouseDown={(e) => (e.preventDefault(), choose(u))}>
                {u.name}
              </button>
            </li>
          ))}
        </ul>
      )}
      <label className="sr-only" htmlFor="composer-text">
        {t('team.composer')}
      </label>
      <textarea
        id="composer-text"
        data-testid="composer"
        placeholder={t('team.composer')}
        value={text}
        rows={2}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value) ws.typing(room.id);
        }}
        onKeyDown={onKeyDown}
      />
      <div className="composer-actions">
        <input
          ref={fileRef}
          type="file"
          multiple
          aria-label={t('team.attach')}
          data-testid="attach"
          onChange={(e) => setFiles([...(e.target.files ?? [])])}
        />
        {files.length > 0 && <span className="muted">{files.map((f) => f.name).join(', ')}</span>}
        <button type="submit" data-testid="send">
          {t('team.send')}
        </button>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
    </form>
  );
}

function Members({ ws, room, users }: { ws: Workspace; room: Room; users: Map<string, User> }) {
  const { t } = useI18n();
  const [name, setName] = useState(room.name ?? '');
  const [add, setAdd] = useState('');
  const [error, setError] = useState<string | null>(null);
  const run = (p: Promise<unknown>) => p.then(() => setError(null), (e) => setError(describeError(e, t)));
  const others = [...users.values()].filter((u) => !room.member_ids.includes(u.id));
  return (
    <div className="members card">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          run(ws.rename(room.id, name.trim()));
        }}
      >
        <label>
          {t('team.groupName')}
          <input value={name} onChange={(e) => setName(e.target.value)} maxLength={100} required />
        </label>
        <button type="submit">{t('team.rename')}</button>
      </form>
      <ul>
        {room.member_ids.map((id) => (
          <li key={id}>
            {users.get(id)?.name ?? id}
            {id === ws.me.user.id ? ` (${t('team.you')})` : ''}{' '}
            {id !== ws.me.user.id && (
              <button onClick={() => run(ws.changeMembers(room.id, [], [id]))}>{t('team.remove')}</button>
            )}
          </li>
        ))}
      </ul>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (add) run(ws.changeMembers(room.id, [add], []).then(() => setAdd('')));
        }}
      >
        <label>
          {t('team.addMember')}
          <select value={add} onChange={(e) => setAdd(e.target.value)}>
            <option value="">—</option>
            {others.map((u) => (
              <option key={u.id} value={u.id}>
                {u.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">{t('team.addMember')}</button>
      </form>
      <button className="danger" onClick={() => run(ws.leave(room.id))}>
        {t('team.leave')}
      </button>
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}
