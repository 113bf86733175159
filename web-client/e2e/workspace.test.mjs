// Browser test of the workspace against a real hub: starts `jobers demo` on 127.0.0.1 with a
// fresh data directory and the built client (dist/), and drives Debian's Chromium through
// playwright-core with two users, Olga and Ivan.
//
//   JOBERS_BIN=path/to/jobers node --test e2e/
//
// Screenshots of the main screens go to e2e/artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, '..', 'dist');
const artifacts = join(here, 'artifacts');
const bin = process.env.JOBERS_BIN;
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PASSWORD = 'jobers-demo';
const OLGA = 'olga@demo.jobers.local';
const IVAN = 'ivan@demo.jobers.local';
const ADMIN = 'admin@demo.jobers.local';
const TIMEOUT = 15_000;

let hub;
let hubLog = '';
let dataDir;
let base;
let browser;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

async function waitHealthy(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (hub.exitCode !== null) throw new Error(`jobers exited early:\n${hubLog}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`jobers did not become healthy:\n${hubLog}`);
}

before(async () => {
  assert.ok(bin, 'JOBERS_BIN must name the jobers binary');
  assert.ok(existsSync(join(dist, 'index.html')), 'build the client first (npm run build)');
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'jobers-web-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  hub = spawn(bin, ['demo'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      JOBERS_DATA_DIR: dataDir,
      JOBERS_LISTEN: `127.0.0.1:${port}`,
      JOBERS_HTTP__WEB_ROOT: dist,
      JOBERS_LOG_FILTER: 'warn',
      // Short-lived access tokens, so the run goes through many refreshes (REST 401s and
      // WebSocket 4002): a refresh made twice with one token would end the session.
      JOBERS_AUTH__ACCESS_TOKEN_TTL_SECS: '3',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  hub.stdout.on('data', (d) => (hubLog += d));
  hub.stderr.on('data', (d) => (hubLog += d));
  await waitHealthy(base, 30_000);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

after(async () => {
  await browser?.close();
  if (hub && hub.exitCode === null) {
    hub.kill('SIGTERM');
    await new Promise((r) => {
      const timer = setTimeout(() => (hub.kill('SIGKILL'), r()), 5000);
      hub.on('exit', () => (clearTimeout(timer), r()));
    });
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A browser context (its own cookies and storage) for one person, logged in. */
async function loginAs(email) {
  const context = await browser.newContext({ locale: 'ru-RU' });
  await context.addInitScript(() => localStorage.setItem('jobers.testHooks', '1'));
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base);
  await page.fill('input[name=tenant]', 'demo');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=conn-state][data-state=live]');
  return { context, page, dialogs, errors };
}

const HOSTILE = '<img src=x onerror=alert(1)> привет';

test('two recruiters chat live in the workspace', async (t) => {
  const ivan = await loginAs(IVAN);
  const olga = await loginAs(OLGA);

  await t.test('the interface is Russian by default', async () => {
    assert.equal((await olga.page.textContent('[data-testid=nav-team]')).trim(), 'Команда');
    await olga.page.screenshot({ path: join(artifacts, 'team-ru.png') });
  });

  await t.test('olga sees ivan online in the directory', async () => {
    await olga.page.waitForSelector(`[data-testid="person-${IVAN}"] [data-status=online]`);
  });

  await t.test('a direct chat opens live on both sides and typing shows', async () => {
    await olga.page.click(`[data-testid="person-${IVAN}"] button`);
    await olga.page.waitForSelector('#room-title');
    // The room reaches Ivan as a live event; he opens it.
    await ivan.page.click('[data-testid=rooms] [data-testid=room-item]');
    await ivan.page.waitForSelector('#room-title');
    await olga.page.fill('[data-testid=composer]', 'печатаю');
    await ivan.page.waitForSelector('[data-testid=typing]:has-text("печатает")');
    await olga.page.fill('[data-testid=composer]', '');
    await ivan.page.fill('[data-testid=composer]', 'и я');
    await olga.page.waitForSelector('[data-testid=typing]:has-text("печатает")');
    await ivan.page.fill('[data-testid=composer]', '');
  });

  await t.test('hostile html in a message is shown as text and never runs', async () => {
    await olga.page.fill('[data-testid=composer]', HOSTILE);
    await olga.page.press('[data-testid=composer]', 'Enter');
    const msg = ivan.page.locator('[data-testid=message]', { hasText: 'привет' });
    await msg.waitFor();
    assert.equal((await msg.locator('.body').textContent()).trim(), HOSTILE);
    assert.equal(await ivan.page.locator('[data-testid=messages] img').count(), 0);
    assert.equal(await ivan.page.evaluate(() => document.querySelectorAll('img[src=x]').length), 0);
    assert.equal(await olga.page.evaluate(() => document.querySelectorAll('img[src=x]').length), 0);
    assert.deepEqual(ivan.dialogs, []);
    assert.deepEqual(olga.dialogs, []);
    // Olga's copy is the stored message, once.
    await olga.page.locator('[data-testid=message]', { hasText: 'привет' }).waitFor();
    assert.equal(await olga.page.locator('[data-testid=message]', { hasText: 'привет' }).count(), 1);
  });

  await t.test('ivan reading the message shows a read receipt to olga', async () => {
    await olga.page.waitForSelector('[data-testid=read-by]:has-text("Иван")');
  });

  await t.test('shift+enter makes a new line and enter sends', async () => {
    await olga.page.click('[data-testid=composer]');
    await olga.page.keyboard.type('строка 1');
    await olga.page.keyboard.press('Shift+Enter');
    await olga.page.keyboard.type('строка 2');
    assert.equal(await olga.page.inputValue('[data-testid=composer]'), 'строка 1\nстрока 2');
    await olga.page.keyboard.press('Enter');
    await ivan.page.locator('[data-testid=message]', { hasText: 'строка 2' }).waitFor();
    assert.equal(
      (await ivan.page.locator('[data-testid=message]', { hasText: 'строка 2' }).locator('.body').textContent()),
      'строка 1\nстрока 2',
    );
  });

  await t.test('olga edits and deletes her own message; ivan sees both live', async () => {
    await olga.page.fill('[data-testid=composer]', 'встреча в 15:00');
    await olga.page.press('[data-testid=composer]', 'Enter');
    const mine = olga.page.locator('[data-testid=message]', { hasText: 'встреча в 15:00' });
    const his = ivan.page.locator('[data-testid=message]', { hasText: 'встреча в 1' });
    await his.waitFor();
    // Only one's own messages can be changed.
    assert.equal(await ivan.page.locator('[data-testid=message]', { hasText: 'встреча в 15:00' }).locator('[data-testid=message-edit-start]').count(), 0);
    await mine.locator('[data-testid=message-edit-start]').click();
    await olga.page.fill('[data-testid=message-edit-text]', 'встреча в 16:00');
    await olga.page.press('[data-testid=message-edit-text]', 'Enter');
    await ivan.page.locator('[data-testid=message]', { hasText: 'встреча в 16:00' }).locator('text=изменено').waitFor();
    assert.equal(await ivan.page.locator('[data-testid=message]', { hasText: 'встреча в 15:00' }).count(), 0);
    const edited = olga.page.locator('[data-testid=message]', { hasText: 'встреча в 16:00' });
    await edited.waitFor();
    await edited.locator('[data-testid=message-delete]').click();
    await edited.locator('[data-testid=message-delete-yes]').click();
    await ivan.page.waitForSelector('[data-testid=message]:has-text("Сообщение удалено")');
    assert.equal(await ivan.page.locator('[data-testid=message]', { hasText: 'встреча в 16:00' }).count(), 0);
  });

  await t.test('a dropped connection shows the banner and resumes without gaps or repeats', async () => {
    await olga.page.evaluate(() => window.__jobers.drop());
    await olga.page.waitForSelector('[data-testid=conn-banner]');
    await olga.page.screenshot({ path: join(artifacts, 'reconnecting.png') });
    // While Olga is away Ivan writes twice, and Olga writes once (queued until reconnect).
    for (const text of ['пока тебя не было 1', 'пока тебя не было 2']) {
      await ivan.page.fill('[data-testid=composer]', text);
      await ivan.page.press('[data-testid=composer]', 'Enter');
      await ivan.page.locator('[data-testid=message]', { hasText: text }).waitFor();
    }
    await olga.page.fill('[data-testid=composer]', 'я вернулась');
    await olga.page.press('[data-testid=composer]', 'Enter');
    await olga.page.waitForSelector('[data-testid=pending-message]');
    assert.equal(await olga.page.locator('[data-testid=message]', { hasText: 'пока тебя не было' }).count(), 0);
    assert.equal(await olga.page.locator('[data-testid=conn-banner]').count(), 1);
    await olga.page.evaluate(() => window.__jobers.reconnect());

    await olga.page.waitForSelector('[data-testid=conn-banner]', { state: 'detached' });
    await olga.page.waitForSelector('[data-testid=conn-state][data-state=live]');
    for (const text of ['пока тебя не было 1', 'пока тебя не было 2', 'я вернулась']) {
      await olga.page.locator('[data-testid=message]', { hasText: text }).waitFor();
      assert.equal(await olga.page.locator('[data-testid=message]', { hasText: text }).count(), 1, text);
    }
    await olga.page.waitForSelector('[data-testid=pending-message]', { state: 'detached' });
    await ivan.page.locator('[data-testid=message]', { hasText: 'я вернулась' }).waitFor();
    assert.equal(await ivan.page.locator('[data-testid=message]', { hasText: 'я вернулась' }).count(), 1);
    // Messages stay in order.
    const bodies = await olga.page.locator('[data-testid=message] .body').allTextContents();
    const i1 = bodies.indexOf('пока тебя не было 1');
    const i2 = bodies.indexOf('пока тебя не было 2');
    assert.ok(i1 >= 0 && i1 < i2, `order: ${JSON.stringify(bodies)}`);
  });

  await t.test('an expired access token is refreshed without the user noticing', async () => {
    // Access tokens live 3 s here: every request below meets a 401 first.
    await olga.page.waitForTimeout(3500);
    await olga.page.fill('[data-testid=directory-search]', 'Иван');
    await olga.page.waitForSelector(`[data-testid="person-${ADMIN}"]`, { state: 'detached' });
    await olga.page.fill('[data-testid=directory-search]', '');
    await olga.page.waitForSelector(`[data-testid="person-${ADMIN}"]`);
    assert.equal(await olga.page.locator('input[name=password]').count(), 0);
  });

  await t.test('a chosen status with custom text reaches the colleague live', async () => {
    await ivan.page.click('[data-testid=status-menu]');
    await ivan.page.check('input[name=status][value=busy]');
    await ivan.page.fill('[data-testid=status-text]', 'На собеседовании');
    await ivan.page.click('.popover button[type=submit]');
    await olga.page.waitForSelector(`[data-testid="person-${IVAN}"] [data-status=busy]`);
    await olga.page.waitForSelector(`[data-testid="person-${IVAN}"]:has-text("На собеседовании")`);
  });

  await t.test('a group chat with a mention, an attachment, unread counts and a rename', async () => {
    // Ivan looks elsewhere, so the group's messages are unread for him.
    await ivan.page.click('[data-testid=nav-applicants]');
    await olga.page.click('button:has-text("Новая группа")');
    await olga.page.fill('input[maxlength="100"]', 'Найм Q4');
    await olga.page.check('.member-picks label:has-text("Иван Наймов") input');
    await olga.page.click('form.card button[type=submit]');
    await olga.page.waitForSelector('#room-title:has-text("Найм Q4")');
    await olga.page.click('[data-testid=composer]');
    await olga.page.keyboard.type('@Ив');
    await olga.page.waitForSelector('.mention-picker');
    await olga.page.keyboard.press('Enter');
    await olga.page.keyboard.type('посмотри резюме');
    await olga.page.setInputFiles('[data-testid=attach]', {
      name: 'резюме.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('Опыт работы: 5 лет'),
    });
    await olga.page.keyboard.press('Enter');
    await olga.page.locator('[data-testid=message]', { hasText: 'посмотри резюме' }).locator('mark').waitFor();

    await ivan.page.waitForSelector('.mentions :text("Ольга Подборова")');
    await ivan.page.click('[data-testid=nav-team]');
    const group = ivan.page.locator('[data-testid=room-item]', { hasText: 'Найм Q4' });
    assert.equal((await group.locator('[data-testid=room-unread]').textContent()).trim(), '1');
    await group.click();
    const msg = ivan.page.locator('[data-testid=message]', { hasText: 'посмотри резюме' });
    await msg.waitFor();
    assert.equal((await msg.locator('mark').textContent()).trim(), '@Иван Наймов');
    await msg.locator('[data-testid=attachment]:has-text("резюме.txt")').waitFor();
    await ivan.page.waitForSelector('[data-testid=room-item]:has-text("Найм Q4") [data-testid=room-unread]', { state: 'detached' });
    await ivan.page.waitForSelector('.mentions :text("Ольга Подборова")', { state: 'detached' });

    await olga.page.click('button:has-text("Участники")');
    await olga.page.fill('.members input', 'Найм Q4 — финал');
    await olga.page.click('.members button:has-text("Переименовать")');
    await ivan.page.waitForSelector('#room-title:has-text("Найм Q4 — финал")');
    await olga.page.screenshot({ path: join(artifacts, 'group.png') });
  });

  await t.test('switching to English changes the interface language', async () => {
    await olga.page.selectOption('[data-testid=lang-switch]', 'en');
    assert.equal((await olga.page.textContent('[data-testid=nav-team]')).trim(), 'Team');
    assert.equal(await olga.page.getAttribute('[data-testid=composer]', 'placeholder'), 'Message');
    await olga.page.screenshot({ path: join(artifacts, 'team-en.png') });
    // The choice survives a reload (and the session is restored from the refresh cookie).
    await olga.page.reload();
    await olga.page.waitForSelector('[data-testid=conn-state][data-state=live]');
    assert.equal((await olga.page.textContent('[data-testid=nav-team]')).trim(), 'Team');
  });

  await t.test('logging out returns to the login page and the session is gone', async () => {
    await olga.page.click('[data-testid=logout]');
    await olga.page.waitForSelector('input[name=password]');
    assert.match(await olga.page.textContent('[data-testid=login-notice]'), /signed out/);
    await olga.page.reload();
    await olga.page.waitForSelector('input[name=password]');
  });

  assert.deepEqual(olga.errors, []);
  assert.deepEqual(ivan.errors, []);
  await ivan.context.close();
  await olga.context.close();
});

test('applicants merge and undo, admin screens, and sign-out everywhere', async (t) => {
  const admin = await loginAs(ADMIN);
  const page = admin.page;

  await t.test('applicants are created, found, merged and the merge undone', async () => {
    await page.click('[data-testid=nav-applicants]');
    for (const [name, value] of [
      ['Пётр Соискателев', '8 916 555 12 34'],
      ['Пётр С.', 'petr@example.com'],
    ]) {
      await page.click('button:has-text("Новый соискатель")');
      await page.fill('.applicant-list form label:has-text("Имя") input', name);
      if (value.includes('@')) await page.selectOption('.applicant-list form select', 'email');
      await page.fill('.applicant-list form label:has-text("Значение") input', value);
      await page.click('.applicant-list form button[type=submit]');
      await page.waitForSelector(`#card-title:has-text("${name}")`);
    }
    await page.fill('input[aria-label="Поиск: имя, телефон, почта"]', '5551234');
    // The search runs after a pause in typing: wait for its answer, the one matching applicant.
    await page.waitForFunction(() => {
      const items = document.querySelectorAll('.applicant-list li');
      return items.length === 1 && items[0].textContent.includes('+79165551234');
    });

    // The card of "Пётр С." is open; merge "Пётр Соискателев" into it.
    await page.fill('input[aria-label="Объединить с…"]', 'Соискателев');
    await page.click('.applicant-card li:has-text("Пётр Соискателев") button');
    await page.waitForSelector('.applicant-card li:has-text("+79165551234")');
    await page.waitForSelector('.applicant-card li:has-text("petr@example.com")');
    await page.screenshot({ path: join(artifacts, 'applicant-merged.png') });
    await page.click('button:has-text("Отменить объединение")');
    await page.waitForSelector('.applicant-card li:has-text("+79165551234")', { state: 'detached' });
    await page.waitForSelector('.applicant-card [role=status]:has-text("Объединение отменено")');
  });

  await t.test('an admin creates a department and a user, edits and deactivates the user', async () => {
    await page.click('[data-testid=nav-admin]');
    await page.click('[role=tab]:has-text("Отделы")');
    await page.fill('.admin form input', 'Склад');
    await page.click('.admin form button[type=submit]');
    await page.waitForSelector('.admin li:has-text("Склад")');

    await page.click('[role=tab]:has-text("Пользователи")');
    await page.click('.admin > div > button:has-text("Создать")');
    await page.fill('.admin form label:has-text("Имя") input', 'Мария Складова');
    await page.fill('.admin form input[type=email]', 'maria@demo.jobers.local');
    await page.selectOption('.admin form label:has-text("Отдел") select', { label: 'Склад' });
    await page.fill('.admin form input[type=password]', 'long-enough-password');
    await page.click('.admin form button[type=submit]');
    const row = page.locator('tr', { hasText: 'maria@demo.jobers.local' });
    await row.waitFor();
    assert.match(await row.textContent(), /Склад/);
    await row.locator('button:has-text("Изменить")').click();
    await page.selectOption('.admin form label:has-text("Роль") select', 'supervisor');
    await page.click('.admin form button[type=submit]');
    await page.waitForSelector('tr:has-text("maria@demo.jobers.local"):has-text("Руководитель")');
    await row.locator('button:has-text("Отключить")').click();
    await page.waitForSelector('tr:has-text("maria@demo.jobers.local")', { state: 'detached' });
    await page.check('label:has-text("Показывать отключённых") input');
    await page.waitForSelector('tr:has-text("maria@demo.jobers.local"):has-text("отключён")');
    await page.screenshot({ path: join(artifacts, 'admin-users.png') });

    await page.click('[role=tab]:has-text("Мои сессии")');
    await page.waitForSelector('.admin td:has-text("текущая")');
  });

  await t.test('a recruiter does not see the admin section', async () => {
    const ivan = await loginAs(IVAN);
    assert.equal(await ivan.page.locator('[data-testid=nav-admin]').count(), 0);
    await ivan.context.close();
  });

  await t.test('signing out everywhere sends the other tabs to the login page', async () => {
    // A second tab of the same browser profile shares the session.
    const other = await admin.context.newPage();
    other.setDefaultTimeout(TIMEOUT);
    await other.goto(base);
    await other.waitForSelector('[data-testid=conn-state][data-state=live]');
    await page.click('button:has-text("Выйти на всех устройствах")');
    await page.waitForSelector('input[name=password]');
    await other.waitForSelector('[data-testid=login-notice]');
    assert.match(await other.textContent('[data-testid=login-notice]'), /Сессия истекла/);
  });

  assert.deepEqual(admin.errors, []);
  await admin.context.close();
});
