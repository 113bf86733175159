// Timestamps of the API are RFC 3339 strings in UTC with milliseconds, except on a whole
// second, where the fraction is left out ("…:05Z", not "…:05.000Z"). Compared as strings
// such a time sorts after every time of the same second ("Z" > "."), so they are compared by
// the instant they name.

/** Negative when `a` is earlier than `b`, 0 when they name the same instant, positive when later. */
export function compareTimes(a: string, b: string): number {
  if (a === b) return 0;
  return Date.parse(a) - Date.parse(b);
}
