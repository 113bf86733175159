// Applicants: directory search over names, phones and emails; the applicant card with its
// identities; a manual merge with undo.
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import type { Contact, ContactMerge } from '../api/types';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { describeError } from './Login';
import { useI18n } from './i18n';
import { onListKeyDown } from './listKeys';

const KINDS = ['phone', 'email', 'hh', 'telegram'] as const;

function useContactSearch(ws: Workspace, q: string, version: number) {
  const [list, setList] = useState<Contact[]>([]);
  useEffect(() => {
    const timer = setTimeout(() => {
      ws.api.get<Contact[]>(`/contacts?limit=50&q=${encodeURIComponent(q.trim())}`).then(setList, () => setList([]));
    }, 200);
    return () => clearTimeout(timer);
  }, [ws, q, version]);
  return list;
}

export function Applicants({ ws, contactId, open }: { ws: Workspace; contactId: string | null; open(id: string | null): void }) {
  const { t } = useI18n();
  const [q, setQ] = useState('');
  const [version, setVersion] = useState(0);
  const [creating, setCreating] = useState(false);
  const list = useContactSearch(ws, q, version);
  const changed = () => setVersion((v) => v + 1);

  return (
    <div className="applicants">
      <section className="applicant-list" aria-labelledby="appl-title">
        <h1 id="appl-title">{t('applicants.title')}</h1>
        <input type="search" aria-label={t('applicants.search')} placeholder={t('applicants.search')} value={q} onChange={(e) => setQ(e.target.value)} />
        <button onClick={() => setCreating(!creating)} aria-expanded={creating}>
          {t('applicants.new')}
        </button>
        {creating && (
          <NewApplicant
            ws={ws}
            done={(c) => {
              setCreating(false);
              changed();
              open(c.id);
            }}
          />
        )}
        {list.length === 0 && <p className="muted">{t('applicants.none')}</p>}
        <ul onKeyDown={onListKeyDown}>
          {list.map((c) => (
            <li key={c.id}>
              <button data-nav-item aria-current={c.id === contactId ? 'true' : undefined} onClick={() => open(c.id)}>
                <span className="name">{c.name ?? t('applicants.unnamed')}</span>
                <span className="muted">{c.identities.map((i) => i.value).join(', ')}</span>
              </button>
            </li>
          ))}
        </ul>
      </section>
      {contactId && <ApplicantCard key={contactId} ws={ws} id={contactId} changed={changed} open={open} />}
    </div>
  );
}

function NewApplicant({ ws, done }: { ws: Workspace; done(c: Contact): void }) {
  const { t } = useI18n();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<string>('phone');
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    try {
      const c = await ws.api.post<Contact>('/contacts', {
        name: name.trim() || null,
        identities: value.trim() ? [{ kind, value: value.trim() }] : [],
      });
      done(c);
    } catch (err) {
      setError(describeError(err, t));
    }
  }
  return (
    <form onSubmit={submit} className="card">
      <label>
        {t('applicants.name')}
        <input value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <IdentityFields kind={kind} value={value} setKind={setKind} setValue={setValue} />
      {error && <p role="alert" className="error">{error}</p>}
      <button type="submit">{t('team.create')}</button>
    </form>
  );
}

function IdentityFields(p: { kind: string; value: string; setKind(k: string): void; setValue(v: string): void }) {
  const { t } = useI18n();
  return (
    <>
      <label>
        {t('applicants.kind')}
        <select value={p.kind} onChange={(e) => p.setKind(e.target.value)}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {t(`applicants.kind.${k}` as MessageKey)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('applicants.value')}
        <input value={p.value} onChange={(e) => p.setValue(e.target.value)} />
      </label>
    </>
  );
}

function ApplicantCard({ ws, id, changed, open }: { ws: Workspace; id: string; changed(): void; open(id: string | null): void }) {
  const { t, fmt } = useI18n();
  const [contact, setContact] = useState<Contact | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [kind, setKind] = useState<string>('phone');
  const [value, setValue] = useState('');
  const [mergeQ, setMergeQ] = useState('');
  const [merges, setMerges] = useState<ContactMerge[]>([]);
  const candidates = useContactSearch(ws, mergeQ, 0).filter((c) => c.id !== id);

  const load = () => ws.api.get<Contact>(`/contacts/${id}`).then(setContact, (e) => setError(describeError(e, t)));
  useEffect(() => {
    void load();
  }, [id]);

  const fail = (e: unknown) => setError(describeError(e, t));

  async function addIdentity(e: FormEvent) {
    e.preventDefault();
    try {
      setContact(await ws.api.post<Contact>(`/contacts/${id}/identities`, { kind, value: value.trim() }));
      setValue('');
      setError(null);
      changed();
    } catch (err) {
      fail(err);
    }
  }

  async function merge(otherId: string) {
    try {
      const m = await ws.api.post<ContactMerge>(`/contacts/${id}/merge`, { contact_id: otherId });
      setMerges([m, ...merges]);
      setNotice(t('applicants.merged'));
      setMergeQ('');
      setError(null);
      await load();
      changed();
    } catch (err) {
      fail(err);
    }
  }

  async function undo(m: ContactMerge) {
    try {
      await ws.api.post(`/contact-merges/${m.id}/undo`);
      setMerges(merges.filter((x) => x.id !== m.id));
      setNotice(t('applicants.undone'));
      setError(null);
      await load();
      changed();
    } catch (err) {
      fail(err);
    }
  }

  if (!contact) return <section className="card">{error ?? '…'}</section>;
  return (
    <section className="applicant-card card" aria-labelledby="card-title">
      <h2 id="card-title">{contact.name ?? t('applicants.unnamed')}</h2>
      {contact.city && (
        <p>
          {t('applicants.city')}: {contact.city}
        </p>
      )}
      <h3>{t('applicants.identities')}</h3>
      <ul>
        {contact.identities.map((i) => (
          <li key={i.id}>
            {t(`applicants.kind.${i.kind}` as MessageKey)}: {i.value}{' '}
            <span className="muted">{fmt.dateTime(i.created_at)}</span>
          </li>
        ))}
      </ul>
      <form onSubmit={addIdentity}>
        <IdentityFields kind={kind} value={value} setKind={setKind} setValue={setValue} />
        <button type="submit">{t('applicants.addIdentity')}</button>
      </form>
      <h3>{t('applicants.merge')}</h3>
      <p className="muted">{t('applicants.mergeHint')}</p>
      <input type="search" aria-label={t('applicants.merge')} value={mergeQ} onChange={(e) => setMergeQ(e.target.value)} />
      {mergeQ.trim() && (
        <ul onKeyDown={onListKeyDown}>
          {candidates.map((c) => (
            <li key={c.id}>
              {c.name ?? t('applicants.unnamed')} <span className="muted">{c.identities.map((i) => i.value).join(', ')}</span>{' '}
              <button data-nav-item onClick={() => void merge(c.id)}>
                {t('applicants.mergeDo')}
              </button>
            </li>
          ))}
        </ul>
      )}
      {merges.map((m) => (
        <p key={m.id}>
          <button onClick={() => void undo(m)}>{t('applicants.undo')}</button>{' '}
          <span className="muted">{fmt.dateTime(m.at)}</span>
        </p>
      ))}
      {notice && <p role="status">{notice}</p>}
      {error && <p role="alert" className="error">{error}</p>}
      <button className="link" onClick={() => open(null)}>
        ✕
      </button>
    </section>
  );
}
