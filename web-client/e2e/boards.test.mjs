// Browser test of the job-board screens against a real hub: `jobers demo` runs an in-process
// HeadHunter simulator (rabota.by) with a connected employer account "rabota.by (демо)",
// two vacancies and three responses (Мария Курьерова, Олег Быстров, and one applicant who hid
// every contact); new applicants respond every 40 s. The simulator speaks HeadHunter's API,
// so the test reads the board's side through it with an employer session of its own — the
// way an employer would look at the site — and never through the hub it checks.
//
//   JOBERS_BIN=path/to/jobers node --test e2e/boards.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { apiLogin, artifacts, loginAs, startHub } from './support.mjs';

const ADMIN = 'admin@demo.jobers.local';
/** The demo's application registered with the simulator (src/demo.rs). */
const CLIENT_ID = 'jobers-demo';
const CLIENT_SECRET = 'jobers-demo-secret';

let env;
let api;
let demoAccount;

before(async () => {
  env = await startHub();
  api = await apiLogin(env.base, ADMIN);
  const accounts = await api('GET', '/channel-accounts');
  demoAccount = accounts.body.find((a) => a.kind === 'board' && a.name === 'rabota.by (демо)');
  assert.ok(demoAccount, 'the demo has a board account');
});

after(async () => {
  await env?.stop();
});

/** Retries `fn` until it stops throwing (or the time is up, then its last error). */
async function eventually(fn, timeout = 15_000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * An employer session on the simulated board, independent of the hub: the authorization
 * code flow of the demo's application, then HeadHunter's API with the token.
 */
async function boardSession() {
  const sim = demoAccount.settings.api_base;
  const redirect = demoAccount.settings.redirect_uri;
  const authorize = new URL('/oauth/authorize', sim);
  authorize.search = new URLSearchParams({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: redirect }).toString();
  const r = await fetch(authorize, { redirect: 'manual' });
  assert.equal(r.status, 302);
  const code = new URL(r.headers.get('location')).searchParams.get('code');
  const token = await fetch(new URL('/token', sim), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'hh-user-agent': 'JobersTest/1.0 (test@jobers.local)' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uri: redirect, code }),
  });
  assert.equal(token.status, 200, await token.clone().text());
  const { access_token } = await token.json();
  const call = async (method, path, form) => {
    const res = await fetch(new URL(path, sim), {
      method,
      headers: {
        authorization: `Bearer ${access_token}`,
        'hh-user-agent': 'JobersTest/1.0 (test@jobers.local)',
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    /** The employer's state of a response on the board. */
    async state(negotiationId) {
      const n = await call('GET', `/negotiations/${negotiationId}`);
      assert.equal(n.status, 200, JSON.stringify(n.body));
      return n.body.employer_state.id;
    },
    async chat(chatId) {
      const c = await call('GET', `/common/chats/${chatId}/messages?per_page=100`);
      assert.equal(c.status, 200, JSON.stringify(c.body));
      return c.body.items.map((m) => m.text);
    },
    /** The employer moves a response on the site itself. */
    async move(negotiationId, state) {
      const m = await call('PUT', `/negotiations/${state}/${negotiationId}`, {});
      assert.equal(m.status, 204, JSON.stringify(m.body));
    },
  };
}

/** The demo account's application of the applicant whose card name is `name`. */
async function applicationOf(name) {
  const list = await api('GET', '/applications?limit=200');
  const app = list.body.find((a) => a.board_account_id === demoAccount.id && a.card?.name === name);
  assert.ok(app, `an application of ${name}`);
  return app;
}

async function openThread(page, threadId) {
  await page.click('[data-testid=nav-inbox]');
  await page.click('[data-testid=inbox-scope] [data-scope=all]');
  await page.evaluate((id) => {
    history.pushState(null, '', `/inbox/${id}`);
    dispatchEvent(new PopStateEvent('popstate'));
  }, threadId);
  await page.waitForSelector(`[data-testid=thread-view][data-thread-id="${threadId}"]`);
}

test('a board response shows its candidate card, and a stage change reaches the board', async (t) => {
  const admin = await loginAs(env, ADMIN);
  const page = admin.page;
  const board = await boardSession();
  const oleg = await applicationOf('Быстров Олег');
  const card = page.locator('[data-testid=candidate-card]');

  await t.test('the card shows the response as the board gave it', async () => {
    await openThread(page, oleg.thread_id);
    await card.waitFor();
    assert.equal(await card.getAttribute('data-application-id'), oleg.id);
    assert.equal(await card.locator('[data-testid=card-vacancy]').textContent(), 'Курьер');
    assert.equal(await card.locator('[data-testid=card-board-state]').textContent(), 'Отклик');
    assert.equal(await card.locator('[data-testid=card-name]').textContent(), 'Быстров Олег');
    assert.equal(await card.locator('[data-testid=card-phone]').textContent(), '+375293334455');
    assert.equal(await card.locator('[data-testid=card-city]').textContent(), 'Минск');
    assert.ok((await card.locator('[data-testid=card-created]').textContent()).includes('2026'));
    assert.match(await card.locator('[data-testid=card-resume-link]').getAttribute('href'), /\/resume\//);
    // The mapping and the pipelines load after the card.
    await card.locator('[data-testid=card-sync][data-sync=synced]').waitFor();
    await eventually(async () => assert.equal(await card.locator('[data-testid=card-stage] option:checked').textContent(), 'Отклик'));
    await page.screenshot({ path: join(artifacts, 'candidate-card.png') });
  });

  await t.test('the resume PDF opens through the authenticated download', async () => {
    const opened = page.context().waitForEvent('page');
    await card.locator('[data-testid=card-resume-pdf]').click();
    const pdf = await opened;
    await eventually(async () => assert.match(pdf.url(), /^blob:/));
    await pdf.close();
  });

  await t.test('a stage without a board message moves the response on the board', async () => {
    assert.equal(await board.state(oleg.board_negotiation_id), 'response');
    await card.locator('[data-testid=card-stage]').selectOption({ label: 'Рассмотрение' });
    await page.waitForSelector('[data-testid=candidate-card][data-board-state=consider]');
    await card.locator('[data-testid=card-moved]').waitFor();
    assert.equal(await card.locator('[data-testid=card-sync]').getAttribute('data-sync'), 'synced');
    // The board itself says so (a hub that only changed its own record fails here).
    assert.equal(await board.state(oleg.board_negotiation_id), 'consider');
  });

  await t.test('a stage whose board state needs a message asks for it and sends it', async () => {
    const text = 'Приглашаем на собеседование завтра в 11:00, ул. Ленина, 1.';
    await card.locator('[data-testid=card-stage]').selectOption({ label: 'Собеседование' });
    const form = card.locator('[data-testid=card-stage-message]');
    await form.waitFor();
    assert.match(await form.textContent(), /требует сообщение/);
    // Nothing moved on either side while the message is missing.
    assert.equal(await card.getAttribute('data-board-state'), 'consider');
    assert.equal(await board.state(oleg.board_negotiation_id), 'consider');
    await page.screenshot({ path: join(artifacts, 'candidate-card-message.png') });
    await form.locator('[data-testid=card-stage-message-text]').fill(text);
    await form.locator('[data-testid=card-stage-message-send]').click();
    await page.waitForSelector('[data-testid=candidate-card][data-board-state=interview]');
    assert.equal(await board.state(oleg.board_negotiation_id), 'interview');
    assert.ok((await board.chat(oleg.board_chat_id)).includes(text), 'the message is in the board chat');
  });

  await t.test('a move made on the board arrives live', async () => {
    await board.move(oleg.board_negotiation_id, 'discard_by_employer');
    await page.waitForSelector('[data-testid=candidate-card][data-board-state=discard_by_employer]', { timeout: 20_000 });
    await eventually(async () => assert.equal(await card.locator('[data-testid=card-stage] option:checked').textContent(), 'Отказ'));
    assert.equal(await card.locator('[data-testid=card-board-state]').textContent(), 'Отказ');
  });

  await t.test('the composer shows the board chat limit when replying through the board', async () => {
    await page.selectOption('[data-testid=composer-channel]', demoAccount.id);
    const limit = page.locator('[data-testid=board-chat-limit]');
    await limit.waitFor();
    const before = Number(await limit.getAttribute('data-left'));
    assert.ok(before > 0 && before <= 5, `left ${before}`);
    assert.match(await limit.textContent(), /из 5/);
    await page.fill('[data-testid=thread-composer-text]', 'Спасибо за отклик!');
    await page.press('[data-testid=thread-composer-text]', 'Enter');
    await eventually(async () => assert.equal(Number(await limit.getAttribute('data-left')), before - 1));
  });

  await t.test('hidden contacts show as translated placeholders and the card stays usable', async () => {
    const list = await api('GET', '/applications?limit=200');
    const hidden = list.body.find((a) => a.board_account_id === demoAccount.id && (a.card?.hidden ?? []).includes('phones'));
    assert.ok(hidden);
    await openThread(page, hidden.thread_id);
    await page.waitForSelector(`[data-testid=candidate-card][data-application-id="${hidden.id}"]`);
    const name = card.locator('[data-testid=card-name]');
    assert.equal(await name.getAttribute('data-hidden'), 'true');
    assert.equal(await name.textContent(), `Соискатель ${hidden.board_resume_id} скрыл(а) имя`);
    assert.equal(await card.locator('[data-testid=card-phone]').textContent(), `Соискатель ${hidden.board_resume_id} скрыл(а) телефон`);
    assert.equal(await card.locator('[data-testid=card-email]').textContent(), `Соискатель ${hidden.board_resume_id} скрыл(а) почту`);
    await page.selectOption('[data-testid=lang-switch]', 'en');
    assert.equal(await name.textContent(), `Applicant ${hidden.board_resume_id} hid the name`);
    await page.selectOption('[data-testid=lang-switch]', 'ru');
    assert.equal(await card.locator('[data-testid=card-stage]').isEnabled(), true);
    await page.screenshot({ path: join(artifacts, 'candidate-card-hidden.png') });
  });

  assert.deepEqual(admin.errors, []);
  await admin.context.close();
});

test('the import progress shows the two counters, agreeing with the hub, and new responses', async (t) => {
  const admin = await loginAs(env, ADMIN);
  const page = admin.page;
  await page.click('[data-testid=nav-admin]');
  await page.click('[data-testid=admin-tab-channels]');
  const card = page.locator(`[data-testid=board-account][data-account-id="${demoAccount.id}"]`);

  await t.test('connected as the employer administrator, with the counters of the hub', async () => {
    await card.locator('[data-testid=board-connection][data-connected=true][data-role=admin]').waitFor();
    assert.match(await card.locator('[data-testid=board-connection]').textContent(), /Админова Ольга, ООО «Ромашка»/);
    assert.match(await card.locator('[data-testid=board-connection]').textContent(), /Видит все вакансии/);
    // New applicants keep responding: the screen and the hub agree at some moment.
    await eventually(async () => {
      const s = (await api('GET', `/channel-accounts/${demoAccount.id}/board`)).body;
      const loaded = Number(await card.locator('[data-testid=board-responses-loaded]').textContent());
      const created = Number(await card.locator('[data-testid=board-applications-created]').textContent());
      assert.equal(loaded, s.responses_loaded);
      assert.equal(created, s.applications_created);
      assert.equal(created + s.differences.length, loaded);
      assert.ok(loaded >= 3);
    });
    assert.equal(await card.locator('[data-testid=board-import-state]').getAttribute('data-initial-done'), 'true');
  });

  await t.test('"new responses" asks the board', async () => {
    await card.locator('[data-testid=board-new-responses]').click();
    const total = card.locator('[data-testid=board-new-total]');
    await total.waitFor();
    const api_total = (await api('GET', `/channel-accounts/${demoAccount.id}/board/new-responses`)).body.total;
    // A response may arrive between the two questions.
    assert.ok(Math.abs(Number(await total.getAttribute('data-total')) - api_total) <= 1);
    assert.match(await total.textContent(), /по данным сайта/);
    assert.ok((await card.locator('[data-testid=board-new-table] tbody tr').count()) >= 2);
  });

  await t.test('the sync settings show both modes and save', async () => {
    await card.locator('[data-testid=board-mapping-toggle]').click();
    const mapping = card.locator('[data-testid=board-mapping]');
    await mapping.locator('[data-testid=mapping-table]').waitFor();
    assert.equal(await mapping.locator('[data-testid=mapping-table] tbody tr').count(), 8);
    assert.equal(await mapping.locator('[data-testid=mapping-state-phone_interview] option:checked').textContent(), 'Телефонное интервью');
    const view = (await api('GET', `/channel-accounts/${demoAccount.id}/board/mapping`)).body;
    assert.equal(await mapping.locator('[data-testid=mapping-responsible]').count(), 'responsible_user_id' in view ? 1 : 0);
    await card.screenshot({ path: join(artifacts, 'board-mapping-extended.png') });
    await mapping.locator('[data-testid=mapping-simple]').check();
    assert.equal(await mapping.locator('[data-testid=mapping-responses] option:checked').textContent(), 'Отклик');
    assert.equal(await mapping.locator('[data-testid=mapping-invitations] option:checked').textContent(), 'Собеседование');
    await card.screenshot({ path: join(artifacts, 'board-mapping-simple.png') });
    await mapping.locator('[data-testid=mapping-extended]').check();
    await mapping.locator('[data-testid=mapping-save]').click();
    await mapping.locator('[data-testid=mapping-saved]').waitFor();
    const saved = (await api('GET', `/channel-accounts/${demoAccount.id}/board/mapping`)).body;
    assert.equal(saved.mode, 'extended');
    assert.deepEqual(saved.state_stages, view.state_stages);
  });

  await t.test('the vacancies of the account link to local ones', async () => {
    await card.locator('[data-testid=board-vacancies-toggle]').click();
    const rows = card.locator('[data-testid=board-vacancy]');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 2);
    await card.screenshot({ path: join(artifacts, 'admin-board-vacancies.png') });
  });

  assert.deepEqual(admin.errors, []);
  await admin.context.close();
});

test('an admin connects a HeadHunter account through the board\'s OAuth page', async (t) => {
  const admin = await loginAs(env, ADMIN);
  const page = admin.page;
  await page.click('[data-testid=nav-admin]');
  await page.click('[data-testid=admin-tab-channels]');
  const sim = demoAccount.settings.api_base;
  let card;
  let accountId;

  await t.test('a new account is created, not connected yet', async () => {
    await page.click('[data-testid=board-new]');
    const form = page.locator('[data-testid=board-form]');
    await form.locator('input[name=name]').fill('hh.ru (тест)');
    await form.locator('select[name=site]').selectOption('hh.ru');
    await form.locator('input[name=client_id]').fill(CLIENT_ID);
    await form.locator('input[name=secret]').fill(CLIENT_SECRET);
    // The redirect URI is the hub's callback, filled in already.
    assert.equal(await form.locator('input[name=redirect_uri]').inputValue(), `${env.base}/api/v1/oauth/hh/callback`);
    await form.locator('summary').click();
    await form.locator('input[name=api_base]').fill(sim);
    await form.locator('input[name=oauth_base]').fill(sim);
    await form.locator('input[name=user_agent]').fill('JobersTest/1.0 (test@jobers.local)');
    await form.locator('button[type=submit]').click();
    card = page.locator('[data-testid=board-account]', { hasText: 'hh.ru (тест)' });
    await card.locator('[data-testid=board-connection][data-connected=false]').waitFor();
    accountId = await card.getAttribute('data-account-id');
    const s = (await api('GET', `/channel-accounts/${accountId}/board`)).body;
    assert.equal(s.connected, false);
  });

  await t.test('Connect opens the board\'s login, and the window closes once the employer approved', async () => {
    const opened = page.context().waitForEvent('page');
    await card.locator('[data-testid=board-connect]').click();
    const popup = await opened;
    // The simulator's authorize page approves the employer at once and redirects to the hub.
    await card.locator('[data-testid=board-connection][data-connected=true][data-role=admin]').waitFor();
    await eventually(async () => assert.ok(popup.isClosed(), 'the connect window closed'));
    assert.match(await card.locator('[data-testid=board-notice]').textContent(), /Подключено: Админова Ольга \(Администратор работодателя\)/);
    assert.equal(await card.locator('[data-testid=board-role]').textContent(), 'Администратор работодателя');
    const s = (await api('GET', `/channel-accounts/${accountId}/board`)).body;
    assert.equal(s.connected, true);
    assert.equal(s.board_account.role, 'admin');
  });

  await t.test('its import runs and the counters agree', async () => {
    await card.locator('[data-testid=board-import-state][data-initial-done=true]').waitFor({ timeout: 30_000 });
    await eventually(async () => {
      const s = (await api('GET', `/channel-accounts/${accountId}/board`)).body;
      assert.equal(Number(await card.locator('[data-testid=board-responses-loaded]').textContent()), s.responses_loaded);
      assert.equal(Number(await card.locator('[data-testid=board-applications-created]').textContent()), s.applications_created);
      assert.ok(s.responses_loaded >= 3);
    });
    await card.screenshot({ path: join(artifacts, 'admin-board-connected.png') });
  });

  await t.test('log out, then connect again', async () => {
    await card.locator('[data-testid=board-logout]').click();
    await card.locator('[data-testid=board-logout-confirm]').click();
    await card.locator('[data-testid=board-connection][data-connected=false]').waitFor();
    assert.equal((await api('GET', `/channel-accounts/${accountId}/board`)).body.connected, false);
    const opened = page.context().waitForEvent('page');
    await card.locator('[data-testid=board-connect]').click();
    await opened;
    await card.locator('[data-testid=board-connection][data-connected=true]').waitFor();
  });

  await t.test('a return into the workspace from the board\'s login is understood', async () => {
    // What a hub that redirects its OAuth callback back here would send (see docs/web-client.md).
    await page.goto(`${env.base}/admin/channels?board_connected=${accountId}`);
    await page.waitForSelector('[data-testid=conn-state][data-state=live]');
    assert.match(await page.locator('[data-testid=board-returned]').textContent(), /Подключено\. hh\.ru \(тест\)/);
    assert.equal(new URL(page.url()).search, '');
    await page.goto(`${env.base}/admin/channels?board_error=invalid_state`);
    await page.waitForSelector('[data-testid=conn-state][data-state=live]');
    assert.match(await page.locator('[data-testid=board-returned]').textContent(), /Вход устарел/);
  });

  await t.test('the applicant\'s responses through both accounts show as "other responses"', async () => {
    const oleg = await applicationOf('Быстров Олег');
    await eventually(async () => {
      const all = (await api('GET', `/applications?contact_id=${oleg.contact_id}&limit=50`)).body;
      assert.ok(all.some((a) => a.board_account_id === accountId));
    });
    await openThread(page, oleg.thread_id);
    const others = page.locator('[data-testid=app-other]');
    await others.first().waitFor();
    assert.equal(await others.count(), 1);
    // Picking another response shows its card.
    const otherId = await others.first().getAttribute('data-application-id');
    await others.first().click();
    await page.waitForSelector(`[data-testid=candidate-card][data-application-id="${otherId}"]`);
  });

  assert.deepEqual(admin.errors, []);
  await admin.context.close();
});
