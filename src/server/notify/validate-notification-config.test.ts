import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { NOTIFICATION_CONFIG_SCHEMA } from './notification-config-schema.js';
import { parseNotificationConfig, validateNotificationConfig } from './validate-notification-config.js';
import { isCofferError } from '../../errors/index.js';

const mail = { type: 'smtp', host: 'mail.example.com', from: 'coffer@example.com', to: ['ops@example.com'] };
const hook = { type: 'webhook', url: 'https://hooks.example.com/x' };

/** [case, section, the paths of the problems expected ([] = valid)]. */
const CASES: [string, unknown, string[]][] = [
  ['no section at all', undefined, []],
  ['an empty section', {}, []],
  ['a full example', {
    targets: {
      mail: { ...mail, port: 587, tls: 'starttls', 'tls-verify': false, user: 'coffer', 'password-file': '/etc/coffer/smtp', timeout: '10s', retry: { attempts: 5, initial: '1m', max: '2h' } },
      chat: { ...hook, method: 'PUT', headers: { 'X-Team': 'backup' }, body: { text: '{{summary}}' }, 'secret-file': '/etc/coffer/hook', timeout: '5s' },
    },
    rules: [{ name: 'failures', match: { types: ['job.finished', 'repository.damage'], 'min-severity': 'warning', jobs: ['nightly-*'], 'vm-tags': ['prod'], when: { calendar: 'mon..fri 08..17:*', 'time-zone': 'Europe/Berlin' } }, targets: ['mail', 'chat'], dedupe: '1h', 'group-runs': true }],
    'daily-summary': { at: '07:00', 'time-zone': 'Europe/Berlin', targets: ['mail'] },
    'history-days': 60,
  }, []],
  ['a rule naming a missing target', { targets: { mail }, rules: [{ name: 'r', targets: ['mail', 'pager'] }] }, ['rules[0].targets[1]']],
  ['an unknown event type and severity', { targets: { mail }, rules: [{ name: 'r', match: { types: ['vm.exploded'], 'min-severity': 'fatal' }, targets: ['mail'] }] }, ['rules[0].match.types[0]', 'rules[0].match.min-severity']],
  ['a bad calendar window and time zone', { targets: { mail }, rules: [{ name: 'r', match: { when: { calendar: 'someday', 'time-zone': 'Mars/Olympus' } }, targets: ['mail'] }] }, ['rules[0].match.when']],
  ['a bad summary time', { targets: { mail }, 'daily-summary': { at: '25:00', targets: ['mail'] } }, ['daily-summary.at']],
  ['two rules with one name', { targets: { mail }, rules: [{ name: 'r', targets: ['mail'] }, { name: 'r', targets: ['mail'] }] }, ['rules[1].name']],
  ['an inline password (not allowed: only a file)', { targets: { mail: { ...mail, user: 'u', password: 'hunter2' } } }, ['targets.mail.password']],
  ['a password file without a user', { targets: { mail: { ...mail, 'password-file': '/p' } } }, ['targets.mail.password-file']],
  ['an inline webhook secret', { targets: { chat: { ...hook, secret: 'k' } } }, ['targets.chat.secret']],
  ['no recipients', { targets: { mail: { ...mail, to: [] } } }, ['targets.mail.to']],
  ['a bad TLS mode and port', { targets: { mail: { ...mail, tls: 'ssl', port: 70000 } } }, ['targets.mail.port', 'targets.mail.tls']],
  ['an unknown target type', { targets: { x: { type: 'pager' } } }, ['targets.x.type']],
  ['a webhook URL that is not http', { targets: { chat: { ...hook, url: 'ftp://x/' } } }, ['targets.chat.url']],
  ['a bad header name', { targets: { chat: { ...hook, headers: { 'Bad Header': 'x' } } } }, ['targets.chat.headers.Bad Header']],
  ['a bad duration and retry', { targets: { chat: { ...hook, timeout: '10 seconds', retry: { attempts: 0, initial: '1h', max: '1m' } } } }, ['targets.chat.timeout', 'targets.chat.retry.attempts', 'targets.chat.retry.max']],
  ['an unknown top-level key', { target: {} }, ['target']],
  ['rules that are not a list', { rules: { name: 'r' } }, ['rules']],
];

test('validateNotificationConfig reports each problem at its key, and accepts good sections', () => {
  for (const [name, section, paths] of CASES) {
    const result = validateNotificationConfig(section);
    const got = result.ok ? [] : result.issues.map((i) => i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').slice(1));
    assert.deepEqual(got.sort(), [...paths].sort(), name);
  }
});

test('the typed configuration has the defaults and the compiled schedules', () => {
  const config = parseNotificationConfig({ targets: { mail, chat: hook }, rules: [{ name: 'r', match: { when: { calendar: '08..17:*' } }, targets: ['mail'] }], 'daily-summary': { at: '07:00', targets: ['chat'] } }, { defaultTimeZone: 'Europe/Berlin' });
  const target = config.targets.get('mail');
  assert.equal(target?.type === 'smtp' && target.port, 587, 'STARTTLS on the submission port by default');
  assert.deepEqual(target?.retry, { attempts: 10, initialMs: 30_000, maxMs: 3_600_000 });
  assert.equal(config.rules[0]?.minSeverity, 'info');
  assert.equal(config.rules[0]?.groupRuns, true);
  assert.equal(config.rules[0]?.when?.timeZone, 'Europe/Berlin');
  assert.equal(config.dailySummary?.schedule.next(new Date('2026-11-26T12:00:00Z'))?.toISOString(), '2026-11-27T06:00:00.000Z');
  assert.equal(config.historyDays, 35);
});

test('parseNotificationConfig throws one E_USAGE line naming every problem', () => {
  assert.throws(
    () => parseNotificationConfig({ rules: [{ name: 'r', targets: ['nope'] }], 'history-days': 0 }),
    (error: unknown) =>
      isCofferError(error, 'E_USAGE') &&
      !error.message.includes('\n') &&
      error.message.includes('notifications.rules[0].targets[0]: no target is named "nope"') &&
      error.message.includes('notifications.history-days: must be a whole number'),
  );
});

test('the JSON schema agrees with the validator on the shape (checked by Fastify\'s own Ajv)', async () => {
  const { $schema: _, ...schema } = NOTIFICATION_CONFIG_SCHEMA;
  // Fastify's default Ajv strips unknown keys and coerces types: a config loader must not.
  const app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  app.post('/check', { schema: { body: schema } }, async () => ({ ok: true }));
  // Cases whose problems the schema can see (shape, not cross-references or calendar syntax).
  const semantic = new Set(['a rule naming a missing target', 'a bad calendar window and time zone', 'a bad summary time', 'two rules with one name', 'a password file without a user', 'a bad header name', 'a bad duration and retry', 'no section at all']);
  for (const [name, section, paths] of CASES) {
    if (semantic.has(name)) continue;
    const response = await app.inject({ method: 'POST', url: '/check', payload: section as object });
    assert.equal(response.statusCode, paths.length === 0 ? 200 : 400, `${name}: ${response.body}`);
  }
  await app.close();
});
