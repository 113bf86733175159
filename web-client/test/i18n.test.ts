import { describe, expect, it } from 'vitest';
import { formatLocale, makeFormatter, parseLang, translate } from '../src/i18n';
import { en } from '../src/i18n/en';
import { ru } from '../src/i18n/ru';

describe('i18n', () => {
  it('russian_is_the_default_language', () => {
    expect(parseLang(null)).toBe('ru');
    expect(parseLang('de')).toBe('ru');
    expect(parseLang('en')).toBe('en');
    expect(translate('ru', 'nav.team')).toBe('Команда');
  });

  it('english_text_is_used_when_present', () => {
    expect(translate('en', 'nav.team')).toBe('Team');
  });

  it('a_key_missing_in_english_falls_back_to_russian_then_to_the_key', () => {
    const dicts = { ru: { 'nav.team': 'Команда', 'nav.inbox': 'Входящие' }, en: { 'nav.inbox': 'Inbox' } };
    expect(translate('en', 'nav.team', undefined, dicts)).toBe('Команда');
    expect(translate('en', 'nav.inbox', undefined, dicts)).toBe('Inbox');
    expect(translate('en', 'no.such.key', undefined, dicts)).toBe('no.such.key');
  });

  it('parameters_fill_their_slots_and_unknown_slots_stay', () => {
    expect(translate('en', 'team.unread', { count: 3 })).toBe('Unread: 3');
    expect(translate('en', 'team.unread')).toBe('Unread: {count}');
  });

  it('every_english_key_exists_in_russian', () => {
    for (const k of Object.keys(en)) expect(ru).toHaveProperty([k]);
  });

  it('dates_and_numbers_follow_the_browser_locale_of_the_chosen_language', () => {
    expect(formatLocale('en', ['ru-RU', 'en-US'])).toBe('en-US');
    expect(formatLocale('ru', ['en-US'])).toBe('ru');
    expect(makeFormatter('ru').number(1234567.5)).toBe(new Intl.NumberFormat('ru').format(1234567.5));
    expect(makeFormatter('en-US').number(1234.5)).toBe('1,234.5');
  });
});
