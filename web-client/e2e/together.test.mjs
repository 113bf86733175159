// Browser test of two recruiters on the same applicants, against a real hub (`jobers demo`):
// each sees the other typing in the same thread (reply and note), and the applicant panel's
// merge suggestion — two applicants with the same name, injected through the signed webhook —
// merges the two threads into one and Undo brings the second back.
//
//   JOBERS_BIN=path/to/jobers node --test e2e/together.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiLogin, artifacts, loginAs, startHub } from './support.mjs';
import { inbound, webhookAccount } from './seed.mjs';

const OLGA = 'olga@demo.jobers.local';
const IVAN = 'ivan@demo.jobers.local';
const ADMIN = 'admin@demo.jobers.local';

let env;

before(async () => {
  env = await startHub();
});

after(async () => {
  await env?.stop();
});

/** Opens a thread by its address (a page load: the session comes back from the cookie). */
async function openThread(page, threadId) {
  await page.goto(`${env.base}/inbox/${threadId}`);
  await page.waitForSelector('[data-testid=conn-state][data-state=live]');
  await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${threadId}"]`);
  await page.locator('[data-testid=thread-message]').first().waitFor();
}

const typingText = (page) => page.locator('[data-testid=thread-typing]').textContent();

test('two recruiters in one thread: typing both ways, a suggested merge and its undo', async (t) => {
  const admin = await apiLogin(env.base, ADMIN);
  const account = await webhookAccount(admin, { kind: 'sms', name: 'SMS (вебхук)', address: '+375290000777' });
  const typed = await inbound(env.base, account, { id: 'typing-1', from: { name: 'Пётр Печатный', phone: '+375291110001' }, text: 'Есть ли вакансия водителя?' });
  const first = await inbound(env.base, account, { id: 'same-1', from: { name: 'Мария Двойнова', phone: '+375291110002' }, text: 'Первое письмо Марии' });
  const second = await inbound(env.base, account, { id: 'same-2', from: { name: 'мария двойнова', phone: '+375441110003' }, text: 'Второе письмо Марии' });
  assert.notEqual(first.thread_id, second.thread_id);

  const olga = await loginAs(env, OLGA);
  const ivan = await loginAs(env, IVAN);

  await t.test('olga types a reply: ivan, in the same thread, sees it and it goes away by itself', async () => {
    await openThread(olga.page, typed.thread_id);
    await openThread(ivan.page, typed.thread_id);
    await olga.page.click('[data-testid=thread-composer-text]');
    await olga.page.keyboard.type('Да, есть', { delay: 30 });
    await ivan.page.waitForSelector('[data-testid=thread-typing]:has-text("Ольга Подборова печатает…")');
    // The typist sees no notice of her own.
    assert.equal(await typingText(olga.page), '');
    await ivan.page.screenshot({ path: join(artifacts, 'thread-typing.png') });
    // No "stopped" frame: the notice expires (6 s after the last frame, frames at most every 3 s).
    await ivan.page.waitForFunction(() => document.querySelector('[data-testid=thread-typing]').textContent === '', null, { timeout: 12_000 });
  });

  await t.test('ivan types a note: olga sees it; a thread elsewhere shows nothing', async () => {
    await ivan.page.check('[data-testid=mode-note]');
    await ivan.page.click('[data-testid=thread-composer-text]');
    await ivan.page.keyboard.type('посмотрю его резюме', { delay: 30 });
    await olga.page.waitForSelector('[data-testid=thread-typing]:has-text("Иван Наймов печатает…")');
    assert.equal(await typingText(ivan.page), '');
    // Olga's note ends her own notice on Ivan's side at once.
    await olga.page.fill('[data-testid=thread-composer-text]', '');
    await olga.page.keyboard.type('!', { delay: 30 });
    await ivan.page.waitForSelector('[data-testid=thread-typing]:has-text("Ольга Подборова печатает…")');
    await olga.page.check('[data-testid=mode-note]');
    await olga.page.fill('[data-testid=thread-composer-text]', 'беру его');
    await olga.page.press('[data-testid=thread-composer-text]', 'Enter');
    await ivan.page.locator('[data-testid=thread-message][data-direction=note]', { hasText: 'беру его' }).waitFor();
    await ivan.page.waitForFunction(() => !document.querySelector('[data-testid=thread-typing]').textContent.includes('Ольга'), null, { timeout: 2_000 });
    // Ivan types on in this thread; olga, in another one, is not told.
    await openThread(olga.page, first.thread_id);
    await ivan.page.keyboard.type(' и позвоню', { delay: 30 });
    await ivan.page.waitForTimeout(3500);
    await ivan.page.keyboard.type('!', { delay: 30 });
    await olga.page.waitForTimeout(1000);
    assert.equal(await typingText(olga.page), '');
  });

  await t.test('the panel suggests the applicant with the same name; merging joins the threads', async () => {
    const page = olga.page;
    const other = (await admin('GET', `/threads/${second.thread_id}`)).body.contact_id;
    const suggestion = page.locator(`[data-testid=merge-suggestion][data-contact-id="${other}"]`);
    await suggestion.waitFor();
    assert.match(await suggestion.locator('[data-testid=merge-reasons]').textContent(), /то же имя/);
    assert.match(await suggestion.textContent(), /мария двойнова/);
    assert.match(await suggestion.textContent(), /\+375441110003/);
    // Both threads are in the list.
    await page.click('[data-testid=inbox-scope] [data-scope=all]');
    await page.locator(`[data-testid=thread-item][data-thread-id="${second.thread_id}"]`).waitFor();

    // Merge asks first; the keyboard confirms (the confirmation has the focus).
    await suggestion.locator('[data-testid=merge-suggestion-merge]').click();
    await suggestion.locator('[data-testid=merge-confirm]').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'merge-confirm-yes');
    await page.keyboard.press('Escape');
    await suggestion.locator('[data-testid=merge-confirm]').waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'merge-suggestion-merge');
    await suggestion.locator('[data-testid=merge-suggestion-merge]').click();
    const merged = page.waitForResponse((r) => /\/contacts\/[^/]+\/merge$/.test(r.url()) && r.request().method() === 'POST');
    await page.keyboard.press('Enter');
    assert.equal((await merged).status(), 200);

    await page.locator('[data-testid=merge-done]', { hasText: 'мария двойнова' }).waitFor();
    await page.locator('[data-testid=panel-identities] li', { hasText: '+375441110003' }).waitFor();
    await suggestion.waitFor({ state: 'detached' });
    // One thread: the second one leaves the list and its message shows in the first one.
    await page.locator(`[data-testid=thread-item][data-thread-id="${second.thread_id}"]`).waitFor({ state: 'detached' });
    await page.locator('[data-testid=thread-message]', { hasText: 'Второе письмо Марии' }).waitFor();
    await page.locator('[data-testid=thread-message]', { hasText: 'Первое письмо Марии' }).waitFor();
    assert.equal((await admin('GET', `/threads/${second.thread_id}`)).body.merged_into, first.thread_id);
    await page.screenshot({ path: join(artifacts, 'merge-suggestion.png') });
  });

  await t.test('undo brings the second applicant and thread back', async () => {
    const page = olga.page;
    const undone = page.waitForResponse((r) => /\/contact-merges\/[^/]+\/undo$/.test(r.url()) && r.request().method() === 'POST');
    await page.click('[data-testid=merge-undo]');
    assert.equal((await undone).status(), 200);
    await page.locator('[data-testid=merge-undone]', { hasText: 'мария двойнова' }).waitFor();
    await page.locator(`[data-testid=thread-item][data-thread-id="${second.thread_id}"]`).waitFor();
    await page.locator('[data-testid=thread-message]', { hasText: 'Второе письмо Марии' }).waitFor({ state: 'detached' });
    await page.locator('[data-testid=thread-message]', { hasText: 'Первое письмо Марии' }).waitFor();
    await page.locator('[data-testid=panel-identities] li', { hasText: '+375441110003' }).waitFor({ state: 'detached' });
    // The suggestion is there again, and the merge list says it was undone.
    await page.locator('[data-testid=merge-suggestion]', { hasText: 'мария двойнова' }).waitFor();
    await page.locator('[data-testid=panel-merges] li', { hasText: 'отменено' }).waitFor();
    assert.equal((await admin('GET', `/threads/${second.thread_id}`)).body.merged_into, null);
    // Ivan's second thread opens on its own again.
    await openThread(ivan.page, second.thread_id);
    await ivan.page.locator('[data-testid=thread-message]', { hasText: 'Второе письмо Марии' }).waitFor();
  });

  assert.deepEqual(olga.errors, []);
  assert.deepEqual(ivan.errors, []);
  await olga.context.close();
  await ivan.context.close();
});
