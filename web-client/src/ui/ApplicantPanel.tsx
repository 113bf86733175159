// The side panel of the open thread: the applicant card (name, identities across channels,
// vacancy), the applicant's applications with the candidate card (ApplicationCard.tsx) and
// the applicant's merges, each with Undo.
import { useEffect, useState } from 'react';
import type { Contact, ContactMerge, Thread } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
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
    </section>
  );
}

function ContactCard({ ws, contactId, openApplicant }: { ws: Workspace; contactId: string; openApplicant(id: string): void }) {
  const { t, fmt } = useI18n();
  const [contact, setContact] = useState<Contact | null>(null);
  const [merges, setMerges] = useState<ContactMerge[]>([]);
  const [error, setError] = useState<string | null>(null);

  const load = () =>
    Promise.all([
      ws.api.get<Contact>(`/contacts/${contactId}`).then(setContact),
      ws.api.get<ContactMerge[]>(`/contacts/${contactId}/merges`).then(setMerges),
    ]).then(
      () => setError(null),
      (e) => setError(describeError(e, t)),
    );

  useEffect(() => {
    void load();
  }, [contactId]);

  async function undo(m: ContactMerge) {
    try {
      await ws.api.post(`/contact-merges/${m.id}/undo`);
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

function label(t: (k: MessageKey) => string, key: string, fallback: string): string {
  const text = t(key as MessageKey);
  return text === key ? fallback : text;
}
