// Browser test of an email conversation against a real hub: `jobers demo` has a simulated
// mailbox ("Почта (демо)", played by the webhook channel's simulator) where Ирина wrote a
// letter; the simulated applicant reads a reply after ~3 s and answers ~8 s later, by
// email, naming the thread's reference as a real mail client names the letter it answers.
//
//   JOBERS_BIN=path/to/jobers node --test e2e/email.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiLogin, artifacts, loginAs, startHub } from './support.mjs';

const OLGA = 'olga@demo.jobers.local';

let env;

before(async () => {
  env = await startHub();
});

after(async () => {
  await env?.stop();
});

test('an email reply from the applicant lands in the same thread', async (t) => {
  const olga = await loginAs(env, OLGA);
  const page = olga.page;
  const api = await apiLogin(env.base, OLGA);
  const get = async (path) => {
    const r = await api('GET', path);
    assert.equal(r.status, 200, path);
    return r.body;
  };
  let threadId;

  await t.test('the letter is in olga\'s inbox, marked as email, and opens with its subject', async () => {
    await page.click('[data-testid=nav-inbox]');
    const item = page.locator('[data-testid=thread-item]:has([data-channel=email])').first();
    await item.waitFor();
    threadId = await item.getAttribute('data-thread-id');
    await item.click();
    await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${threadId}"]`);
    await page.locator('[data-testid=email-body]').first().waitFor();
    // The composer answers where the applicant wrote: the mailbox.
    const channel = page.locator('[data-testid=composer-channel]');
    const chosen = await channel.evaluate((s) => s.options[s.selectedIndex]?.textContent ?? '');
    assert.match(chosen, /Почта \(демо\)|последний канал соискателя/);
  });

  await t.test('olga answers by email; the applicant\'s answer arrives in the same thread, live', async () => {
    const before = await get(`/threads/${threadId}/messages?limit=200`);
    const incoming = await page.locator('[data-testid=thread-message][data-direction=in]').count();
    const text = 'Ирина, приглашаем вас на собеседование в четверг в 11:00.';
    await page.fill('[data-testid=thread-composer-text]', text);
    await page.press('[data-testid=thread-composer-text]', 'Enter');
    const out = page.locator('[data-testid=thread-message][data-direction=out]', { hasText: text });
    await out.and(page.locator('[data-delivery=read]')).waitFor({ timeout: 20_000 });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=thread-message][data-direction=in]').length > n,
      incoming,
      { timeout: 30_000 },
    );
    // Still the same thread on the screen, and in the hub.
    assert.equal(await page.locator('[data-testid=thread-view]').getAttribute('data-thread-id'), threadId);
    const after = await get(`/threads/${threadId}/messages?limit=200`);
    const fresh = after.filter((m) => !before.some((b) => b.id === m.id));
    const sent = fresh.find((m) => m.direction === 'out');
    const answer = fresh.find((m) => m.direction === 'in');
    assert.ok(sent && answer, JSON.stringify(fresh));
    assert.equal(sent.channel_kind, 'email');
    assert.equal(answer.channel_kind, 'email');
    assert.equal(answer.thread_id, threadId);
    // No second thread for the same applicant.
    const thread = await get(`/threads/${threadId}`);
    const all = await get('/threads?scope=all&limit=200');
    assert.equal(all.filter((x) => x.contact_id === thread.contact_id).length, 1);
    await page.screenshot({ path: join(artifacts, 'email-thread.png') });
  });

  await olga.context.close();
});
