/**
 * `coffer server` as a real process: a real SQLite file, a real repository made by `coffer
 * init` and `coffer backup`, HTTPS with the certificate it made at first start. The security
 * sweep calls every operation of the server's own OpenAPI document without credentials, with
 * an expired token, with a token that holds no grant, and with a token of each role that lacks
 * the operation's permission, so a route added tomorrow is covered by this test tomorrow.
 */
import assert from 'node:assert/strict';
import { X509Certificate, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { cachedFixture, seededBytes } from '../../testing/index.js';
import { runCoffer, startServer, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-server-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
let server: ServerProcess;
let snapshotId = '';
const admin = new Map<string, string>();
let csrf = '';
const ADMIN_PASSWORD = 'a-good-long-admin-password';

const CONFIG = (passphraseFile: string, repository: string) => `security:
  four-eyes: false
repositories:
  - name: main
    url: ${repository}
    passphrase-file: ${passphraseFile}
hosts:
  - name: hv1
    datastores: [ssd1]
  - name: hv2
vms:
  - name: web1
    host: hv1
    datastore: ssd1
    source: { images: [/nonexistent/web1.raw] }
    tags: [web]
    rpo: 26h
  - name: db1
    host: hv2
    source: { qmp: /run/db1.qmp }
    rpo: 1h
jobs:
  - name: nightly
    select: { tags: [web] }
    repository: main
    schedule: "mon..fri 22:00"
    timezone: Europe/Berlin
`;

before(async () => {
  const disk = await cachedFixture('server-web1-disk', { bytes: 2 * 1024 * 1024, seed: 8 }, (tmp) => writeFile(tmp, seededBytes(8, 2 * 1024 * 1024)));
  await writeFile(passFile, 'repository passphrase\n');
  const init = await runCoffer(['init', '-r', repo, '--password-file', passFile]);
  assert.equal(init.code, 0, init.stderr);
  const backup = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'web1', '--json', disk]);
  assert.equal(backup.code, 0, backup.stderr);
  snapshotId = (JSON.parse(backup.stdout) as { id: string }).id;
  assert.match(snapshotId, /^[0-9a-f]{64}$/);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'coffer.yaml'), CONFIG(passFile, repo));
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, path: string, options: RequestOptions = {}): Promise<Response> => server.request(method, `/api/v1${path}`, options);
const asAdmin = (method: string, path: string, body?: unknown) => call(method, path, { jar: admin, headers: { 'x-csrf-token': csrf }, ...(body === undefined ? {} : { body }) });

function assertProblem(response: Response, status: number, code: string): void {
  assert.equal(response.status, status, `${response.status} ${response.text}`);
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  assert.equal(response.json.code, code, response.text);
  assert.equal(response.json.status, status);
  assert.ok(typeof response.json.type === 'string' && typeof response.json.title === 'string' && typeof response.json.detail === 'string');
  assert.doesNotMatch(response.text, /\n\s+at |node:internal|\.js:\d+/, 'no stack trace');
}

test('first start prints the certificate fingerprint and a one-time admin password that must be changed', async () => {
  const out = server.stdout();
  const fingerprint = /SHA-256 fingerprint: ([0-9A-F:]{95})/.exec(out)?.[1];
  assert.equal(fingerprint, new X509Certificate(server.ca).fingerprint256, out);
  assert.match(out, /console: https:\/\/127\.0\.0\.1:\d+\//);
  const oneTime = /one-time password (\S+)/.exec(out)?.[1];
  assert.ok(oneTime !== undefined, out);

  assertProblem(await call('POST', '/auth/login', { body: { user: 'admin', password: 'wrong password' } }), 401, 'E_UNAUTHENTICATED');
  const login = await call('POST', '/auth/login', { body: { user: 'admin', password: oneTime }, jar: admin });
  assert.equal(login.status, 200, login.text);
  const cookie = String([login.headers['set-cookie']].flat()[0]);
  assert.match(cookie, /^coffer_session=/);
  for (const flag of [/HttpOnly/i, /Secure/i, /SameSite=Strict/i]) assert.match(cookie, flag);
  assert.equal(login.json.mustChangePassword, true);
  csrf = login.json.csrfToken;

  assertProblem(await call('GET', '/users', { jar: admin }), 403, 'E_PASSWORD_CHANGE_REQUIRED');
  const change = await asAdmin('POST', '/auth/password', { current: oneTime, new: ADMIN_PASSWORD });
  assert.equal(change.status, 204, change.text);
  const me = await call('GET', '/auth/me', { jar: admin });
  assert.equal(me.json.mustChangePassword, false);
  assert.equal((await call('GET', '/users', { jar: admin })).status, 200);
});

test('with a session cookie, every unsafe request needs the session\'s CSRF token', async () => {
  const body = { name: 'csrf-probe', password: 'long enough password' };
  assertProblem(await call('POST', '/users', { jar: admin, body }), 403, 'E_CSRF');
  assertProblem(await call('POST', '/users', { jar: admin, body, headers: { 'x-csrf-token': 'forged' } }), 403, 'E_CSRF');
  assert.equal((await asAdmin('POST', '/users', body)).status, 201);
  assert.equal((await asAdmin('DELETE', '/users/csrf-probe')).status, 204);
});

// Tokens the sweep uses: filled by the next test.
const tokens: Record<string, string> = {};

test('tokens: the secret is shown once, a token holds only a subset of its creator\'s grants, and expires', async () => {
  const roles = (await call('GET', '/roles', { jar: admin })).json.roles as Array<{ name: string }>;
  for (const role of roles) {
    const made = await asAdmin('POST', '/tokens', { name: `sweep-${role.name}`, grants: [{ role: role.name, path: '/' }] });
    assert.equal(made.status, 201, made.text);
    assert.match(made.json.secret, /^coffer_[\w-]{43}$/);
    tokens[role.name] = made.json.secret;
  }
  tokens.none = (await asAdmin('POST', '/tokens', { name: 'no-grants', grants: [] })).json.secret;
  const expiring = await asAdmin('POST', '/tokens', { name: 'short-lived', expiresAt: new Date(Date.now() + 1500).toISOString() });
  assert.equal(expiring.status, 201, expiring.text);
  tokens.expired = expiring.json.secret;
  const listed = await call('GET', '/tokens', { jar: admin });
  assert.ok(!listed.text.includes('coffer_'), 'secrets never listed');

  // A token cannot create a token wider than itself.
  assertProblem(await call('POST', '/tokens', { token: tokens.RestoreOperator as string, body: { name: 'wider', grants: [{ role: 'Admin', path: '/' }] } }), 403, 'E_FORBIDDEN');
  const narrower = await call('POST', '/tokens', { token: tokens.Operator as string, body: { name: 'narrower', grants: [{ role: 'RestoreOperator', path: '/vms/web1' }] } });
  assert.equal(narrower.status, 201, narrower.text);
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiring.json.token.expiresAt) - Date.now() + 50)));
  assertProblem(await call('GET', '/auth/me', { token: tokens.expired }), 401, 'E_UNAUTHENTICATED');
});

test('the OpenAPI document validates as OpenAPI 3.1, and the reference page is self-contained', async () => {
  const document = (await call('GET', '/openapi.json')).json;
  assert.equal(document.openapi, '3.1.0');
  const result = await new Validator().validate(document);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 1)?.slice(0, 3000));
  const page = await call('GET', '/docs');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.ok(page.text.includes('listSnapshots') && page.text.includes('x-permission') === false && page.text.includes('Permission: <code>restore.run'));
  assert.doesNotMatch(page.text, /<script|https?:\/\/(?!coffer\.dev)[^"<\s]+\.(js|css)/, 'no script, no CDN');
});

test('security sweep: every operation of the OpenAPI document refuses callers without the right', async () => {
  const document = (await call('GET', '/openapi.json')).json as { paths: Record<string, Record<string, { 'x-permission'?: string; operationId: string }>> };
  const roles = (await call('GET', '/roles', { jar: admin })).json.roles as Array<{ name: string; permissions: string[] }>;
  const values: Record<string, string> = { name: 'admin', host: 'hv1', vm: 'web1', job: 'nightly', repo: 'main', snapshot: snapshotId, id: randomUUID(), version: '1' };
  // Operations open to everyone, or to anyone logged in, are few and listed here on purpose: a
  // new one must be added consciously (every other operation gets the 403 checks below).
  const PUBLIC = new Set(['health', 'openapi', 'apiReference', 'login']);
  const ANY_LOGGED_IN = new Set(['logout', 'whoAmI', 'changePassword', 'listTokens', 'createToken', 'deleteToken', 'listRoles']);
  let operations = 0;
  let refusals = 0;
  for (const [template, methods] of Object.entries(document.paths)) {
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      assert.ok(values[name] !== undefined, `the sweep has no value for the path parameter {${name}} of ${template}: add one`);
      return values[name] as string;
    });
    for (const [method, operation] of Object.entries(methods)) {
      if (method === 'head') continue;
      operations += 1;
      const permission = operation['x-permission'];
      assert.ok(permission !== undefined, `${method} ${template} has no x-permission`);
      assert.equal(permission === 'public', PUBLIC.has(operation.operationId), `${method} ${template} (${operation.operationId}) is ${permission}: is that intended?`);
      assert.equal(permission === 'authenticated', ANY_LOGGED_IN.has(operation.operationId), `${method} ${template} (${operation.operationId}) is ${permission}: is that intended?`);
      if (permission === 'public') continue;
      const where = `${method.toUpperCase()} ${template} (${permission})`;
      const send = (options: RequestOptions) => server.request(method.toUpperCase(), path, { ...(method === 'get' || method === 'delete' ? {} : { body: {} }), ...options });
      const anonymous = await send({});
      assert.equal(anonymous.status, 401, `${where} without credentials: ${anonymous.text}`);
      assertProblem(anonymous, 401, 'E_UNAUTHENTICATED');
      assert.equal((await send({ token: tokens.expired as string })).status, 401, `${where} with an expired token`);
      assert.equal((await send({ token: 'coffer_not-a-real-token' })).status, 401, `${where} with an unknown token`);
      refusals += 3;
      if (permission === 'authenticated') continue;
      const none = await send({ token: tokens.none as string });
      assert.equal(none.status, 403, `${where} with a token holding no grant: ${none.text}`);
      assertProblem(none, 403, 'E_FORBIDDEN');
      refusals += 1;
      for (const role of roles.filter((r) => !r.permissions.includes(permission))) {
        const denied = await send({ token: tokens[role.name] as string });
        assert.equal(denied.status, 403, `${where} with a ${role.name} token: ${denied.text}`);
        refusals += 1;
      }
    }
  }
  assert.ok(operations >= 30, `only ${operations} operations in the document`);
  assert.ok(refusals > 100, `${refusals} refusals checked`);
});

test('a RestoreOperator token reads snapshots but cannot delete anything', async () => {
  const restore = tokens.RestoreOperator as string;
  const snapshots = await call('GET', '/repositories/main/snapshots', { token: restore });
  assert.equal(snapshots.status, 200, snapshots.text);
  assert.deepEqual(snapshots.json.items.map((s: { id: string }) => s.id), [snapshotId]);
  const adminTokens = (await call('GET', '/tokens', { jar: admin })).json.items as Array<{ id: string; name: string }>;
  const victim = adminTokens.find((t) => t.name === 'sweep-Auditor')?.id as string;
  assertProblem(await call('DELETE', `/tokens/${victim}`, { token: restore }), 403, 'E_FORBIDDEN');
  assertProblem(await call('DELETE', '/users/admin', { token: restore }), 403, 'E_FORBIDDEN');
  const audit = await asAdmin('GET', '/audit?outcome=denied&action=access.denied');
  assert.ok(audit.json.items.some((e: { target: string; actor: string }) => e.target === '/api/v1/users/admin' && e.actor.startsWith('token:')), audit.text);
});

test('inventory, jobs and repositories read the config and the real repository', async () => {
  const vms = await asAdmin('GET', '/vms?uncovered=true');
  assert.deepEqual(vms.json.items.map((v: { name: string }) => v.name), ['db1']);
  const report = await asAdmin('GET', '/reports/protection');
  assert.deepEqual(report.json.uncovered, ['db1']);
  assert.deepEqual(report.json.pastRpo.map((p: { vm: string }) => p.vm), ['db1'], 'web1 was backed up just now; db1 never');
  const job = await asAdmin('GET', '/jobs/nightly');
  assert.deepEqual(job.json.vms, ['web1']);
  const runs = await asAdmin('GET', '/jobs/nightly/next-runs?count=3&after=2026-03-27T12:00:00Z');
  assert.deepEqual(runs.json.runs, ['2026-03-27T21:00:00.000Z', '2026-03-30T20:00:00.000Z', '2026-03-31T20:00:00.000Z'], 'Berlin time, across the DST change');
  const detail = await asAdmin('GET', `/repositories/main/snapshots/${snapshotId.slice(0, 10)}`);
  assert.equal(detail.status, 200, detail.text);
  assert.equal(detail.json.vm, 'web1');
  assert.equal(detail.json.disks[0].size, 2 * 1024 * 1024);
  assert.deepEqual([detail.json.tags, detail.json.originalTags, detail.json.tagsSetAt], [[], undefined, undefined]);
  // Tagged by the CLI behind the server's back (a tag record under tags/): the detail reads the effective tags from the repository.
  const tag = await runCoffer(['tag', '-r', repo, '--password-file', passFile, snapshotId, '--add', 'legal-hold']);
  assert.equal(tag.code, 0, tag.stderr);
  const tagged = await asAdmin('GET', `/repositories/main/snapshots/${snapshotId}`);
  assert.deepEqual([tagged.json.tags, tagged.json.originalTags], [['legal-hold'], []]);
  assert.match(tagged.json.tagsSetAt, /^\d{4}-\d\d-\d\dT/);
  const stats = await asAdmin('GET', '/repositories/main/stats');
  assert.equal(stats.json.snapshots, 1);
  assertProblem(await asAdmin('GET', '/repositories/main/snapshots/00000000'), 404, 'E_NOT_FOUND');
  const paged = await asAdmin('GET', '/audit?limit=2');
  assert.equal(paged.json.items.length, 2);
  assert.ok(paged.json.total > 2 && typeof paged.json.next === 'string');
  assert.ok(!JSON.stringify(await asAdmin('GET', '/config')).includes('repository passphrase'));
});

test('a config change through the API is validated (a bad schedule is a 400 naming the key), versioned and audit-logged', async () => {
  const current = await asAdmin('GET', '/config');
  const bad = await asAdmin('PUT', '/config', { text: current.json.text.replace('mon..fri 22:00', 'mon..fri 22:61'), comment: 'typo' });
  assertProblem(bad, 400, 'E_CONFIG_INVALID');
  assert.equal(bad.json.errors[0].key, 'jobs[0].schedule');
  assert.equal(bad.json.errors[0].line, 26);
  assert.match(bad.json.errors[0].message, /minute 61/);
  const bodyError = await asAdmin('PUT', '/config', { comment: 'no text', colour: 'blue' });
  assertProblem(bodyError, 400, 'E_VALIDATION');

  const good = await asAdmin('PUT', '/config', { text: current.json.text.replace('four-eyes: false', 'four-eyes: true'), comment: 'four eyes from now on', expectedVersion: current.json.version });
  assert.equal(good.status, 200, good.text);
  assert.deepEqual(good.json, { version: current.json.version + 1, changed: true });
  assertProblem(await asAdmin('PUT', '/config', { text: current.json.text, comment: 'stale', expectedVersion: current.json.version }), 409, 'E_CONFLICT');
  const versions = await asAdmin('GET', '/config/versions');
  assert.equal(versions.json.items[0].comment, 'four eyes from now on');
  assert.equal(versions.json.items[0].author, 'user:admin');
  const old = await asAdmin('GET', `/config/versions/${current.json.version}`);
  assert.match(old.json.text, /four-eyes: false/);
  const audit = await asAdmin('GET', '/audit?action=config.update');
  assert.deepEqual(audit.json.items.map((e: { outcome: string }) => e.outcome), ['success', 'failure']);
  assert.equal(audit.json.items[0].details.comment, 'four eyes from now on');

  // The same change as JSON: the parsed form from GET, edited, sent back.
  const parsed = (await asAdmin('GET', '/config')).json;
  parsed.config.vms[1].tags = ['database'];
  const asJson = await asAdmin('PUT', '/config', { config: parsed.config, comment: 'tag db1' });
  assert.equal(asJson.status, 200, asJson.text);
  assert.deepEqual((await asAdmin('GET', '/vms/db1')).json.tags, ['database']);
  parsed.config.jobs[0].select.hosts = ['hv7'];
  const badJson = await asAdmin('PUT', '/config', { config: parsed.config, comment: 'unknown host' });
  assertProblem(badJson, 400, 'E_CONFIG_INVALID');
  assert.equal(badJson.json.errors[0].key, 'jobs[0].select.hosts[0]');
});

test('four eyes: deleting a user waits for a second administrator', async () => {
  assert.equal((await asAdmin('POST', '/users', { name: 'admin2', password: 'second admin password', grants: [{ role: 'Admin', path: '/' }], mustChangePassword: false })).status, 201);
  assert.equal((await asAdmin('POST', '/users', { name: 'leaver', password: 'leaver password 1' })).status, 201);
  const asked = await asAdmin('DELETE', '/users/leaver');
  assert.equal(asked.status, 202, asked.text);
  assertProblem(await asAdmin('POST', `/approvals/${asked.json.approval}/approve`), 403, 'E_FORBIDDEN');
  // Nor with a token of their own: the same person, another actor name.
  assertProblem(await call('POST', `/approvals/${asked.json.approval}/approve`, { token: tokens.Admin as string }), 403, 'E_FORBIDDEN');
  assert.equal((await asAdmin('GET', '/approvals?status=pending')).json.items[0].requestedByUser, 'admin');
  assert.equal((await asAdmin('GET', '/users/leaver')).status, 200, 'still there');
  const second = new Map<string, string>();
  const login = await call('POST', '/auth/login', { body: { user: 'admin2', password: 'second admin password' }, jar: second });
  const approved = await call('POST', `/approvals/${asked.json.approval}/approve`, { jar: second, headers: { 'x-csrf-token': login.json.csrfToken } });
  assert.equal(approved.status, 200, approved.text);
  assert.equal(approved.json.status, 'approved');
  assertProblem(await asAdmin('GET', '/users/leaver'), 404, 'E_NOT_FOUND');
});

test('bad input answers problem details, never a stack trace', async () => {
  assertProblem(await call('POST', '/auth/login', { rawBody: '{"user": ' }), 400, 'E_VALIDATION');
  assertProblem(await call('POST', '/auth/login', { body: { user: 'admin' } }), 400, 'E_VALIDATION');
  assertProblem(await asAdmin('GET', '/users?limit=100000'), 400, 'E_VALIDATION');
  // Lists paged by cursor take an offset up to 10,000; deeper pages go by cursor (paging.ts).
  assert.equal((await asAdmin('GET', '/tasks?offset=10000')).status, 200);
  const deep = await asAdmin('GET', '/tasks?offset=10001');
  assertProblem(deep, 400, 'E_VALIDATION');
  assert.match(deep.text, /offset/);
  assertProblem(await asAdmin('GET', '/nowhere'), 404, 'E_NOT_FOUND');
  assertProblem(await asAdmin('GET', '/vms/nope'), 404, 'E_NOT_FOUND');
});

test('logins are rate limited after repeated failures', async () => {
  let last: Response | undefined;
  for (let i = 0; i < 6; i++) last = await call('POST', '/auth/login', { body: { user: 'mallory', password: `guess ${i}` } });
  assertProblem(last as Response, 429, 'E_RATE_LIMITED');
  assert.ok(Number(last?.headers['retry-after']) >= 1);
  const audit = await asAdmin('GET', '/audit?actor=user:mallory');
  assert.deepEqual(new Set(audit.json.items.map((e: { outcome: string }) => e.outcome)), new Set(['failure', 'denied']));
});

test('SIGTERM stops cleanly; a restart keeps users, tokens and the certificate, and prints no new password', async () => {
  const fingerprint = new X509Certificate(server.ca).fingerprint256;
  const stopped = await server.stop();
  assert.equal(stopped.code, 0, server.stderr());
  assert.match(server.stdout(), /stopped\n$/);
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  assert.doesNotMatch(server.stdout(), /one-time password/);
  assert.equal(new X509Certificate(server.ca).fingerprint256, fingerprint);
  assert.equal((await call('GET', '/auth/me', { token: tokens.Auditor as string })).json.user, 'admin');
  assert.equal((await call('POST', '/auth/login', { body: { user: 'admin', password: ADMIN_PASSWORD } })).status, 200);
});

test('refusals at start: plain HTTP off loopback (exit 2), an address in use (exit 23), a bad config file (exit 22)', async () => {
  const insecure = await runCoffer(['server', '--data', join(dir, 'other'), '--listen', '0.0.0.0:0', '--insecure-http']);
  assert.equal(insecure.code, 2, insecure.stderr);
  assert.match(insecure.stderr, /^coffer: --insecure-http is refused on 0\.0\.0\.0[^\n]*\n$/);
  const port = new URL(server.url).port;
  const busy = await runCoffer(['server', '--data', join(dir, 'other'), '--listen', `127.0.0.1:${port}`]);
  assert.equal(busy.code, 23, busy.stderr);
  assert.match(busy.stderr, /^coffer: cannot listen on 127\.0\.0\.1:\d+: the address is in use[^\n]*\n$/);
  const badFile = join(dir, 'bad.yaml');
  await writeFile(badFile, 'jobs:\n  - name: x\n    select: {}\n    repository: none\n    schedule: daily\n');
  const bad = await runCoffer(['server', '--data', join(dir, 'other'), '--config', badFile, '--listen', '127.0.0.1:0']);
  assert.equal(bad.code, 22, bad.stderr);
  assert.equal(bad.stderr, `coffer: ${badFile}:4: jobs[0].repository: no repository "none" in repositories\n`);
});
