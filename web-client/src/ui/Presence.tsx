import type { Presence } from '../api/types';
import { useI18n } from './i18n';

/** A coloured dot with the status spelt out for screen readers. */
export function PresenceDot({ presence }: { presence: Presence | null | undefined }) {
  const { t } = useI18n();
  const status = presence?.status ?? 'offline';
  return (
    <span className={`dot dot-${status}`} role="img" aria-label={t(`status.${status}`)} data-status={status} />
  );
}

export function PresenceText({ presence }: { presence: Presence | null | undefined }) {
  const { t, fmt } = useI18n();
  if (!presence?.text && !presence?.until) return null;
  return (
    <span className="presence-text">
      {presence.text}
      {presence.until ? ` (${t('status.untilTime', { time: fmt.dateTime(presence.until) })})` : ''}
    </span>
  );
}
