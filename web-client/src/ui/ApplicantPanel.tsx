// The side panel of the open thread: the applicant card (name, identities across channels,
// vacancy), the applicant's applications with the candidate card (ApplicationCard.tsx), the
// applicant's merges, each with Undo, and "Possibly the same person": other applicants the
// hub suggests merging (same name, phone, or email before the @), each merged here after an
// inline confirmation, with Undo right after.
import { useEffect, useRef, useState } from 'react';
import type { Contact, ContactMerge, MergeSuggestion, Thread } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { loadSuggestions, mergeInto, undoMerge } from '../state/merges';
import { ApplicationsPanel } from './ApplicationCard';
import { describeError } from './Login';
import { useI18n } from './i18n';

export function ApplicantPanel({ ws, threadId, openApplicant }: { ws: Workspace; threadId: string; openApplicant(id: string): void }) {
  const { t } = useI18n();
  const thread: Thread | undefined = useStore(ws.inbox).threads[threadId];
  const queues = useStore(ws.queues);
  if (!thread) return null;
  const queue = queues.find((q) => q.id === thread.queue_id)?.name;
  return (
    <section className="applicant-panel" aria-labelledby="panel-applicant" data-testid="applicant-panel">
      <h2 id="panel-applicant">{t('side.applicant')}</h2>
      <ContactCard key={thread.contact_id} ws={ws} contactId={thread.contact_id} openApplicant={openApplicant} />
      <ApplicationsPanel key={thread.contact_id} ws={ws} thread={thread} />
      {thread.vacancy && <p data-testid="panel-vacancy">{t('side.vacancy', { vacancy: thread.vacancy })}</p>}
      {queue && <p className="muted">{t('side.queue', { queue })}</p>}
      <section className="assist" aria-labelledby="panel-assist" data-testid="panel-assist">
        <h3 id="panel-assist">{t('side.assist')}</h3>
        <p className="muted" data-testid="panel-assist-kb">{t('side.assistKb')}</p>
        <p className="muted" data-testid="panel-assist-bot">{t('side.assistBot')}</p>
      </section>
    </section>
  );
}

function ContactCard({ ws, contactId, openApplicant }: { ws: Workspace; contactId: string; openApplicant(id: string): void }) {
  const { t, fmt } = useI18n();
  const [contact, setContact] = useState<Contact | null>(null);
  const [merges, setMerges] = useState<ContactMerge[]>([]);
  /** null: the hub has no suggestions for this applicant (or no such endpoint). */
  const [suggestions, setSuggestions] = useState<MergeSuggestion[] | null>(null);
  /** The merge just made here, with the name of who was merged in: offered for Undo. */
  const [justMerged, setJustMerged] = useState<{ merge: ContactMerge; name: string } | null>(null);
  const [undone, setUndone] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = () =>
    Promise.all([
      ws.api.get<Contact>(`/contacts/${contactId}`).then(setContact),
      ws.api.get<ContactMerge[]>(`/contacts/${contactId}/merges`).then(setMerges),
      loadSuggestions(ws.api, contactId).then(setSuggestions),
    ]).then(
      () => setError(null),
      (e) => setError(describeError(e, t)),
    );

  useEffect(() => {
    void load();
  }, [contactId]);

  // Merges made elsewhere (another recruiter, the hub's automatic ones) change this applicant.
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(
    () =>
      ws.subscribeFrames((f) => {
        if (f.type !== 'event') return;
        if (f.kind === 'contact.merged' || f.kind === 'contact.merge_undone') {
          const m = f.data as ContactMerge;
          if (m.survivor_id === contactId || m.merged_id === contactId) void loadRef.current();
        } else if (f.kind === 'contact.updated' && (f.data as Contact).id === contactId) {
          void loadRef.current();
        }
      }),
    [ws, contactId],
  );

  async function undo(m: ContactMerge) {
    try {
      await undoMerge(ws.api, m.id);
      if (justMerged?.merge.id === m.id) {
        setUndone(justMerged.name);
        setJustMerged(null);
      }
      await load();
    } catch (e) {
      setError(describeError(e, t));
    }
  }

  async function merge(s: MergeSuggestion) {
    try {
      const m = await mergeInto(ws.api, contactId, s.contact.id);
      setJustMerged({ merge: m, name: s.contact.name ?? t('applicants.unnamed') });
      setUndone(null);
      await load();
    } catch (e) {
      setError(describeError(e, t));
    }
  }

  return (
    <div className="contact-card">
      {contact ? (
        <>
          <p>
            <button className="link" onClick={() => openApplicant(contact.id)} data-testid="panel-name">
              {contact.name ?? t('applicants.unnamed')}
            </button>
            {contact.city && <span className="muted"> · {contact.city}</span>}
          </p>
          <h3>{t('side.identities')}</h3>
          <ul data-testid="panel-identities">
            {contact.identities.map((i) => (
              <li key={i.id}>
                <span className="muted">{label(t, `applicants.kind.${i.kind}`, i.kind)}:</span> {i.value}
              </li>
            ))}
          </ul>
          {justMerged && (
            <p className="notice" role="status" data-testid="merge-done">
              {t('suggest.merged', { name: justMerged.name })}{' '}
              <button onClick={() => void undo(justMerged.merge)} data-testid="merge-undo">
                {t('side.undo')}
              </button>
            </p>
          )}
          {undone && (
            <p className="notice" role="status" data-testid="merge-undone">
              {t('suggest.undone', { name: undone })}
            </p>
          )}
          {suggestions && suggestions.length > 0 && (
            <Suggestions suggestions={suggestions} survivor={contact} onMerge={merge} />
          )}
          <h3>{t('side.merges')}</h3>
          {merges.length === 0 ? (
            <p className="muted">{t('side.noMerges')}</p>
          ) : (
            <ul data-testid="panel-merges">
              {merges.map((m) => (
                <li key={m.id}>
                  {label(t, `merge.reason.${m.reason}`, m.reason)} · <span className="muted">{fmt.dateTime(m.at)}</span>{' '}
                  {m.undone_at ? (
                    <span className="muted">({t('side.undone')})</span>
                  ) : (
                    <button onClick={() => void undo(m)}>{t('side.undo')}</button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </>
      ) : (
        !error && <p className="muted">{t('inbox.loading')}</p>
      )}
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}

/** "Possibly the same person": each with its reasons and Merge, confirmed inline. */
function Suggestions({
  suggestions,
  survivor,
  onMerge,
}: {
  suggestions: MergeSuggestion[];
  survivor: Contact;
  onMerge(s: MergeSuggestion): Promise<void>;
}) {
  const { t } = useI18n();
  const [asking, setAsking] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const mergeRefs = useRef(new Map<string, HTMLButtonElement>());

  const [returnTo, setReturnTo] = useState<string | null>(null);

  // The confirmation takes the focus; cancelling gives it back to the Merge button (once it
  // is rendered again).
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
    else if (returnTo) {
      mergeRefs.current.get(returnTo)?.focus();
      setReturnTo(null);
    }
  }, [asking, returnTo]);

  const cancel = (id: string) => {
    setAsking(null);
    setReturnTo(id);
  };

  return (
    <section aria-labelledby="panel-suggestions" data-testid="merge-suggestions">
      <h3 id="panel-suggestions">{t('suggest.title')}</h3>
      <ul>
        {suggestions.map((s) => {
          const name = s.contact.name ?? t('applicants.unnamed');
          const reasons = s.reasons.map((r) => label(t, `suggest.reason.${r}`, r)).join(', ');
          return (
            <li key={s.contact.id} data-testid="merge-suggestion" data-contact-id={s.contact.id}>
              <strong>{name}</strong>
              {s.contact.identities.length > 0 && (
                <span className="muted"> · {s.contact.identities.map((i) => i.value).join(', ')}</span>
              )}
              <div className="muted" data-testid="merge-reasons">
                {t('suggest.why', { reasons })}
              </div>
              {asking === s.contact.id ? (
                <div
                  role="group"
                  aria-label={t('suggest.confirmLabel')}
                  className="confirm"
                  data-testid="merge-confirm"
                  onKeyDown={(e) => {
                    if (e.key === 'Escape') cancel(s.contact.id);
                  }}
                >
                  <p>{t('suggest.confirm', { name, survivor: survivor.name ?? t('applicants.unnamed') })}</p>
                  <button
                    ref={confirmRef}
                    disabled={busy}
                    onClick={() => {
                      setBusy(true);
                      void onMerge(s).finally(() => {
                        setBusy(false);
                        setAsking(null);
                      });
                    }}
                    data-testid="merge-confirm-yes"
                  >
                    {t('suggest.confirmYes')}
                  </button>{' '}
                  <button onClick={() => cancel(s.contact.id)} data-testid="merge-confirm-no">
                    {t('admin.cancel')}
                  </button>
                </div>
              ) : (
                <button
                  ref={(el) => {
                    if (el) mergeRefs.current.set(s.contact.id, el);
                    else mergeRefs.current.delete(s.contact.id);
                  }}
                  onClick={() => setAsking(s.contact.id)}
                  aria-label={t('suggest.mergeWho', { name })}
                  data-testid="merge-suggestion-merge"
                >
                  {t('suggest.merge')}
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function label(t: (k: MessageKey) => string, key: string, fallback: string): string {
  const text = t(key as MessageKey);
  return text === key ? fallback : text;
}
