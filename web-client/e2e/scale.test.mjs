// Browser test of a large inbox at a small size (the benchmark in loadtests/web/ runs the
// full one): 300 applicants and one thread of 400 messages come in through the signed
// webhook; the admin's inbox ("all") and the long thread must be virtualised (a bounded
// number of rows in the DOM), page to their ends by scrolling, keep the keyboard working far
// down the list, and keep the view still when older messages are put above it. Also the
// audit log screen and its filters.
//
//   JOBERS_BIN=path/to/jobers node --test e2e/scale.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PASSWORD, apiLogin, artifacts, loginAs, startHub } from './support.mjs';
import { inbound, seedLongThread, seedThreads, webhookAccount } from './seed.mjs';

const ADMIN = 'admin@demo.jobers.local';
const THREADS = 300;
const MESSAGES = 400;
/** Rows a virtualised list may hold at this window size: the view and the overscan. */
const MAX_ROWS = 60;
/** The seeded threads' vacancy: the list filtered by it holds only them, in a fixed order (the demo's own applicants keep writing). */
const VACANCY = 'Нагрузка';

let env;
let hook;
let longThreadId;
/** Every seeded thread of the "all" list, in the API's order (newest activity first). */
let allThreads;

before(async () => {
  env = await startHub();
  const admin = await apiLogin(env.base, ADMIN);
  hook = await webhookAccount(admin, { name: 'SMS (объём)', address: '+375290000300' });
  longThreadId = await seedLongThread(env.base, hook, MESSAGES, { concurrency: 4 });
  await seedThreads(env.base, hook, THREADS, { concurrency: 8, vacancy: VACANCY });
  allThreads = [];
  for (;;) {
    const last = allThreads[allThreads.length - 1];
    const cursor = last ? `&before_time=${encodeURIComponent(last.last_message_at)}&before_id=${last.id}` : '';
    const page = await admin('GET', `/threads?scope=all&vacancy=${encodeURIComponent(VACANCY)}&limit=200${cursor}`);
    assert.equal(page.status, 200);
    allThreads.push(...page.body);
    if (page.body.length < 200) break;
  }
  assert.equal(allThreads.length, THREADS);
});

after(async () => {
  await env?.stop();
});

const rows = (page) => page.locator('[data-testid=thread-item]').count();

test('a large inbox is virtualised, pages by scrolling and keeps the keyboard working', async (t) => {
  const { page, errors } = await loginAs(env, ADMIN);
  await page.click('[data-testid=nav-inbox]');
  await page.click('[data-testid=inbox-scope] [data-scope=all]');
  await page.fill('[data-testid=inbox-vacancy]', VACANCY);
  await page.waitForSelector(`[data-testid=thread-item][data-thread-id="${allThreads[0].id}"]`);

  await t.test('the first page shows only the rows near the view', async () => {
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=threads]')?.dataset.count) === 50);
    const n = await rows(page);
    assert.ok(n > 3 && n <= MAX_ROWS, `${n} rows in the DOM`);
    assert.equal(await page.getAttribute('[data-testid=thread-item] >> nth=0', 'data-thread-id'), allThreads[0].id);
  });

  await t.test('scrolling to the end loads every page down to the last thread, still with few rows', async () => {
    const last = allThreads[allThreads.length - 1].id;
    let most = 0;
    const loaded = () => page.evaluate(() => Number(document.querySelector('[data-testid=threads]').dataset.count));
    for (let i = 0; i < 100 && (await loaded()) < allThreads.length; i++) {
      await page.evaluate(() => {
        const s = document.querySelector('[data-testid=threads-scroller]');
        s.scrollTop = s.scrollHeight;
      });
      await page.waitForTimeout(100);
      most = Math.max(most, await rows(page));
    }
    await page.evaluate(() => {
      const s = document.querySelector('[data-testid=threads-scroller]');
      s.scrollTop = s.scrollHeight;
    });
    await page.waitForTimeout(200);
    most = Math.max(most, await rows(page));
    await page.locator(`[data-testid=thread-item][data-thread-id="${last}"]`).waitFor();
    assert.equal(Number(await page.getAttribute('[data-testid=threads]', 'data-count')), allThreads.length);
    assert.ok(most <= MAX_ROWS, `${most} rows in the DOM at most for ${allThreads.length} threads`);
    assert.equal(await page.locator('[data-testid=inbox-more]').count(), 0);
    // The last row is really in view.
    const inView = await page.evaluate((id) => {
      const s = document.querySelector('[data-testid=threads-scroller]').getBoundingClientRect();
      const r = document.querySelector(`[data-thread-id="${id}"]`).getBoundingClientRect();
      return r.top >= s.top - 1 && r.bottom <= s.bottom + 1;
    }, last);
    assert.ok(inView, 'the last thread is in view');
  });

  await t.test('Home, End and the arrows move the focus over all threads, and Enter opens one far down', async () => {
    await page.locator('[data-testid=thread-item]').last().focus();
    await page.keyboard.press('Home');
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-thread-id'));
    assert.equal(await focused(), allThreads[0].id);
    await page.keyboard.press('End');
    assert.equal(await focused(), allThreads[allThreads.length - 1].id);
    await page.keyboard.press('Home');
    for (let i = 0; i < 30; i++) await page.keyboard.press('ArrowDown');
    assert.equal(await focused(), allThreads[30].id);
    await page.keyboard.press('PageDown');
    const paged = await focused();
    const at = allThreads.findIndex((th) => th.id === paged);
    assert.ok(at > 31, `PageDown moved to ${at}`);
    // The focused row stays in the DOM (and focused) when the list scrolls far away.
    await page.evaluate(() => {
      const s = document.querySelector('[data-testid=threads-scroller]');
      s.scrollTop = s.scrollHeight;
    });
    await page.waitForTimeout(200);
    assert.equal(await focused(), paged);
    assert.ok((await rows(page)) <= MAX_ROWS + 1);
    await page.keyboard.press('ArrowUp');
    assert.equal(await focused(), allThreads[at - 1].id);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${allThreads[at - 1].id}"]`);
    assert.deepEqual(errors, []);
  });
});

test('a long thread is virtualised, starts at the newest message and keeps the view when older pages come', async (t) => {
  const { page, errors } = await loginAs(env, ADMIN);
  await page.goto(`${env.base}/inbox/${longThreadId}`);
  const last = `${MESSAGES - 1}: `;
  await page.locator('[data-testid=thread-message]', { hasText: last }).waitFor();
  const timeline = '[data-testid=timeline]';
  const count = () => page.evaluate(() => Number(document.querySelector('[data-testid=timeline-list]').dataset.count));
  const gapToBottom = () => page.evaluate((sel) => {
    const s = document.querySelector(sel);
    return s.scrollHeight - s.scrollTop - s.clientHeight;
  }, timeline);
  const topOf = (id) => page.evaluate((x) => document.querySelector(`[data-message-id="${x}"]`)?.getBoundingClientRect().top ?? null, id);

  await t.test('it opens at the newest message with a bounded number of messages in the DOM', async () => {
    await page.waitForTimeout(300);
    assert.ok((await gapToBottom()) < 2, 'at the bottom');
    const n = await page.locator('[data-testid=thread-message]').count();
    assert.ok(n >= 1 && n <= MAX_ROWS, `${n} messages in the DOM`);
  });

  await t.test('scrolling up loads older pages up to the first message, the view staying on its message', async () => {
    let checked = 0;
    for (let i = 0; i < 100 && (await count()) < MESSAGES; i++) {
      const before = await count();
      // Half a screen below the top: the list asks for the next page, nothing clamps the view.
      await page.evaluate((sel) => (document.querySelector(sel).scrollTop = 200), timeline);
      await page.waitForTimeout(50);
      const pinned = await page.evaluate((sel) => {
        const s = document.querySelector(sel).getBoundingClientRect();
        const m = [...document.querySelectorAll('[data-testid=thread-message]')].find((el) => el.getBoundingClientRect().top >= s.top);
        return m ? { id: m.dataset.messageId, top: m.getBoundingClientRect().top } : null;
      }, timeline);
      await page.waitForFunction((n) => Number(document.querySelector('[data-testid=timeline-list]').dataset.count) > n, before);
      await page.waitForTimeout(100);
      if (pinned) {
        const now = await topOf(pinned.id);
        assert.ok(now !== null && Math.abs(now - pinned.top) <= 2, `message moved from ${pinned.top} to ${now}`);
        checked++;
      }
    }
    assert.ok(checked > 0);
    assert.equal(await count(), MESSAGES);
    await page.evaluate((sel) => (document.querySelector(sel).scrollTop = 0), timeline);
    await page.locator('[data-testid=thread-message]', { hasText: '0: ' }).first().waitFor();
    assert.ok((await page.locator('[data-testid=thread-message]').count()) <= MAX_ROWS);
    await page.screenshot({ path: join(artifacts, 'long-thread-top.png') });
  });

  await t.test('a new message while scrolled up leaves the view alone; at the bottom it comes into view', async () => {
    const first = await page.getAttribute('[data-testid=thread-message] >> nth=0', 'data-message-id');
    const top = await topOf(first);
    await inbound(env.base, hook, { id: 'long-new-1', from: { phone: '+375298888888' }, text: 'новое сообщение 1' });
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=timeline-list]').dataset.count) > n, MESSAGES);
    assert.equal(await topOf(first), top);

    await page.evaluate((sel) => {
      const s = document.querySelector(sel);
      s.scrollTop = s.scrollHeight;
    }, timeline);
    await page.waitForTimeout(200);
    await inbound(env.base, hook, { id: 'long-new-2', from: { phone: '+375298888888' }, text: 'новое сообщение 2' });
    const fresh = page.locator('[data-testid=thread-message]', { hasText: 'новое сообщение 2' });
    await fresh.waitFor();
    await page.waitForTimeout(200);
    assert.ok((await gapToBottom()) < 2, 'still at the bottom');
    const visible = await fresh.evaluate((el) => {
      const s = el.closest('[data-testid=timeline]').getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return r.bottom <= s.bottom + 1 && r.top >= s.top - 1;
    });
    assert.ok(visible, 'the new message is in view');
    assert.deepEqual(errors, []);
  });
});

test('the audit log shows logins and admin actions and filters them', async (t) => {
  // A failed login, so there is more than one kind of entry.
  const r = await fetch(`${env.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email: ADMIN, password: `${PASSWORD}-wrong` }),
  });
  assert.equal(r.status, 401);
  const { page, errors } = await loginAs(env, ADMIN);
  await page.click('[data-testid=nav-admin]');
  await page.click('[data-testid=admin-tab-audit]');
  const rowsOf = () => page.locator('[data-testid=audit-row]');

  await t.test('entries show newest first with the time, who, what and the target', async () => {
    await rowsOf().first().waitFor();
    const actions = await rowsOf().evaluateAll((els) => els.map((e) => e.dataset.action));
    assert.ok(actions.includes('login'), JSON.stringify(actions));
    assert.ok(actions.includes('login_failed'));
    assert.ok(actions.includes('channel_account_created'));
    // The newest entry is this browser's login.
    assert.equal(actions[0], 'login');
    const created = rowsOf().and(page.locator('[data-action=channel_account_created]'));
    const cells = await created.locator('td').allTextContents();
    assert.match(cells[0], /\d{2}:\d{2}/);
    assert.equal(cells[1], 'Анна Админова');
    assert.equal(cells[2], 'Канал создан');
    assert.match(cells[3], /^канал …/);
    assert.match(cells[4], /provider: webhook/);
    await page.screenshot({ path: join(artifacts, 'audit.png') });
  });

  await t.test('the action filter shows only that action', async () => {
    await page.selectOption('[data-testid=audit-action-filter]', 'login_failed');
    await page.waitForFunction(() => {
      const rs = [...document.querySelectorAll('[data-testid=audit-row]')];
      return rs.length > 0 && rs.every((e) => e.dataset.action === 'login_failed');
    });
    assert.equal(await rowsOf().count(), 1);
    assert.equal(await rowsOf().first().locator('td').nth(1).textContent(), 'система');
  });

  await t.test('the actor filter shows only what that person did', async () => {
    await page.selectOption('[data-testid=audit-action-filter]', '');
    await page.selectOption('[data-testid=audit-actor-filter]', { label: 'Анна Админова' });
    await page.waitForFunction(() => {
      const rs = [...document.querySelectorAll('[data-testid=audit-row]')];
      return rs.length > 0 && rs.every((e) => e.dataset.action !== 'login_failed');
    });
    const actors = new Set(await rowsOf().evaluateAll((els) => els.map((e) => e.dataset.actor)));
    assert.equal(actors.size, 1);
    assert.ok(!actors.has(''));
    assert.deepEqual(errors, []);
  });
});
