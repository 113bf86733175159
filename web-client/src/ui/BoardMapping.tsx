// A board account's sync settings: the pipeline, then either the simple mode (a stage for
// responses, one for invitations, optionally one for refusals) or the extended mode (a stage
// for every state the board reported), and — on hubs that have it — the responsible
// recruiter. Saved with PUT …/board/mapping (admins).
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import type { ChannelAccount, MappingView, Pipeline, User } from '../api/types';
import { ApiError } from '../api/http';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { choosePipeline, isRefusal, mappingBody, mappingForm, mappingProblems } from '../state/boards';
import type { MappingForm } from '../state/boards';
import { describeError } from './Login';
import { useI18n } from './i18n';

export function BoardMappingEditor({ ws, account, pipelines, users }: { ws: Workspace; account: ChannelAccount; pipelines: Pipeline[]; users: User[] }) {
  const { t } = useI18n();
  const [view, setView] = useState<MappingView | null>(null);
  const [form, setForm] = useState<MappingForm | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const canEdit = ws.me.user.role === 'admin';

  useEffect(() => {
    ws.api.get<MappingView>(`/channel-accounts/${account.id}/board/mapping`).then(
      (v) => {
        setView(v);
        setForm(mappingForm(v));
      },
      (e) => setError(describeError(e, t)),
    );
  }, [ws, account.id]);

  if (!form || !view) return error ? <p role="alert" className="error">{error}</p> : <p className="muted">{t('inbox.loading')}</p>;

  const pipeline = pipelines.find((p) => p.id === form.pipeline_id);
  const stages = [...(pipeline?.stages ?? [])].sort((a, b) => a.position - b.position);
  const problems = mappingProblems(form, pipelines);
  const refusals = view.board_states.filter((s) => isRefusal(s.id));
  const edit = (patch: Partial<MappingForm>) => {
    setSaved(false);
    setForm({ ...form, ...patch });
  };
  const setState = (stateId: string, stageId: string) => edit({ state_stages: { ...form.state_stages, [stateId]: stageId } });

  async function save(e: FormEvent) {
    e.preventDefault();
    if (!form || problems.length) return;
    setBusy(true);
    try {
      const v = await ws.api.put<MappingView>(`/channel-accounts/${account.id}/board/mapping`, mappingBody(form));
      setView(v);
      setForm(mappingForm(v));
      setError(null);
      setSaved(true);
    } catch (err) {
      setSaved(false);
      // A stage or pipeline deleted or renamed elsewhere: say which, not just "422".
      if (err instanceof ApiError && (err.code === 'unknown_stage' || err.code === 'unknown_pipeline')) {
        setError(t(`mapping.error.${err.code}` as MessageKey));
      } else setError(describeError(err, t));
    } finally {
      setBusy(false);
    }
  }

  const stageSelect = (value: string, onChange: (v: string) => void, label: string, testId: string, allowNone: boolean) => (
    <select value={value} onChange={(e) => onChange(e.target.value)} aria-label={label} data-testid={testId} disabled={!canEdit}>
      {(allowNone || !value) && <option value="">{t('mapping.noStage')}</option>}
      {stages.map((s) => (
        <option key={s.id} value={s.id}>
          {s.name}
        </option>
      ))}
    </select>
  );

  return (
    <form className="card mapping" onSubmit={save} data-testid="board-mapping" aria-label={t('boards.mapping')}>
      <p className="muted">{t('mapping.intro')}</p>
      <label>
        {t('mapping.pipeline')}
        <select
          value={form.pipeline_id}
          onChange={(e) => {
            setSaved(false);
            setForm(choosePipeline(form, pipelines, e.target.value));
          }}
          data-testid="mapping-pipeline"
          disabled={!canEdit}
        >
          {!pipeline && <option value="">{t('mapping.noPipeline')}</option>}
          {pipelines.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>{t('mapping.mode')}</legend>
        <label className="radio">
          <input type="radio" name={`mode-${account.id}`} checked={form.mode === 'simple'} onChange={() => edit({ mode: 'simple' })} data-testid="mapping-simple" disabled={!canEdit} />
          {t('mapping.simple')}
        </label>
        <label className="radio">
          <input type="radio" name={`mode-${account.id}`} checked={form.mode === 'extended'} onChange={() => edit({ mode: 'extended' })} data-testid="mapping-extended" disabled={!canEdit} />
          {t('mapping.extended')}
        </label>
      </fieldset>
      {form.mode === 'simple' ? (
        <div className="form-grid">
          <label>
            {t('mapping.responses')}
            {stageSelect(form.responses_stage_id, (v) => edit({ responses_stage_id: v }), t('mapping.responses'), 'mapping-responses', false)}
          </label>
          <label>
            {t('mapping.invitations')}
            {stageSelect(form.invitations_stage_id, (v) => edit({ invitations_stage_id: v }), t('mapping.invitations'), 'mapping-invitations', false)}
          </label>
          {refusals.map((s) => (
            <label key={s.id}>
              {t('mapping.refusal', { state: s.name })}
              {stageSelect(form.state_stages[s.id] ?? '', (v) => setState(s.id, v), t('mapping.refusal', { state: s.name }), `mapping-state-${s.id}`, true)}
            </label>
          ))}
        </div>
      ) : view.board_states.length === 0 ? (
        <p className="muted">{t('mapping.noStates')}</p>
      ) : (
        <table className="mapping-table" data-testid="mapping-table">
          <thead>
            <tr>
              <th>{t('mapping.boardState')}</th>
              <th>{t('mapping.stage')}</th>
            </tr>
          </thead>
          <tbody>
            {view.board_states.map((s) => (
              <tr key={s.id}>
                <td>
                  {s.name} <span className="muted">({s.id})</span>
                </td>
                <td>{stageSelect(form.state_stages[s.id] ?? '', (v) => setState(s.id, v), t('mapping.stageFor', { state: s.name }), `mapping-state-${s.id}`, true)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {form.hasResponsible && (
        <label>
          {t('mapping.responsible')}
          <select value={form.responsible_user_id} onChange={(e) => edit({ responsible_user_id: e.target.value })} data-testid="mapping-responsible" disabled={!canEdit}>
            <option value="">{t('mapping.nobody')}</option>
            {users
              .filter((u) => u.active)
              .map((u) => (
                <option key={u.id} value={u.id}>
                  {u.name}
                </option>
              ))}
          </select>
        </label>
      )}
      {problems.length > 0 && (
        <ul className="error" data-testid="mapping-problems">
          {problems.map((p) => (
            <li key={p}>{t(p as MessageKey)}</li>
          ))}
        </ul>
      )}
      {canEdit && (
        <button type="submit" disabled={busy || problems.length > 0} data-testid="mapping-save">
          {t('admin.save')}
        </button>
      )}
      {saved && (
        <span role="status" className="ok-text" data-testid="mapping-saved">
          {t('mapping.saved')}
        </span>
      )}
      {error && (
        <p role="alert" className="error" data-testid="mapping-error">
          {error}
        </p>
      )}
    </form>
  );
}
