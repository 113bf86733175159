// Templates and signatures: the company's (admins) or the user's own.
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import type { Template } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import type { MessageKey } from '../i18n';
import { describeError } from './Login';
import { useI18n } from './i18n';

interface Form {
  kind: 'template' | 'signature';
  name: string;
  body: string;
}

const EMPTY: Form = { kind: 'template', name: '', body: '' };

export function Templates({ ws, company }: { ws: Workspace; company: boolean }) {
  const { t } = useI18n();
  const all = useStore(ws.templates);
  const list = all.filter((x) => (company ? x.owner_user_id === null : x.owner_user_id === ws.me.user.id));
  const [editing, setEditing] = useState<string | 'new' | null>(null);
  const [form, setForm] = useState<Form>(EMPTY);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    ws.loadTemplates().catch((e) => setError(describeError(e, t)));
  }, [ws]);

  const run = async (p: Promise<unknown>) => {
    try {
      await p;
      setError(null);
      setEditing(null);
      await ws.loadTemplates();
    } catch (e) {
      setError(describeError(e, t));
    }
  };

  function submit(e: FormEvent) {
    e.preventDefault();
    if (editing === 'new') {
      void run(ws.api.post<Template>('/templates', { ...form, shared: company }));
    } else if (editing) {
      void run(ws.api.patch<Template>(`/templates/${editing}`, { name: form.name, body: form.body }));
    }
  }

  return (
    <div className="templates" data-testid={company ? 'company-templates' : 'my-templates'}>
      <button
        onClick={() => {
          setForm(EMPTY);
          setEditing('new');
        }}
      >
        {t('templates.new')}
      </button>
      {editing && (
        <form onSubmit={submit} className="card">
          {editing === 'new' && (
            <label>
              {t('templates.kind')}
              <select value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value as Form['kind'] })}>
                <option value="template">{t('templates.kind.template')}</option>
                <option value="signature">{t('templates.kind.signature')}</option>
              </select>
            </label>
          )}
          <label>
            {t('templates.name')}
            <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} required maxLength={200} />
          </label>
          <label>
            {t('templates.body')}
            <textarea rows={4} value={form.body} onChange={(e) => setForm({ ...form, body: e.target.value })} required />
          </label>
          <p className="muted">{t('templates.vars')}</p>
          <button type="submit">{t('admin.save')}</button>
          <button type="button" onClick={() => setEditing(null)}>
            {t('admin.cancel')}
          </button>
        </form>
      )}
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>{t('templates.kind')}</th>
            <th>{t('templates.name')}</th>
            <th>{t('templates.body')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((x) => (
            <tr key={x.id}>
              <td>{t(`templates.kind.${x.kind}` as MessageKey)}</td>
              <td>{x.name}</td>
              <td className="pre">{x.body}</td>
              <td>
                <button
                  onClick={() => {
                    setForm({ kind: x.kind === 'signature' ? 'signature' : 'template', name: x.name, body: x.body });
                    setEditing(x.id);
                  }}
                >
                  {t('admin.edit')}
                </button>
                <button className="danger" onClick={() => void run(ws.api.delete(`/templates/${x.id}`))}>
                  {t('admin.delete')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
