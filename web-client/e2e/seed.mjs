// Filling a demo hub with applicant threads the way an integration partner would: a
// receive-only channel account of the generic webhook channel, and signed inbound hooks
// (docs/channels.md, "The generic webhook channel"). Used by the large-inbox browser test and
// by the web client benchmark (loadtests/web/).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

/** Creates a webhook channel account (through an `apiLogin` client of an admin); its id and secret. */
export async function webhookAccount(admin, { kind = 'sms', name, address }) {
  const created = await admin('POST', '/channel-accounts', { kind, provider: 'webhook', name, address, settings: {} });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { id: created.body.account.id, secret: created.body.secret };
}

/** Sends one signed inbound message; answers the hub's `{thread_id, message_id, duplicate}`. */
export async function inbound(base, account, payload) {
  const body = JSON.stringify(payload);
  const ts = Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', account.secret).update(`${ts}.${body}`).digest('hex');
  for (let attempt = 1; ; attempt++) {
    const r = await fetch(`${base}/api/v1/hooks/${account.id}/inbound`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-jobers-timestamp': String(ts), 'x-jobers-signature': `sha256=${sig}` },
      body,
    });
    const text = await r.text();
    if (r.status === 200) return JSON.parse(text);
    // A busy hub (503) is asked again; the message id makes a repeat harmless.
    if (r.status < 500 || attempt >= 5) throw new Error(`inbound hook answered ${r.status}: ${text}`);
    await new Promise((ok) => setTimeout(ok, 200 * attempt));
  }
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` at a time; `onProgress(done)`. */
export async function bounded(count, concurrency, task, onProgress = () => {}) {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await task(i);
      done++;
      if (done % 500 === 0) onProgress(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

const WORDS = 'здравствуйте хочу работать курьером есть ли вакансия график оплата опыт водитель склад смена удобно завтра резюме спасибо'.split(' ');

/** Text of varying length (one to several lines), the same for the same `i`. */
export function sampleText(i) {
  const words = 3 + ((i * 7919) % 60);
  const out = [];
  for (let w = 0; w < words; w++) {
    out.push(WORDS[(i + w * 31) % WORDS.length]);
    if (w % 23 === 22 && i % 3 === 0) out.push('\n');
  }
  return `${i}: ${out.join(' ')}`;
}

/** `count` threads, one per distinct applicant (`Соискатель <n>`, a phone of its own), on `vacancy` when given. */
export function seedThreads(base, account, count, { concurrency = 8, tag = 't', vacancy, onProgress } = {}) {
  return bounded(
    count,
    concurrency,
    (i) =>
      inbound(base, account, {
        id: `${tag}-${i}`,
        from: { name: `Соискатель ${i + 1}`, phone: `+37533${String(1_000_000 + i).slice(-7)}` },
        text: sampleText(i),
        vacancy,
      }),
    onProgress,
  );
}

/** One applicant writing `count` messages into one thread; answers its thread id. */
export async function seedLongThread(base, account, count, { concurrency = 4, name = 'Длинная Переписка', phone = '+375298888888', vacancy, onProgress } = {}) {
  const first = await inbound(base, account, { id: `long-0`, from: { name, phone }, text: sampleText(0), vacancy });
  await bounded(
    count - 1,
    concurrency,
    (i) => inbound(base, account, { id: `long-${i + 1}`, from: { name, phone }, text: sampleText(i + 1) }),
    onProgress,
  );
  return first.thread_id;
}
