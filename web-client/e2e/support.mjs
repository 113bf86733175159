// Shared setup of the browser tests: a real hub (`jobers demo` on a free port with a fresh
// data directory and the built client) and Debian's Chromium through playwright-core.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const dist = resolve(here, '..', 'dist');
export const artifacts = join(here, 'artifacts');
export const PASSWORD = 'jobers-demo';
export const TIMEOUT = 15_000;

/** A port on loopback that nothing listens on (taken and given back at once). */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on('error', fail);
  });
}

/** Starts `jobers demo` and Chromium; `env` adds hub settings. */
export async function startHub(env = {}) {
  const bin = process.env.JOBERS_BIN;
  assert.ok(bin, 'JOBERS_BIN must name the jobers binary');
  assert.ok(existsSync(join(dist, 'index.html')), 'build the client first (npm run build)');
  mkdirSync(artifacts, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'jobers-web-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let log = '';
  const hub = spawn(bin, ['demo'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      JOBERS_DATA_DIR: dataDir,
      JOBERS_LISTEN: `127.0.0.1:${port}`,
      JOBERS_HTTP__WEB_ROOT: dist,
      JOBERS_LOG_FILTER: process.env.JOBERS_E2E_LOG_FILTER ?? 'warn,jobers::switch=info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  hub.stdout.on('data', (d) => (log += d));
  hub.stderr.on('data', (d) => (log += d));
  const end = Date.now() + 30_000;
  for (;;) {
    if (hub.exitCode !== null) throw new Error(`jobers exited early:\n${log}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`jobers did not become healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    base,
    browser,
    log: () => log,
    async stop() {
      await browser.close();
      if (hub.exitCode === null) {
        hub.kill('SIGTERM');
        await new Promise((r) => {
          const timer = setTimeout(() => (hub.kill('SIGKILL'), r()), 5000);
          hub.on('exit', () => (clearTimeout(timer), r()));
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
      // The hub's log beside the screenshots, named after the test file (each runs in a
      // process of its own), to see what the hub did when a step failed.
      writeFileSync(join(artifacts, `${basename(process.argv[1] ?? 'hub')}.hub.log`), log);
    },
  };
}

/** A browser context (its own cookies and storage) for one person, logged in. */
export async function loginAs(env, email, { initScript } = {}) {
  const context = await env.browser.newContext({ locale: 'ru-RU' });
  await context.addInitScript(() => localStorage.setItem('jobers.testHooks', '1'));
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(env.base);
  await page.fill('input[name=tenant]', 'demo');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=conn-state][data-state=live]');
  return { context, page, dialogs, errors };
}

/** Logs in over the API (for setup the test does as an integration partner would). */
export async function apiLogin(base, email) {
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: PASSWORD }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const { access_token } = await r.json();
  return async (method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}
