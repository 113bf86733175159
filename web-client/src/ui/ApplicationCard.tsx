// The applicant's applications in the side panel: the candidate card of one of them (board
// dates and state, vacancy, name / phone / email / city with the board's hidden-field
// placeholders said in the interface language, the resume PDF and the resume on the board),
// its pipeline stage — changeable, moving the board's state too, asking for the board's
// message when it wants one — with the board sync state, and every other response of the
// same applicant, paged. `application.updated` keeps it current.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import { ApiError } from '../api/http';
import type { Application, ApplicationCard as Card, MappingView, Pipeline, Thread, ThreadMessage } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { boardSync, chatAllowance, mergeApplications, newerApplication, parsePlaceholder } from '../state/boards';
import { describeError } from './Login';
import { useI18n } from './i18n';
import './boards.css';

/** Applications per page of "other responses". */
export const APPLICATIONS_PAGE = 20;

/** Board errors of a stage move that deserve their own words (the rest: `describeError`). */
const MOVE_ERRORS = new Set(['board_wrong_state', 'board_refused', 'board_not_connected', 'board_needs_relogin', 'board_unavailable', 'unknown_stage', 'board_not_configured']);

/** Pipelines change rarely: one load per workspace, shared by every card. */
const pipelinesOf = new WeakMap<Workspace, Promise<Pipeline[]>>();
function loadPipelines(ws: Workspace): Promise<Pipeline[]> {
  let p = pipelinesOf.get(ws);
  if (!p) {
    p = ws.api.get<Pipeline[]>('/pipelines');
    p.catch(() => pipelinesOf.delete(ws));
    pipelinesOf.set(ws, p);
  }
  return p;
}

export function ApplicationsPanel({ ws, thread }: { ws: Workspace; thread: Thread }) {
  const { t, fmt } = useI18n();
  const contactId = thread.contact_id;
  const [apps, setApps] = useState<Application[] | null>(null);
  const [hasMore, setHasMore] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loaded = useRef(0);

  const loadPage = async (offset: number) => {
    const page = await ws.api.get<Application[]>(`/applications?contact_id=${encodeURIComponent(contactId)}&limit=${APPLICATIONS_PAGE}&offset=${offset}`);
    loaded.current = offset + page.length;
    setHasMore(page.length === APPLICATIONS_PAGE);
    setApps((held) => (offset === 0 ? mergeApplications([], page) : mergeApplications(held ?? [], page)));
    return page;
  };

  const reload = () =>
    loadPage(0).then(
      () => setError(null),
      (e) => setError(describeError(e, t)),
    );

  useEffect(() => {
    setApps(null);
    setSelected(null);
    void reload();
    return ws.subscribeFrames((f) => {
      if (f.type === 'live') void reload();
      if (f.type === 'event' && f.kind === 'application.updated' && (f.data as Application).contact_id === contactId) {
        const a = f.data as Application;
        setApps((held) => (held ? mergeApplications(held, [a]) : held));
      }
    });
  }, [ws, contactId]);

  if (!apps || apps.length === 0) return error ? <p role="alert" className="error">{error}</p> : null;

  // The card: the one picked, else the newest of this thread, else the newest.
  const current = apps.find((a) => a.id === selected) ?? apps.find((a) => a.thread_id === thread.id) ?? apps[0];
  const others = apps.filter((a) => a.id !== current.id);

  return (
    <div data-testid="applications">
      <CandidateCard key={current.id} ws={ws} application={current} />
      <h3>{t('card.others')}</h3>
      {others.length === 0 ? (
        <p className="muted" data-testid="app-others-none">
          {t('card.noOthers')}
        </p>
      ) : (
        <ul className="app-others" data-testid="app-others">
          {others.map((a) => (
            <li key={a.id}>
              <button onClick={() => setSelected(a.id)} data-testid="app-other" data-application-id={a.id}>
                <span>{a.vacancy_name ?? t('card.noVacancy')}</span>
                <span className="muted">
                  {a.stage_name ?? ''}
                  {a.board_state_name ? ` · ${t('card.onBoardShort', { state: a.board_state_name })}` : ''} · {fmt.dateTime(a.board_created_at ?? a.created_at)}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {hasMore && (
        <button
          onClick={() => void loadPage(loaded.current).catch((e) => setError(describeError(e, t)))}
          data-testid="app-others-more"
        >
          {t('inbox.more')}
        </button>
      )}
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}

type Move = { phase: 'idle' } | { phase: 'moving'; stageId: string } | { phase: 'message'; stageId: string; text: string };

function CandidateCard({ ws, application }: { ws: Workspace; application: Application }) {
  const { t, fmt } = useI18n();
  const channels = useStore(ws.inbox).channels;
  const [card, setCard] = useState<Card | null>(null);
  const [app, setApp] = useState<Application>(application);
  const [pipelines, setPipelines] = useState<Pipeline[]>([]);
  const [mapping, setMapping] = useState<MappingView | null>(null);
  const [move, setMove] = useState<Move>({ phase: 'idle' });
  const [error, setError] = useState<string | null>(null);
  const [moved, setMoved] = useState(false);

  // The list's copy (events) wins when newer.
  useEffect(() => setApp((held) => newerApplication(held, application)), [application]);

  useEffect(() => {
    ws.api.get<Card>(`/applications/${application.id}`).then(
      (c) => {
        setCard(c);
        setApp((held) => newerApplication(held, c.application));
      },
      (e) => setError(describeError(e, t)),
    );
    loadPipelines(ws).then(setPipelines, () => undefined);
  }, [ws, application.id]);

  useEffect(() => {
    if (!application.board_account_id) return;
    ws.api.get<MappingView>(`/channel-accounts/${application.board_account_id}/board/mapping`).then(setMapping, () => setMapping(null));
  }, [ws, application.board_account_id]);

  const pipeline = useMemo(() => pipelines.find((p) => p.stages.some((s) => s.id === app.stage_id)) ?? pipelines.find((p) => p.is_default), [pipelines, app.stage_id]);
  const stages = [...(pipeline?.stages ?? [])].sort((a, b) => a.position - b.position);
  const order = mapping?.board_states.map((s) => s.id) ?? [];
  const sync = boardSync(app, mapping, order);
  const account = app.board_account_id ? channels[app.board_account_id] : undefined;

  async function moveTo(stageId: string, message?: string) {
    setMove({ phase: 'moving', stageId });
    setMoved(false);
    try {
      const next = await ws.api.post<Application>(`/applications/${app.id}/stage`, message === undefined ? { stage_id: stageId } : { stage_id: stageId, message });
      setApp((held) => newerApplication(held, next));
      setMove({ phase: 'idle' });
      setError(null);
      setMoved(true);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'board_message_required') {
        setMove({ phase: 'message', stageId, text: message ?? '' });
        setError(null);
        return;
      }
      setMove({ phase: 'idle' });
      setError(
        e instanceof ApiError && MOVE_ERRORS.has(e.code)
          ? t(`card.error.${e.code}` as MessageKey, { message: e.message })
          : describeError(e, t),
      );
    }
  }

  function sendWithMessage(e: FormEvent) {
    e.preventDefault();
    if (move.phase !== 'message' || !move.text.trim()) return;
    void moveTo(move.stageId, move.text.trim());
  }

  async function openResume() {
    if (!app.resume_upload_id) return;
    // Opened at once (inside the click) and filled when the file came: uploads need the token.
    const w = window.open('', '_blank');
    try {
      const blob = await ws.api.blob(`/uploads/${app.resume_upload_id}`);
      const url = URL.createObjectURL(blob);
      if (w) w.location.href = url;
      else {
        const a = document.createElement('a');
        a.href = url;
        a.download = `resume-${app.board_resume_id ?? app.id}.pdf`;
        a.click();
      }
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      w?.close();
      setError(describeError(e, t));
    }
  }

  const field = (label: MessageKey, value: string | null | undefined, testId: string) => {
    if (!value) return null;
    const hidden = parsePlaceholder(value);
    return (
      <>
        <dt>{t(label)}</dt>
        <dd data-testid={testId} data-hidden={hidden ? 'true' : 'false'} className={hidden ? 'hidden-field' : undefined}>
          {hidden ? t(`card.hidden.${hidden.field}` as MessageKey, { id: hidden.resumeId }) : value}
        </dd>
      </>
    );
  };

  const busy = move.phase === 'moving';
  const pendingStage = move.phase !== 'idle' ? move.stageId : null;

  return (
    <section className="app-card" aria-labelledby={`card-${app.id}`} data-testid="candidate-card" data-application-id={app.id} data-board-state={app.board_state_id ?? ''} data-stage-id={app.stage_id ?? ''}>
      <h3 id={`card-${app.id}`}>{app.source === 'local' ? t('card.titleLocal') : t('card.title')}</h3>
      <dl>
        <dt>{t('card.vacancy')}</dt>
        <dd data-testid="card-vacancy">{app.vacancy_name ?? t('card.noVacancy')}</dd>
        {account && (
          <>
            <dt>{t('card.board')}</dt>
            <dd>{account.name}</dd>
          </>
        )}
        {app.board_created_at && (
          <>
            <dt>{t('card.created')}</dt>
            <dd data-testid="card-created">{fmt.dateTime(app.board_created_at)}</dd>
          </>
        )}
        {app.board_state_name && (
          <>
            <dt>{t('card.boardState')}</dt>
            <dd data-testid="card-board-state">{app.board_state_name}</dd>
          </>
        )}
      </dl>
      <label>
        {t('card.stage')}
        <select
          value={pendingStage ?? app.stage_id ?? ''}
          disabled={busy || stages.length === 0}
          onChange={(e) => e.target.value && e.target.value !== app.stage_id && void moveTo(e.target.value)}
          data-testid="card-stage"
        >
          {!app.stage_id && <option value="">{t('mapping.noStage')}</option>}
          {stages.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </select>
      </label>
      {busy && (
        <p className="muted" role="status">
          {app.board_account_id ? t('card.movingBoard') : t('card.moving')}
        </p>
      )}
      {move.phase === 'message' && (
        <form onSubmit={sendWithMessage} className="card" data-testid="card-stage-message">
          <label>
            {t('card.messageNeeded', { stage: stages.find((s) => s.id === move.stageId)?.name ?? '' })}
            <textarea
              rows={3}
              value={move.text}
              autoFocus
              maxLength={5000}
              onChange={(e) => setMove({ ...move, text: e.target.value })}
              data-testid="card-stage-message-text"
            />
          </label>
          <button type="submit" disabled={!move.text.trim()} data-testid="card-stage-message-send">
            {t('card.moveAndSend')}
          </button>
          <button type="button" onClick={() => setMove({ phase: 'idle' })}>
            {t('admin.cancel')}
          </button>
        </form>
      )}
      {app.board_account_id && (
        <p className={`sync-${sync.kind}`} data-testid="card-sync" data-sync={sync.kind}>
          {sync.kind === 'synced'
            ? t('card.sync.synced', { state: app.board_state_name ?? app.board_state_id ?? '' })
            : sync.kind === 'not_on_board'
              ? t('card.sync.not_on_board', { state: app.board_state_name ?? app.board_state_id ?? '' })
              : sync.kind === 'differs'
                ? t('card.sync.differs', {
                    state: app.board_state_name ?? app.board_state_id ?? '',
                    expected: mapping?.board_states.find((s) => s.id === sync.expected)?.name ?? sync.expected,
                  })
                : ''}
        </p>
      )}
      {moved && !busy && (
        <p role="status" className="ok-text" data-testid="card-moved">
          {app.board_account_id && sync.kind === 'synced' ? t('card.movedBoard') : t('card.moved')}
        </p>
      )}
      {error && (
        <p role="alert" className="error" data-testid="card-error">
          {error}
        </p>
      )}
      <dl>
        {card && (
          <>
            {field('card.name', card.name, 'card-name')}
            {field('card.phone', card.phone, 'card-phone')}
            {field('card.email', card.email, 'card-email')}
            {field('card.city', card.city, 'card-city')}
          </>
        )}
      </dl>
      {!card && !error && <p className="muted">{t('inbox.loading')}</p>}
      <p className="board-row">
        {app.resume_upload_id && (
          <button type="button" onClick={() => void openResume()} data-testid="card-resume-pdf">
            {t('card.resumePdf')}
          </button>
        )}
        {card?.resume_url && (
          <a href={card.resume_url} target="_blank" rel="noopener noreferrer" data-testid="card-resume-link">
            {t('card.resumeOnBoard')}
          </a>
        )}
      </p>
      {card && chatAllowance(card.chat_replies_in_a_row, card.chat_limit) && (
        <p className="muted">{t('card.chat', { sent: card.chat_replies_in_a_row ?? 0, limit: card.chat_limit ?? 0 })}</p>
      )}
    </section>
  );
}

/**
 * The board chat's limit under the composer when the reply goes through a board account:
 * replies sent in a row since the applicant last wrote, and how many the board still takes.
 */
export function BoardChatLimit({ ws, thread, accountId }: { ws: Workspace; thread: Thread; accountId: string }) {
  const { t } = useI18n();
  const account = useStore(ws.inbox).channels[accountId];
  const isBoard = account?.kind === 'board';
  const [counts, setCounts] = useState<{ inARow: number | null; limit: number | null } | null>(null);

  useEffect(() => {
    if (!isBoard) return;
    let cancelled = false;
    const load = async () => {
      const list = await ws.api.get<Application[]>(`/applications?contact_id=${encodeURIComponent(thread.contact_id)}&limit=50`);
      // The hub replies in the chat of the thread's latest application on that account.
      const app = list.find((a) => a.board_account_id === accountId && a.board_chat_id);
      if (!app) return !cancelled && setCounts(null);
      const card = await ws.api.get<Card>(`/applications/${app.id}`);
      if (!cancelled) setCounts({ inARow: card.chat_replies_in_a_row, limit: card.chat_limit });
    };
    void load().catch(() => undefined);
    const off = ws.subscribeFrames((f) => {
      if (f.type === 'event' && (f.kind === 'thread.message' || f.kind === 'thread.message_updated') && (f.data as ThreadMessage).thread_id === thread.id) {
        void load().catch(() => undefined);
      }
    });
    return () => {
      cancelled = true;
      off();
    };
  }, [ws, thread.id, thread.contact_id, accountId, isBoard]);

  if (!isBoard || !counts) return null;
  const allowance = chatAllowance(counts.inARow, counts.limit);
  if (!allowance) return null;
  return (
    <span
      className={`chat-limit${allowance.reached ? ' reached' : ''}`}
      role={allowance.reached ? 'alert' : 'status'}
      data-testid="board-chat-limit"
      data-left={allowance.left}
    >
      {allowance.reached
        ? t('composer.boardLimitReached', { limit: counts.limit ?? 0 })
        : t('composer.boardLimit', { sent: counts.inARow ?? 0, limit: counts.limit ?? 0, left: allowance.left })}
    </span>
  );
}
