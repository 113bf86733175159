// SMS length: how many parts a text takes and how many characters are left in the last one.
// GSM 03.38 (7-bit): 160 characters in one part, 153 per part when split; the extension
// characters (^{}\[~]|€ and form feed) take two. Any other character (Cyrillic, emoji…)
// makes the whole text UCS-2: 70 in one part, 67 per part; characters outside the Basic
// Multilingual Plane take two UTF-16 units.

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENSION = '^{}\\[~]|€\f';

const basic = new Set([...GSM_BASIC]);
const extension = new Set([...GSM_EXTENSION]);

export interface SmsCount {
  encoding: 'GSM-7' | 'UCS-2';
  /** Length in the encoding's units (septets, or UTF-16 code units). */
  units: number;
  segments: number;
  /** Units per part at the current number of parts. */
  perSegment: number;
  /** Units left in the last part. */
  remaining: number;
}

export function isGsm7(text: string): boolean {
  for (const ch of text) if (!basic.has(ch) && !extension.has(ch)) return false;
  return true;
}

export function smsCount(text: string): SmsCount {
  const gsm = isGsm7(text);
  let units = 0;
  if (gsm) for (const ch of text) units += extension.has(ch) ? 2 : 1;
  else units = text.length; // UTF-16 code units: a surrogate pair counts two
  const single = gsm ? 160 : 70;
  const multi = gsm ? 153 : 67;
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  const perSegment = segments <= 1 ? single : multi;
  const remaining = segments === 0 ? single : segments * perSegment - units;
  return { encoding: gsm ? 'GSM-7' : 'UCS-2', units, segments, perSegment, remaining };
}
