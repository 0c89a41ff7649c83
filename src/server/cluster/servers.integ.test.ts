/**
 * Two `coffer server` processes on one real PostgreSQL — A with `--no-local-worker` (API and
 * scheduler only), B in the default mode (it also takes tasks, as a worker of every host) —
 * and a `coffer worker` for host hv0. A backup of a VM on hv9 asked for through A runs in B
 * (the only taker of hv9), and A's live event stream shows it (LISTEN/NOTIFY), as do A's
 * `/metrics` per worker; a cancel asked on A stops a backup running in B; A lists the workers
 * and drains one.
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
  const [x1, y1] = await makeVms(dir.path, repository, [{ vm: 'x1', host: 'hv0' }, { vm: 'y1', host: 'hv9' }], 1024 * 1024);
  const [z1] = await makeVms(dir.path, repository, [{ vm: 'z1', host: 'hv9' }], 8 * 1024 * 1024);
  const image = (vm: typeof x1) => (vm?.source as { images: string[] }).images[0] as string;
  const config = `repositories:
  - name: main
    url: ${repository.url}
    passphrase-file: ${repository.passphraseFile}
hosts:
  - name: hv0
  - name: hv9
vms:
  - { name: x1, host: hv0, source: { images: [${image(x1)}] }, tags: [web] }
  - { name: y1, host: hv9, source: { images: [${image(y1)}] }, tags: [web] }
  - { name: z1, host: hv9, source: { images: [${image(z1)}] }, tags: [web] }
jobs:
  - name: nightly
    select: { tags: [web] }
    repository: main
    schedule: "*-01-01 03:00"
limits:
  bandwidth:
    - read: 512K
`;
  for (const name of ['a', 'b']) {
    await mkdir(join(dir.path, name), { recursive: true });
    await writeFile(join(dir.path, name, 'coffer.yaml'), config);
  }
  a = await startServer(['--data', join(dir.path, 'a'), '--listen', '127.0.0.1:0', '--database', url, '--no-local-worker', '--name', 'api-a']);
  token = await adminToken(a);
  b = await startServer(['--data', join(dir.path, 'b'), '--listen', '127.0.0.1:0', '--database', url, '--name', 'api-b', '--lease', '3']);
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

type Listed = { name: string; alive: boolean; hosts: string[] | null; tasksDone: number; bytesRead: number };
const listWorkers = async (s: ServerProcess) => ((await s.request('GET', '/api/v1/workers', { token })).json?.items ?? []) as Listed[];

test('a backup asked for on server A runs in server B (the only taker of its host), and A streams its events', async () => {
  await waitFor('both workers listed on A', async () => {
    const items = await listWorkers(a);
    return items.some((w) => w.name === 'near-hv0' && w.alive) && items.some((w) => w.name === 'api-b' && w.alive) ? true : undefined;
  }, 20_000);
  const listed = await listWorkers(a);
  assert.deepEqual(listed.find((w) => w.name === 'near-hv0')?.hosts, ['hv0']);
  assert.equal(listed.find((w) => w.name === 'api-b')?.hosts, null, 'a server\'s own worker takes every host');
  assert.equal(listed.some((w) => w.name === 'api-a'), false, '--no-local-worker: A takes no task');
  const events = openEvents(a);
  try {
    await waitFor('the event stream open', async () => (events.text().includes('coffer events') ? true : undefined), 10_000);
    const asked = await a.request('POST', '/api/v1/vms/y1/backup', { token, body: {} });
    assert.equal(asked.status, 202, asked.text);
    const taskId = asked.json.task.id as string;
    await waitFor('A streams the task succeeding', async () => (events.text().split('\n\n').some((e) => e.includes(taskId) && e.includes('"status":"succeeded"')) ? true : undefined), 30_000);
    const task = await b.request('GET', `/api/v1/tasks/${taskId}`, { token });
    assert.equal(task.json.status, 'succeeded', `${task.text}\n${b.stdout()}${b.stderr()}`);
  } finally {
    events.stop();
  }
  await waitFor('B\'s figures', async () => ((await listWorkers(a)).find((w) => w.name === 'api-b' && w.tasksDone === 1 && w.bytesRead === 1024 * 1024) ? true : undefined), 10_000);
  const scrape = await a.request('GET', '/metrics');
  assert.equal(scrape.status, 200, scrape.text);
  assert.match(scrape.text, /coffer_worker_tasks_done\{worker="api-b"\} 1\n/);
  assert.match(scrape.text, /coffer_worker_read_bytes\{worker="api-b"\} 1048576\n/);
  assert.match(scrape.text, /coffer_worker_up\{worker="near-hv0"\} 1\n/);
});

test('a cancel asked on server A stops the backup running in server B at its next heartbeat', async () => {
  const asked = await a.request('POST', '/api/v1/vms/z1/backup', { token, body: {} });
  assert.equal(asked.status, 202, asked.text);
  const taskId = asked.json.task.id as string;
  await waitFor('the backup reading', async () => {
    const task = (await a.request('GET', `/api/v1/tasks/${taskId}`, { token })).json as { status: string; progress: number };
    return task.status === 'running' && task.progress > 0 ? true : undefined;
  }, 15_000);
  const cancelled = await a.request('POST', `/api/v1/tasks/${taskId}/cancel`, { token });
  assert.ok(cancelled.status < 300, cancelled.text);
  const ended = await waitFor('the backup cancelled', async () => {
    const task = (await a.request('GET', `/api/v1/tasks/${taskId}`, { token })).json as { status: string };
    return task.status === 'running' ? undefined : task;
  }, 15_000);
  assert.equal(ended.status, 'cancelled');
});

test('A drains the worker: it takes nothing new and exits; an unknown worker is 404', async () => {
  assert.equal((await a.request('POST', '/api/v1/workers/nobody/drain', { token })).status, 404);
  const drained = await a.request('POST', '/api/v1/workers/near-hv0/drain', { token });
  assert.equal(drained.status, 200, drained.text);
  assert.equal(drained.json.draining, true);
  await waitFor('the drained worker exits', async () => (worker.exitCode !== null ? true : undefined), 15_000);
  assert.equal(worker.exitCode, 0, workerOutput);
  assert.match(workerOutput, /draining/);
  const near = (await listWorkers(a)).find((w) => w.name === 'near-hv0');
  assert.equal(near?.alive, false);
});
