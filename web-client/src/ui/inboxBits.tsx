// Small pieces shared by the inbox views: channel icons, state labels, waiting time.
import { useEffect, useState } from 'react';
import type { MessageKey } from '../i18n';
import { useI18n } from './i18n';

// Short text marks rather than emoji: they render with any font.
const ICONS: Record<string, string> = { sms: 'SMS', email: '✉', board: 'JOB', chat: 'CHAT', note: '✎' };

export const CHANNEL_KINDS = ['sms', 'email', 'board', 'chat'] as const;

export function channelLabel(kind: string | null | undefined, t: (k: MessageKey) => string): string {
  if (!kind) return '';
  const key = `channel.${kind}` as MessageKey;
  const text = t(key);
  return text === key ? kind : text;
}

/** The channel's icon with its name for assistive technology (and as a tooltip). */
export function ChannelIcon({ kind }: { kind: string | null | undefined }) {
  const { t } = useI18n();
  if (!kind) return null;
  const label = channelLabel(kind, t);
  return (
    <span className={`ch ch-${kind}`} role="img" aria-label={label} title={label} data-channel={kind}>
      {ICONS[kind] ?? '•'}
    </span>
  );
}

/** The current time, ticking every `everyMs` (for "waiting 5 min" labels). */
export function useNow(everyMs = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** "5 min", "2 h 10 min", "3 d". */
export function formatDuration(ms: number, t: (k: MessageKey, p?: Record<string, string | number>) => string): string {
  const min = Math.floor(Math.max(0, ms) / 60_000);
  if (min < 1) return t('duration.now');
  if (min < 60) return t('duration.min', { n: min });
  const h = Math.floor(min / 60);
  if (h < 24) return t('duration.h', { n: h, m: min % 60 });
  return t('duration.d', { n: Math.floor(h / 24) });
}
