// Browser test of the inbox against a real hub: `jobers demo` seeds a routing queue (Olga and
// Ivan, round robin), a simulated SMS line ("SMS (демо)": delivered after ~0.8 s, read after
// ~3 s, the applicant answers after ~6 s) and three applicants who wrote there; older threads
// came through a simulated Twilio number and a simulated mailbox.
//
//   JOBERS_BIN=path/to/jobers node --test e2e/
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { apiLogin, artifacts, loginAs, startHub } from './support.mjs';

const OLGA = 'olga@demo.jobers.local';
const IVAN = 'ivan@demo.jobers.local';
const ADMIN = 'admin@demo.jobers.local';
const HOSTILE_HTML = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><b>ok</b>';

let env;

before(async () => {
  env = await startHub();
});

after(async () => {
  await env?.stop();
});

/** Replaces the Notification API with a recorder that has permission. */
function fakeNotifications() {
  window.__notes = [];
  class FakeNotification {
    static permission = 'granted';
    static requestPermission() {
      return Promise.resolve('granted');
    }
    constructor(title, options) {
      window.__notes.push({ title, body: options?.body ?? '' });
    }
    close() {}
  }
  window.Notification = FakeNotification;
}

/** Records the delivery states an outgoing message containing `text` shows, in order. */
function recordDelivery(text) {
  window.__delivery ??= {};
  const states = (window.__delivery[text] = []);
  const rec = () => {
    for (const el of document.querySelectorAll('[data-testid=thread-message][data-direction=out]')) {
      if (!el.textContent.includes(text)) continue;
      const s = el.getAttribute('data-delivery');
      if (s && states[states.length - 1] !== s) states.push(s);
    }
  };
  new MutationObserver(rec).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-delivery'] });
}

test('the recruiter inbox: routing, replies with live delivery, notes, hostile email, channel health', async (t) => {
  const olga = await loginAs(env, OLGA, { initScript: fakeNotifications });
  const page = olga.page;
  let ivan;

  await t.test('olga sees the threads routed to her in "mine"', async () => {
    await page.click('[data-testid=nav-inbox]');
    await page.waitForSelector('[data-testid=inbox-scope] [data-scope=mine][aria-checked=true]');
    // Olga is the only member online: the oldest waiting threads come to her, live, up to
    // her capacity of five (the board's responses, imported later, wait for Ivan).
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=thread-item]').length === 5);
    for (const a of await page.locator('[data-testid=thread-assignee]').allTextContents()) assert.equal(a, 'вы');
    // One SMS applicant also responds on the board: that thread may show the board's mark.
    assert.ok((await page.locator('[data-testid=thread-item] [data-channel=sms]').count()) >= 3);
    assert.equal(await page.locator('[data-testid=thread-item] [data-channel=email]').count(), 1);
    assert.equal(await page.locator('[data-testid=thread-unread]').count(), 5);
    await page.locator('[data-testid=thread-waiting]').first().waitFor();
    assert.match(await page.locator('[data-testid=thread-waiting]').first().textContent(), /^ждёт /);
    await page.screenshot({ path: join(artifacts, 'inbox.png') });
  });

  await t.test('the keyboard moves through the list and Enter opens a thread, which is marked read', async () => {
    await page.locator('[data-testid=thread-item]').first().focus();
    await page.keyboard.press('ArrowDown');
    const second = await page.locator('[data-testid=thread-item]').nth(1).getAttribute('data-thread-id');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-thread-id')), second);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${second}"]`);
    assert.ok(page.url().endsWith(`/inbox/${second}`));
    await page.locator('[data-testid=thread-message][data-direction=in]').first().waitFor();
    await page.waitForSelector(`[data-testid=thread-item][data-thread-id="${second}"] [data-testid=thread-unread]`, { state: 'detached' });
    // The applicant card is in the side panel.
    await page.locator('[data-testid=applicant-panel] [data-testid=panel-identities] li').first().waitFor();
    // The place kept for knowledge-base answers and the bot's status.
    await page.locator('[data-testid=applicant-panel] [data-testid=panel-assist]').waitFor();
  });

  await t.test('a reply goes queued, sent, delivered, read live, and the answer arrives live', async () => {
    const text = 'Да, ждём вас завтра в 10:00';
    await page.evaluate(recordDelivery, text);
    const incoming = await page.locator('[data-testid=thread-message][data-direction=in]').count();
    await page.fill('[data-testid=thread-composer-text]', text);
    // The SMS counter: Cyrillic is UCS-2.
    const counter = page.locator('[data-testid=sms-counter]');
    assert.equal(await counter.getAttribute('data-encoding'), 'UCS-2');
    assert.equal(await counter.getAttribute('data-segments'), '1');
    await page.press('[data-testid=thread-composer-text]', 'Enter');
    assert.equal(await page.inputValue('[data-testid=thread-composer-text]'), '');
    const out = page.locator('[data-testid=thread-message][data-direction=out]', { hasText: text });
    await out.and(page.locator('[data-delivery=read]')).waitFor({ timeout: 20_000 });
    assert.deepEqual(await page.evaluate((x) => window.__delivery[x], text), ['queued', 'sent', 'delivered', 'read']);
    assert.equal(await out.count(), 1);
    // The simulated applicant answers about 6 s after reading.
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=thread-message][data-direction=in]').length > n,
      incoming,
      { timeout: 20_000 },
    );
    const last = page.locator('[data-testid=thread-message]').last();
    assert.equal(await last.getAttribute('data-direction'), 'in');
    await page.screenshot({ path: join(artifacts, 'thread.png') });
  });

  await t.test('an internal note with a mention is shown as a note, never as sent, and notifies ivan', async () => {
    ivan = await loginAs(env, IVAN, { initScript: fakeNotifications });
    await page.check('[data-testid=mode-note]');
    await page.click('[data-testid=thread-composer-text]');
    await page.keyboard.type('@Ив');
    await page.waitForSelector('.thread-composer .mention-picker');
    await page.keyboard.press('Enter');
    await page.keyboard.type('проверь этого кандидата');
    await page.keyboard.press('Enter');
    const note = page.locator('[data-testid=thread-message][data-direction=note]', { hasText: 'проверь этого кандидата' });
    await note.waitFor();
    await note.and(page.locator(':not([data-pending])')).waitFor();
    await note.locator('[data-testid=note-tag]').waitFor();
    assert.equal((await note.locator('mark').textContent()).trim(), '@Иван Наймов');
    await ivan.page.waitForFunction(() => window.__notes.some((n) => n.title.includes('упомянул')));
    await ivan.page.waitForSelector('[data-testid=thread-mentions] :text("проверь этого кандидата")');
    // It stays a note: no delivery state, now or later.
    await page.waitForTimeout(1500);
    assert.equal(await note.getAttribute('data-delivery'), null);
    assert.doesNotMatch(await note.textContent(), /отправлено|доставлено|прочитано/);
    assert.equal(await page.locator('[data-testid=thread-message][data-direction=out]', { hasText: 'проверь этого кандидата' }).count(), 0);
    await page.check('[data-testid=mode-reply]');
  });

  await t.test('a failed reply shows its reason and Retry sends it again', async () => {
    // An SMS line whose provider refuses every message (the hub's own 404).
    const admin = await apiLogin(env.base, ADMIN);
    const created = await admin('POST', '/channel-accounts', {
      kind: 'sms',
      provider: 'webhook',
      name: 'SMS (сломанный)',
      address: '+375290000001',
      settings: { url: `${env.base}/api/v1/no-such-provider` },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // Another thread and back: the composer loads the senders again.
    const current = await page.getAttribute('[data-testid=thread-view]', 'data-thread-id');
    await page.locator(`[data-testid=thread-item]:not([data-thread-id="${current}"])`).first().click();
    await page.waitForSelector(`[data-testid=thread-view]:not([data-thread-id="${current}"])`);
    await page.click(`[data-testid=thread-item][data-thread-id="${current}"]`);
    await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${current}"]`);
    await page.locator('[data-testid=composer-channel] option', { hasText: 'SMS (сломанный)' }).waitFor({ state: 'attached' });
    await page.selectOption('[data-testid=composer-channel]', created.body.account.id);
    const text = 'проверка сбоя доставки';
    await page.evaluate(recordDelivery, text);
    await page.fill('[data-testid=thread-composer-text]', text);
    await page.keyboard.press('Control+Enter');
    const out = page.locator('[data-testid=thread-message][data-direction=out]', { hasText: text });
    await out.and(page.locator('[data-delivery=failed]')).waitFor({ timeout: 20_000 });
    assert.deepEqual((await page.evaluate((x) => window.__delivery[x], text)).slice(0, 2), ['queued', 'failed']);
    assert.match(await out.locator('[data-testid=delivery]').textContent(), /не доставлено: \S/);
    const retried = page.waitForResponse((r) => r.url().includes('/retry') && r.request().method() === 'POST');
    await out.locator('[data-testid=delivery-retry]').click();
    assert.equal((await retried).status(), 200);
    await page.waitForFunction((x) => window.__delivery[x].filter((s) => s === 'failed').length === 2, text, { timeout: 20_000 });
    // The default sender comes back for the next reply.
    await page.selectOption('[data-testid=composer-channel]', { label: 'SMS: SMS (демо) (+375290000000)' });
  });

  await t.test('closing and reopening the thread', async () => {
    await page.click('[data-testid=thread-close]');
    await page.waitForSelector('[data-testid=thread-head-state][data-state=closed]');
    await page.click('[data-testid=thread-reopen]');
    await page.waitForSelector('[data-testid=thread-head-state][data-state=open]');
  });

  await t.test('a hostile inbound email cannot run anything and its formatting shows', async () => {
    const admin = await apiLogin(env.base, ADMIN);
    const created = await admin('POST', '/channel-accounts', {
      kind: 'email',
      provider: 'webhook',
      name: 'Почта (тест)',
      address: 'hr@demo.example',
      settings: {},
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { account, secret } = created.body;
    const body = JSON.stringify({
      id: 'hostile-1',
      from: { name: 'Злой Отправитель', email: 'evil@example.com' },
      subject: 'Резюме',
      text: 'ok',
      html: HOSTILE_HTML,
    });
    const ts = Math.floor(Date.now() / 1000);
    const sig = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    const r = await fetch(`${env.base}/api/v1/hooks/${account.id}/inbound`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-jobers-timestamp': String(ts), 'x-jobers-signature': `sha256=${sig}` },
      body,
    });
    assert.equal(r.status, 200, await r.text());

    await page.click('[data-testid=inbox-scope] [data-scope=all]');
    const item = page.locator('[data-testid=thread-item]', { hasText: 'Злой Отправитель' });
    await item.waitFor();
    assert.equal(await item.locator('[data-channel=email]').count(), 1);
    await item.click();
    const email = page.locator('[data-testid=email-body]');
    await email.locator('b').waitFor();
    assert.equal((await email.locator('b').textContent()).trim(), 'ok');
    await page.waitForTimeout(500);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await email.locator('script').count(), 0);
    assert.equal(await page.evaluate(() => document.querySelectorAll('[onerror]').length), 0);
    assert.deepEqual(olga.dialogs, []);
  });

  await t.test('a thread a supervisor assigns to olga notifies her and shows live', async () => {
    const admin = await apiLogin(env.base, ADMIN);
    const users = (await admin('GET', '/users')).body;
    const id = (email) => users.find((u) => u.email === email).id;
    const [thread] = (await admin('GET', '/threads?scope=all&q=evil@example.com')).body;
    assert.ok(thread, 'the hostile email thread');
    assert.equal((await admin('POST', `/threads/${thread.id}/assign`, { user_id: id(IVAN) })).status, 200);
    const item = page.locator(`[data-testid=thread-item][data-thread-id="${thread.id}"] [data-testid=thread-assignee]`);
    await page.waitForFunction((tid) => document.querySelector(`[data-thread-id="${tid}"] [data-testid=thread-assignee]`)?.textContent === 'Иван Наймов', thread.id);
    await page.evaluate(() => (window.__notes.length = 0));
    assert.equal((await admin('POST', `/threads/${thread.id}/assign`, { user_id: id(OLGA) })).status, 200);
    await page.waitForFunction(() => window.__notes.some((n) => n.title === 'Вам назначен диалог: Злой Отправитель'));
    assert.equal(await item.textContent(), 'вы');
    assert.equal(await page.textContent('[data-testid=thread-head-assignee]'), 'вы');
  });

  await t.test('the admin sees channel health and creates a webhook account whose secret shows once', async () => {
    const admin = await loginAs(env, ADMIN);
    await admin.page.click('[data-testid=nav-admin]');
    await admin.page.click('[data-testid=admin-tab-channels]');
    const sms = admin.page.locator('[data-testid=channel-row]', { hasText: 'SMS (демо)' });
    await sms.locator('[data-testid=health][data-health=ok]').waitFor();
    assert.equal((await sms.locator('[data-testid=health]').textContent()).trim(), 'в порядке');
    await admin.page.locator('[data-testid=channel-row]', { hasText: 'Почта (тест)' }).waitFor();

    await admin.page.click('button:has-text("Новый канал (вебхук)")');
    await admin.page.fill('[data-testid=channel-form] label:has-text("Название") input', 'Чат сайта');
    await admin.page.selectOption('[data-testid=channel-form] label:has-text("Тип") select', 'chat');
    await admin.page.fill('[data-testid=channel-form] label:has-text("Адрес отправителя") input', 'site-widget');
    await admin.page.click('[data-testid=channel-form] button[type=submit]');
    const secret = await admin.page.locator('[data-testid=channel-secret] code').textContent();
    assert.match(secret, /^[0-9a-f]{32,}$/);
    const row = admin.page.locator('[data-testid=channel-row]', { hasText: 'Чат сайта' });
    await row.locator('[data-testid=channel-toggle]').click();
    await admin.page.waitForSelector('[data-testid=channel-row]:has-text("Чат сайта"):has-text("отключён")');
    await admin.page.screenshot({ path: join(artifacts, 'admin-channels.png') });

    await admin.page.click('[data-testid=admin-tab-queues]');
    await admin.page.locator('[data-testid=queue-row]', { hasText: 'Ольга Подборова' }).waitFor();
    assert.deepEqual(admin.errors, []);
    await admin.context.close();
  });

  assert.deepEqual(olga.errors, []);
  assert.deepEqual(ivan?.errors ?? [], []);
  await ivan?.context.close();
  await olga.context.close();
});
