/**
 * `coffer agent` managed by a real `coffer server`, both real processes over real HTTPS on
 * 127.0.0.1 (the agent pins the fingerprint the server printed): the agent's token is made
 * through the API; a job scheduled (by a config edit) a few seconds ahead is picked up by the agent, whose
 * snapshot (written through the agent repository server with its own key) restores byte for
 * byte (diff -r); a VM whose agent never connects fails E_AGENT_OFFLINE; a cancel stops the
 * agent's backup; the agent killed -9
 * mid-backup fails its task E_AGENT_LOST and leaves no snapshot; the server restarted while the
 * agent polls is reconnected to and serves the next run; a revoked token ends the agent with
 * exit 21 and removes its repository key; an unknown token is refused with exit 21 at once.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { seededBytes } from '../../testing/index.js';
import { COFFER_BIN, runCoffer, startServer, type Response, type ServerProcess } from '../http/server-harness.js';

/** A `coffer agent` child process: its stderr as it comes, and its exit. */
interface AgentProcess {
  child: ChildProcess;
  stderr: () => string;
  done: Promise<{ code: number | null; stderr: string }>;
}

const MiB = 1024 * 1024;
const dir = await mkdtemp(join(tmpdir(), 'coffer-agent-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
const tree = join(dir, 'tree');
const big = join(dir, 'big');
const tokenFile = join(dir, 'agent.token');
const PASSPHRASE = 'agent test passphrase';
let server: ServerProcess | undefined;
let agent: AgentProcess | undefined;
let adminToken = '';
let apiPort = 0;
let agentRepoPort = 0;

/** A one-shot schedule `secondsAhead` from now, in UTC. */
function scheduleIn(secondsAhead: number): string {
  const at = new Date(Date.now() + secondsAhead * 1000);
  return at.toISOString().slice(0, 19).replace('T', ' ');
}

const config = (firing: string) => `repositories:
  - name: main
    url: ${repo}
    passphrase-file: ${passFile}
hosts:
  - name: web01
  - name: slowhost
  - name: ghost
vms:
  - name: web01-files
    host: web01
    source: { agent: web01, files: { paths: [${tree}], exclude: ['*.tmp'] } }
  - name: web01-big
    host: slowhost
    source: { agent: web01, files: { paths: [${big}] } }
  - name: ghost-files
    host: ghost
    source: { agent: ghost, files: { paths: [/etc] } }
jobs:
  - { name: files, select: { names: [web01-files] }, repository: main, schedule: "${firing}", timezone: UTC }
  - { name: big, select: { names: [web01-big] }, repository: main, schedule: "*-01-01 03:00" }
  - { name: ghost, select: { names: [ghost-files] }, repository: main, schedule: "*-01-01 03:00" }
limits:
  bandwidth:
    - { write: 512K, hosts: [slowhost] }
tasks:
  retries: 0
agents:
  offline-after: 3s
  wait-offline: 3s
`;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const startTheServer = () => startServer(['--data', data, '--listen', `127.0.0.1:${apiPort}`, '--agent-repo-listen', `127.0.0.1:${agentRepoPort}`]);
const fingerprint = (s: ServerProcess) => /SHA-256 fingerprint: (\S+)/.exec(s.stdout())?.[1] as string;
const api = (method: string, path: string, body?: unknown): Promise<Response> =>
  (server as ServerProcess).request(method, `/api/v1${path}`, { token: adminToken, ...(body === undefined ? {} : { body }) });
/** Starts `coffer agent` against the server, pinning its fingerprint; every agent is killed in after(). */
function startAgent(token = tokenFile, pollSeconds = 5): AgentProcess {
  const child = spawn(process.execPath, [COFFER_BIN, 'agent', '--server', `https://127.0.0.1:${apiPort}`, '--token-file', token, '--fingerprint', fingerprint(server as ServerProcess), '--poll', String(pollSeconds)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('COFFER_'))),
  });
  agents.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    agentOutput += d.toString();
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stderr: err })));
  return { child, stderr: () => err, done };
}
const agents: ChildProcess[] = [];

/** `coffer ARGS` with the repository's passphrase file; asserts exit 0; its stdout. */
async function cofferOk(...args: string[]): Promise<string> {
  const result = await runCoffer([...args, '--password-file', passFile]);
  assert.equal(result.code, 0, `coffer ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function waitFor(condition: () => Promise<boolean>, options: { timeoutMs: number; intervalMs?: number }): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
  return false;
}

async function waitForTask(job: string, done: (t: { status: string }) => boolean, timeoutMs: number): Promise<{ id: string; status: string; error: { code: string; message: string } | null; result: { snapshot: string } | null }> {
  let last: { id: string; status: string; error: { code: string; message: string } | null; result: { snapshot: string } | null } | undefined;
  const ok = await waitFor(async () => {
    const tasks = await api('GET', `/tasks?job=${job}`);
    last = (tasks.json.items as NonNullable<typeof last>[])[0];
    return last !== undefined && done(last);
  }, { timeoutMs, intervalMs: 200 });
  assert.ok(ok, `job ${job}'s task: ${JSON.stringify(last)}; agent: ${agentStderr()}`);
  return last as NonNullable<typeof last>;
}

let agentOutput = '';
function agentStderr(): string {
  return agentOutput.slice(-2000);
}

before(async () => {
  await mkdir(join(tree, 'sub'), { recursive: true });
  await writeFile(join(tree, 'a.txt'), 'hello from the guest\n');
  await writeFile(join(tree, 'sub', 'data.bin'), seededBytes(7, 3 * MiB));
  await writeFile(join(tree, 'scratch.tmp'), 'left out\n');
  await symlink('a.txt', join(tree, 'link'));
  await mkdir(big, { recursive: true });
  await writeFile(join(big, 'large.bin'), seededBytes(8, 12 * MiB));
  await writeFile(passFile, `${PASSPHRASE}\n`);
  await cofferOk('init', '-r', repo);
  await mkdir(data, { recursive: true });
  apiPort = await freePort();
  agentRepoPort = await freePort();
  await writeFile(join(data, 'coffer.yaml'), config('*-01-01 03:00'));
  server = await startTheServer();
  adminToken = await loginAdmin(server);
  const made = await api('POST', '/agents', { name: 'web01' });
  assert.equal(made.status, 201, made.text);
  await writeFile(tokenFile, `${made.json.token as string}\n`, { mode: 0o600 });
  agent = startAgent();
});

after(async () => {
  for (const child of agents) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await agent?.done;
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function loginAdmin(s: ServerProcess): Promise<string> {
  const oneTime = /one-time password (\S+)/.exec(s.stdout())?.[1] as string;
  const jar = new Map<string, string>();
  const login = await s.request('POST', '/api/v1/auth/login', { body: { user: 'admin', password: oneTime }, jar });
  const headers = { 'x-csrf-token': login.json.csrfToken as string };
  assert.equal((await s.request('POST', '/api/v1/auth/password', { body: { current: oneTime, new: 'the agent test password' }, jar, headers })).status, 204);
  const made = await s.request('POST', '/api/v1/tokens', { body: { name: 'test', grants: [{ role: 'Admin', path: '/' }] }, jar, headers });
  assert.equal(made.status, 201, made.text);
  return made.json.secret as string;
}

test('the agent registers, picks up the scheduled job, and its snapshot restores byte for byte', async () => {
  assert.ok(await waitFor(async () => ((await api('GET', '/agents')).json.items as { online: boolean }[])[0]?.online === true, { timeoutMs: 15_000, intervalMs: 200 }), agentStderr());
  const listed = (await api('GET', '/agents')).json.items[0];
  assert.equal(listed.name, 'web01');
  assert.match(listed.hello.os, /^linux /);
  // The job is scheduled a few seconds ahead now (an edit applies to the scheduler at once).
  const edit = await api('PUT', '/config', { text: config(scheduleIn(3)), comment: 'fire the agent\'s job now' });
  assert.equal(edit.status, 200, edit.text);
  const task = await waitForTask('files', (t) => t.status !== 'queued' && t.status !== 'running', 30_000);
  assert.equal(task.status, 'succeeded', JSON.stringify(task));
  const snapshot = task.result?.snapshot as string;
  const log = (await api('GET', `/tasks/${task.id}/log`)).json.items.map((l: { line: string }) => l.line).join('\n');
  assert.match(log, /handed to agent web01/);
  assert.match(log, new RegExp(`snapshot ${snapshot} saved`));
  // Written under the VM's name, into the repository the server holds; restored with its passphrase.
  const snapshots = JSON.parse(await cofferOk('snapshots', '-r', repo, '--json')) as { id: string }[];
  const mine = snapshots.find((s) => s.id === snapshot);
  assert.ok(mine !== undefined, JSON.stringify(snapshots));
  assert.ok(JSON.stringify(mine).includes('web01-files'), JSON.stringify(mine));
  const out = join(dir, 'restored');
  await cofferOk('restore', '-r', repo, snapshot, '--to', out);
  // diff exits 1 on a difference (execFile rejects, naming it).
  await promisify(execFile)('diff', ['-r', '--no-dereference', '--exclude=*.tmp', tree, join(out, tree)]);
  await assert.rejects(readFile(join(out, tree, 'scratch.tmp')), 'the excluded file stayed out');
  // The agent wrote with a key of its own, next to the administrator's.
  const keys = JSON.parse(await cofferOk('key', 'list', '-r', repo, '--json')) as unknown[];
  assert.equal(keys.length, 2);
});

test('a VM whose agent never connects fails E_AGENT_OFFLINE once its wait runs out', async () => {
  assert.equal((await api('POST', '/jobs/ghost/run')).status, 202);
  const task = await waitForTask('ghost', (t) => t.status !== 'queued', 15_000);
  assert.equal(task.status, 'failed');
  assert.equal(task.error?.code, 'E_AGENT_OFFLINE');
  assert.match(task.error?.message ?? '', /agent ghost was never connected/);
});

const takenBig = () => agentOutput.split('as web01-big').length - 1;

test('a cancel from the server reaches the agent: the backup stops, the task is cancelled, no snapshot is left', async () => {
  assert.equal((await api('POST', '/jobs/big/run')).status, 202);
  const running = await waitForTask('big', (t) => t.status === 'running', 15_000);
  assert.ok(await waitFor(async () => takenBig() > 0, { timeoutMs: 10_000 }), agentStderr());
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal((await api('POST', `/tasks/${running.id}/cancel`)).status, 200);
  const task = await waitForTask('big', (t) => t.status !== 'running', 15_000);
  assert.equal(task.status, 'cancelled', JSON.stringify(task));
  assert.match(agentOutput, /stopping \(the server cancelled it\)/);
  const snapshots = JSON.parse(await cofferOk('snapshots', '-r', repo, '--json')) as unknown[];
  assert.ok(!JSON.stringify(snapshots).includes('web01-big'), 'no snapshot of the cancelled backup');
});

test('the agent killed mid-backup: the task fails E_AGENT_LOST and no snapshot is left', async () => {
  const taken = takenBig();
  assert.equal((await api('POST', '/jobs/big/run')).status, 202);
  await waitForTask('big', (t) => t.status === 'running', 15_000);
  assert.ok(await waitFor(async () => takenBig() > taken, { timeoutMs: 10_000 }), agentStderr());
  await new Promise((resolve) => setTimeout(resolve, 1500));
  (agent as AgentProcess).child.kill('SIGKILL');
  await (agent as AgentProcess).done;
  const task = await waitForTask('big', (t) => t.status !== 'running', 15_000);
  assert.equal(task.status, 'failed');
  assert.equal(task.error?.code, 'E_AGENT_LOST', JSON.stringify(task));
  assert.match(task.error?.message ?? '', /stopped answering while it ran the backup/);
  const snapshots = JSON.parse(await cofferOk('snapshots', '-r', repo, '--json')) as unknown[];
  assert.ok(!JSON.stringify(snapshots).includes('web01-big'), 'no snapshot of the cut backup');
  agent = startAgent();
});

test('the server restarted while the agent polls: the agent reconnects and runs the next job', async () => {
  const connectedBefore = agentOutput.split('connected to').length;
  await (server as ServerProcess).stop();
  server = await startTheServer();
  assert.ok(await waitFor(async () => agentOutput.split('connected to').length > connectedBefore, { timeoutMs: 25_000, intervalMs: 200 }), agentStderr());
  assert.match(agentOutput, /trying again in/);
  assert.equal((await api('POST', '/jobs/files/run')).status, 202);
  const task = await waitForTask('files', (t) => t.status !== 'queued' && t.status !== 'running', 30_000);
  assert.equal(task.status, 'succeeded', JSON.stringify(task));
});

test('a revoked token ends the agent with exit 21 and removes its key; an unknown token is refused at once', async () => {
  const revoked = await api('DELETE', '/agents/web01');
  assert.equal(revoked.status, 200, revoked.text);
  assert.deepEqual(revoked.json.problems, []);
  const result = await (agent as AgentProcess).done;
  assert.equal(result.code, 21, result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  assert.match(result.stderr.trim().split('\n').at(-1) ?? '', /^coffer: .*refused the agent: the agent token is not known/);
  const keys = JSON.parse(await cofferOk('key', 'list', '-r', repo, '--json')) as unknown[];
  assert.equal(keys.length, 1, 'the agent\'s key was removed');
  const bogus = join(dir, 'bogus.token');
  await writeFile(bogus, 'cfr_not-a-token\n');
  const refused = await startAgent(bogus).done;
  assert.equal(refused.code, 21, refused.stderr);
  assert.match(refused.stderr, /^coffer: .*refused the agent: the agent token is not known[^\n]*\n$/, 'one line, no stack trace');
});

test('coffer agent token add|list|remove on the server\'s machine: the running server accepts the token at once, and refuses it once removed', async () => {
  const added = await runCoffer(['agent', 'token', 'add', 'web02', '--data', data]);
  assert.equal(added.code, 0, added.stderr);
  const file = join(dir, 'web02.token');
  await writeFile(file, added.stdout, { mode: 0o600 });
  const listed = await runCoffer(['agent', 'token', 'list', '--data', data, '--json']);
  assert.deepEqual((JSON.parse(listed.stdout) as { tokens: { name: string; appendOnly: boolean }[] }).tokens.map((t) => [t.name, t.appendOnly]), [['web02', true]]);
  // Polls of a second: a token removed by hand (no wake-up from the server) is noticed at the next one.
  agent = startAgent(file, 1);
  assert.ok(await waitFor(async () => ((await api('GET', '/agents')).json.items as { name: string; online: boolean }[]).some((a) => a.name === 'web02' && a.online), { timeoutMs: 15_000, intervalMs: 200 }), agentStderr());
  const removed = await runCoffer(['agent', 'token', 'remove', 'web02', '--data', data]);
  assert.equal(removed.code, 0, removed.stderr);
  const ended = await (agent as AgentProcess).done;
  assert.equal(ended.code, 21, ended.stderr);
});
