import { describe, expect, it } from 'vitest';
import { smsCount } from '../src/text/sms';
import { fillTemplate, unfilledVariables } from '../src/text/template';
import { splitQuotedText } from '../src/text/sanitize';

describe('sms segment counter', () => {
  it('gsm7_fits_160_in_one_part_and_153_per_part_beyond', () => {
    expect(smsCount('')).toMatchObject({ segments: 0, remaining: 160 });
    expect(smsCount('a'.repeat(160))).toMatchObject({ encoding: 'GSM-7', segments: 1, remaining: 0 });
    expect(smsCount('a'.repeat(161))).toMatchObject({ segments: 2, perSegment: 153, remaining: 145 });
    expect(smsCount('a'.repeat(306))).toMatchObject({ segments: 2, remaining: 0 });
    expect(smsCount('a'.repeat(307))).toMatchObject({ segments: 3 });
  });

  it('extension_characters_take_two_septets', () => {
    expect(smsCount('€'.repeat(80))).toMatchObject({ encoding: 'GSM-7', units: 160, segments: 1 });
    expect(smsCount('{'.repeat(81))).toMatchObject({ units: 162, segments: 2 });
  });

  it('cyrillic_is_ucs2_with_70_and_67', () => {
    expect(smsCount('Привет')).toMatchObject({ encoding: 'UCS-2', segments: 1, remaining: 64 });
    expect(smsCount('я'.repeat(70))).toMatchObject({ segments: 1, remaining: 0 });
    expect(smsCount('я'.repeat(71))).toMatchObject({ segments: 2, perSegment: 67, remaining: 63 });
    expect(smsCount('я'.repeat(134))).toMatchObject({ segments: 2, remaining: 0 });
    expect(smsCount('я'.repeat(135))).toMatchObject({ segments: 3 });
    // One Cyrillic letter makes a long Latin text UCS-2.
    expect(smsCount(`${'a'.repeat(100)}ж`)).toMatchObject({ encoding: 'UCS-2', segments: 2 });
  });

  it('emoji_count_two_units', () => {
    expect(smsCount('😀')).toMatchObject({ encoding: 'UCS-2', units: 2 });
  });
});

describe('template fill', () => {
  const vars = { 'applicant.name': 'Анна', vacancy: 'Курьер', 'user.name': 'Ольга', 'company.name': 'Демо', empty: null };

  it('fills_known_variables_and_leaves_unknown_ones', () => {
    expect(fillTemplate('Здравствуйте, {{applicant.name}}! Вакансия «{{ vacancy }}». {{user.name}}, {{company.name}}', vars)).toBe(
      'Здравствуйте, Анна! Вакансия «Курьер». Ольга, Демо',
    );
    expect(fillTemplate('{{unknown.var}} и {{applicant.name}}', vars)).toBe('{{unknown.var}} и Анна');
    expect(fillTemplate('[{{empty}}]', vars)).toBe('[]');
    expect(fillTemplate('без переменных', vars)).toBe('без переменных');
  });

  it('reports_variables_left_unfilled', () => {
    expect(unfilledVariables('{{applicant.name}} {{unknown}} {{empty}} {{unknown}}', vars)).toEqual(['unknown', 'empty']);
  });
});

describe('plain-text quotes', () => {
  it('splits_trailing_quoted_lines_with_their_header', () => {
    const r = splitQuotedText('Да, приду.\n\nПн, 27 нояб. Ольга написал(а):\n> Придёте?\n> Спасибо');
    expect(r.main).toBe('Да, приду.');
    expect(r.quoted).toContain('> Придёте?');
    expect(splitQuotedText('просто текст')).toEqual({ main: 'просто текст', quoted: '' });
  });
});
