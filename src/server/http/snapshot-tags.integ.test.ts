/**
 * Tagging a snapshot through the API of a real `coffer server` process (PUT
 * /repositories/R/snapshots/ID/tags), as an administrator puts a `legal-hold` tag on a
 * snapshot from the console and lifts it: the tag record it writes is what `coffer snapshots`
 * reads; the snapshot index lists the new tags (and the `tag` filter finds them) as soon as the
 * answer comes, not at the next minute's refresh; the change is audit-logged with the tags
 * before and after; a caller without `snapshot.delete` on the snapshot is refused (403) and a
 * bad tag is 400. With `security.four-eyes` on, adding still applies at once but removing waits
 * for a second administrator, whose approval applies the removal to the tags as they are
 * then (a tag added meanwhile stays).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cachedFixture, seededBytes } from '../../testing/index.js';
import { firstAdminToken, runCoffer, startServer, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-api-tags-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
let server: ServerProcess;
let snapshot = '';
let adminToken = '';
let admin2Token = '';
let operatorToken = '';
let otherVmAdminToken = '';

before(async () => {
  const disk = await cachedFixture('server-web1-disk', { bytes: 2 * 1024 * 1024, seed: 8 }, (tmp) => writeFile(tmp, seededBytes(8, 2 * 1024 * 1024)));
  await writeFile(passFile, 'tags passphrase\n');
  assert.equal((await runCoffer(['init', '-r', repo, '--password-file', passFile])).code, 0);
  const backup = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'web1', '--tag', 'nightly', '--json', disk]);
  assert.equal(backup.code, 0, backup.stderr);
  snapshot = (JSON.parse(backup.stdout) as { id: string }).id;
  await mkdir(data, { recursive: true });
  await writeFile(
    join(data, 'coffer.yaml'),
    `security:\n  four-eyes: false\nrepositories:\n  - name: main\n    url: ${repo}\n    passphrase-file: ${passFile}\nhosts:\n  - name: hv1\n  - name: hv2\nvms:\n  - name: web1\n    host: hv1\n    source: { images: [${disk}] }\n  - name: db1\n    host: hv2\n    source: { images: [${disk}] }\n`,
  );
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  adminToken = await firstAdminToken(server, 'tags admin password');
  operatorToken = (await call('POST', '/tokens', { body: { name: 'operator', grants: [{ role: 'Operator', path: '/' }] } })).json.secret;
  otherVmAdminToken = (await call('POST', '/tokens', { body: { name: 'db1-admin', grants: [{ role: 'Admin', path: '/vms/db1' }] } })).json.secret;
  assert.equal((await call('POST', '/users', { body: { name: 'admin2', password: 'second admin password', grants: [{ role: 'Admin', path: '/' }], mustChangePassword: false } })).status, 201);
  const jar = new Map<string, string>();
  const login = await server.request('POST', '/api/v1/auth/login', { body: { user: 'admin2', password: 'second admin password' }, jar });
  admin2Token = (await server.request('POST', '/api/v1/tokens', { jar, headers: { 'x-csrf-token': login.json.csrfToken as string }, body: { name: 'admin2', grants: [{ role: 'Admin', path: '/' }] } })).json.secret;
  assert.ok(adminToken && admin2Token && operatorToken && otherVmAdminToken);
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function call(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  return server.request(method, `/api/v1${path}`, { token: adminToken, ...options });
}

const putTags = (tags: unknown, token = adminToken) => call('PUT', `/repositories/main/snapshots/${snapshot}/tags`, { token, body: { tags } });
/** The snapshot's tags as the index lists them (no refresh asked for). */
const listedTags = async () => ((await call('GET', '/repositories/main/snapshots')).json.items as Array<{ id: string; tags: string[] }>).find((s) => s.id === snapshot)?.tags;
/** The ids the index's `tag` filter finds. */
const tagged = async (tag: string) => ((await call('GET', `/repositories/main/snapshots?tag=${encodeURIComponent(tag)}`)).json.items as Array<{ id: string }>).map((s) => s.id);
/** The snapshot's tags as `coffer snapshots --json` reads them from the repository. */
async function cliTags(): Promise<{ tags: string[]; originalTags?: string[] }> {
  const listed = await runCoffer(['snapshots', '-r', repo, '--password-file', passFile, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const found = (JSON.parse(listed.stdout) as Array<{ id: string; tags: string[]; originalTags?: string[] }>).find((s) => s.id === snapshot);
  assert.ok(found !== undefined, listed.stdout);
  return found;
}

function assertProblem(response: Response, status: number, code: string): void {
  assert.equal(response.status, status, `${response.status} ${response.text}`);
  assert.equal(response.json.code, code, response.text);
}

test('an administrator adds a tag and removes one: the index lists them at once, coffer snapshots reads them, the audit log says before and after', async () => {
  assert.deepEqual(await listedTags(), ['nightly'], 'the index was built with the backup\'s tag');
  const added = await putTags(['nightly', 'legal-hold']);
  assert.equal(added.status, 200, added.text);
  assert.deepEqual(added.json, { id: snapshot, vm: 'web1', tags: ['nightly', 'legal-hold'], previousTags: ['nightly'], changed: true });
  assert.deepEqual(await listedTags(), ['nightly', 'legal-hold'], 'listed at once, not at the next refresh');
  assert.deepEqual(await tagged('legal-hold'), [snapshot]);
  const detail = (await call('GET', `/repositories/main/snapshots/${snapshot.slice(0, 12)}`)).json;
  assert.deepEqual([detail.tags, detail.originalTags], [['nightly', 'legal-hold'], ['nightly']]);
  assert.ok(Date.parse(detail.tagsSetAt) > Date.now() - 60_000, detail.tagsSetAt);
  const written = await cliTags();
  assert.deepEqual([written.tags, written.originalTags], [['nightly', 'legal-hold'], ['nightly']]);

  const again = await putTags(['legal-hold', 'nightly']);
  assert.deepEqual([again.status, again.json.changed, again.json.tags], [200, false, ['nightly', 'legal-hold']], 'the same tags in another order change nothing');

  const removed = await putTags(['legal-hold']);
  assert.equal(removed.status, 200, removed.text);
  assert.deepEqual([removed.json.tags, removed.json.previousTags], [['legal-hold'], ['nightly', 'legal-hold']]);
  assert.deepEqual(await listedTags(), ['legal-hold']);
  assert.deepEqual(await tagged('nightly'), [], 'the tag filter no longer finds it');
  const cli = await cliTags();
  assert.deepEqual([cli.tags, cli.originalTags], [['legal-hold'], ['nightly']]);

  const audit = (await call('GET', '/audit?action=snapshot.tags')).json.items as Array<{ actor: string; target: string; outcome: string; details: { before: string[]; after: string[]; changed: boolean } }>;
  const changes = audit.filter((e) => e.details.changed).reverse();
  assert.deepEqual(changes.map((e) => [e.outcome, e.details.before, e.details.after]), [['success', ['nightly'], ['nightly', 'legal-hold']], ['success', ['nightly', 'legal-hold'], ['legal-hold']]]);
  assert.ok(changes.every((e) => e.target === `/repositories/main/snapshots/${snapshot}` && e.actor.startsWith('token:')), JSON.stringify(changes));
});

test('a caller without snapshot.delete on the snapshot is refused (403), and a bad tag is 400; the tags stay', async () => {
  const before = await cliTags();
  assertProblem(await putTags([], operatorToken), 403, 'E_FORBIDDEN');
  assertProblem(await putTags([], otherVmAdminToken), 403, 'E_FORBIDDEN');
  assertProblem(await putTags(['legal-hold', 'bad\u0001tag']), 400, 'E_USAGE');
  assertProblem(await putTags(['']), 400, 'E_USAGE');
  assertProblem(await putTags(['x'.repeat(201)]), 400, 'E_USAGE');
  assertProblem(await call('PUT', `/repositories/main/snapshots/${snapshot}/tags`, { body: { add: ['x'] } }), 400, 'E_VALIDATION');
  assertProblem(await call('PUT', `/repositories/main/snapshots/${'0'.repeat(64)}/tags`, { body: { tags: [] } }), 404, 'E_NOT_FOUND');
  assert.deepEqual(await cliTags(), before);
  assert.deepEqual(await listedTags(), before.tags);
});

test('four eyes: adding applies at once; removing waits for a second administrator, whose approval removes it from the tags as they are then', async () => {
  const config = (await call('GET', '/config')).json;
  const on = await call('PUT', '/config', { body: { text: config.text.replace('four-eyes: false', 'four-eyes: true'), comment: 'four eyes', expectedVersion: config.version } });
  assert.equal(on.status, 200, on.text);
  assert.equal((await call('GET', '/auth/me')).json.fourEyes, true, 'the console can say a removal needs approval');

  const added = await putTags(['legal-hold', 'quarterly']);
  assert.deepEqual([added.status, added.json.tags], [200, ['legal-hold', 'quarterly']], 'adding needs no approval');

  const asked = await putTags(['quarterly']);
  assert.equal(asked.status, 202, asked.text);
  assert.equal(asked.json.status, 'pending');
  assert.deepEqual(await listedTags(), ['legal-hold', 'quarterly'], 'nothing removed before the approval');
  assert.deepEqual((await cliTags()).tags, ['legal-hold', 'quarterly']);
  const request = ((await call('GET', '/approvals?status=pending')).json.items as Array<{ id: string; operation: string; summary: string }>).find((a) => a.id === asked.json.approval);
  assert.equal(request?.operation, 'snapshot.tags');
  assert.match(request?.summary ?? '', /legal-hold, quarterly → quarterly \(removes legal-hold\)/);

  // Meanwhile another tag is added: the approval removes what it approved, nothing else.
  assert.equal((await putTags(['legal-hold', 'quarterly', 'audit-2026'])).status, 200);
  assertProblem(await call('POST', `/approvals/${asked.json.approval}/approve`), 403, 'E_FORBIDDEN');
  const approved = await call('POST', `/approvals/${asked.json.approval}/approve`, { token: admin2Token });
  assert.equal(approved.status, 200, approved.text);
  assert.equal(approved.json.status, 'approved', approved.text);
  assert.match(approved.json.result, /quarterly, audit-2026 \(were legal-hold, quarterly, audit-2026\)/);
  assert.deepEqual(await listedTags(), ['quarterly', 'audit-2026'], 'listed at once after the approval');
  assert.deepEqual(await tagged('legal-hold'), []);
  assert.deepEqual((await cliTags()).tags, ['quarterly', 'audit-2026']);

  const audit = (await call('GET', '/audit?action=snapshot.tags')).json.items as Array<{ actor: string; outcome: string; details: { approved?: boolean; approval?: string; before: string[]; after: string[] } }>;
  assert.ok(audit.some((e) => e.outcome === 'pending' && e.details.approval === asked.json.approval && e.details.after.join() === 'quarterly'), JSON.stringify(audit));
  assert.ok(audit.some((e) => e.outcome === 'success' && e.details.approved === true && e.actor.includes('admin2') && e.details.after.join() === 'quarterly,audit-2026'), JSON.stringify(audit));
});
