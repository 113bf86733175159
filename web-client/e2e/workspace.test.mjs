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

  await t.test('a dropped connection shows the banner and resumes without gaps or repeats', async () => {
    await olga.page.evaluate(() => window.__jobers.drop(3000));
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
