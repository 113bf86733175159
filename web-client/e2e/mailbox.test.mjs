// Browser test of a personal mailbox against a real hub (`jobers demo`): a recruiter (not an
// admin) adds their own mailbox in the Profile — pointing at a closed port, so the hub's
// reader reports it down with the error — sees it listed with its health, finds it among the
// senders of the thread composer (another recruiter does not), switches it off and on, and
// changes it (the passwords asked for again).
//
//   JOBERS_BIN=path/to/jobers node --test e2e/mailbox.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiLogin, artifacts, freePort, loginAs, startHub } from './support.mjs';

const OLGA = 'olga@demo.jobers.local';
const IVAN = 'ivan@demo.jobers.local';
const ADDRESS = 'ivan.naimov@mail.example';

let env;

before(async () => {
  env = await startHub();
});

after(async () => {
  await env?.stop();
});

async function fillServer(page, kind, { host, port, security, password }) {
  const part = page.locator(`[data-testid=mailbox-form] [data-testid=mailbox-${kind}]`);
  await part.getByLabel('Сервер').fill(host);
  await part.getByLabel('Защита').selectOption(security);
  await part.getByLabel('Порт').fill(String(port));
  if (password !== undefined) await part.getByLabel('Пароль').fill(password);
}

test('a recruiter adds a personal mailbox, sees its health and sends from it', async (t) => {
  const ivan = await loginAs(env, IVAN);
  const page = ivan.page;
  const port = await freePort();
  let accountId;

  await t.test('the profile form adds the mailbox for ivan himself', async () => {
    await page.click('[data-testid=nav-profile]');
    await page.locator('[data-testid=mailboxes]', { hasText: 'Личной почты пока нет.' }).waitFor();
    await page.click('[data-testid=mailbox-add]');
    const form = page.locator('[data-testid=mailbox-form]');
    // Labelled fields, the sender name prefilled with the user's name.
    assert.equal(await form.getByLabel('Имя отправителя').inputValue(), 'Иван Наймов');
    await form.getByLabel('Адрес почты').fill('not-an-address');
    await page.click('[data-testid=mailbox-save]');
    await page.locator('[data-testid=mailbox-problems]', { hasText: 'Адрес должен быть адресом почты.' }).waitFor();
    await page.locator('[data-testid=mailbox-problems]', { hasText: 'Укажите пароль.' }).waitFor();

    await form.getByLabel('Адрес почты').fill(ADDRESS);
    await form.getByLabel('Название в списке отправителей').fill('Моя почта');
    await fillServer(page, 'smtp', { host: '127.0.0.1', port, security: 'plain', password: 'smtp-secret' });
    await fillServer(page, 'imap', { host: '127.0.0.1', port, security: 'plain' });
    await form.screenshot({ path: join(artifacts, 'profile-mailbox-form.png') });
    const created = page.waitForResponse((r) => r.url().endsWith('/api/v1/channel-accounts') && r.request().method() === 'POST');
    await page.click('[data-testid=mailbox-save]');
    const res = await created;
    assert.equal(res.status(), 201, await res.text());
    const sent = res.request().postDataJSON();
    assert.equal(sent.owner_user_id, (await (await apiLogin(env.base, IVAN))('GET', '/me')).body.user.id);
    assert.deepEqual(sent.settings.imap, { host: '127.0.0.1', port, security: 'plain', username: ADDRESS, password: 'smtp-secret', folder: 'INBOX' });
    accountId = (await res.json()).account.id;

    const item = page.locator(`[data-testid=mailbox][data-account-id="${accountId}"]`);
    await item.waitFor();
    assert.equal(await item.locator('[data-testid=mailbox-address]').textContent(), ADDRESS);
    assert.match(await item.textContent(), /Моя почта/);
  });

  await t.test('the hub cannot reach the mailbox: the profile shows it down with the error', async () => {
    const item = page.locator(`[data-testid=mailbox][data-account-id="${accountId}"]`);
    await item.locator('[data-testid=health][data-health=down]').waitFor({ timeout: 30_000 });
    assert.match(await item.locator('[data-testid=mailbox-error]').textContent(), /^Ошибка: \S/);
    await page.screenshot({ path: join(artifacts, 'profile-mailbox.png') });
  });

  await t.test('the mailbox is one of ivan\'s senders in the composer, not olga\'s', async () => {
    const admin = await apiLogin(env.base, 'admin@demo.jobers.local');
    const [thread] = (await admin('GET', '/threads?scope=all&limit=1')).body;
    assert.ok(thread, 'a demo thread');
    await page.goto(`${env.base}/inbox/${thread.id}`);
    await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${thread.id}"]`);
    const option = page.locator(`[data-testid=composer-channel] option[value="${accountId}"]`);
    await option.waitFor({ state: 'attached' });
    assert.equal(await option.textContent(), `Почта: Моя почта (${ADDRESS}) · личный`);
    await page.selectOption('[data-testid=composer-channel]', accountId);
    // An email sender brings the subject field.
    await page.locator('[data-testid=composer-subject]').waitFor();

    const olga = await loginAs(env, OLGA);
    await olga.page.goto(`${env.base}/inbox/${thread.id}`);
    await olga.page.waitForSelector(`[data-testid=thread-view][data-thread-id="${thread.id}"] [data-testid=composer-channel] option`, { state: 'attached' });
    await olga.page.waitForTimeout(500);
    assert.equal(await olga.page.locator(`[data-testid=composer-channel] option[value="${accountId}"]`).count(), 0);
    assert.deepEqual(olga.errors, []);
    await olga.context.close();
  });

  await t.test('ivan switches it off and on, and changes it with the passwords again', async () => {
    await page.click('[data-testid=nav-profile]');
    const item = page.locator(`[data-testid=mailbox][data-account-id="${accountId}"]`);
    const toggled = page.waitForResponse((r) => r.url().endsWith(`/channel-accounts/${accountId}`) && r.request().method() === 'PATCH');
    await item.locator('[data-testid=mailbox-toggle]').click();
    const off = await toggled;
    assert.equal(off.status(), 200, await off.text());
    // Only `enabled`: settings would replace the stored passwords with the shown empty ones.
    assert.deepEqual(off.request().postDataJSON(), { enabled: false });
    await page.locator(`[data-testid=mailbox][data-account-id="${accountId}"][data-enabled=false]`).waitFor();
    await item.locator('[data-testid=mailbox-toggle]').click();
    await page.locator(`[data-testid=mailbox][data-account-id="${accountId}"][data-enabled=true]`).waitFor();

    await item.locator('[data-testid=mailbox-edit]').click();
    const form = item.locator('[data-testid=mailbox-form]');
    assert.equal(await form.getByLabel('Адрес почты').inputValue(), ADDRESS);
    assert.equal(await form.locator('[data-testid=mailbox-smtp]').getByLabel('Порт').inputValue(), String(port));
    await form.getByLabel('Имя отправителя').fill('Иван Н.');
    await page.click('[data-testid=mailbox-save]');
    await page.locator('[data-testid=mailbox-problems]', { hasText: 'Укажите пароль.' }).waitFor();
    await form.locator('[data-testid=mailbox-smtp]').getByLabel('Пароль').fill('new-secret');
    const changed = page.waitForResponse((r) => r.url().endsWith(`/channel-accounts/${accountId}`) && r.request().method() === 'PATCH');
    await page.click('[data-testid=mailbox-save]');
    const res = await changed;
    assert.equal(res.status(), 200, await res.text());
    assert.equal(res.request().postDataJSON().settings.display_name, 'Иван Н.');
    await form.waitFor({ state: 'detached' });
    const account = await res.json();
    assert.equal(account.settings.display_name, 'Иван Н.');
    // The hub never shows the passwords.
    assert.equal(account.settings.smtp.password, '');
  });

  assert.deepEqual(ivan.errors, []);
  await ivan.context.close();
});
