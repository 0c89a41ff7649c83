/**
 * Two stateless `coffer server` processes (`--no-local-worker`) on one real PostgreSQL, and a
 * `coffer worker` process: a backup asked for through server A runs on the worker, and
 * server B's live event stream shows it (LISTEN/NOTIFY); B lists the worker and drains it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, startPostgres, type TestPostgres } from '../../testing/index.js';
import { COFFER_BIN, startServer, type ServerProcess } from '../http/server-harness.js';
import { makeRepository, makeVms, waitFor } from '../tasks/task-fixtures.js';

const dir = await makeTempDir('coffer-servers');
let pg: TestPostgres;
let url: string;
let a: ServerProcess;
let b: ServerProcess;
let worker: ChildProcess;
let workerOutput = '';
let token = '';

before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase();
  const repository = await makeRepository(dir.path);
  const [vm] = await makeVms(dir.path, repository, [{ vm: 'x1', host: 'hv0' }], 1024 * 1024);
  const config = `repositories:
  - name: main
    url: ${repository.url}
    passphrase-file: ${repository.passphraseFile}
hosts:
  - name: hv0
vms:
  - { name: x1, host: hv0, source: { images: [${(vm?.source as { images: string[] }).images[0]}] }, tags: [web] }
jobs:
  - name: nightly
    select: { tags: [web] }
    repository: main
    schedule: "*-01-01 03:00"
`;
  for (const name of ['a', 'b']) {
    await mkdir(join(dir.path, name), { recursive: true });
    await writeFile(join(dir.path, name, 'coffer.yaml'), config);
  }
  a = await startServer(['--data', join(dir.path, 'a'), '--listen', '127.0.0.1:0', '--database', url, '--no-local-worker', '--name', 'api-a']);
  token = await adminToken(a);
  b = await startServer(['--data', join(dir.path, 'b'), '--listen', '127.0.0.1:0', '--database', url, '--no-local-worker', '--name', 'api-b']);
  worker = spawn(process.execPath, [COFFER_BIN, 'worker', '--database', url, '--hosts', 'hv0', '--name', 'near-hv0', '--lease', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stdout?.setEncoding('utf8').on('data', (t: string) => (workerOutput += t));
  worker.stderr?.setEncoding('utf8').on('data', (t: string) => (workerOutput += t));
});

after(async () => {
  if (worker !== undefined && worker.exitCode === null) worker.kill('SIGKILL');
  await a?.stop();
  await b?.stop();
  await pg?.stop();
  await dir.remove();
});

/** Logs in with the one-time password, replaces it, and makes an Admin API token (valid on every server: the database is shared). */
async function adminToken(s: ServerProcess): Promise<string> {
  const oneTime = /one-time password (\S+)/.exec(s.stdout())?.[1] as string;
  const jar = new Map<string, string>();
  const login = await s.request('POST', '/api/v1/auth/login', { body: { user: 'admin', password: oneTime }, jar });
  const headers = { 'x-csrf-token': login.json.csrfToken as string };
  assert.equal((await s.request('POST', '/api/v1/auth/password', { body: { current: oneTime, new: 'the servers test password' }, jar, headers })).status, 204);
  const made = await s.request('POST', '/api/v1/tokens', { body: { name: 'test', grants: [{ role: 'Admin', path: '/' }] }, jar, headers });
  assert.equal(made.status, 201, made.text);
  return made.json.secret as string;
}

function openEvents(s: ServerProcess): { text(): string; stop(): void } {
  let text = '';
  const req = httpsRequest(new URL('/api/v1/events', s.url), { headers: { authorization: `Bearer ${token}` }, ca: s.ca }, (res) => {
    res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  });
  req.on('error', () => {});
  req.end();
  return { text: () => text, stop: () => req.destroy() };
}

test('a backup asked for on server A runs on the worker, and server B streams its events; B lists the worker and drains it', async () => {
  const listed = await waitFor('the worker listed on B', async () => {
    const res = await b.request('GET', '/api/v1/workers', { token });
    return (res.json?.items as { name: string; alive: boolean }[] | undefined)?.find((w) => w.name === 'near-hv0' && w.alive);
  }, 20_000);
  assert.deepEqual((listed as unknown as { hosts: string[] }).hosts, ['hv0']);
  const events = openEvents(b);
  try {
    await waitFor('the event stream open', async () => (events.text().includes('coffer events') ? true : undefined), 10_000);
    const asked = await a.request('POST', '/api/v1/vms/x1/backup', { token, body: {} });
    assert.equal(asked.status, 202, asked.text);
    const taskId = asked.json.task.id as string;
    await waitFor('B streams the task succeeding', async () => (events.text().split('\n\n').some((e) => e.includes(taskId) && e.includes('"status":"succeeded"')) ? true : undefined), 30_000);
    const task = await b.request('GET', `/api/v1/tasks/${taskId}`, { token });
    assert.equal(task.json.status, 'succeeded', `${task.text}\n${workerOutput}`);
  } finally {
    events.stop();
  }
  // Its figures arrive with its next heartbeat (a third of the lease).
  const near = await waitFor('the worker\'s figures', async () => {
    const items = (await b.request('GET', '/api/v1/workers', { token })).json.items as { name: string; tasksDone: number; bytesRead: number }[];
    return items.find((w) => w.name === 'near-hv0' && w.tasksDone === 1);
  }, 10_000);
  assert.equal(near?.bytesRead, 1024 * 1024);
  assert.equal((await b.request('POST', '/api/v1/workers/nobody/drain', { token })).status, 404);
  const drained = await b.request('POST', '/api/v1/workers/near-hv0/drain', { token });
  assert.equal(drained.status, 200, drained.text);
  await waitFor('the drained worker exits', async () => (worker.exitCode !== null ? true : undefined), 15_000);
  assert.equal(worker.exitCode, 0, workerOutput);
  assert.match(workerOutput, /draining/);
});
