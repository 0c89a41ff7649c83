import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from './config/index.js';
import { backupSourceOf, bandwidthRules, calendarEvents, concurrencyLimits, historyMs, latencyGuard, retentionPolicy, retryPolicy, scheduledJobs, syncDestinations, upkeepJobs } from './service-config.js';
import { BandwidthRules } from './tasks/index.js';

test('a bandwidth rule\'s days and hours apply in exactly those minutes (UTC), across midnight too', () => {
  const cases: { when: string; on: string[]; off: string[] }[] = [
    { when: 'mon..fri 08:00-18:00', on: ['2026-11-23T08:00Z', '2026-11-27T17:59Z'], off: ['2026-11-23T07:59Z', '2026-11-23T18:00Z', '2026-11-28T12:00Z'] },
    { when: 'mon..fri 08:30-18:15', on: ['2026-11-23T08:30Z', '2026-11-23T12:00Z', '2026-11-23T18:14Z'], off: ['2026-11-23T08:29Z', '2026-11-23T18:15Z'] },
    { when: '22:00-06:00', on: ['2026-11-23T22:00Z', '2026-11-24T03:00Z', '2026-11-24T05:59Z'], off: ['2026-11-23T21:59Z', '2026-11-24T06:00Z'] },
    { when: 'sat,sun', on: ['2026-11-28T00:00Z', '2026-11-29T23:59Z'], off: ['2026-11-27T23:59Z', '2026-11-30T00:00Z'] },
    { when: '10:10-10:20', on: ['2026-11-23T10:10Z', '2026-11-23T10:19Z'], off: ['2026-11-23T10:09Z', '2026-11-23T10:20Z'] },
  ];
  for (const { when, on, off } of cases) {
    const rules = new BandwidthRules(calendarEvents(when).map((at) => ({ direction: 'source-read' as const, bytesPerSecond: 4096, at, timeZone: 'UTC' })));
    for (const t of on) assert.equal(rules.rateAt('source-read', new Date(t)), 4096, `${when} at ${t}`);
    for (const t of off) assert.equal(rules.rateAt('source-read', new Date(t)), undefined, `${when} not at ${t}`);
  }
});

const CONFIG = `repositories: [{ name: main, url: /srv/main, passphrase-file: /etc/main.pass }]
hosts: [{ name: hv1, datastores: [ssd] }, { name: hv2 }]
vms:
  - { name: web1, host: hv1, datastore: ssd, source: { images: [/d/web1.qcow2] }, tags: [web] }
  - { name: db1, host: hv2, source: { qmp: /run/db1.qmp } }
jobs:
  - { name: nightly, select: { tags: [web] }, repository: main, schedule: "mon..fri 22:00", timezone: Europe/Berlin, repeat-missed: true, window: { start: "22:00", end: "06:00" }, limits: { concurrent: 3 } }
  - { name: after-nightly, select: { names: [db1] }, repository: main, schedule: daily, after: nightly }
limits:
  global: 4
  per-host: 2
  hosts: { hv1: 1 }
  bandwidth:
    - { when: "mon..fri 08:00-18:00", read: 20M }
    - { write: 1G }
tasks: { retries: 3, retry-delay: 2m, history: 30d }
`;

test('limits, bandwidth, retries, history and jobs come from the configuration file', async () => {
  const config = parseConfig(CONFIG, 'test.yaml');
  assert.deepEqual(concurrencyLimits(config.limits), { global: 4, host: { default: 2, overrides: { hv1: 1 } }, datastore: {}, repository: {} });
  assert.deepEqual(concurrencyLimits(undefined), { host: {}, datastore: {}, repository: {} }, 'per host: the planner\'s default (1)');
  const { rules, warnings } = bandwidthRules(config.limits);
  assert.deepEqual(rules, [
    { direction: 'source-read', bytesPerSecond: 20 * 1024 ** 2, at: 'mon..fri 8..17:*', timeZone: 'UTC' },
    { direction: 'repository-write', bytesPerSecond: 1024 ** 3 },
  ]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(retryPolicy(config), { retries: 3, delayMs: 120_000 });
  assert.equal(historyMs(config), 30 * 86_400_000);

  const [nightly, after] = scheduledJobs(() => config);
  assert.deepEqual({ ...nightly, resolveVms: undefined }, { name: 'nightly', schedule: 'mon..fri 22:00', timeZone: 'Europe/Berlin', repeatMissed: true, window: '22:00-06:00', concurrency: 3, resolveVms: undefined });
  assert.deepEqual(await nightly?.resolveVms(), [
    { vm: 'web1', host: 'hv1', datastore: 'ssd', repository: { name: 'main', url: '/srv/main', passphraseFile: '/etc/main.pass' }, source: { images: ['/d/web1.qcow2'] }, tags: ['web'] },
  ]);
  assert.equal(after?.after, 'nightly');
  assert.deepEqual((await after?.resolveVms())?.map((t) => t.source), [{ qmp: '/run/db1.qmp' }]);
});

test('the source latency guard comes from limits.latency-guard; a floor under 1K or an unknown key is refused at its line', () => {
  const config = parseConfig(CONFIG.replace('  global: 4\n', '  global: 4\n  latency-guard: { threshold-ms: 40, min-read: 2M }\n'), 'test.yaml');
  assert.deepEqual(latencyGuard(config.limits), { thresholdMs: 40, minBytesPerSecond: 2 * 1024 ** 2 });
  const off = parseConfig(CONFIG.replace('  global: 4\n', '  global: 4\n  latency-guard: { threshold-ms: 0, throttle: false }\n'), 'test.yaml');
  assert.deepEqual(latencyGuard(off.limits), { thresholdMs: 0, throttle: false });
  assert.equal(latencyGuard(parseConfig(CONFIG, 'test.yaml').limits), undefined);
  assert.throws(() => parseConfig(CONFIG.replace('  global: 4\n', '  global: 4\n  latency-guard: { threshold-ms: 40, min-read: \"100\" }\n'), 'test.yaml'), /test\.yaml:\d+: limits\.latency-guard\.min-read: "100" is not a rate of at least 1K/);
  assert.throws(() => parseConfig(CONFIG.replace('  global: 4\n', '  global: 4\n  latency-guard: { min-read: 2M }\n'), 'test.yaml'), /latency-guard/);
  assert.throws(() => parseConfig(CONFIG.replace('  global: 4\n', '  global: 4\n  latency-guard: { threshold-ms: 40, slow: yes }\n'), 'test.yaml'), /latency-guard\.slow: unknown key/);
});

test('a notifications section is checked by the notifier\'s own rules, each problem at its key and line', () => {
  const text = `${CONFIG}notifications:
  targets:
    mail: { type: smtp, host: mail.example.org, from: a@example.org, to: [b@example.org] }
  rules:
    - { name: failures, targets: [pager] }
`;
  assert.throws(() => parseConfig(text, 'test.yaml'), (error: Error) => {
    assert.match(error.message, /^test\.yaml:\d+: notifications\.rules\[0\]\.targets\[0\]: .*pager/);
    return true;
  });
  assert.throws(() => parseConfig(`${CONFIG}notifications: { colour: blue }\n`, 'test.yaml'), /notifications\.colour: unknown key/);
});

test('a job\'s retention, verify and test-restore reach the upkeep; a retention that keeps nothing is refused', async () => {
  assert.deepEqual(retentionPolicy({ 'keep-last': 3, 'keep-daily': 7, 'keep-within': '2d', 'keep-tags': ['gold', 'legal'], 'prune-after-forgets': 2 }), {
    last: 3, daily: 7, within: { years: 0, months: 0, days: 0, hours: 48, text: '48h' }, tags: [['gold'], ['legal']],
  });
  const yaml = (retention: string) => `repositories:\n  - { name: main, url: /srv/repo, passphrase-file: /etc/pass }\nhosts: [{ name: hv1 }]\nvms:\n  - { name: web1, host: hv1, source: { images: [/a.raw] } }\n  - { name: db1, host: hv1, source: { images: [/b.raw] } }\njobs:\n  - name: nightly\n    select: { globs: ['web*'] }\n    repository: main\n    schedule: daily\n    timezone: Europe/Paris\n${retention}\n    verify: { schedule: 'sun 03:00', read-data-subset: 1/7 }\n    test-restore: { schedule: 'sat 04:00' }\n  - { name: plain, select: { names: [db1] }, repository: main, schedule: daily }\n`;
  const config = parseConfig(yaml('    retention: { keep-daily: 7, prune-schedule: \'sun 05:00\' }'), 'coffer.yaml');
  const [job, ...others] = upkeepJobs(() => config);
  assert.equal(others.length, 0, 'a job declaring none of them is left out');
  assert.deepEqual({ ...job, vms: undefined }, {
    name: 'nightly', repository: { name: 'main', url: '/srv/repo', passphraseFile: '/etc/pass' }, timeZone: 'Europe/Paris',
    retention: { policy: { daily: 7 }, pruneSchedule: 'sun 05:00' }, verify: { schedule: 'sun 03:00', subset: '1/7' }, testRestore: { schedule: 'sat 04:00' }, vms: undefined,
  });
  assert.deepEqual(await job?.vms(), ['web1']);
  assert.throws(() => parseConfig(yaml('    retention: { prune-after-forgets: 3 }'), 'coffer.yaml'), /would remove every snapshot/);
  assert.throws(() => parseConfig(yaml('    retention: { keep-last: 3, prune-schedule: \'someday\' }'), 'coffer.yaml'), /prune-schedule/);
});

test('a bandwidth rule\'s hours in its own time zone, scoped to its hosts and repositories', () => {
  const { rules, warnings } = bandwidthRules({ bandwidth: [{ when: 'mon..fri 08:00-18:00', read: '20M', timezone: 'America/New_York', hosts: ['hv1'], repositories: ['main'] }] });
  assert.deepEqual(warnings, []);
  const table = new BandwidthRules(rules);
  const subject = { host: 'hv1', repository: 'main', reading: true };
  assert.equal(table.sharesAt(new Date('2026-11-23T13:00Z'), [subject])[0]?.sourceRead, 20 * 1024 * 1024, '08:00 in New York');
  assert.equal(table.sharesAt(new Date('2026-11-23T12:59Z'), [subject])[0]?.sourceRead, undefined, '07:59 in New York');
  assert.equal(table.sharesAt(new Date('2026-11-23T15:00Z'), [{ ...subject, host: 'hv2' }])[0]?.sourceRead, undefined, 'another host is not covered');
  assert.throws(() => parseConfig('hosts: [{ name: hv1 }]\nlimits:\n  bandwidth:\n    - { read: 20M, timezone: Mars/Olympus, hosts: [hv9] }\n', 'coffer.yaml'), (e: Error) => /unknown time zone "Mars\/Olympus"/.test(e.message) && /no host "hv9"/.test(e.message));
});

test('a finished sync refreshes its destination\'s snapshot index: the one its report names, else every repository but its source', () => {
  const repositories = ['main', 'offsite', 'archive'].map((name) => ({ name, url: `/srv/${name}`, 'passphrase-file': '/etc/p' }));
  const report = (detail: Record<string, unknown>) => ({ summary: '', warnings: [], figures: {}, detail });
  assert.deepEqual(syncDestinations({ repository: 'main', report: report({ from: 'main', to: 'offsite' }) }, { repositories }), ['offsite']);
  assert.deepEqual(syncDestinations({ repository: 'main', report: null }, { repositories }), ['offsite', 'archive']);
  assert.deepEqual(syncDestinations({ repository: 'main', report: report({}) }, { repositories }), ['offsite', 'archive']);
});

test('a running VM\'s capture options in the configuration reach the backup request as the CLI\'s do', () => {
  const config = parseConfig(
    `repositories: [{ name: main, url: /srv/main }]
hosts: [{ name: hv1 }]
vms:
  - name: db1
    host: hv1
    source: { qmp: /run/db1.qmp, guest-agent: /run/db1.qga, freeze-timeout: 2m, pre-capture: "pg-flush", post-capture: "true", scratch-dir: /var/lib/coffer/scratch, scratch-min-free: 1G }
  - name: web2
    host: hv1
    source: { libvirt: { domain: web2 }, freeze: false, scratch-dir: /srv/scratch }
  - { name: web1, host: hv1, source: { images: [/d/web1.qcow2] } }
  - { name: lv1, host: hv1, source: { images: [/dev/vg0/lv1], source-format: raw } }
`,
    'c.yaml',
  );
  const [db1, web2, web1, lv1] = (config.vms ?? []).map((vm) => backupSourceOf(vm.source));
  assert.deepEqual(lv1, { images: ['/dev/vg0/lv1'], sourceFormat: 'raw' });
  assert.deepEqual(db1, {
    qmp: '/run/db1.qmp',
    guestAgent: '/run/db1.qga',
    freezeTimeoutMs: 120_000,
    hooks: { pre: 'pg-flush', post: 'true' },
    scratch: { dir: '/var/lib/coffer/scratch', minFreeBytes: 1024 ** 3 },
  });
  assert.deepEqual(web2, { libvirt: { domain: 'web2', freeze: false }, scratch: { dir: '/srv/scratch' } });
  assert.deepEqual(web1, { images: ['/d/web1.qcow2'] });
  assert.throws(
    () => parseConfig(`hosts: [{ name: hv1 }]\nvms: [{ name: a, host: hv1, source: { qmp: /q, scratch-min-free: 10K } }]\n`, 'c.yaml'),
    /vms\[0\]\.source\.scratch-min-free.*not a size of at least 1M/,
  );
  assert.throws(() => parseConfig(`hosts: [{ name: hv1 }]\nvms: [{ name: a, host: hv1, source: { qmp: /q, scratch-dir: relative/dir } }]\n`, 'c.yaml'), /scratch-dir/);
});
