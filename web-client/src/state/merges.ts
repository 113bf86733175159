// Merge suggestions of the applicant panel: other applicants who may be the same person
// (`GET /contacts/{id}/suggestions`), a merge into the panel's applicant
// (`POST /contacts/{id}/merge`: the path's applicant survives) and its undo
// (`POST /contact-merges/{merge_id}/undo`).
import type { ApiClient } from '../api/http';
import { ApiError } from '../api/http';
import type { ContactMerge, MergeSuggestion } from '../api/types';

/** The reasons the hub gives, in the order they are told. */
export const MERGE_REASONS = ['same_name', 'same_phone', 'same_email_local_part'] as const;

/** The most suggestions the hub gives (and the panel shows). */
export const MAX_SUGGESTIONS = 10;

/**
 * The suggestions worth showing: never the applicant itself, each other applicant once, the
 * known reasons first (in their order, each once, unknown ones after them as given).
 */
export function usableSuggestions(list: MergeSuggestion[], contactId: string): MergeSuggestion[] {
  const seen = new Set<string>([contactId]);
  const out: MergeSuggestion[] = [];
  for (const s of list) {
    if (!s?.contact?.id || seen.has(s.contact.id)) continue;
    seen.add(s.contact.id);
    const given = [...new Set(s.reasons ?? [])];
    const known = MERGE_REASONS.filter((r) => given.includes(r));
    const other = given.filter((r) => !(MERGE_REASONS as readonly string[]).includes(r));
    out.push({ ...s, reasons: [...known, ...other] });
    if (out.length === MAX_SUGGESTIONS) break;
  }
  return out;
}

/**
 * The suggestions for an applicant; `null` when there are none to be had: a hub without the
 * endpoint, or an applicant that was merged away meanwhile (both 404).
 */
export async function loadSuggestions(api: ApiClient, contactId: string): Promise<MergeSuggestion[] | null> {
  try {
    const list = await api.get<MergeSuggestion[]>(`/contacts/${contactId}/suggestions`);
    return usableSuggestions(Array.isArray(list) ? list : [], contactId);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/** Merges `otherId` into `survivorId` (the panel's applicant); the merge record. */
export function mergeInto(api: ApiClient, survivorId: string, otherId: string): Promise<ContactMerge> {
  return api.post<ContactMerge>(`/contacts/${survivorId}/merge`, { contact_id: otherId });
}

export function undoMerge(api: ApiClient, mergeId: string): Promise<ContactMerge> {
  return api.post<ContactMerge>(`/contact-merges/${mergeId}/undo`);
}
