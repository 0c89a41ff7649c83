/**
 * The last administrator on `/` stays one, through the real `coffer server` (SQLite state,
 * four eyes on): not demoted by a grants change, not deleted by an approval decided after the
 * other administrator left. Each refusal is a 409 problem with `E_LAST_ADMIN` that says what to
 * do instead. Two administrators demoting each other at once: auth/user-store.integ.test.ts (on
 * PostgreSQL, where two servers make that race real; one SQLite server runs them one by one).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-last-admin-'));
let server: ServerProcess;
const ROOT_ADMIN = [{ role: 'Admin', path: '/' }];

before(async () => {
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'data', 'coffer.yaml'), 'security:\n  four-eyes: true\n');
  server = await startServer(['--data', join(dir, 'data'), '--listen', '127.0.0.1:0']);
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A logged-in user: their cookie jar and CSRF token. */
interface Session {
  name: string;
  call(method: string, path: string, body?: unknown): Promise<Response>;
}

const call = (method: string, path: string, options: RequestOptions = {}): Promise<Response> => server.request(method, `/api/v1${path}`, options);

async function logIn(name: string, password: string): Promise<Session> {
  const jar = new Map<string, string>();
  const login = await call('POST', '/auth/login', { body: { user: name, password }, jar });
  assert.equal(login.status, 200, login.text);
  const csrf = login.json.csrfToken as string;
  return { name, call: (method, path, body) => call(method, path, { jar, headers: { 'x-csrf-token': csrf }, ...(body === undefined ? {} : { body }) }) };
}

function assertLastAdmin(response: Response): void {
  assert.equal(response.status, 409, response.text);
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  assert.equal(response.json.code, 'E_LAST_ADMIN', response.text);
  assert.match(response.json.detail, /last administrator on \/ cannot .*give another user Admin on \/ first/);
  assert.doesNotMatch(response.text, /\n\s+at |node:internal|\.js:\d+/, 'no stack trace');
}

const rootAdmins = async (as: Session): Promise<string[]> => {
  const users = await as.call('GET', '/users?limit=500');
  assert.equal(users.status, 200, users.text);
  return (users.json.items as Array<{ name: string; grants: Array<{ role: string; path: string }> }>).filter((u) => u.grants.some((g) => g.role === 'Admin' && g.path === '/')).map((u) => u.name);
};

async function firstAdmin(): Promise<Session> {
  const oneTime = /one-time password (\S+)/.exec(server.stdout())?.[1];
  assert.ok(oneTime !== undefined, server.stdout());
  const first = await logIn('admin', oneTime);
  assert.equal((await first.call('POST', '/auth/password', { current: oneTime, new: 'the first admin password' })).status, 204);
  return logIn('admin', 'the first admin password');
}

async function createAdmin(by: Session, name: string): Promise<Session> {
  const made = await by.call('POST', '/users', { name, password: `${name} password here`, grants: ROOT_ADMIN, mustChangePassword: false });
  assert.equal(made.status, 201, made.text);
  return logIn(name, `${name} password here`);
}

test('the last administrator on / cannot lose that grant, nor be deleted by an approval decided later', async () => {
  const admin = await firstAdmin();
  const second = await createAdmin(admin, 'second');

  // With another administrator there, a demotion is fine.
  assert.equal((await admin.call('PUT', '/users/second/grants', { grants: [{ role: 'Operator', path: '/' }] })).status, 200);
  assert.deepEqual(await rootAdmins(admin), ['admin']);
  // Now the last: neither to another role, nor to Admin on a narrower path, nor to nothing.
  for (const grants of [[{ role: 'Auditor', path: '/' }], [{ role: 'Admin', path: '/jobs/nightly' }], []]) {
    assertLastAdmin(await admin.call('PUT', '/users/admin/grants', { grants }));
  }
  assert.deepEqual((await admin.call('GET', '/users/admin/grants')).json.grants, ROOT_ADMIN, 'unchanged');

  // Two administrators each ask to delete the other; once the first deletion is approved, the
  // second would leave none: it fails, and its approval says why.
  assert.equal((await admin.call('PUT', '/users/second/grants', { grants: ROOT_ADMIN })).status, 200);
  const deleteSecond = await admin.call('DELETE', '/users/second');
  assert.equal(deleteSecond.status, 202, deleteSecond.text);
  const deleteAdmin = await second.call('DELETE', '/users/admin');
  assert.equal(deleteAdmin.status, 202, deleteAdmin.text);
  const first = await admin.call('POST', `/approvals/${deleteAdmin.json.approval}/approve`);
  assert.equal(first.json.status, 'approved', first.text);
  const refused = await second.call('POST', `/approvals/${deleteSecond.json.approval}/approve`);
  assert.equal(refused.status, 200, refused.text);
  assert.equal(refused.json.status, 'failed', refused.text);
  assert.match(refused.json.result, /last administrator on \/ cannot be deleted/);
  assert.deepEqual(await rootAdmins(second), ['second']);
  assertProblem409Self(await second.call('DELETE', '/users/second'));
});

/** Deleting oneself stays refused by its own rule, before the store's. */
function assertProblem409Self(response: Response): void {
  assert.equal(response.status, 409, response.text);
  assert.match(response.json.detail, /cannot delete yourself/);
}
