// The thread's composer: a reply to the applicant (channel picker, template picker with the
// variables filled in here, signature automatic / none / edited, subject for email, SMS
// part counter, attachments) or an internal note with @mentions. Enter or Ctrl+Enter sends,
// Shift+Enter starts a new line.
import { useEffect, useMemo, useRef, useState } from 'react';
import type { KeyboardEvent } from 'react';
import type { ChannelAccount, Thread, User } from '../api/types';
import { useStore } from '../app/store';
import type { Workspace } from '../app/workspace';
import { smsCount } from '../text/sms';
import { fillTemplate, unfilledVariables } from '../text/template';
import type { TemplateVars } from '../text/template';
import { BoardChatLimit } from './ApplicationCard';
import { describeError } from './Login';
import { channelLabel } from './inboxBits';
import { useI18n } from './i18n';

type Mode = 'reply' | 'note';
type SignatureMode = 'auto' | 'none' | 'edit';

/** The accounts this user may send from: enabled, and company-wide or their own. */
export function sendableAccounts(accounts: ChannelAccount[], me: string): ChannelAccount[] {
  return accounts.filter((a) => a.enabled && (a.owner_user_id === null || a.owner_user_id === me));
}

export function ThreadComposer({ ws, thread, users }: { ws: Workspace; thread: Thread; users: Map<string, User> }) {
  const { t } = useI18n();
  const me = ws.me.user;
  const channels = useStore(ws.inbox).channels;
  const templates = useStore(ws.templates);
  const accounts = sendableAccounts(Object.values(channels), me.id);
  const [mode, setMode] = useState<Mode>('reply');
  const [text, setText] = useState('');
  const [accountId, setAccountId] = useState(thread.last_channel_account_id ?? '');
  const [templateId, setTemplateId] = useState('');
  const [sigMode, setSigMode] = useState<SignatureMode>('auto');
  const [sigText, setSigText] = useState(me.signature ?? '');
  const [subject, setSubject] = useState(thread.subject ? (thread.subject.startsWith('Re:') ? thread.subject : `Re: ${thread.subject}`) : '');
  const [files, setFiles] = useState<File[]>([]);
  const [mentioned, setMentioned] = useState<string[]>([]);
  const [pick, setPick] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);

  // Senders and templates change rarely; a thread's composer loads them fresh.
  useEffect(() => {
    ws.loadTemplates().catch(() => undefined);
    ws.loadChannels().catch(() => undefined);
  }, [ws]);

  // The thread's last channel may arrive after the composer (the channel list loads later).
  useEffect(() => {
    if (!accountId && thread.last_channel_account_id) setAccountId(thread.last_channel_account_id);
  }, [thread.last_channel_account_id]);

  const account = channels[accountId] ?? null;
  const kind = account?.kind ?? thread.last_channel_kind ?? null;
  const companySignature = templates.find((x) => x.kind === 'signature' && x.owner_user_id === null)?.body ?? '';
  const signature = sigMode === 'none' ? '' : sigMode === 'edit' ? sigText : me.signature || companySignature;
  const vars: TemplateVars = useMemo(
    () => ({
      'applicant.name': thread.contact_name,
      vacancy: thread.vacancy,
      'user.name': me.name,
      'company.name': ws.me.tenant.name,
    }),
    [thread.contact_name, thread.vacancy, me.name, ws.me.tenant.name],
  );
  const unfilled = mode === 'reply' ? unfilledVariables(text, vars) : [];
  const sms = kind === 'sms' && mode === 'reply' ? smsCount(signature.trim() ? `${text}\n\n${signature}` : text) : null;

  // @mentions in notes: the staff directory.
  const query = mode === 'note' ? /(?:^|\s)@([^\s@]*)$/.exec(text)?.[1] : undefined;
  const candidates =
    query === undefined
      ? []
      : [...users.values()]
          .filter((u) => u.id !== me.id && u.active && u.name.toLowerCase().includes(query.toLowerCase()))
          .slice(0, 6);

  function choose(u: User) {
    setText(text.replace(/@([^\s@]*)$/, `@${u.name} `));
    if (!mentioned.includes(u.id)) setMentioned([...mentioned, u.id]);
    setPick(0);
  }

  function applyTemplate(id: string) {
    setTemplateId(id);
    const tpl = templates.find((x) => x.id === id);
    if (tpl) setText(fillTemplate(tpl.body, vars));
  }

  async function send() {
    const typed = text.trim();
    if (!typed && !files.length) return;
    // Variables typed by hand are filled in too (the hub fills them only for template_id).
    const body = mode === 'reply' ? fillTemplate(typed, vars) : typed;
    const sending = files;
    setText('');
    setFiles([]);
    setTemplateId('');
    if (fileRef.current) fileRef.current.value = '';
    try {
      if (mode === 'note') {
        const mentions = mentioned.filter((id) => body.includes(`@${users.get(id)?.name}`));
        setMentioned([]);
        await ws.note(thread.id, body, mentions);
      } else {
        await ws.reply(thread.id, {
          text: body,
          channel_account_id: accountId || null,
          signature: sigMode === 'edit' ? sigText : sigMode,
          subject: kind === 'email' ? subject.trim() || null : null,
          files: sending,
          channel_kind: kind,
        });
      }
      setError(null);
    } catch (e) {
      setError(describeError(e, t));
      setText(typed);
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
      if (e.key === 'Escape') {
        e.preventDefault();
        setText(`${text} `);
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
      className={`composer thread-composer mode-${mode}`}
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
      data-testid="thread-composer"
    >
      <div className="composer-row" role="radiogroup" aria-label={t('composer.mode')}>
        <label className="radio">
          <input type="radio" name="composer-mode" value="reply" checked={mode === 'reply'} onChange={() => setMode('reply')} data-testid="mode-reply" />
          {t('composer.modeReply')}
        </label>
        <label className="radio">
          <input type="radio" name="composer-mode" value="note" checked={mode === 'note'} onChange={() => setMode('note')} data-testid="mode-note" />
          {t('composer.modeNote')}
        </label>
      </div>
      {mode === 'reply' && (
        <div className="composer-row">
          <label>
            {t('composer.channel')}
            <select value={accountId} onChange={(e) => setAccountId(e.target.value)} data-testid="composer-channel">
              {!accountId && <option value="">{t('composer.lastUsed')}</option>}
              {accounts.map((a) => (
                <option key={a.id} value={a.id}>
                  {channelLabel(a.kind, t)}: {a.name} ({a.address}){a.owner_user_id ? ` · ${t('composer.personal')}` : ''}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('composer.template')}
            <select value={templateId} onChange={(e) => applyTemplate(e.target.value)} data-testid="composer-template">
              <option value="">{t('composer.noTemplate')}</option>
              {templates
                .filter((x) => x.kind === 'template')
                .map((x) => (
                  <option key={x.id} value={x.id}>
                    {x.name}
                  </option>
                ))}
            </select>
          </label>
          <label>
            {t('composer.signature')}
            <select value={sigMode} onChange={(e) => setSigMode(e.target.value as SignatureMode)} data-testid="composer-signature">
              <option value="auto">{t('composer.sig.auto')}</option>
              <option value="none">{t('composer.sig.none')}</option>
              <option value="edit">{t('composer.sig.edit')}</option>
            </select>
          </label>
          {kind === 'email' && (
            <label>
              {t('composer.subject')}
              <input value={subject} onChange={(e) => setSubject(e.target.value)} data-testid="composer-subject" />
            </label>
          )}
        </div>
      )}
      {mode === 'reply' && sigMode === 'edit' && (
        <label>
          {t('composer.sigText')}
          <textarea rows={2} value={sigText} onChange={(e) => setSigText(e.target.value)} maxLength={2000} data-testid="composer-sig-text" />
        </label>
      )}
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
      <label className="sr-only" htmlFor="thread-composer-text">
        {mode === 'note' ? t('composer.modeNote') : t('composer.label')}
      </label>
      <textarea
        id="thread-composer-text"
        data-testid="thread-composer-text"
        placeholder={mode === 'note' ? t('composer.notePlaceholder') : t('composer.placeholder')}
        value={text}
        rows={3}
        onChange={(e) => {
          setText(e.target.value);
          // The other staff see "… is typing" in this thread (a frame at most every 3 s).
          if (e.target.value) ws.typingInThread(thread.id);
        }}
        onKeyDown={onKeyDown}
      />
      <div className="composer-actions">
        {mode === 'reply' && (
          <input
            ref={fileRef}
            type="file"
            multiple
            aria-label={t('composer.attach')}
            onChange={(e) => setFiles([...(e.target.files ?? [])])}
          />
        )}
        {sms && (
          <span className="muted" data-testid="sms-counter" data-segments={sms.segments} data-encoding={sms.encoding}>
            {t('composer.sms', { segments: sms.segments, encoding: sms.encoding, remaining: sms.remaining })}
          </span>
        )}
        {mode === 'reply' && accountId && <BoardChatLimit ws={ws} thread={thread} accountId={accountId} />}
        {unfilled.length > 0 && <span className="error">{t('composer.unfilled', { names: unfilled.join(', ') })}</span>}
        <button type="submit" data-testid="thread-send">
          {mode === 'note' ? t('composer.addNote') : t('composer.send')}
        </button>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
    </form>
  );
}
