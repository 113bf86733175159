import { describe, expect, it } from 'vitest';
import type { ChannelAccount } from '../src/api/types';
import {
  createMailboxBody,
  emptyMailboxForm,
  formFromAccount,
  mailboxProblems,
  myMailboxes,
  patchMailboxBody,
  withSecurity,
} from '../src/state/mailbox';
import type { MailboxForm } from '../src/state/mailbox';

const ME = 'u-olga';

function filled(): MailboxForm {
  const f = emptyMailboxForm('Ольга Смирнова', 'olga@company.example');
  return {
    ...f,
    smtp: { ...f.smtp, host: ' smtp.company.example ', password: 's3cret' },
    imap: { ...f.imap, host: 'imap.company.example' },
  };
}

function account(patch: Partial<ChannelAccount> = {}): ChannelAccount {
  return {
    id: 'a1',
    kind: 'email',
    provider: 'email',
    name: 'Моя почта',
    address: 'olga@company.example',
    owner_user_id: ME,
    settings: {
      smtp: { host: 'smtp.company.example', port: 465, security: 'tls', username: 'olga@company.example', password: '' },
      imap: { host: 'imap.company.example', port: 993, security: 'tls', username: 'olga.s', password: '', folder: 'Jobs' },
      address: 'olga@company.example',
      display_name: 'Ольга',
      reply_domain: null,
      timeout_secs: 30,
    },
    queue_id: null,
    enabled: true,
    health: 'ok',
    health_class: null,
    last_error: null,
    health_since: null,
    next_retry_at: null,
    last_inbound_at: null,
    last_outbound_at: null,
    inbound_expected_within_s: null,
    created_at: '2026-11-27T09:00:00Z',
    updated_at: '2026-11-27T09:00:00Z',
    ...patch,
  };
}

describe('personal mailbox form', () => {
  it('the_form_becomes_the_create_request_of_docs_channels_md', () => {
    expect(createMailboxBody(filled(), ME)).toEqual({
      kind: 'email',
      provider: 'email',
      name: 'olga@company.example',
      address: 'olga@company.example',
      owner_user_id: ME,
      settings: {
        smtp: { host: 'smtp.company.example', port: 587, security: 'starttls', username: 'olga@company.example', password: 's3cret' },
        // Username and password default to the address and the SMTP password.
        imap: { host: 'imap.company.example', port: 993, security: 'tls', username: 'olga@company.example', password: 's3cret', folder: 'INBOX' },
        address: 'olga@company.example',
        display_name: 'Ольга Смирнова',
      },
    });
  });

  it('given_names_usernames_imap_password_and_reply_domain_are_sent_as_typed', () => {
    const f = filled();
    const body = createMailboxBody(
      {
        ...f,
        name: ' Личная ',
        reply_domain: 'reply.company.example',
        smtp: { ...f.smtp, username: 'olga', port: ' 2525 ', security: 'plain' },
        imap: { ...f.imap, username: 'olga.imap', password: 'other', folder: 'Jobs' },
      },
      ME,
    );
    expect(body.name).toBe('Личная');
    const s = body.settings as Record<string, Record<string, unknown>>;
    expect(s.smtp).toMatchObject({ username: 'olga', port: 2525, security: 'plain' });
    expect(s.imap).toMatchObject({ username: 'olga.imap', password: 'other', folder: 'Jobs' });
    expect(s.reply_domain).toBe('reply.company.example');
  });

  it('problems_are_found_before_sending', () => {
    expect(mailboxProblems(filled())).toEqual([]);
    const f = filled();
    expect(
      mailboxProblems({
        ...f,
        address: 'olga',
        display_name: ' ',
        smtp: { ...f.smtp, host: '', port: '70000', password: '' },
        imap: { ...f.imap, host: 'imap host', port: 'x' },
      }),
    ).toEqual([
      'mailbox.bad.address',
      'mailbox.bad.displayName',
      'mailbox.bad.smtpHost',
      'mailbox.bad.smtpPort',
      'mailbox.bad.imapHost',
      'mailbox.bad.imapPort',
      'mailbox.bad.password',
    ]);
  });

  it('the_port_follows_the_security_unless_typed_by_hand', () => {
    const f = filled();
    expect(withSecurity(f.smtp, 'smtp', 'tls').port).toBe('465');
    expect(withSecurity({ ...f.smtp, port: '2525' }, 'smtp', 'tls').port).toBe('2525');
    expect(withSecurity(f.imap, 'imap', 'starttls')).toMatchObject({ port: '143', security: 'starttls', folder: 'INBOX' });
  });

  it('an_account_comes_back_into_the_form_without_passwords_and_is_patched_whole', () => {
    const f = formFromAccount(account());
    expect(f).toMatchObject({ name: 'Моя почта', address: 'olga@company.example', display_name: 'Ольга', reply_domain: '' });
    expect(f.smtp).toEqual({ host: 'smtp.company.example', port: '465', security: 'tls', username: '', password: '' });
    expect(f.imap).toEqual({ host: 'imap.company.example', port: '993', security: 'tls', username: 'olga.s', password: '', folder: 'Jobs' });
    // The passwords are asked for again: the hub takes settings only whole.
    expect(mailboxProblems(f)).toEqual(['mailbox.bad.password']);
    const body = patchMailboxBody({ ...f, smtp: { ...f.smtp, password: 'new' } });
    expect(body).toEqual({
      name: 'Моя почта',
      settings: {
        smtp: { host: 'smtp.company.example', port: 465, security: 'tls', username: 'olga@company.example', password: 'new' },
        imap: { host: 'imap.company.example', port: 993, security: 'tls', username: 'olga.s', password: 'new', folder: 'Jobs' },
        address: 'olga@company.example',
        display_name: 'Ольга',
      },
    });
  });

  it('my_mailboxes_are_my_own_email_accounts', () => {
    const list = [
      account({ id: 'a2', created_at: '2026-11-27T10:00:00Z' }),
      account({ id: 'a1' }),
      account({ id: 'company', owner_user_id: null }),
      account({ id: 'ivan', owner_user_id: 'u-ivan' }),
      account({ id: 'sms', kind: 'sms', provider: 'webhook' }),
    ];
    expect(myMailboxes(list, ME).map((a) => a.id)).toEqual(['a1', 'a2']);
  });
});
