/**
 * `/metrics` scraped from a real Fastify listening on a port, fed by a real notifier over a
 * SQLite state database, with deliveries to a real local HTTP receiver (and to a closed port).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Fastify from 'fastify';
import { freePort, makeTempDir, startHttpReceiver } from '../../testing/index.js';
import { Notifier, parseNotificationConfig } from '../notify/index.js';
import { openStateDatabase } from '../state/index.js';
import { CofferMetrics, registerMetricsRoute, type MetricsSource } from './index.js';

const dir = await makeTempDir('coffer-metrics');
const state = await openStateDatabase({ file: join(dir.path, 'state.db') });
const hook = await startHttpReceiver();
const closedPort = await freePort();
const notifier = await Notifier.start({
  db: state.db,
  pollMs: 25,
  config: parseNotificationConfig({
    targets: {
      hook: { type: 'webhook', url: hook.url, retry: { attempts: 1 } },
      dead: { type: 'webhook', url: `http://127.0.0.1:${closedPort}/`, retry: { attempts: 1 } },
    },
    rules: [{ name: 'damage', match: { types: ['repository.damage'] }, targets: ['hook', 'dead'] }],
  }),
});
const source: MetricsSource = notifier; // the notifier is a metrics source as it is
const app = Fastify({ logger: false });
registerMetricsRoute(app, new CofferMetrics(source), { bearerToken: 'scrape-token' });
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/metrics`;
after(async () => {
  await app.close();
  await notifier.close();
  await state.close();
  await hook.close();
  await dir.remove();
});

/** Parses the text exposition format: `name{a="x",b="y"} value` lines into a map keyed by the series. */
function parseExposition(text: string): { series: Map<string, number>; types: Map<string, string> } {
  const series = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1] as string, type[2] as string);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(match, `a valid sample line: ${line}`);
    series.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return { series, types };
}

test('/metrics needs its bearer token', async () => {
  for (const authorization of [undefined, 'Bearer wrong', 'Basic c2NyYXBlLXRva2Vu']) {
    const response = await fetch(url, authorization === undefined ? {} : { headers: { authorization } });
    assert.equal(response.status, 401, String(authorization));
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
  }
});

test('/metrics serves the last success per VM, bytes, durations, task counts, repository size and deliveries', async () => {
  const end = Date.parse('2026-11-26T02:00:00Z');
  await notifier.emit({
    type: 'vm.succeeded', severity: 'info', at: end, job: 'nightly', vm: 'web1', summary: 'backup of web1',
    backup: { logicalBytes: 8 * 2 ** 30, readBytes: 2 ** 30, newBytes: 2 ** 24, storedBytes: 2 ** 23, durationMs: 42_500 },
    repository: { name: 'main', storedBytes: 123_456_789 },
  });
  await notifier.emit({
    type: 'vm.succeeded', severity: 'info', at: end - 86_400_000, job: 'nightly', vm: 'web1', summary: 'an older backup reported late',
    backup: { logicalBytes: 1, readBytes: 1, newBytes: 1, storedBytes: 1, durationMs: 1000 },
  });
  for (const status of ['succeeded', 'succeeded', 'failed']) await notifier.emit({ type: 'task.finished', severity: 'info', summary: 't', task: { kind: 'backup', status } });
  await notifier.emit({ type: 'task.finished', severity: 'info', summary: 't', task: { kind: 'verify', status: 'succeeded' } });
  await notifier.emit({ type: 'repository.damage', severity: 'critical', summary: 'damage', repository: { name: 'main', freeBytes: 5e9, totalBytes: 1e10 } });
  await hook.waitForRequests(1);
  await notifier.idle();

  const response = await fetch(url, { headers: { authorization: 'Bearer scrape-token' } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const { series, types } = parseExposition(await response.text());
  const expected: Record<string, number> = {
    'coffer_vm_last_success_timestamp_seconds{vm="web1",job="nightly"}': end / 1000,
    'coffer_vm_last_backup_duration_seconds{vm="web1",job="nightly"}': 42.5,
    'coffer_vm_last_backup_bytes{vm="web1",job="nightly",kind="logical"}': 8 * 2 ** 30,
    'coffer_vm_last_backup_bytes{vm="web1",job="nightly",kind="read"}': 2 ** 30,
    'coffer_vm_last_backup_bytes{vm="web1",job="nightly",kind="new"}': 2 ** 24,
    'coffer_vm_last_backup_bytes{vm="web1",job="nightly",kind="stored"}': 2 ** 23,
    'coffer_tasks_finished_total{kind="backup",status="succeeded"}': 2,
    'coffer_tasks_finished_total{kind="backup",status="failed"}': 1,
    'coffer_tasks_finished_total{kind="verify",status="succeeded"}': 1,
    'coffer_repository_stored_bytes{repository="main"}': 123_456_789,
    'coffer_repository_free_bytes{repository="main"}': 5e9,
    'coffer_repository_total_bytes{repository="main"}': 1e10,
    'coffer_notification_deliveries_total{target="hook",outcome="sent"}': 1,
    'coffer_notification_deliveries_total{target="dead",outcome="failed"}': 1,
    coffer_notification_outbox_pending: 0,
  };
  for (const [name, value] of Object.entries(expected)) assert.equal(series.get(name), value, name);
  assert.equal(types.get('coffer_tasks_finished_total'), 'counter');
  assert.equal(types.get('coffer_vm_last_success_timestamp_seconds'), 'gauge');
  assert.ok(series.has('process_resident_memory_bytes'), 'the process metrics too');
});

test('a source that fails gives 503 with one line', async () => {
  const broken = Fastify({ logger: false });
  registerMetricsRoute(broken, new CofferMetrics({ figures: () => Promise.reject(new Error('the state database is locked\nstack…')) }, { processMetrics: false }));
  const response = await broken.inject({ method: 'GET', url: '/metrics' });
  assert.equal(response.statusCode, 503);
  assert.equal(response.body, 'metrics unavailable: the state database is locked\n');
  await broken.close();
});
