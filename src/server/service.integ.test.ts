/**
 * `coffer server` assembled, as a real process: a real SQLite file, a real encrypted repository
 * made by `coffer init`, real worker processes backing up real disk images, a real SMTP server
 * receiving the notifications. Two hosts × two VMs in a job whose sources are slowed by a
 * bandwidth rule, so that backups overlap: the run's tasks all succeed, their snapshots are in
 * the repository, `/events` streams them, and the tasks' own timestamps prove that no host ran
 * two backups at once. A VM whose image is missing fails (after its retry) and a mail with the
 * error text arrives. `/metrics` shows the VMs' last success. The server killed with -9 in the
 * middle of a run: at restart the interrupted VMs are marked and retried, the run completes,
 * and `coffer verify --read-data` finds the repository clean.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cachedFixture, seededBytes, startSmtpSink, type SmtpSink } from '../testing/index.js';
import { parseEventStream } from './http/routes/event-routes.js';
import { runCoffer, startServer, type Response, type ServerProcess } from './http/server-harness.js';

const MiB = 1024 * 1024;
const VMS = [
  { name: 'a1', host: 'hv1' },
  { name: 'a2', host: 'hv1' },
  { name: 'b1', host: 'hv2' },
  { name: 'b2', host: 'hv2' },
];
const dir = await mkdtemp(join(tmpdir(), 'coffer-service-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
const metricsTokenFile = join(dir, 'metrics.token');
let server: ServerProcess;
let sink: SmtpSink;
let token = '';

const config = (images: Record<string, string>, smtpPort: number) => `repositories:
  - name: main
    url: ${repo}
    passphrase-file: ${passFile}
hosts:
  - name: hv1
  - name: hv2
vms:
${VMS.map((v) => `  - { name: ${v.name}, host: ${v.host}, source: { images: [${images[v.name]}] }, tags: [web] }`).join('\n')}
  - { name: broken, host: hv2, source: { images: [${join(dir, 'missing.raw')}] }, tags: [fragile] }
jobs:
  - name: nightly
    select: { tags: [web] }
    repository: main
    schedule: "*-01-01 03:00"
    retention: { keep-daily: 7 }
  - name: fragile
    select: { tags: [fragile] }
    repository: main
    schedule: "*-01-01 04:00"
limits:
  per-host: 1
  bandwidth:
    - read: 1536K
tasks:
  retries: 1
  retry-delay: 1s
metrics:
  token-file: ${metricsTokenFile}
notifications:
  targets:
    sink: { type: smtp, host: 127.0.0.1, port: ${smtpPort}, tls: none, from: coffer@test.invalid, to: [ops@test.invalid], timeout: 10s }
  rules:
    - name: failures
      match: { min-severity: error }
      targets: [sink]
`;

before(async () => {
  const images: Record<string, string> = {};
  for (const [i, vm] of VMS.entries()) {
    images[vm.name] = await cachedFixture(`service-vm-${vm.name}`, { bytes: 2 * MiB, seed: 40 + i }, (tmp) => writeFile(tmp, seededBytes(40 + i, 2 * MiB)));
  }
  await writeFile(passFile, 'service test passphrase\n');
  await writeFile(metricsTokenFile, 'scrape-secret\n');
  const init = await runCoffer(['init', '-r', repo, '--password-file', passFile]);
  assert.equal(init.code, 0, init.stderr);
  sink = await startSmtpSink();
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'coffer.yaml'), config(images, sink.port));
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  token = await adminToken(server);
});

after(async () => {
  await server?.stop();
  await sink?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Logs in with the one-time password, replaces it, and makes an Admin API token. */
async function adminToken(s: ServerProcess): Promise<string> {
  const oneTime = /one-time password (\S+)/.exec(s.stdout())?.[1] as string;
  const jar = new Map<string, string>();
  const login = await s.request('POST', '/api/v1/auth/login', { body: { user: 'admin', password: oneTime }, jar });
  const headers = { 'x-csrf-token': login.json.csrfToken as string };
  assert.equal((await s.request('POST', '/api/v1/auth/password', { body: { current: oneTime, new: 'the service test password' }, jar, headers })).status, 204);
  const made = await s.request('POST', '/api/v1/tokens', { body: { name: 'test', grants: [{ role: 'Admin', path: '/' }] }, jar, headers });
  assert.equal(made.status, 201, made.text);
  return made.json.secret as string;
}

const api = (method: string, path: string, body?: unknown): Promise<Response> => server.request(method, `/api/v1${path}`, { token, ...(body === undefined ? {} : { body }) });

/** Reads `/api/v1/events` until `stop()`; returns what arrived. */
function openEvents(query = '', headers: Record<string, string> = {}): { stop(): Promise<string>; ended(): Promise<string>; text(): string } {
  let text = '';
  let closed: () => void = () => {};
  const ended = new Promise<void>((resolve) => (closed = resolve));
  const req = httpsRequest(new URL(`/api/v1/events${query}`, server.url), { headers: { authorization: `Bearer ${token}`, ...headers }, ca: server.ca }, (res) => {
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    res.on('close', closed);
  });
  req.on('error', () => closed());
  req.end();
  return {
    text: () => text,
    /** Waits for the server to end the stream. */
    async ended() {
      await ended;
      return text;
    },
    async stop() {
      req.destroy();
      await ended;
      return text;
    },
  };
}

interface Task { id: string; vm: string; host: string; status: string; started: string; ended: string; attempt: number; retryOf: string | null; error: { code: string; message: string } | null; result: { snapshot: string; bytesRead: number } | null }

test('a job run on two hosts × two VMs: every backup succeeds, one per host at a time, streamed as events', async () => {
  const events = openEvents();
  await new Promise((r) => setTimeout(r, 200));
  const started = await api('POST', '/jobs/nightly/run');
  assert.equal(started.status, 202, started.text);
  assert.deepEqual([...started.json.vms].sort(), ['a1', 'a2', 'b1', 'b2']);
  const run = started.json.id as string;

  const waited = await api('GET', `/tasks?run=${run}&wait=true&timeout=120`);
  assert.equal(waited.status, 200, waited.text);
  const tasks = waited.json.items as Task[];
  assert.equal(tasks.length, 4);
  for (const t of tasks) assert.equal(t.status, 'succeeded', JSON.stringify(t));
  assert.equal((await api('GET', `/runs/${run}`)).json.status, 'succeeded');

  // Per-host limit 1, from the tasks' own timestamps; and the two hosts did work at once.
  const span = (t: Task) => [Date.parse(t.started), Date.parse(t.ended)] as const;
  const overlaps = (x: Task, y: Task) => span(x)[0] < span(y)[1] && span(y)[0] < span(x)[1];
  for (const host of ['hv1', 'hv2']) {
    const [x, y] = tasks.filter((t) => t.host === host) as [Task, Task];
    assert.ok(!overlaps(x, y), `two backups on ${host} at once: ${JSON.stringify([span(x), span(y)])}`);
  }
  assert.ok(tasks.some((x) => tasks.some((y) => x.host !== y.host && overlaps(x, y))), 'backups on different hosts ran at the same time');

  const snapshots = await api('GET', '/repositories/main/snapshots?tag=job:nightly');
  assert.equal(snapshots.status, 200, snapshots.text);
  assert.deepEqual(snapshots.json.items.map((s: { id: string }) => s.id).sort(), tasks.map((t) => t.result?.snapshot).sort());

  const log = await api('GET', `/tasks/${tasks[0]?.id}/log?limit=1`);
  assert.equal(log.json.items.length, 1);
  assert.match(log.json.items[0].line, /started in worker process/);
  assert.equal(typeof log.json.next, 'number');

  const streamed = parseEventStream(await events.stop());
  const finalTasks = streamed.filter((e) => e.event === 'task').map((e) => JSON.parse(e.data) as Task).filter((t) => t.status === 'succeeded');
  assert.deepEqual(new Set(finalTasks.map((t) => t.id)), new Set(tasks.map((t) => t.id)), 'every task\'s end was streamed');
  assert.ok(streamed.some((e) => e.event === 'run' && JSON.parse(e.data).status === 'succeeded'));
  assert.ok(streamed.some((e) => e.event === 'log' && JSON.parse(e.data).line.includes('snapshot')));
  firstStream = streamed;
});

let firstStream: { id?: string; event: string; data: string }[] = [];

test('/events replays what a client missed after Last-Event-ID; an id no longer kept gets `reset`', async () => {
  assert.ok(firstStream.length > 10, 'the run above streamed events');
  const middle = firstStream[Math.floor(firstStream.length / 2)] as { id: string };
  const missed = firstStream.filter((e) => Number(e.id) > Number(middle.id));
  const replay = openEvents('', { 'last-event-id': middle.id });
  const deadline = Date.now() + 10_000;
  while (parseEventStream(replay.text()).length < missed.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const replayed = parseEventStream(await replay.stop());
  assert.deepEqual(replayed.slice(0, missed.length), missed, 'the events after the id, in order, with their ids');
  const gone = openEvents('', { 'last-event-id': '999999999' });
  while (!gone.text().includes('event: reset') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(parseEventStream(await gone.stop())[0]?.event, 'reset');
});

test('/metrics needs its token and shows each VM\'s last success', async () => {
  const anonymous = await server.request('GET', '/metrics');
  assert.equal(anonymous.status, 401);
  // The run's end (with the repository's size) is recorded just after the run is seen to end.
  let scrape = await server.request('GET', '/metrics', { headers: { authorization: 'Bearer scrape-secret' } });
  for (let i = 0; i < 50 && !/coffer_repository_stored_bytes\{/.test(scrape.text); i++) {
    await new Promise((r) => setTimeout(r, 100));
    scrape = await server.request('GET', '/metrics', { headers: { authorization: 'Bearer scrape-secret' } });
  }
  assert.equal(scrape.status, 200, scrape.text);
  for (const vm of VMS) assert.match(scrape.text, new RegExp(`coffer_vm_last_success_timestamp_seconds\\{vm="${vm.name}",job="nightly"\\} \\d+`));
  assert.match(scrape.text, /coffer_tasks_finished_total\{kind="backup",status="succeeded"\} 4/);
  assert.match(scrape.text, /coffer_repository_stored_bytes\{repository="main"\} [1-9]/);
});

test('a VM whose image is missing fails after its retry, and the failure reaches the SMTP sink with its error text', async () => {
  const started = await api('POST', '/jobs/fragile/run');
  assert.equal(started.status, 202, started.text);
  const tasks = (await api('GET', `/tasks?run=${started.json.id}&wait=true&timeout=60`)).json.items as Task[];
  assert.deepEqual(tasks.map((t) => [t.attempt, t.status]).sort(), [[1, 'failed'], [2, 'failed']]);
  assert.equal((await api('GET', `/runs/${started.json.id}`)).json.status, 'failed');
  const [mail] = await sink.waitForMails(1, 20_000);
  assert.match(mail?.subject ?? '', /fragile/);
  assert.ok(mail?.text.includes('broken') && mail.text.includes('missing.raw'), mail?.text);
  const again = await api('POST', '/jobs/fragile/run-failed');
  assert.equal(again.status, 202, again.text);
  assert.deepEqual(again.json.vms, ['broken']);
  await api('GET', `/tasks?run=${again.json.id}&wait=true&timeout=60`);
});

test('the scheduler preview lists each job\'s next runs and forecasts its next run from the last durations', async () => {
  const preview = await api('GET', '/scheduler/preview?count=2&after=2030-06-01T00:00:00Z');
  assert.equal(preview.status, 200, preview.text);
  const nightly = preview.json.jobs.find((j: { job: string }) => j.job === 'nightly');
  assert.deepEqual(nightly.nextRuns, ['2031-01-01T03:00:00.000Z', '2032-01-01T03:00:00.000Z']);
  assert.deepEqual(nightly.forecast.entries.map((e: { vm: string }) => e.vm).sort(), ['a1', 'a2', 'b1', 'b2']);
  assert.ok(nightly.forecast.entries.every((e: { outcome: string }) => e.outcome === 'fits'));
  const missing = await api('GET', '/tasks/00000000-0000-0000-0000-000000000000');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.code, 'E_TASK_NOT_FOUND');
});

test('kill -9 of the server mid-run: at restart the interrupted VMs are marked and retried, and the repository verifies clean', async () => {
  const started = await api('POST', '/jobs/nightly/run');
  assert.equal(started.status, 202, started.text);
  const run = started.json.id as string;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const running = (await api('GET', `/tasks?run=${run}&status=running`)).json.items as Task[];
    if (running.length > 0) break;
    assert.ok(Date.now() < deadline, 'no backup started');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500));
  server.child.kill('SIGKILL');
  await server.stop();

  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  assert.match(server.stdout(), /task\(s\) were running when the server stopped: marked interrupted/);
  const tasks = (await api('GET', `/tasks?run=${run}&wait=true&timeout=120`)).json.items as Task[];
  const interrupted = tasks.filter((t) => t.status === 'interrupted');
  assert.ok(interrupted.length >= 1, JSON.stringify(tasks));
  for (const t of interrupted) {
    const retry = tasks.find((r) => r.retryOf === t.id);
    assert.equal(retry?.status, 'succeeded', `the retry of ${t.vm}: ${JSON.stringify(retry)}`);
  }
  assert.equal((await api('GET', `/runs/${run}`)).json.status, 'succeeded');
  assert.equal(tasks.filter((t) => t.status === 'succeeded').length, 4);

  // SIGTERM ends the open event streams and the server exits cleanly.
  const events = openEvents('?types=run');
  await new Promise((r) => setTimeout(r, 200));
  const stopped = await server.stop(60_000); // a loaded CI machine may take seconds; the server's own stop deadline is what is checked
  assert.equal(stopped.code, 0, server.stderr());
  // An open stream holding the stop up would last until the server's stop deadline, which then says so.
  assert.doesNotMatch(server.stdout(), /requests still running after/, 'the open stream held the stop up');
  assert.match(await events.ended(), /^: coffer events\n/);
  const verify = await runCoffer(['verify', '-r', repo, '--password-file', passFile, '--read-data'], 120_000);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});
