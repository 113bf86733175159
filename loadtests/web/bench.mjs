// Benchmark of the web client with a large inbox: `jobers demo` (the binary in JOBERS_BIN)
// serving the built client (web-client/dist), Debian's Chromium through playwright-core.
//
// 1. Seeds THREADS threads (one per distinct applicant) and one thread of MESSAGES messages
//    through the signed inbound hook of a webhook channel account (bounded concurrency).
// 2. Logs in as the demo admin, picks the "all" inbox (remembered by the browser), then loads
//    the inbox LOADS times from navigation: time until the first rows are painted, the
//    response to a click on the first row made at that moment (Event Timing: input delay,
//    handlers and the next paint), long tasks, rows in the DOM.
// 3. Scrolls the inbox from the top to its end (pages load as it goes) and the long thread
//    from its newest message to its first (older pages load as it goes), STEP pixels per
//    frame from requestAnimationFrame; records every frame time, long tasks
//    (PerformanceObserver) and the most rows in the DOM.
// 4. Prints the figures and writes loadtests/reports/web-client.json and .md.
//
//   cd web-client && npm ci && npm run build
//   JOBERS_BIN=path/to/jobers node ../loadtests/web/bench.mjs [--threads 10000] [--messages 5000]
//
// Every size is a parameter: flags or environment (THREADS, MESSAGES, SEED_CONCURRENCY, STEP,
// LOADS, OUT, HUB_BUILD). It stops by itself.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { apiLogin, loginAs, startHub } from '../../web-client/e2e/support.mjs';
import { seedLongThread, seedThreads, webhookAccount } from '../../web-client/e2e/seed.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function param(name, env, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  return process.env[env] ?? fallback;
}

const P = {
  threads: Number(param('threads', 'THREADS', 10_000)),
  messages: Number(param('messages', 'MESSAGES', 5_000)),
  seed_concurrency: Number(param('seed-concurrency', 'SEED_CONCURRENCY', 16)),
  scroll_step_px: Number(param('step', 'STEP', 400)),
  loads: Number(param('loads', 'LOADS', 5)),
  viewport: '1280x800',
};
const OUT = resolve(param('out', 'OUT', join(here, '..', 'reports')));
const BIN = process.env.JOBERS_BIN ?? '';
const HUB_BUILD = param('hub-build', 'HUB_BUILD', /[/\\]release[/\\]/.test(BIN) ? 'release' : 'debug');
const ADMIN = 'admin@demo.jobers.local';
/** A scroll gives up after this long (a page that never comes). */
const SCROLL_LIMIT_MS = 15 * 60_000;

const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

function quantile(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const median = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5);
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Installed before the page loads: long tasks and event timings from navigation on. */
function observers() {
  window.__bench = { longTasks: [], events: [], firstRow: null };
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) window.__bench.longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      window.__bench.events.push({ name: e.name, start: e.startTime, duration: e.duration, delay: e.processingStart - e.startTime });
    }
  }).observe({ type: 'event', durationThreshold: 16, buffered: true });
  // The moment the first inbox row is in the DOM, and the paint after it.
  const mo = new MutationObserver(() => {
    if (window.__bench.firstRow !== null || !document.querySelector('[data-testid=thread-item]')) return;
    window.__bench.firstRow = performance.now();
    mo.disconnect();
    requestAnimationFrame(() => setTimeout(() => (window.__bench.firstRowPainted = performance.now()), 0));
  });
  mo.observe(document, { childList: true, subtree: true });
}

/**
 * Runs in the page: scrolls `scroller` by `step` px a frame toward its end (`dir` 1: down,
 * -1: up) until `done()` says the list is complete and the view is at that end; answers the
 * frame times and what it saw.
 */
async function scrollInPage({ scrollerSel, listSel, rowSel, moreSel, step, dir, expected, limitMs }) {
  const scroller = document.querySelector(scrollerSel);
  const list = document.querySelector(listSel);
  const tasks = [];
  const po = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) tasks.push(e.duration);
  });
  po.observe({ type: 'longtask' });
  const frames = [];
  let rowsMost = 0;
  let waitingMs = 0;
  let distance = 0;
  const started = performance.now();
  let last = null;
  let n = 0;
  await new Promise((finish) => {
    const frame = (ts) => {
      if (last !== null) frames.push(ts - last);
      last = ts;
      if (n++ % 5 === 0) rowsMost = Math.max(rowsMost, document.querySelectorAll(rowSel).length);
      const max = scroller.scrollHeight - scroller.clientHeight;
      const atEnd = dir > 0 ? scroller.scrollTop >= max - 1 : scroller.scrollTop <= 0;
      const count = Number(list.dataset.count);
      // Done: everything loaded, or nothing more to load (the list's "more" button is gone).
      if (atEnd && (count >= expected || !document.querySelector(moreSel))) return finish();
      if (ts - started > limitMs) return finish();
      if (atEnd) {
        if (frames.length) waitingMs += frames[frames.length - 1];
      } else {
        const before = scroller.scrollTop;
        scroller.scrollTop = before + dir * step;
        distance += Math.abs(scroller.scrollTop - before);
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  po.disconnect();
  rowsMost = Math.max(rowsMost, document.querySelectorAll(rowSel).length);
  return {
    frames,
    tasks,
    rowsMost,
    waitingMs,
    distance,
    durationMs: performance.now() - started,
    count: Number(list.dataset.count),
  };
}

function frameFigures(prefix, r, targets) {
  const sorted = [...r.frames].sort((a, b) => a - b);
  const dropped = r.frames.filter((f) => f > 50).length;
  return {
    [`${prefix} frame time p50`]: { value: round(quantile(sorted, 0.5), 2), unit: 'ms', target: '<= 16.7' },
    [`${prefix} frame time p95`]: { value: round(quantile(sorted, 0.95), 2), unit: 'ms', target: '<= 33.4' },
    [`${prefix} frame time p99`]: { value: round(quantile(sorted, 0.99), 2), unit: 'ms', target: '<= 50' },
    [`${prefix} frame time max`]: { value: round(sorted[sorted.length - 1] ?? 0, 1), unit: 'ms', target: '' },
    [`${prefix} frames`]: { value: r.frames.length, unit: 'frames', target: '' },
    [`${prefix} dropped frames (> 50 ms)`]: { value: dropped, unit: 'frames', target: '' },
    [`${prefix} dropped frames share`]: { value: round((100 * dropped) / Math.max(1, r.frames.length), 2), unit: '%', target: '<= 1' },
    [`${prefix} long tasks`]: { value: r.tasks.length, unit: 'tasks', target: '' },
    [`${prefix} long tasks total`]: { value: round(r.tasks.reduce((a, b) => a + b, 0), 0), unit: 'ms', target: '' },
    [`${prefix} longest task`]: { value: round(Math.max(0, ...r.tasks), 0), unit: 'ms', target: '' },
    [`${prefix} rows in the DOM, most`]: { value: r.rowsMost, unit: 'rows', target: targets.rows },
    [`${prefix} items loaded`]: { value: r.count, unit: 'items', target: targets.items },
    [`${prefix} distance scrolled`]: { value: Math.round(r.distance), unit: 'px', target: '' },
    [`${prefix} duration`]: { value: round(r.durationMs / 1000, 1), unit: 's', target: '' },
    [`${prefix} time at the end waiting for a page`]: { value: round(r.waitingMs / 1000, 1), unit: 's', target: '' },
  };
}

/** Whether a figure meets its target ("<= 16.7", ">= 10000"); null without one. */
function met(f) {
  const m = /^(<=|>=|=)\s*([\d.]+)$/.exec(f.target ?? '');
  if (!m) return null;
  const t = Number(m[2]);
  return m[1] === '<=' ? f.value <= t : m[1] === '>=' ? f.value >= t : f.value === t;
}

function machine() {
  const cpus = os.cpus();
  let osName = os.type();
  try {
    osName = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? osName;
  } catch {
    // not Linux
  }
  return { cores: cpus.length, cpu_model: cpus[0]?.model.trim() ?? '', memory_gib: round(os.totalmem() / 2 ** 30, 1), os: osName };
}

function markdown(report) {
  const m = report.machine;
  const lines = [
    '# Web client benchmark `web-client`',
    '',
    `Run ${report.started_at} on ${m.cores} cores (${m.cpu_model}), ${m.memory_gib} GiB, ${m.os}; Chromium ${report.browser}, headless, software rendering; hub: ${report.hub.build} build (\`${report.hub.binary}\`).`,
    '',
    '| parameter | value |',
    '| --- | --- |',
    ...Object.entries(report.parameters).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '| figure | value | unit | target | met |',
    '| --- | --- | --- | --- | --- |',
    ...Object.entries(report.figures).map(
      ([k, f]) => `| ${k} | ${f.value} | ${f.unit} | ${f.target} | ${f.met === null ? '' : f.met ? 'yes' : '**no**'} |`,
    ),
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ];
  return lines.join('\n');
}

async function main() {
  if (!BIN) throw new Error('JOBERS_BIN must name the jobers binary');
  const startedAt = new Date().toISOString();
  const loadBefore = os.loadavg()[0];
  log('parameters', JSON.stringify(P), `hub ${HUB_BUILD} ${basename(BIN)}`);
  const env = await startHub();
  const figures = {};
  const notes = [];
  let browserVersion = '';
  try {
    browserVersion = env.browser.version();
    const admin = await apiLogin(env.base, ADMIN);
    const hook = await webhookAccount(admin, { name: 'SMS (нагрузка)', address: '+375290009999' });

    // --- seeding -------------------------------------------------------------------------
    let t0 = Date.now();
    const longThreadId = await seedLongThread(env.base, hook, P.messages, {
      concurrency: Math.min(4, P.seed_concurrency),
      onProgress: (n) => log(`long thread: ${n + 1} messages`),
    });
    const longSecs = (Date.now() - t0) / 1000;
    t0 = Date.now();
    await seedThreads(env.base, hook, P.threads, { concurrency: P.seed_concurrency, onProgress: (n) => log(`threads: ${n}`) });
    const threadSecs = (Date.now() - t0) / 1000;
    log(`seeded ${P.threads} threads in ${round(threadSecs)} s, ${P.messages} messages in ${round(longSecs)} s`);
    figures['seeding: threads through the inbound hook'] = { value: round(P.threads / threadSecs, 0), unit: 'threads/s', target: '' };
    figures['seeding: messages into one thread'] = { value: round(P.messages / longSecs, 0), unit: 'messages/s', target: '' };

    // What the "all" list holds: the seeded threads, the long one and the demo's own.
    let total = 0;
    for (let cursor = ''; ; ) {
      const page = await admin('GET', `/threads?scope=all&limit=200${cursor}`);
      total += page.body.length;
      if (page.body.length < 200) break;
      const last = page.body[page.body.length - 1];
      cursor = `&before_time=${encodeURIComponent(last.last_message_at)}&before_id=${last.id}`;
    }
    // (The demo's simulated board may still bring a thread or two while the run goes on.)
    log(`the "all" inbox holds ${total} threads`);

    // --- the first screen ------------------------------------------------------------------
    const { context, page } = await loginAs(env, ADMIN);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.click('[data-testid=nav-inbox]');
    await page.click('[data-testid=inbox-scope] [data-scope=all]');
    await page.locator('[data-testid=thread-item]').first().waitFor();
    await page.close();
    await context.addInitScript(observers);

    const loads = [];
    for (let i = 0; i < P.loads; i++) {
      const p = await context.newPage();
      p.setDefaultTimeout(30_000);
      const errors = [];
      p.on('pageerror', (e) => errors.push(String(e)));
      await p.setViewportSize({ width: 1280, height: 800 });
      await p.goto(`${env.base}/inbox`, { waitUntil: 'commit' });
      await p.waitForFunction(() => window.__bench?.firstRow !== null && window.__bench?.firstRow !== undefined, null, { polling: 'raf' });
      // A click on the first row at once, as a user would; the thread view must answer.
      const box = await p.locator('[data-testid=thread-item]').first().boundingBox();
      const clickedAt = Date.now();
      await p.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await p.waitForSelector('[data-testid=thread-view]');
      const wallClick = Date.now() - clickedAt;
      await p.waitForTimeout(300);
      const b = await p.evaluate(() => ({
        ...window.__bench,
        rows: document.querySelectorAll('[data-testid=thread-item]').length,
        count: Number(document.querySelector('[data-testid=threads]').dataset.count),
      }));
      const click = b.events.filter((e) => e.name === 'click' || e.name === 'pointerup' || e.name === 'pointerdown');
      const clickMs = click.length ? Math.max(...click.map((e) => e.duration)) : 16;
      const usable = b.firstRowPainted + clickMs;
      const tasksBefore = b.longTasks.filter((t) => t.start < usable);
      loads.push({
        firstRow: b.firstRowPainted,
        click: clickMs,
        wallClick,
        usable,
        tasks: tasksBefore.length,
        tasksMs: tasksBefore.reduce((a, t) => a + t.duration, 0),
        rows: b.rows,
        count: b.count,
        errors,
      });
      log(`load ${i + 1}: rows painted ${round(b.firstRowPainted)} ms, click answered in ${round(clickMs)} ms, ${b.rows} rows in the DOM`);
      if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
      await p.close();
    }
    figures['first rows painted (median)'] = { value: round(median(loads.map((l) => l.firstRow)), 0), unit: 'ms', target: '<= 1000' };
    figures['first screen usable (median)'] = { value: round(median(loads.map((l) => l.usable)), 0), unit: 'ms', target: '<= 1000' };
    figures['first screen usable (worst)'] = { value: round(Math.max(...loads.map((l) => l.usable)), 0), unit: 'ms', target: '<= 1000' };
    figures['first click answered (median)'] = { value: round(median(loads.map((l) => l.click)), 0), unit: 'ms', target: '<= 100' };
    figures['long tasks before usable (median)'] = { value: median(loads.map((l) => l.tasks)), unit: 'tasks', target: '' };
    figures['long tasks before usable, total (median)'] = { value: round(median(loads.map((l) => l.tasksMs)), 0), unit: 'ms', target: '' };
    figures['inbox rows in the DOM after the first screen'] = { value: Math.max(...loads.map((l) => l.rows)), unit: 'rows', target: '<= 60' };
    figures['threads loaded by the first screen'] = { value: loads[0].count, unit: 'threads', target: '' };

    // --- scrolling the inbox to its end --------------------------------------------------------
    const p = await context.newPage();
    p.setDefaultTimeout(60_000);
    const errors = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.setViewportSize({ width: 1280, height: 800 });
    await p.goto(`${env.base}/inbox`);
    await p.locator('[data-testid=thread-item]').first().waitFor();
    await p.waitForTimeout(500);
    log(`scrolling the inbox (${total} threads) to its end, ${P.scroll_step_px} px a frame`);
    const inbox = await p.evaluate(scrollInPage, {
      scrollerSel: '[data-testid=threads-scroller]',
      listSel: '[data-testid=threads]',
      rowSel: '[data-testid=thread-item]',
      moreSel: '[data-testid=inbox-more]',
      step: P.scroll_step_px,
      dir: 1,
      expected: total,
      limitMs: SCROLL_LIMIT_MS,
    });
    log(`inbox: ${inbox.count} threads loaded, ${inbox.frames.length} frames in ${round(inbox.durationMs / 1000)} s`);
    Object.assign(figures, frameFigures('inbox scroll', inbox, { rows: '<= 60', items: `>= ${total}` }));

    // --- scrolling the long thread to its first message ------------------------------------------
    await p.goto(`${env.base}/inbox/${longThreadId}`);
    await p.locator('[data-testid=thread-message]').first().waitFor();
    await p.waitForTimeout(500);
    log(`scrolling the thread of ${P.messages} messages from the newest to the first`);
    const thread = await p.evaluate(scrollInPage, {
      scrollerSel: '[data-testid=timeline]',
      listSel: '[data-testid=timeline-list]',
      rowSel: '[data-testid=thread-message]',
      moreSel: '[data-testid=timeline-older]',
      step: P.scroll_step_px,
      dir: -1,
      expected: P.messages,
      limitMs: SCROLL_LIMIT_MS,
    });
    log(`thread: ${thread.count} messages loaded, ${thread.frames.length} frames in ${round(thread.durationMs / 1000)} s`);
    Object.assign(figures, frameFigures('thread scroll', thread, { rows: '<= 60', items: `= ${P.messages}` }));
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  } finally {
    await env.stop();
  }

  for (const f of Object.values(figures)) f.met = met(f);
  const loadAfter = os.loadavg()[0];
  if (HUB_BUILD !== 'release') {
    notes.push(
      `The hub was a ${HUB_BUILD} build (no release build was at hand): seeding rates and the time the client waits for pages are slower than with a release hub; frame times and DOM rows are the client's own.`,
    );
  }
  notes.push(
    `Load average (1 min) ${round(loadBefore, 2)} before and ${round(loadAfter, 2)} after the run; hub, browser and this script share the machine's ${os.cpus().length} cores.`,
    'Frame times are the intervals between requestAnimationFrame callbacks while the page scrolls itself by the step each frame; "dropped" are frames over 50 ms. Long tasks are those of PerformanceObserver (over 50 ms of main-thread work).',
    '"First screen usable" is navigation start (session restored from the refresh cookie, /me, the inbox page) to the first inbox rows painted, plus the response to a click on the first row made at that moment (Event Timing: input delay, handlers, next paint).',
  );
  const report = {
    scenario: 'web-client',
    started_at: startedAt,
    machine: machine(),
    browser: browserVersion,
    hub: { build: HUB_BUILD, binary: basename(BIN) },
    parameters: P,
    figures,
    notes,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'web-client.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(OUT, 'web-client.md'), markdown(report));
  console.log(markdown(report));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
