// "My status": chosen status (or automatic), custom text and an optional end time.
import { useState } from 'react';
import type { FormEvent } from 'react';
import type { Workspace } from '../app/workspace';
import { useStore } from '../app/store';
import { PresenceDot } from './Presence';
import { useI18n } from './i18n';

type Choice = 'auto' | 'online' | 'away' | 'busy';

export function StatusMenu({ ws }: { ws: Workspace }) {
  const { t } = useI18n();
  const me = useStore(ws.chat).presence[ws.me.user.id];
  const [open, setOpen] = useState(false);
  const [choice, setChoice] = useState<Choice>('auto');
  const [text, setText] = useState('');
  const [until, setUntil] = useState('');
  const [error, setError] = useState<string | null>(null);

  async function apply(e: FormEvent) {
    e.preventDefault();
    try {
      await ws.setStatus(choice === 'auto' ? null : choice, text.trim(), until ? new Date(until).getTime() : null);
      setOpen(false);
      setError(null);
    } catch (err) {
      setError(String((err as Error).message));
    }
  }

  return (
    <div className="status-menu">
      <button aria-expanded={open} onClick={() => setOpen(!open)} data-testid="status-menu">
        <PresenceDot presence={me} /> {t('status.menu')}
        {me?.text ? ` · ${me.text}` : ''}
      </button>
      {open && (
        <form
          onSubmit={apply}
          className="popover"
          aria-label={t('status.menu')}
          onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}
        >
          <fieldset>
            <legend>{t('status.menu')}</legend>
            {(['auto', 'online', 'away', 'busy'] as Choice[]).map((c) => (
              <label key={c} className="radio">
                <input type="radio" name="status" value={c} checked={choice === c} onChange={() => setChoice(c)} />
                {c === 'auto' ? t('status.auto') : t(`status.${c}`)}
              </label>
            ))}
          </fieldset>
          <label>
            {t('status.text')}
            <input value={text} maxLength={100} onChange={(e) => setText(e.target.value)} data-testid="status-text" />
          </label>
          <label>
            {t('status.until')}
            <input type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
          </label>
          {error && <p role="alert" className="error">{error}</p>}
          <button type="submit">{t('status.apply')}</button>
        </form>
      )}
    </div>
  );
}
