// The audit log screen's pure parts: the request of a page, and how an entry's target and
// details read.
import type { AuditEntry } from '../api/types';

/** Every action the hub writes to the audit log (src/auth, src/http, src/switch), for the filter. */
export const AUDIT_ACTIONS = [
  'login',
  'login_failed',
  'account_locked',
  'refresh_token_reused',
  'logout',
  'logout_everywhere',
  'session_revoked',
  'password_changed',
  'password_reset',
  'user_created',
  'user_updated',
  'role_changed',
  'user_activated',
  'user_deactivated',
  'department_created',
  'department_deleted',
  'channel_account_created',
  'channel_secret_rotated',
  'contacts_merged',
  'contact_merge_undone',
  'application_stage_changed',
  'application_stage_conflict',
  'board_connected',
  'board_logged_out',
] as const;

/** Entries per page (the hub allows 1–500). */
export const AUDIT_PAGE = 100;

export interface AuditFilter {
  /** '' for any. */
  action: string;
  /** '' for anyone. */
  actor: string;
}

/** The query of `GET /audit` for a filter, continuing after `before` (an entry id) when given. */
export function auditQuery(f: AuditFilter, before?: string, limit = AUDIT_PAGE): string {
  const q = new URLSearchParams({ limit: String(limit) });
  if (f.action) q.set('action', f.action);
  if (f.actor) q.set('actor_user_id', f.actor);
  if (before) q.set('before', before);
  return q.toString();
}

/** The details as "key: value" pairs; empty values left out, nested ones as JSON. */
export function detailsText(details: AuditEntry['details']): string {
  if (!details || typeof details !== 'object') return '';
  return Object.entries(details)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('; ');
}
