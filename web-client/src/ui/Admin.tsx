// Administration (admin role): users, departments, and the admin's own sessions, the audit log.
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import type { Department, Role, Session, User } from '../api/types';
import type { Workspace } from '../app/workspace';
import { AdminAudit } from './AdminAudit';
import { AdminChannels } from './AdminChannels';
import { AdminQueues } from './AdminQueues';
import { describeError } from './Login';
import { Templates } from './Templates';
import { useI18n } from './i18n';

const ROLES: Role[] = ['recruiter', 'supervisor', 'admin'];
const TABS = ['users', 'departments', 'channels', 'queues', 'templates', 'sessions', 'audit'] as const;

export function Admin({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  // `/admin/<tab>` opens that tab (a board's OAuth return lands on `/admin/channels`).
  const [tab, setTab] = useState<(typeof TABS)[number]>(() => TABS.find((x) => location.pathname === `/admin/${x}`) ?? 'users');
  return (
    <section className="admin" aria-labelledby="admin-title">
      <h1 id="admin-title">{t('admin.title')}</h1>
      <div role="tablist" className="tabs">
        {TABS.map((k) => (
          <button key={k} role="tab" aria-selected={tab === k} onClick={() => setTab(k)} data-testid={`admin-tab-${k}`}>
            {t(`admin.${k}`)}
          </button>
        ))}
      </div>
      {tab === 'users' && <Users ws={ws} />}
      {tab === 'departments' && <Departments ws={ws} />}
      {tab === 'sessions' && <Sessions ws={ws} />}
      {tab === 'channels' && <AdminChannels ws={ws} />}
      {tab === 'queues' && <AdminQueues ws={ws} />}
      {tab === 'templates' && <Templates ws={ws} company />}
      {tab === 'audit' && <AdminAudit ws={ws} />}
    </section>
  );
}

function useDepartments(ws: Workspace, version = 0) {
  const [deps, setDeps] = useState<Department[]>([]);
  useEffect(() => {
    ws.api.get<Department[]>('/departments').then(setDeps, () => undefined);
  }, [ws, version]);
  return deps;
}

interface UserForm {
  name: string;
  email: string;
  role: Role;
  department_id: string;
  password: string;
}

const emptyForm: UserForm = { name: '', email: '', role: 'recruiter', department_id: '', password: '' };

function Users({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  const [users, setUsers] = useState<User[]>([]);
  const [inactive, setInactive] = useState(false);
  const [editing, setEditing] = useState<string | 'new' | null>(null);
  const [form, setForm] = useState<UserForm>(emptyForm);
  const [error, setError] = useState<string | null>(null);
  const deps = useDepartments(ws);
  const depName = new Map(deps.map((d) => [d.id, d.name]));

  const load = () => ws.api.get<User[]>(`/users${inactive ? '?include_inactive=true' : ''}`).then(setUsers, (e) => setError(describeError(e, t)));
  useEffect(() => {
    void load();
  }, [inactive]);

  const run = async (p: Promise<unknown>) => {
    try {
      await p;
      setError(null);
      setEditing(null);
      await load();
    } catch (e) {
      setError(describeError(e, t));
    }
  };

  function submit(e: FormEvent) {
    e.preventDefault();
    const department_id = form.department_id || null;
    if (editing === 'new') {
      void run(ws.api.post('/users', { name: form.name, email: form.email, role: form.role, department_id, password: form.password }));
    } else if (editing) {
      void run(ws.api.patch(`/users/${editing}`, { name: form.name, email: form.email, role: form.role, department_id }));
    }
  }

  const set = (k: keyof UserForm) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });

  return (
    <div>
      <label className="radio">
        <input type="checkbox" checked={inactive} onChange={(e) => setInactive(e.target.checked)} />
        {t('admin.showInactive')}
      </label>
      <button
        onClick={() => {
          setForm(emptyForm);
          setEditing('new');
        }}
      >
        {t('admin.create')}
      </button>
      {editing && (
        <form onSubmit={submit} className="card">
          <label>
            {t('admin.name')}
            <input value={form.name} onChange={set('name')} required maxLength={200} />
          </label>
          <label>
            {t('admin.email')}
            <input type="email" value={form.email} onChange={set('email')} required />
          </label>
          <label>
            {t('admin.role')}
            <select value={form.role} onChange={set('role')}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {t(`admin.role.${r}`)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('admin.department')}
            <select value={form.department_id} onChange={set('department_id')}>
              <option value="">{t('admin.noDepartment')}</option>
              {deps.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name}
                </option>
              ))}
            </select>
          </label>
          {editing === 'new' && (
            <label>
              {t('admin.password')}
              <input type="password" value={form.password} onChange={set('password')} required minLength={10} autoComplete="new-password" />
            </label>
          )}
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
            <th>{t('admin.name')}</th>
            <th>{t('admin.email')}</th>
            <th>{t('admin.role')}</th>
            <th>{t('admin.department')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id} className={u.active ? '' : 'inactive'}>
              <td>
                {u.name}
                {!u.active && <span className="muted"> ({t('admin.inactive')})</span>}
              </td>
              <td>{u.email}</td>
              <td>{t(`admin.role.${u.role}`)}</td>
              <td>{u.department_id ? depName.get(u.department_id) ?? '' : ''}</td>
              <td>
                <button
                  onClick={() => {
                    setForm({ name: u.name, email: u.email, role: u.role, department_id: u.department_id ?? '', password: '' });
                    setEditing(u.id);
                  }}
                >
                  {t('admin.edit')}
                </button>
                {u.id !== ws.me.user.id &&
                  (u.active ? (
                    <button className="danger" onClick={() => void run(ws.api.post(`/users/${u.id}/deactivate`))}>
                      {t('admin.deactivate')}
                    </button>
                  ) : (
                    <button onClick={() => void run(ws.api.post(`/users/${u.id}/activate`))}>{t('admin.activate')}</button>
                  ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Departments({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  const [version, setVersion] = useState(0);
  const deps = useDepartments(ws, version);
  const [name, setName] = useState('');
  const [editing, setEditing] = useState<{ id: string; name: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (p: Promise<unknown>) => {
    try {
      await p;
      setError(null);
      setEditing(null);
      setVersion((v) => v + 1);
    } catch (e) {
      setError(describeError(e, t));
    }
  };
  return (
    <div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(ws.api.post('/departments', { name: name.trim() }).then(() => setName('')));
        }}
      >
        <label>
          {t('admin.department')}
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
        </label>
        <button type="submit">{t('admin.create')}</button>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      <ul>
        {deps.map((d) => (
          <li key={d.id}>
            {editing?.id === d.id ? (
              <form
                onSubmit={(e) => {
                  e.preventDefault();
                  void run(ws.api.patch(`/departments/${d.id}`, { name: editing.name.trim() }));
                }}
              >
                <input aria-label={t('admin.department')} value={editing.name} onChange={(e) => setEditing({ id: d.id, name: e.target.value })} required />
                <button type="submit">{t('admin.save')}</button>
                <button type="button" onClick={() => setEditing(null)}>
                  {t('admin.cancel')}
                </button>
              </form>
            ) : (
              <>
                {d.name} <button onClick={() => setEditing({ id: d.id, name: d.name })}>{t('admin.edit')}</button>
                <button className="danger" onClick={() => void run(ws.api.delete(`/departments/${d.id}`))}>
                  {t('admin.delete')}
                </button>
              </>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Sessions({ ws }: { ws: Workspace }) {
  const { t, fmt } = useI18n();
  const [list, setList] = useState<Session[]>([]);
  const [error, setError] = useState<string | null>(null);
  const load = () => ws.api.get<Session[]>('/auth/sessions').then(setList, (e) => setError(describeError(e, t)));
  useEffect(() => {
    void load();
  }, []);
  return (
    <div>
      {error && <p role="alert" className="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>{t('admin.session.created')}</th>
            <th>{t('admin.session.lastUsed')}</th>
            <th>{t('admin.session.source')}</th>
            <th>{t('admin.session.agent')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((s) => (
            <tr key={s.id}>
              <td>{fmt.dateTime(s.created_at)}</td>
              <td>{fmt.dateTime(s.last_used_at)}</td>
              <td>{s.source ?? ''}</td>
              <td>{s.user_agent ?? ''}</td>
              <td>
                {s.current ? (
                  <span className="muted">{t('admin.session.current')}</span>
                ) : (
                  <button onClick={() => ws.api.delete(`/auth/sessions/${s.id}`).then(load, (e) => setError(describeError(e, t)))}>
                    {t('admin.session.end')}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
