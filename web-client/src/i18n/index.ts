// The interface text. Russian is the default language and the reference dictionary: every key
// exists in `ru`; other languages may lack keys and fall back to Russian, then to the key.
import { en } from './en';
import { ru } from './ru';

export type Lang = 'ru' | 'en';
export type MessageKey = keyof typeof ru;
export type Dictionary = Partial<Record<MessageKey, string>>;

export const LANGS: readonly Lang[] = ['ru', 'en'];
export const DEFAULT_LANG: Lang = 'ru';

const dictionaries: Record<Lang, Dictionary> = { ru, en };

/** Looks up `key` in `lang`, then in Russian, then gives the key itself; fills `{name}` slots. */
export function translate(
  lang: Lang,
  key: MessageKey | string,
  params?: Record<string, string | number>,
  dicts: Record<string, Dictionary> = dictionaries,
): string {
  const k = key as MessageKey;
  const text = dicts[lang]?.[k] ?? dicts[DEFAULT_LANG]?.[k] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

/** Russian plural category for a count ("one" 1, 21; "few" 2-4, 22-24; "many" the rest). */
export function pluralKey(lang: Lang, n: number): 'one' | 'few' | 'many' | 'other' {
  const rule = new Intl.PluralRules(lang).select(n);
  return rule === 'one' || rule === 'few' || rule === 'many' ? rule : 'other';
}

/**
 * The locale used for dates and numbers: the user's browser locale when it speaks the chosen
 * interface language (so an `en-US` browser gets US dates in English), else the language itself.
 */
export function formatLocale(lang: Lang, browserLanguages: readonly string[]): string {
  const match = browserLanguages.find((l) => l.toLowerCase().split('-')[0] === lang);
  return match ?? lang;
}

export function parseLang(value: string | null | undefined): Lang {
  return value === 'en' || value === 'ru' ? value : DEFAULT_LANG;
}

export interface Formatter {
  dateTime(iso: string | number): string;
  time(iso: string | number): string;
  number(n: number): string;
  fileSize(bytes: number): string;
}

export function makeFormatter(locale: string): Formatter {
  const dt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  const tm = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
  const num = new Intl.NumberFormat(locale);
  const kb = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  return {
    dateTime: (v) => dt.format(new Date(v)),
    time: (v) => tm.format(new Date(v)),
    number: (n) => num.format(n),
    fileSize: (b) =>
      b < 1024 ? `${num.format(b)} B` : b < 1048576 ? `${kb.format(b / 1024)} KB` : `${kb.format(b / 1048576)} MB`,
  };
}
