/**
 * The notifier against real peers: an SMTP server (smtp-server) and an HTTP webhook receiver
 * (node:http) on local ports, and a real SQLite state database.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generate } from 'selfsigned';
import { isCofferError } from '../../errors/index.js';
import { freePort, makeTempDir, startHttpReceiver, startSmtpSink } from '../../testing/index.js';
import { openStateDatabase } from '../state/index.js';
import { Notifier, parseNotificationConfig, type NotificationEvent } from './index.js';

const dir = await makeTempDir('coffer-notify');
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await dir.remove();
});
const secretFile = join(dir.path, 'webhook-secret');
await writeFile(secretFile, 'hook-key\n');
const passwordFile = join(dir.path, 'smtp-password');
await writeFile(passwordFile, 's3cret\n');

let dbCount = 0;
async function start(config: unknown, options: { file?: string; now?: () => number } = {}) {
  const state = await openStateDatabase({ file: options.file ?? join(dir.path, `state-${++dbCount}.db`) });
  const notifier = await Notifier.start({ db: state.db, config: parseNotificationConfig(config), pollMs: 25, ...(options.now ? { now: options.now } : {}) });
  const stop = async () => {
    await notifier.close();
    await state.close();
  };
  cleanups.push(stop);
  return { notifier, state, stop };
}

const fastRetry = { attempts: 50, initial: '50ms', max: '200ms' };

function mailTarget(port: number, extra: Record<string, unknown> = {}) {
  return { type: 'smtp', host: '127.0.0.1', port, tls: 'none', from: 'coffer@example.test', to: ['ops@example.test'], timeout: '2s', retry: fastRetry, ...extra };
}

test('a run with two failed VMs and one success: one mail listing the failures first with their errors, one signed webhook POST', async () => {
  const sink = await startSmtpSink(0, { user: 'coffer', password: 's3cret' });
  cleanups.push(() => sink.close());
  const hook = await startHttpReceiver();
  cleanups.push(() => hook.close());
  const { notifier } = await start({
    targets: {
      mail: mailTarget(sink.port, { user: 'coffer', 'password-file': passwordFile }),
      chat: {
        type: 'webhook',
        url: `${hook.url}/coffer?token=abc`,
        headers: { 'X-Team': 'backup' },
        'secret-file': secretFile,
        body: { text: '{{severity}}: {{summary}}', job: '{{job}}', failed: '{{failed}}', vms: '{{vms}}' },
        retry: fastRetry,
      },
    },
    rules: [{ name: 'failures', match: { 'min-severity': 'error', jobs: ['night*'] }, targets: ['mail', 'chat'] }],
  });
  const run = { job: 'nightly', runId: 'run-1' };
  const vmEvents: NotificationEvent[] = [
    { ...run, type: 'vm.failed', severity: 'error', vm: 'db1', host: 'h1', summary: 'backup of db1 failed', error: 'E_SOURCE_UNREADABLE: cannot read /dev/vg/db1 at offset 4096: Input/output error' },
    { ...run, type: 'vm.succeeded', severity: 'info', vm: 'web1', host: 'h2', summary: 'backup of web1: 1.0 GiB read', backup: { logicalBytes: 2 ** 31, readBytes: 2 ** 30, newBytes: 2 ** 20, storedBytes: 2 ** 19, durationMs: 12_000 } },
    { ...run, type: 'vm.failed', severity: 'critical', vm: 'db2', host: 'h1', summary: 'backup of db2 failed', error: 'E_TIMEOUT: QEMU did not answer "query-block" within 30 s' },
  ];
  for (const event of vmEvents) assert.deepEqual((await notifier.emit(event)).queued, [], 'a run\'s VM events are folded into its job.finished');
  const finished = await notifier.emit({ ...run, type: 'job.finished', severity: 'error', summary: 'nightly: 2 of 3 VMs failed' });
  assert.deepEqual(finished.queued.map((q) => q.target), ['mail', 'chat']);

  const [mail] = await sink.waitForMails(1);
  assert.ok(mail);
  assert.equal(mail.user, 'coffer', 'logged in with the password from its file');
  assert.deepEqual(mail.to, ['ops@example.test']);
  assert.equal(mail.subject, '[Coffer] CRITICAL: nightly: 2 of 3 VMs failed');
  const text = mail.text;
  const at = (s: string) => {
    const i = text.indexOf(s);
    assert.ok(i >= 0, `the mail mentions ${JSON.stringify(s)}:\n${text}`);
    return i;
  };
  assert.ok(at('Failed (2):') < at('Succeeded (1):'));
  assert.ok(at('db2 (host h1)') < at('db1 (host h1)'), 'the critical failure first');
  assert.ok(at('E_SOURCE_UNREADABLE: cannot read /dev/vg/db1 at offset 4096: Input/output error') < at('Succeeded (1):'));
  assert.ok(at('E_TIMEOUT: QEMU did not answer "query-block" within 30 s') < at('web1'));

  const [post] = await hook.waitForRequests(1);
  assert.ok(post);
  assert.equal(post.method, 'POST');
  assert.equal(post.url, '/coffer?token=abc');
  assert.equal(post.headers['content-type'], 'application/json');
  assert.equal(post.headers['x-team'], 'backup');
  assert.equal(post.headers['x-coffer-event'], 'job.finished');
  const expected = Buffer.from(`sha256=${createHmac('sha256', 'hook-key').update(post.body).digest('hex')}`);
  const signature = Buffer.from(String(post.headers['x-coffer-signature-256']));
  assert.ok(signature.length === expected.length && timingSafeEqual(signature, expected), 'a valid HMAC-SHA256 signature of the body');
  const body = JSON.parse(post.body) as { text: string; job: string; failed: number; vms: { vm: string; status: string; error?: string }[] };
  assert.equal(body.text, 'critical: nightly: 2 of 3 VMs failed');
  assert.equal(body.job, 'nightly');
  assert.equal(body.failed, 2);
  assert.deepEqual(body.vms.map((v) => [v.vm, v.status]), [['db2', 'failed'], ['db1', 'failed'], ['web1', 'succeeded']]);
  assert.match(body.vms[1]?.error ?? '', /Input\/output error/);

  await notifier.idle();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sink.mails.length, 1, 'one mail per run, not one per VM');
  assert.equal(hook.requests.length, 1);
  const log = await notifier.deliveries();
  assert.deepEqual(log.map((d) => [d.target, d.outcome]).sort(), [['chat', 'sent'], ['mail', 'sent']]);
});

test('a rule with a time-of-day window drops the events outside it', async () => {
  const hook = await startHttpReceiver();
  cleanups.push(() => hook.close());
  let clock = Date.parse('2026-11-28T10:00:00Z'); // a Saturday
  const { notifier } = await start(
    {
      targets: { chat: { type: 'webhook', url: hook.url, retry: fastRetry } },
      rules: [{ name: 'office-hours', match: { when: { calendar: 'mon..fri 08..17:*', 'time-zone': 'Europe/Berlin' } }, targets: ['chat'] }],
    },
    { now: () => clock },
  );
  const event = (summary: string): NotificationEvent => ({ type: 'rpo.missed', severity: 'warning', vm: 'db1', summary });
  assert.deepEqual((await notifier.emit(event('saturday'))).queued, []);
  clock = Date.parse('2026-11-30T06:59:00Z'); // Monday 07:59 in Berlin
  assert.deepEqual((await notifier.emit(event('too early'))).queued, []);
  clock = Date.parse('2026-11-30T07:00:00Z'); // Monday 08:00 in Berlin
  assert.equal((await notifier.emit(event('in the window'))).queued.length, 1);
  clock = Date.parse('2026-11-30T16:59:59Z'); // Monday 17:59:59 in Berlin
  assert.equal((await notifier.emit(event('last minute'))).queued.length, 1);
  clock = Date.parse('2026-11-30T17:00:00Z'); // Monday 18:00 in Berlin
  assert.deepEqual((await notifier.emit(event('evening'))).queued, []);
  const posts = await hook.waitForRequests(2);
  await notifier.idle();
  assert.deepEqual(posts.map((p) => (JSON.parse(p.body) as { summary: string }).summary).sort(), ['in the window', 'last minute']);
  assert.equal(hook.requests.length, 2);
});

test('SMTP down at first: the mail is retried with backoff and arrives once the server is up', async () => {
  const port = await freePort();
  const { notifier } = await start({
    targets: { mail: mailTarget(port) },
    rules: [{ name: 'all', targets: ['mail'] }],
  });
  await notifier.emit({ type: 'repository.damage', severity: 'critical', summary: 'repository main: 2 packs damaged', error: 'pack 3f2a… fails its checksum' });
  const deadline = Date.now() + 5000;
  while ((await notifier.deliveries()).length < 2) {
    assert.ok(Date.now() < deadline, 'two failed attempts within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  const sink = await startSmtpSink(port);
  cleanups.push(() => sink.close());
  const [mail] = await sink.waitForMails(1);
  assert.match(mail?.text ?? '', /pack 3f2a… fails its checksum/);
  await notifier.idle();
  const log = (await notifier.deliveries()).reverse();
  assert.ok(log.length >= 3);
  assert.equal(log.at(-1)?.outcome, 'sent');
  assert.equal(log.at(-1)?.attempt, log.length);
  for (const failed of log.slice(0, -1)) {
    assert.equal(failed.outcome, 'failed');
    assert.match(failed.error ?? '', new RegExp(`cannot send mail through 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  }
  const gaps = log.slice(1).map((d, i) => d.at - (log[i] as { at: number }).at);
  assert.ok((gaps[0] ?? 0) >= 45, `the first retry waited the initial backoff (gaps ${gaps.join(', ')} ms)`);
});

test('a queued mail survives a restart of the notifier (persistent outbox)', async () => {
  const port = await freePort();
  const file = join(dir.path, 'restart.db');
  const config = { targets: { mail: mailTarget(port, { retry: { attempts: 5, initial: '1h' } }) }, rules: [{ name: 'all', targets: ['mail'] }] };
  const first = await start(config, { file });
  await first.notifier.emit({ type: 'disk-space.low', severity: 'warning', summary: 'repository main: 3% free', repository: { name: 'main', freeBytes: 3 * 2 ** 30, totalBytes: 100 * 2 ** 30 } });
  const deadline = Date.now() + 5000;
  while ((await first.notifier.deliveries()).length < 1) {
    assert.ok(Date.now() < deadline);
    await new Promise((r) => setTimeout(r, 20));
  }
  await first.stop();

  const sink = await startSmtpSink(port);
  cleanups.push(() => sink.close());
  const later = () => Date.now() + 2 * 3_600_000; // past the 1 h backoff
  const second = await start(config, { file, now: later });
  const [mail] = await sink.waitForMails(1);
  assert.match(mail?.subject ?? '', /WARNING: repository main: 3% free/);
  await second.notifier.idle();
  const log = await second.notifier.deliveries();
  assert.deepEqual(log.map((d) => [d.attempt, d.outcome]), [[2, 'sent'], [1, 'failed']]);
});

test('the daily summary is sent at its time, failures first with their errors, once', async () => {
  const sink = await startSmtpSink();
  cleanups.push(() => sink.close());
  let clock = Date.parse('2026-11-25T06:30:00Z'); // 07:30 in Berlin: after that day's summary
  const { notifier } = await start(
    {
      targets: { mail: mailTarget(sink.port) },
      'daily-summary': { at: '07:00', 'time-zone': 'Europe/Berlin', targets: ['mail'] },
    },
    { now: () => clock },
  );
  const at = (iso: string) => Date.parse(iso);
  const events: NotificationEvent[] = [
    { type: 'vm.failed', severity: 'error', at: at('2026-11-24T04:00:00Z'), job: 'nightly', vm: 'old', summary: 'yesterday\'s failure', error: 'too old to list' },
    { type: 'vm.succeeded', severity: 'info', at: at('2026-11-25T21:00:00Z'), job: 'nightly', vm: 'web1', summary: 'ok' },
    { type: 'verify.result', severity: 'warning', at: at('2026-11-25T22:00:00Z'), summary: 'verify main: 1 snapshot unreadable', error: 'snapshot 8c1e: index missing' },
    { type: 'vm.failed', severity: 'error', at: at('2026-11-25T23:00:00Z'), job: 'nightly', vm: 'db1', summary: 'backup of db1 failed', error: 'E_SOURCE_UNREADABLE: Input/output error' },
    { type: 'vm.succeeded', severity: 'info', at: at('2026-11-25T23:30:00Z'), job: 'nightly', vm: 'web2', summary: 'ok' },
    { type: 'rpo.missed', severity: 'warning', at: at('2026-11-26T01:00:00Z'), vm: 'db1', summary: 'db1: last good backup 49 h ago (RPO 24 h)' },
    { type: 'disk-space.low', severity: 'warning', at: at('2026-11-26T02:00:00Z'), repository: { name: 'main', freeBytes: 2 ** 30, totalBytes: 10 * 2 ** 30 }, summary: '10% free' },
  ];
  for (const event of events) await notifier.emit(event);
  clock = Date.parse('2026-11-26T05:59:00Z'); // 06:59 in Berlin
  await notifier.tick();
  await notifier.idle();
  assert.equal(sink.mails.length, 0, 'not before its time');
  clock = Date.parse('2026-11-26T06:00:30Z'); // 07:00:30 in Berlin
  await notifier.tick();
  const [mail] = await sink.waitForMails(1);
  assert.equal(mail?.subject, '[Coffer] Daily summary 2026-11-26: 1 failure, 1 warning, 2 succeeded');
  const text = mail?.text ?? '';
  const order = ['Failures (1):', 'E_SOURCE_UNREADABLE: Input/output error', 'Warnings (1):', 'snapshot 8c1e: index missing', 'Succeeded: 2 VM backups (2 VMs)', 'RPO missed (1):', 'last good backup 49 h ago', 'Space (1 low):', '1.0 GiB free of 10.0 GiB'];
  const positions = order.map((s) => text.indexOf(s));
  assert.ok(positions.every((p, i) => p >= 0 && (i === 0 || p > (positions[i - 1] as number))), `in order ${JSON.stringify(order)}:\n${text}`);
  assert.ok(!text.includes('too old to list'), 'only the last 24 hours');
  clock += 3_600_000;
  await notifier.tick();
  await notifier.idle();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(sink.mails.length, 1, 'once a day');
});

test('a target that hangs never delays another: the mail goes out while the webhook times out', async () => {
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket)); // accepts, never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });
  const address = silent.address();
  const sink = await startSmtpSink();
  cleanups.push(() => sink.close());
  const { notifier } = await start({
    targets: {
      stuck: { type: 'webhook', url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/`, timeout: '2s', retry: { attempts: 1 } },
      mail: mailTarget(sink.port),
    },
    rules: [{ name: 'all', targets: ['stuck', 'mail'] }],
  });
  await notifier.emit({ type: 'verify.result', severity: 'error', summary: 'verify main: damage found', error: 'pack 9: checksum mismatch' });
  await sink.waitForMails(1);
  let log = await notifier.deliveries();
  for (const deadline = Date.now() + 1000; log.length === 0 && Date.now() < deadline; log = await notifier.deliveries()) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(log.map((d) => d.target), ['mail'], 'the mail went out while the webhook still hung');
  await notifier.idle();
  const stuck = (await notifier.deliveries()).find((d) => d.target === 'stuck');
  assert.equal(stuck?.outcome, 'failed');
  assert.match(stuck?.error ?? '', /^the webhook http:\/\/127\.0\.0\.1:\d+\/ did not answer within 2 s$/);
});

test('a rule\'s dedupe window sends a repeated event once', async () => {
  const hook = await startHttpReceiver();
  cleanups.push(() => hook.close());
  let clock = Date.parse('2026-11-26T10:00:00Z');
  const { notifier } = await start(
    { targets: { chat: { type: 'webhook', url: hook.url, retry: fastRetry } }, rules: [{ name: 'space', match: { types: ['disk-space.low'] }, targets: ['chat'], dedupe: '1h' }] },
    { now: () => clock },
  );
  const low = { type: 'disk-space.low', severity: 'warning', summary: 'main: 4% free', repository: { name: 'main' } } as const;
  assert.equal((await notifier.emit(low)).queued.length, 1);
  clock += 30 * 60_000;
  assert.equal((await notifier.emit(low)).queued.length, 0, 'inside the hour: deduplicated');
  assert.equal((await notifier.emit({ ...low, summary: 'main: 2% free' })).queued.length, 1, 'a different summary is news');
  clock += 31 * 60_000;
  assert.equal((await notifier.emit(low)).queued.length, 1, 'after the hour: sent again');
  await hook.waitForRequests(3);
  await notifier.idle();
  assert.equal(hook.requests.length, 3);
});

test('a webhook answering 503 is retried, and the log keeps its answer', async () => {
  const hook = await startHttpReceiver({ failFirst: 2, failStatus: 503 });
  cleanups.push(() => hook.close());
  const { notifier } = await start({ targets: { chat: { type: 'webhook', url: hook.url, retry: fastRetry } }, rules: [{ name: 'all', targets: ['chat'] }] });
  await notifier.emit({ type: 'run.overlap-skipped', severity: 'warning', job: 'nightly', summary: 'nightly: the 22:00 run was skipped, the previous run is still going' });
  await hook.waitForRequests(3);
  await notifier.idle();
  const log = (await notifier.deliveries()).reverse();
  assert.deepEqual(log.map((d) => [d.attempt, d.outcome]), [[1, 'failed'], [2, 'failed'], [3, 'sent']]);
  assert.match(log[0]?.error ?? '', /^the webhook http:\/\/127\.0\.0\.1:\d+\/ answered 503: not now$/);
  assert.equal(new Set(hook.requests.map((r) => r.body)).size, 1, 'the same body each time');
});

test('STARTTLS: the mail goes over TLS; a certificate that cannot be verified is refused when tls-verify is on', async () => {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], { keySize: 2048 });
  const sink = await startSmtpSink(0, { tls: { key: pems.private, cert: pems.cert } });
  cleanups.push(() => sink.close());
  const { notifier } = await start({
    targets: {
      lax: mailTarget(sink.port, { tls: 'starttls', 'tls-verify': false }),
      strict: mailTarget(sink.port, { tls: 'starttls', retry: { attempts: 1 } }),
    },
    rules: [{ name: 'all', targets: ['lax', 'strict'] }],
  });
  await notifier.emit({ type: 'test-restore.result', severity: 'info', summary: 'test restore of web1 passed' });
  const [mail] = await sink.waitForMails(1);
  assert.equal(mail?.secure, true, 'sent after STARTTLS');
  await notifier.idle();
  const strict = (await notifier.deliveries()).find((d) => d.target === 'strict');
  assert.equal(strict?.outcome, 'failed');
  assert.match(strict?.error ?? '', /self[- ]signed certificate/);
  assert.equal(sink.mails.length, 1);
});

test('a test message goes straight to one target, and its failure is a one-line error', async () => {
  const sink = await startSmtpSink();
  cleanups.push(() => sink.close());
  const deadPort = await freePort();
  const { notifier } = await start({ targets: { mail: mailTarget(sink.port), dead: mailTarget(deadPort) } });
  await notifier.sendTestMessage('mail');
  assert.match(sink.mails[0]?.subject ?? '', /test message from Coffer to the target mail/);
  await assert.rejects(notifier.sendTestMessage('dead'), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED') && /ECONNREFUSED/.test(e.message) && !e.message.includes('\n'));
  await assert.rejects(notifier.sendTestMessage('pager'), (e: unknown) => isCofferError(e, 'E_USAGE'));
  assert.deepEqual(await notifier.deliveries(), [], 'not in the outbox or its log');
});

test('events and finished messages older than history-days are pruned; pending ones are kept', async () => {
  let clock = Date.parse('2026-11-26T12:00:00Z');
  const deadPort = await freePort();
  const { notifier, state } = await start(
    { targets: { dead: mailTarget(deadPort, { retry: { attempts: 3, initial: '30d', max: '30d' } }) }, rules: [{ name: 'all', targets: ['dead'] }], 'history-days': 2 },
    { now: () => clock },
  );
  await notifier.emit({ type: 'rpo.missed', severity: 'warning', summary: 'old', at: clock - 3 * 86_400_000 });
  await notifier.emit({ type: 'rpo.missed', severity: 'warning', summary: 'recent', at: clock - 86_400_000 });
  await notifier.idle();
  clock += 3 * 86_400_000; // a later tick prunes (once an hour)
  await notifier.tick();
  const events = await state.db.selectFrom('notify_events').select('summary').execute();
  assert.deepEqual(events.map((e) => e.summary), [], 'both are now older than 2 days');
  const outbox = await state.db.selectFrom('notify_outbox').select('status').execute();
  assert.deepEqual(outbox.map((o) => o.status), ['pending', 'pending'], 'messages still to deliver are never pruned');
});

test('a run\'s event heard twice (a second server\'s copy) is recorded and sent once', async () => {
  const hook = await startHttpReceiver();
  cleanups.push(() => hook.close());
  const { notifier, state } = await start({ targets: { chat: { type: 'webhook', url: hook.url, retry: fastRetry } }, rules: [{ name: 'runs', match: { types: ['job.finished'] }, targets: ['chat'] }] });
  const vm = { type: 'vm.failed', severity: 'error', summary: 'db1 failed', job: 'nightly', runId: 'run-7', vm: 'db1', error: 'E_SOURCE: gone' } as const;
  const finished = { type: 'job.finished', severity: 'error', summary: 'nightly: 1 of 1 failed', job: 'nightly', runId: 'run-7' } as const;
  await notifier.emit(vm);
  await notifier.emit(vm);
  const first = await notifier.emit(finished);
  const second = await notifier.emit(finished);
  assert.equal(first.queued.length, 1);
  assert.deepEqual(second.queued, [], 'the copy is not sent');
  assert.equal(second.event.id, first.event.id, 'the copy answers with the first record');
  const rows = await state.db.selectFrom('notify_events').select(['type', 'vm']).where('run_id', '=', 'run-7').execute();
  assert.deepEqual(rows.map((r) => r.type).sort(), ['job.finished', 'vm.failed']);
  // Another run's events are news.
  assert.equal((await notifier.emit({ ...finished, runId: 'run-8' })).queued.length, 1);
  await hook.waitForRequests(2);
  await notifier.idle();
  assert.equal(hook.requests.length, 2);
  assert.equal(hook.requests.filter((q) => q.body.includes('run-7')).length, 1);
});
