/**
 * The notifier's database layer (event-history.ts, outbox.ts, metrics-figures.ts) on both
 * state database engines: the same script of calls runs against an SQLite file and a real
 * PostgreSQL (started here), and every answer must be the same on both (and right): upserts
 * with ON CONFLICT … WHERE, RETURNING ids, LIKE on event types, counts and minimums as numbers,
 * the cascade from an outbox entry to its delivery log.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, startHttpReceiver, startPostgres, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { eventKey, eventsBetween, pruneEvents, recordedEventByKey, recordEvent, runVmEvents } from './event-history.js';
import { parseNotificationConfig } from './index.js';
import { readMetricsFigures } from './metrics-figures.js';
import { Notifier } from './notifier.js';
import { deliveryCounts, deliveryLog, dueEntries, enqueue, nextDueAt, pruneOutbox, recordAttempt, releaseTarget } from './outbox.js';

const dir = await makeTempDir('coffer-notify-store');
let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
  await dir.remove();
});

const policy = { attempts: 2, initialMs: 100, maxMs: 1000 };
const message = (subject: string) => ({ subject, text: `${subject} ✓`, context: { n: 1 } });

/** Every call the notifier makes, in a realistic order; returns what each answered. */
async function script(state: StateDatabase): Promise<Record<string, unknown>> {
  const db = state.db;
  const out: Record<string, unknown> = {};
  const backup = { logicalBytes: 2 ** 40, readBytes: 2 ** 33, newBytes: 10, storedBytes: 5, durationMs: 1200 };
  const e1 = await recordEvent(db, { type: 'vm.succeeded', severity: 'info', summary: 'a ok', at: 1000, job: 'nightly', runId: 'r1', vm: 'a', vmTags: ['prod'], backup, repository: { name: 'main', storedBytes: 100 } });
  const e2 = await recordEvent(db, { type: 'vm.failed', severity: 'error', summary: 'b failed', at: 1001, job: 'nightly', runId: 'r1', vm: 'b', error: 'E_SOURCE: gone' });
  await recordEvent(db, { type: 'vm.succeeded', severity: 'info', summary: 'a older', at: 500, job: 'nightly', runId: 'r0', vm: 'a', backup: { ...backup, logicalBytes: 1 } }); // late: figures unchanged
  await recordEvent(db, { type: 'job.finished', severity: 'error', summary: 'nightly: 1 of 2 failed', at: 1002, job: 'nightly', runId: 'r1', repository: { name: 'main', freeBytes: 7 } });
  for (const status of ['ok', 'ok', 'failed']) await recordEvent(db, { type: 'task.finished', severity: 'info', summary: 't', at: 1003, task: { kind: 'backup', status } });
  out.ids = [e1?.id, e2?.id];
  out.runVmEvents = (await runVmEvents(db, 'r1')).map((e) => [e.id, e.type, e.vm, e.error ?? null]);
  out.between = (await eventsBetween(db, 1000, 1003)).map((e) => e.summary);

  const q1 = await enqueue(db, { rule: 'ops', target: 'mail', kind: 'event', message: message('m1'), dedupeKey: 'k1', dedupeMs: 60_000, now: 2000 });
  const twin = await enqueue(db, { rule: 'ops', target: 'mail', kind: 'event', message: message('m1'), dedupeKey: 'k1', dedupeMs: 60_000, now: 2001 });
  const q2 = await enqueue(db, { rule: 'ops', target: 'hook', kind: 'summary', message: message('m2'), dedupeKey: 'k2', dedupeMs: 0, now: 2002 });
  out.enqueued = [q1, twin, q2];
  out.nextDueEmpty = await nextDueAt(db);
  const due = await dueEntries(db, 2002);
  out.due = due.map((e) => [e.id, e.target, e.kind, e.message.subject, e.attempts, e.createdAt]);
  const [m1, m2] = due as [(typeof due)[number], (typeof due)[number]];
  out.attempts = [
    await recordAttempt(db, m1, { error: 'connection refused', durationMs: 12.4, now: 2100, policy }),
    await recordAttempt(db, m2, { durationMs: 30, now: 2100, policy }),
  ];
  out.nextDue = await nextDueAt(db);
  await releaseTarget(db, 'mail', 2150);
  const retry = await dueEntries(db, 2150);
  out.retry = retry.map((e) => [e.id, e.attempts]);
  out.final = await recordAttempt(db, retry[0] as (typeof retry)[number], { error: 'still refused', durationMs: 1, now: 2200, policy });
  out.log = await deliveryLog(db, { limit: 10 });
  out.counts = await deliveryCounts(db);
  out.figures = await readMetricsFigures(db);
  await pruneOutbox(db, 2003);
  out.logAfterPrune = (await deliveryLog(db)).length;
  out.pruned = await pruneEvents(db, 1001);
  // A copy of a run's event (another server heard it too): refused by the unique key, the first kept.
  const copy = await recordEvent(db, { type: 'vm.failed', severity: 'error', summary: 'b failed (a second server)', at: 1001, job: 'nightly', runId: 'r1', vm: 'b' });
  const taskEvent = await recordEvent(db, { type: 'verify.result', severity: 'info', summary: 'verified', at: 5000, taskId: 't9' });
  const taskCopy = await recordEvent(db, { type: 'verify.result', severity: 'info', summary: 'verified again', at: 5000, taskId: 't9' });
  out.copies = [copy === undefined, taskEvent !== undefined, taskCopy === undefined, (await recordedEventByKey(db, eventKey({ type: 'vm.failed', runId: 'r1', vm: 'b' }) as string))?.summary];
  return out;
}

test('the notifier\'s queries answer the same on PostgreSQL as on SQLite', async () => {
  const sqlite = await openStateDatabase({ file: join(dir.path, 'state.db') });
  const postgres = await openStateDatabase({ url: await server.createDatabase() });
  try {
    const a = await script(sqlite);
    const b = await script(postgres);
    assert.deepEqual(b, a);
    // And right, not merely equal.
    assert.deepEqual(a.ids, [1, 2]);
    assert.deepEqual(a.runVmEvents, [[1, 'vm.succeeded', 'a', null], [2, 'vm.failed', 'b', 'E_SOURCE: gone']]);
    assert.deepEqual(a.enqueued, [1, undefined, 2]);
    assert.deepEqual(a.attempts, ['retry', 'sent']);
    assert.equal(a.nextDue, 2200);
    assert.deepEqual(a.retry, [[1, 1]]);
    assert.equal(a.final, 'failed');
    assert.deepEqual(a.counts, [{ target: 'hook', outcome: 'sent', count: 1 }, { target: 'mail', outcome: 'failed', count: 2 }]);
    const figures = a.figures as Awaited<ReturnType<typeof readMetricsFigures>>;
    assert.deepEqual(figures.vmBackups, [{ vm: 'a', job: 'nightly', at: 1000, logicalBytes: 2 ** 40, readBytes: 2 ** 33, newBytes: 10, storedBytes: 5, durationMs: 1200 }]);
    assert.deepEqual(figures.repositories, [{ repository: 'main', storedBytes: 100, freeBytes: 7 }]);
    assert.deepEqual(figures.tasks, [{ kind: 'backup', status: 'failed', count: 1 }, { kind: 'backup', status: 'ok', count: 2 }]);
    assert.equal(a.logAfterPrune, 0, 'pruning an entry removes its delivery log (cascade)');
    assert.equal(a.pruned, 2);
    assert.deepEqual(a.copies, [true, true, true, 'b failed'], 'a copy of a run\'s or a task\'s event is refused; the first record stays');
  } finally {
    await sqlite.close();
    await postgres.close();
  }
});

test('the notifier on PostgreSQL: a failed webhook delivery is retried and arrives once', async () => {
  const hook = await startHttpReceiver({ failFirst: 1 });
  const state = await openStateDatabase({ url: await server.createDatabase() });
  const notifier = await Notifier.start({
    db: state.db,
    pollMs: 25,
    config: parseNotificationConfig({
      targets: { chat: { type: 'webhook', url: hook.url, retry: { attempts: 5, initial: '50ms', max: '200ms' } } },
      rules: [{ name: 'all', targets: ['chat'] }],
    }),
  });
  try {
    assert.equal((await notifier.emit({ type: 'repository.damage', severity: 'critical', summary: 'repository main: 2 packs damaged' })).queued.length, 1);
    const posts = await hook.waitForRequests(2);
    assert.match(posts[1]?.body ?? '', /2 packs damaged/);
    // The receiver answers before the notifier records the attempt: wait for the record.
    const deadline = Date.now() + 10_000;
    let outcomes: string[] = [];
    while ((outcomes = (await notifier.deliveries()).map((d) => d.outcome)).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.deepEqual(outcomes, ['sent', 'failed']);
  } finally {
    await notifier.close();
    await state.close();
    await hook.close();
  }
});
