// Admin → channels → job boards: a new HeadHunter account (hh.ru, rabota.by, hh.kz), the
// employer's OAuth connect in a separate window (the hub's callback answers JSON today, so
// the window is watched and closed here, with the connection polled as a backstop), who is
// connected (admin or manager), health, re-login and log out, the import progress with
// "new responses", the status mapping and the board's vacancies.
import { useEffect, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import type {
  AccountWithSecret,
  BoardAccountInfo,
  BoardImportEvent,
  BoardStatus,
  ChannelAccount,
  NewResponses,
  OAuthStart,
  Pipeline,
  User,
} from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { applyImportEvent, countersAgree, readConnectResult } from '../state/boards';
import type { ConnectResult } from '../state/boards';
import { HealthBadge } from './AdminChannels';
import { BoardMappingEditor } from './BoardMapping';
import { BoardVacancies } from './BoardVacancies';
import { describeError } from './Login';
import { useI18n } from './i18n';
import './boards.css';

const SITES = ['hh.ru', 'rabota.by', 'hh.kz'] as const;
/** How often an open board account reads its import progress besides the events. */
const STATUS_POLL_MS = 10_000;
/** How often the connect window and the connection are checked while connecting. */
const WATCH_MS = 500;
const CONNECTION_POLL_MS = 2_000;

interface HhForm {
  name: string;
  site: string;
  client_id: string;
  secret: string;
  redirect_uri: string;
  queue_id: string;
  api_base: string;
  oauth_base: string;
  user_agent: string;
}

const callbackUrl = () => `${location.origin}/api/v1/oauth/hh/callback`;

function emptyForm(): HhForm {
  return { name: '', site: 'hh.ru', client_id: '', secret: '', redirect_uri: callbackUrl(), queue_id: '', api_base: '', oauth_base: '', user_agent: '' };
}

/** The board accounts of the tenant, each with its connection, import and settings. */
export function BoardAccounts({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  const accounts = Object.values(useStore(ws.inbox).channels)
    .filter((a) => a.kind === 'board')
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
  const queues = useStore(ws.queues);
  const [pipelines, setPipelines] = useState<Pipeline[]>([]);
  const [users, setUsers] = useState<User[]>([]);
  const [creating, setCreating] = useState(false);
  const [form, setForm] = useState<HhForm>(emptyForm);
  const [error, setError] = useState<string | null>(null);
  // A hub that sends the admin back here after the board's login says how it went in the
  // address (`?board_connected=<id>` or `?board_error=<code>`): shown once, then removed.
  const [returned] = useState(() => readConnectResult(location.href, null));

  useEffect(() => {
    if (returned) history.replaceState(null, '', location.pathname);
    ws.api.get<Pipeline[]>('/pipelines').then(setPipelines, () => undefined);
    ws.api.get<User[]>('/users').then(setUsers, () => undefined);
  }, [ws]);

  async function create(e: FormEvent) {
    e.preventDefault();
    const settings: Record<string, string> = {
      site: form.site,
      client_id: form.client_id.trim(),
      redirect_uri: form.redirect_uri.trim(),
    };
    for (const k of ['api_base', 'oauth_base', 'user_agent'] as const) if (form[k].trim()) settings[k] = form[k].trim();
    try {
      await ws.api.post<AccountWithSecret>('/channel-accounts', {
        kind: 'board',
        provider: 'hh',
        name: form.name.trim(),
        address: form.site,
        settings,
        secret: form.secret,
        queue_id: form.queue_id || null,
      });
      await ws.loadChannels();
      setError(null);
      setCreating(false);
      setForm(emptyForm());
    } catch (err) {
      setError(describeError(err, t));
    }
  }

  const set = (k: keyof HhForm) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });

  return (
    <section className="boards" aria-labelledby="boards-title" data-testid="board-accounts">
      <h2 id="boards-title">{t('boards.title')}</h2>
      <button onClick={() => setCreating(!creating)} aria-expanded={creating} data-testid="board-new">
        {t('boards.new')}
      </button>
      {creating && (
        <form onSubmit={create} className="card" data-testid="board-form" aria-label={t('boards.new')}>
          <div className="form-grid">
            <label>
              {t('channels.name')}
              <input name="name" value={form.name} onChange={set('name')} required maxLength={200} />
            </label>
            <label>
              {t('boards.site')}
              <select name="site" value={form.site} onChange={set('site')}>
                {SITES.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <label>
              {t('boards.clientId')}
              <input name="client_id" value={form.client_id} onChange={set('client_id')} required autoComplete="off" />
            </label>
            <label>
              {t('boards.clientSecret')}
              <input name="secret" type="password" value={form.secret} onChange={set('secret')} required autoComplete="new-password" />
            </label>
            <label>
              {t('boards.redirectUri')}
              <input name="redirect_uri" type="url" value={form.redirect_uri} onChange={set('redirect_uri')} required />
            </label>
            <label>
              {t('channels.queue')}
              <select name="queue_id" value={form.queue_id} onChange={set('queue_id')}>
                <option value="">{t('channels.noQueue')}</option>
                {queues.map((q) => (
                  <option key={q.id} value={q.id}>
                    {q.name}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <p className="muted">{t('boards.redirectHint', { url: callbackUrl() })}</p>
          <details>
            <summary>{t('boards.advanced')}</summary>
            <div className="form-grid">
              <label>
                {t('boards.apiBase')}
                <input name="api_base" type="url" value={form.api_base} onChange={set('api_base')} placeholder="https://api.hh.ru" />
              </label>
              <label>
                {t('boards.oauthBase')}
                <input name="oauth_base" type="url" value={form.oauth_base} onChange={set('oauth_base')} placeholder="https://hh.ru" />
              </label>
              <label>
                {t('boards.userAgent')}
                <input name="user_agent" value={form.user_agent} onChange={set('user_agent')} placeholder="Jobers/1.0 (ops@example.com)" />
              </label>
            </div>
          </details>
          <button type="submit">{t('admin.create')}</button>
          <button type="button" onClick={() => setCreating(false)}>
            {t('admin.cancel')}
          </button>
        </form>
      )}
      {returned?.kind === 'connected' && (
        <p role="status" className="notice" data-testid="board-returned">
          {t('boards.connect.doneShort')} {accounts.find((a) => a.id === returned.account_id)?.name ?? ''}
        </p>
      )}
      {returned?.kind === 'error' && (
        <p role="alert" className="error" data-testid="board-returned">
          {connectError(t, returned.code, returned.message)}
        </p>
      )}
      {error && <p role="alert" className="error">{error}</p>}
      {accounts.length === 0 && <p className="muted">{t('boards.none')}</p>}
      {accounts.map((a) => (
        <BoardAccountCard key={a.id} ws={ws} account={a} pipelines={pipelines} users={users} />
      ))}
    </section>
  );
}

type Connecting =
  | { phase: 'starting' }
  /** `url`: the board's page, for a link when the browser blocked the window. */
  | { phase: 'waiting'; url: string; blocked: boolean };

function roleText(t: (k: MessageKey) => string, who: BoardAccountInfo): string {
  return who.role === 'admin' ? t('boards.role.admin') : who.role === 'manager' ? t('boards.role.manager') : who.role;
}

function BoardAccountCard({ ws, account, pipelines, users }: { ws: Workspace; account: ChannelAccount; pipelines: Pipeline[]; users: User[] }) {
  const { t, fmt } = useI18n();
  const [status, setStatus] = useState<BoardStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [connecting, setConnecting] = useState<Connecting | null>(null);
  const [confirmLogout, setConfirmLogout] = useState(false);
  const [fresh, setFresh] = useState<NewResponses | null>(null);
  const [showDiffs, setShowDiffs] = useState(false);
  const [panel, setPanel] = useState<'none' | 'mapping' | 'vacancies'>('none');
  const stopWatch = useRef<(() => void) | null>(null);
  const statusRef = useRef<BoardStatus | null>(null);
  statusRef.current = status;

  const load = () =>
    ws.api.get<BoardStatus>(`/channel-accounts/${account.id}/board`).then(
      (s) => {
        setStatus(s);
        return s;
      },
      (e) => {
        setError(describeError(e, t));
        return null;
      },
    );

  // The import's progress: `board.import` events move the counters at once (the list of
  // differences is read again when its size changed); polling is the backstop.
  useEffect(() => {
    void load();
    let reloadTimer: ReturnType<typeof setTimeout> | null = null;
    const reloadSoon = () => {
      if (reloadTimer) return;
      reloadTimer = setTimeout(() => {
        reloadTimer = null;
        void load();
      }, 300);
    };
    const off = ws.subscribeFrames((f) => {
      if (f.type === 'live') reloadSoon();
      if (f.type !== 'event') return;
      if (f.kind === 'board.import' && (f.data as BoardImportEvent).account_id === account.id) {
        const held = statusRef.current;
        if (!held) return reloadSoon();
        const r = applyImportEvent(held, f.data as BoardImportEvent);
        setStatus(r.status);
        if (r.reload) reloadSoon();
      }
      if (f.kind === 'channel.health' && (f.data as ChannelAccount).id === account.id) reloadSoon();
    });
    const poll = setInterval(() => void load(), STATUS_POLL_MS);
    return () => {
      off();
      clearInterval(poll);
      if (reloadTimer) clearTimeout(reloadTimer);
      stopWatch.current?.();
    };
  }, [ws, account.id]);

  function finish(result: ConnectResult | 'closed' | 'timeout') {
    stopWatch.current?.();
    stopWatch.current = null;
    setConnecting(null);
    if (result === 'closed') setNotice(t('boards.connect.closed'));
    else if (result === 'timeout') setNotice(t('boards.connect.timeout'));
    else if (result.kind === 'connected') {
      setError(null);
      setNotice(
        result.board_account
          ? t('boards.connect.done', { name: result.board_account.name, role: roleText(t, result.board_account) })
          : t('boards.connect.doneShort'),
      );
    } else {
      setNotice(null);
      setError(connectError(t, result.code, result.message));
    }
    void load();
    void ws.loadChannels().catch(() => undefined);
  }

  /**
   * Connect or re-login. The window is opened at once (inside the click, so the browser
   * allows it) and sent to the board's page when the hub answered. It is watched: back on
   * this origin it shows the callback's answer, which is read and the window closed. The
   * connection itself is polled too, for a window that cannot be read.
   */
  async function connect() {
    setError(null);
    setNotice(null);
    stopWatch.current?.();
    const before = statusRef.current;
    const popup = window.open('', `jobers-board-${account.id}`, 'popup,width=760,height=820');
    setConnecting({ phase: 'starting' });
    let start: OAuthStart;
    try {
      start = await ws.api.post<OAuthStart>(`/channel-accounts/${account.id}/oauth/start`);
    } catch (e) {
      popup?.close();
      setConnecting(null);
      setError(describeError(e, t));
      return;
    }
    const blocked = !popup || popup.closed;
    if (!blocked) popup.location.href = start.authorize_url;
    setConnecting({ phase: 'waiting', url: start.authorize_url, blocked });
    const deadline = Math.min(Date.parse(start.expires_at) || Infinity, Date.now() + 10 * 60_000);
    let lastPoll = Date.now();
    let done = false;
    const end = (r: ConnectResult | 'timeout') => {
      done = true;
      finish(r);
    };
    const timer = setInterval(() => {
      if (done) return;
      if (Date.now() > deadline) return end('timeout');
      if (popup && !blocked) {
        if (popup.closed) {
          // Closed by the person (or by us): one last look at the connection.
          done = true;
          void load().then((s) => finish(s && connectedSince(before, s) ? { kind: 'connected', account_id: account.id, board_account: s.board_account } : 'closed'));
          return;
        }
        const seen = readWindow(popup);
        if (seen) return end(seen);
      }
      if (Date.now() - lastPoll >= CONNECTION_POLL_MS) {
        lastPoll = Date.now();
        void ws.api.get<BoardStatus>(`/channel-accounts/${account.id}/board`).then((s) => {
          if (!done && connectedSince(before, s)) end({ kind: 'connected', account_id: account.id, board_account: s.board_account });
        }, () => undefined);
      }
    }, WATCH_MS);
    stopWatch.current = () => {
      done = true;
      clearInterval(timer);
      if (popup && !popup.closed) popup.close();
    };
  }

  async function logout() {
    setConfirmLogout(false);
    try {
      await ws.api.delete(`/channel-accounts/${account.id}/oauth`);
      setNotice(t('boards.loggedOut'));
      setError(null);
    } catch (e) {
      setError(describeError(e, t));
    }
    void load();
  }

  async function newResponses() {
    try {
      setFresh(await ws.api.get<NewResponses>(`/channel-accounts/${account.id}/board/new-responses`));
      setError(null);
    } catch (e) {
      setError(describeError(e, t));
    }
  }

  const health = account.health;
  const connected = !!status?.connected;
  const who = status?.board_account ?? null;
  const needsRelogin = health === 'needs_relogin' || status?.health === 'needs_relogin';

  return (
    <article className="card board-account" data-testid="board-account" data-account-id={account.id} aria-labelledby={`board-${account.id}`}>
      <h3 id={`board-${account.id}`}>
        {account.name} <span className="muted">{String(account.settings.site ?? account.address)}</span> <HealthBadge account={account} />
      </h3>
      <div data-testid="board-connection" data-connected={connected ? 'true' : 'false'} data-role={who?.role ?? ''}>
        {status === null ? (
          <p className="muted">{t('inbox.loading')}</p>
        ) : connected && who ? (
          <p>
            {t('boards.connectedAs', { name: who.name, employer: who.employer_name })}{' '}
            {who.email && <span className="muted">({who.email}) </span>}
            <strong data-testid="board-role">{roleText(t, who)}</strong>
            <br />
            <span className="muted">{who.role === 'manager' ? t('boards.role.managerHint') : t('boards.role.adminHint')}</span>
          </p>
        ) : connected ? (
          <p>{t('boards.connectedUnknown')}</p>
        ) : (
          <p data-testid="board-not-connected">{t('boards.notConnected')}</p>
        )}
      </div>
      {account.last_error && <p className="error">{t('channels.lastError', { error: account.last_error })}</p>}
      {account.next_retry_at && <p className="muted">{t('channels.nextRetry', { time: fmt.dateTime(account.next_retry_at) })}</p>}
      {needsRelogin && (
        <div className="board-warn" role="alert" data-testid="board-relogin">
          {t('boards.needsRelogin')}{' '}
          <button onClick={() => void connect()} disabled={!!connecting}>
            {t('boards.relogin')}
          </button>
        </div>
      )}
      <div className="board-row">
        {!connected ? (
          <button onClick={() => void connect()} disabled={!!connecting} data-testid="board-connect">
            {t('boards.connect')}
          </button>
        ) : (
          !needsRelogin && (
            <button onClick={() => void connect()} disabled={!!connecting} data-testid="board-relogin-button">
              {t('boards.relogin')}
            </button>
          )
        )}
        {connected &&
          (confirmLogout ? (
            <>
              <span>{t('boards.logoutConfirm')}</span>
              <button className="danger" onClick={() => void logout()} data-testid="board-logout-confirm">
                {t('boards.logoutYes')}
              </button>
              <button onClick={() => setConfirmLogout(false)}>{t('admin.cancel')}</button>
            </>
          ) : (
            <button className="danger" onClick={() => setConfirmLogout(true)} data-testid="board-logout">
              {t('boards.logout')}
            </button>
          ))}
      </div>
      {connecting && (
        <p role="status" className="notice" data-testid="board-connecting">
          {connecting.phase === 'starting'
            ? t('boards.connect.starting')
            : connecting.blocked
              ? t('boards.connect.blocked')
              : t('boards.connect.waiting')}{' '}
          {connecting.phase === 'waiting' && (
            <a href={connecting.url} target="_blank" rel="noopener noreferrer">
              {t('boards.connect.open')}
            </a>
          )}{' '}
          <button className="link" onClick={() => finish('closed')}>
            {t('admin.cancel')}
          </button>
        </p>
      )}
      {notice && (
        <p role="status" className="notice" data-testid="board-notice">
          {notice}
        </p>
      )}
      {error && (
        <p role="alert" className="error" data-testid="board-error">
          {error}
        </p>
      )}

      {status && (
        <section aria-label={t('boards.import')} data-testid="board-import">
          <h4>{t('boards.import')}</h4>
          <div className="counters">
            <div className="counter">
              <span>{t('boards.responsesLoaded')}</span>
              <strong data-testid="board-responses-loaded">{fmt.number(status.responses_loaded)}</strong>
            </div>
            <div className="counter">
              <span>{t('boards.applicationsCreated')}</span>
              <strong data-testid="board-applications-created">{fmt.number(status.applications_created)}</strong>
            </div>
            <div className="counter">
              <span>{t('boards.differences')}</span>
              <strong data-testid="board-differences-count">{fmt.number(status.responses_loaded - status.applications_created)}</strong>
            </div>
          </div>
          <p data-testid="board-import-state" data-initial-done={status.initial_done ? 'true' : 'false'}>
            {status.initial_done ? <span className="ok-text">{t('boards.initialDone')}</span> : connected ? t('boards.initialRunning') : t('boards.initialWaiting')}
            {countersAgree(status) ? null : <span className="muted"> · {t('boards.countersCatchingUp')}</span>}
          </p>
          {status.position_vacancy_id && (
            <p className="muted" data-testid="board-position">
              {t('boards.position', {
                vacancy: status.position_vacancy_id,
                collection: status.position_collection + 1,
                page: status.position_page + 1,
              })}
            </p>
          )}
          {status.differences.length > 0 && (
            <>
              <button className="link" aria-expanded={showDiffs} onClick={() => setShowDiffs(!showDiffs)}>
                {t('boards.showDifferences', { count: status.differences.length })}
              </button>
              {showDiffs && (
                <table data-testid="board-differences">
                  <thead>
                    <tr>
                      <th>{t('boards.negotiation')}</th>
                      <th>{t('boards.boardVacancy')}</th>
                      <th>{t('boards.reason')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {status.differences.map((d) => (
                      <tr key={d.negotiation_id}>
                        <td>{d.negotiation_id}</td>
                        <td>{d.board_vacancy_id}</td>
                        <td>{d.reason}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          )}
          <div className="board-row">
            <button onClick={() => void newResponses()} data-testid="board-new-responses">
              {t('boards.newResponses')}
            </button>
            {fresh && (
              <span data-testid="board-new-total" data-total={fresh.total}>
                {t('boards.newTotal', { count: fresh.total })}{' '}
                <span className="muted">({fresh.source === 'board' ? t('boards.source.board') : t('boards.source.last_sync')})</span>
              </span>
            )}
          </div>
          {fresh && fresh.vacancies.length > 0 && (
            <table data-testid="board-new-table">
              <thead>
                <tr>
                  <th>{t('queues.vacancy')}</th>
                  <th>{t('boards.onBoard')}</th>
                  <th>{t('boards.imported')}</th>
                  <th>{t('boards.notImported')}</th>
                </tr>
              </thead>
              <tbody>
                {fresh.vacancies.map((v) => (
                  <tr key={v.board_vacancy_id}>
                    <td>{v.name}</td>
                    <td>{v.on_board}</td>
                    <td>{v.imported}</td>
                    <td>{v.not_imported}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}

      <div className="board-row" role="group" aria-label={t('boards.more')}>
        <button aria-expanded={panel === 'mapping'} onClick={() => setPanel(panel === 'mapping' ? 'none' : 'mapping')} data-testid="board-mapping-toggle">
          {t('boards.mapping')}
        </button>
        <button aria-expanded={panel === 'vacancies'} onClick={() => setPanel(panel === 'vacancies' ? 'none' : 'vacancies')} data-testid="board-vacancies-toggle">
          {t('boards.vacancies')}
        </button>
      </div>
      {panel === 'mapping' && <BoardMappingEditor ws={ws} account={account} pipelines={pipelines} users={users} />}
      {panel === 'vacancies' && <BoardVacancies ws={ws} account={account} />}
    </article>
  );
}

/** The account became connected (or re-connected) since `before`. */
function connectedSince(before: BoardStatus | null, now: BoardStatus): boolean {
  if (!now.connected || now.health === 'needs_relogin') return false;
  if (!before?.connected || before.health === 'needs_relogin') return true;
  return JSON.stringify(before.board_account) !== JSON.stringify(now.board_account);
}

/** What the connect window shows, once it is back on this origin; null while on the board. */
function readWindow(popup: Window): ConnectResult | null {
  try {
    const href = popup.location.href;
    if (!href || href === 'about:blank') return null;
    const doc = popup.document;
    if (doc.readyState !== 'complete') return null;
    const text = doc.querySelector('pre')?.textContent ?? doc.body?.textContent ?? null;
    return readConnectResult(href, text);
  } catch {
    return null; // another origin: the board's page
  }
}

function connectError(t: (k: MessageKey, p?: Record<string, string | number>) => string, code: string, message: string): string {
  const key = `boards.connectError.${code}` as MessageKey;
  const text = t(key);
  return text === key ? t('boards.connectError.other', { message: message || code }) : text;
}
