// A staff member's personal mailbox (Profile): an `email` / `email` channel account owned by
// the user, with the mailbox settings of docs/channels.md ("Email"). Pure helpers: the form,
// its check, and the request bodies of `POST /channel-accounts` and
// `PATCH /channel-accounts/{id}`.
//
// The hub shows a mailbox's settings with empty passwords and takes new settings only whole,
// passwords included (a PATCH with `settings` replaces the stored passwords), so changing the
// settings asks for the passwords again, and switching the mailbox off or on sends no
// settings at all.
import type { ChannelAccount } from '../api/types';

export type Security = 'tls' | 'starttls' | 'plain';
export const SECURITIES: readonly Security[] = ['tls', 'starttls', 'plain'];

/** The usual port of each kind of connection (docs/channels.md). */
export const DEFAULT_PORTS: Record<'smtp' | 'imap', Record<Security, number>> = {
  smtp: { tls: 465, starttls: 587, plain: 25 },
  imap: { tls: 993, starttls: 143, plain: 143 },
};

export interface ServerForm {
  host: string;
  /** As typed: checked and turned into a number on sending. */
  port: string;
  security: Security;
  /** Empty: the mailbox address. */
  username: string;
  password: string;
}

export interface MailboxForm {
  /** The account's name in the sender lists. */
  name: string;
  address: string;
  /** The sender name the applicant sees. */
  display_name: string;
  smtp: ServerForm;
  /** IMAP `password` empty: the SMTP password (most mail services use one password). */
  imap: ServerForm & { folder: string };
  /** Optional: replies asked to `reply+<token>@<reply_domain>`. */
  reply_domain: string;
}

export function emptyMailboxForm(userName: string, address = ''): MailboxForm {
  return {
    name: '',
    address,
    display_name: userName,
    smtp: { host: '', port: String(DEFAULT_PORTS.smtp.starttls), security: 'starttls', username: '', password: '' },
    imap: { host: '', port: String(DEFAULT_PORTS.imap.tls), security: 'tls', username: '', password: '', folder: 'INBOX' },
    reply_domain: '',
  };
}

/**
 * A server part with another security: the port follows when it was the old security's usual
 * port (a port typed by hand stays).
 */
export function withSecurity<T extends ServerForm>(server: T, kind: 'smtp' | 'imap', security: Security): T {
  const usual = String(DEFAULT_PORTS[kind][server.security]);
  const port = server.port.trim() === '' || server.port.trim() === usual ? String(DEFAULT_PORTS[kind][security]) : server.port;
  return { ...server, security, port };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function security(v: unknown, fallback: Security): Security {
  return SECURITIES.includes(v as Security) ? (v as Security) : fallback;
}

/** The form for changing an account: its settings as the hub shows them, passwords empty. */
export function formFromAccount(a: ChannelAccount): MailboxForm {
  const s = a.settings ?? {};
  const smtp = (s.smtp ?? {}) as Record<string, unknown>;
  const imap = (s.imap ?? {}) as Record<string, unknown>;
  const address = str(s.address) || a.address;
  const sameAsAddress = (u: unknown) => (str(u) === address ? '' : str(u));
  return {
    name: a.name,
    address,
    display_name: str(s.display_name),
    smtp: {
      host: str(smtp.host),
      port: str(smtp.port) || String(DEFAULT_PORTS.smtp.starttls),
      security: security(smtp.security, 'starttls'),
      username: sameAsAddress(smtp.username),
      password: '',
    },
    imap: {
      host: str(imap.host),
      port: str(imap.port) || String(DEFAULT_PORTS.imap.tls),
      security: security(imap.security, 'tls'),
      username: sameAsAddress(imap.username),
      password: '',
      folder: str(imap.folder) || 'INBOX',
    },
    reply_domain: str(s.reply_domain),
  };
}

/** What is wrong with the form, as message keys (empty: it can be sent). */
export function mailboxProblems(f: MailboxForm): string[] {
  const out: string[] = [];
  const address = f.address.trim();
  if (!/^[^\s@]+@[^\s@]+$/.test(address)) out.push('mailbox.bad.address');
  if (!f.display_name.trim()) out.push('mailbox.bad.displayName');
  for (const [kind, server] of [['smtp', f.smtp], ['imap', f.imap]] as const) {
    if (!server.host.trim() || /\s/.test(server.host.trim())) out.push(`mailbox.bad.${kind}Host`);
    const port = Number(server.port.trim());
    if (!/^\d+$/.test(server.port.trim()) || port < 1 || port > 65535) out.push(`mailbox.bad.${kind}Port`);
  }
  if (!f.smtp.password) out.push('mailbox.bad.password');
  return out;
}

/** The mailbox settings the hub takes (docs/channels.md), passwords included. */
export function mailboxSettings(f: MailboxForm): Record<string, unknown> {
  const address = f.address.trim();
  const server = (s: ServerForm, password: string) => ({
    host: s.host.trim(),
    port: Number(s.port.trim()),
    security: s.security,
    username: s.username.trim() || address,
    password,
  });
  const settings: Record<string, unknown> = {
    smtp: server(f.smtp, f.smtp.password),
    imap: { ...server(f.imap, f.imap.password || f.smtp.password), folder: f.imap.folder.trim() || 'INBOX' },
    address,
    display_name: f.display_name.trim(),
  };
  if (f.reply_domain.trim()) settings.reply_domain = f.reply_domain.trim();
  return settings;
}

/** `POST /channel-accounts`: the user's own mailbox. */
export function createMailboxBody(f: MailboxForm, me: string): Record<string, unknown> {
  const address = f.address.trim();
  return {
    kind: 'email',
    provider: 'email',
    name: f.name.trim() || address,
    address,
    settings: mailboxSettings(f),
    owner_user_id: me,
  };
}

/** `PATCH /channel-accounts/{id}`: a new name and the settings, whole. */
export function patchMailboxBody(f: MailboxForm): Record<string, unknown> {
  return { name: f.name.trim() || f.address.trim(), settings: mailboxSettings(f) };
}

/** The user's own mailboxes, oldest first. */
export function myMailboxes(accounts: ChannelAccount[], me: string): ChannelAccount[] {
  return accounts
    .filter((a) => a.kind === 'email' && a.owner_user_id === me)
    .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}
