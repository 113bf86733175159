// The vacancies a board account imported, each linked (or not) to the local vacancy it
// publishes; kept current by `vacancy.updated`.
import { useEffect, useState } from 'react';
import type { ChannelAccount, Vacancy } from '../api/types';
import type { Workspace } from '../app/workspace';
import { describeError } from './Login';
import { useI18n } from './i18n';

export function BoardVacancies({ ws, account }: { ws: Workspace; account: ChannelAccount }) {
  const { t } = useI18n();
  const [vacancies, setVacancies] = useState<Vacancy[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const canLink = ws.me.user.role !== 'recruiter';

  const load = () => ws.api.get<Vacancy[]>('/vacancies').then(setVacancies, (e) => setError(describeError(e, t)));

  useEffect(() => {
    void load();
    return ws.subscribeFrames((f) => {
      if (f.type === 'event' && f.kind === 'vacancy.updated') {
        const v = f.data as Vacancy;
        setVacancies((list) => (list ? [...list.filter((x) => x.id !== v.id), v] : list));
      }
    });
  }, [ws]);

  if (!vacancies) return error ? <p role="alert" className="error">{error}</p> : <p className="muted">{t('inbox.loading')}</p>;
  const own = vacancies.filter((v) => v.board_account_id === account.id).sort((a, b) => a.name.localeCompare(b.name));
  const local = vacancies.filter((v) => !v.board_account_id).sort((a, b) => a.name.localeCompare(b.name));

  async function link(v: Vacancy, linked: string | null) {
    try {
      const saved = await ws.api.patch<Vacancy>(`/vacancies/${v.id}`, { linked_vacancy_id: linked });
      setVacancies((list) => (list ?? []).map((x) => (x.id === saved.id ? saved : x)));
      setError(null);
    } catch (e) {
      setError(describeError(e, t));
    }
  }

  async function createLocal(v: Vacancy) {
    try {
      const created = await ws.api.post<Vacancy>('/vacancies', { name: v.name, city: v.city ?? undefined });
      setVacancies((list) => [...(list ?? []), created]);
      await link(v, created.id);
    } catch (e) {
      setError(describeError(e, t));
    }
  }

  return (
    <div className="card" data-testid="board-vacancies">
      {own.length === 0 ? (
        <p className="muted">{t('vacancies.none')}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{t('queues.vacancy')}</th>
              <th>{t('applicants.city')}</th>
              <th>{t('vacancies.responses')}</th>
              <th>{t('vacancies.linked')}</th>
            </tr>
          </thead>
          <tbody>
            {own.map((v) => (
              <tr key={v.id} data-testid="board-vacancy">
                <td>
                  {v.board_url ? (
                    <a href={v.board_url} target="_blank" rel="noopener noreferrer">
                      {v.name}
                    </a>
                  ) : (
                    v.name
                  )}
                </td>
                <td>{v.city ?? ''}</td>
                <td>{v.board_total ?? ''}</td>
                <td>
                  <select
                    aria-label={t('vacancies.linkFor', { name: v.name })}
                    value={v.linked_vacancy_id ?? ''}
                    disabled={!canLink}
                    onChange={(e) => void link(v, e.target.value || null)}
                  >
                    <option value="">{t('vacancies.notLinked')}</option>
                    {local.map((l) => (
                      <option key={l.id} value={l.id}>
                        {l.name}
                        {l.city ? ` (${l.city})` : ''}
                      </option>
                    ))}
                  </select>
                  {canLink && !v.linked_vacancy_id && (
                    <button className="link" onClick={() => void createLocal(v)}>
                      {t('vacancies.createLocal')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}
