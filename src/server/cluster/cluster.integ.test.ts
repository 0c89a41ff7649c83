/**
 * Scale-out with real processes: a real PostgreSQL (startPostgres), three `coffer worker`
 * processes (the CLI, as an administrator starts it), real disk images backed up into a real
 * repository. The "server" here is a TaskRunner that never dispatches (an API-and-scheduler
 * server's runner): it queues the runs and publishes the limits. Each worker runs in a network
 * namespace of its own (ip netns, a veth pair), reaching PostgreSQL on its host-side address,
 * so what crosses the network really does and a link can be cut; where namespaces cannot be
 * made (a container without the right), on loopback, and the partition test is skipped.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { LocalBackend, listSnapshots, openRepository } from '../../repo/index.js';
import { createNetworkNamespace, makeTempDir, namespacesNetwork, networkNamespacesWork, removeNetworkNamespaces, startPostgres, type NetworkNamespace, type TestPostgres } from '../../testing/index.js';
import { JobScheduler } from '../scheduler/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { makeRepository, makeVms, runEnded, waitFor } from '../tasks/task-fixtures.js';
import { TaskRunner } from '../tasks/index.js';
import { claimFiring } from './firing-claims.js';
import { publishPolicy } from './cluster-policy.js';
import { maxOverlap } from './task-timeline.js';
import { WorkerRegistry } from './worker-registry.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CLI = fileURLToPath(new URL('../../../../bin/coffer.js', import.meta.url));
const LEASE_S = 3;

const dir = await makeTempDir('coffer-cluster');
const repository = await makeRepository(dir.path);
let pg: TestPostgres;
let url: string;
let state: StateDatabase;
let server: TaskRunner;
const workers = new Map<string, { child: ChildProcess; output: string[]; hosts: string[] }>();
const namespaces = new Map<string, NetworkNamespace>();
const useNamespaces = networkNamespacesWork();

function startWorker(name: string, hosts: string[]): void {
  const ns = namespaces.get(name);
  const database = ns === undefined ? url : `postgres://postgres@${ns.hostAddress}:${pg.port}${new URL(url).pathname}`;
  const argv = [...(ns?.exec ?? []), process.execPath, CLI, 'worker', '--database', database, '--name', name, '--hosts', hosts.join(','), '--tasks', '2', '--lease', String(LEASE_S), '--stop-timeout', '5'];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (t: string) => output.push(t));
  child.stderr?.setEncoding('utf8').on('data', (t: string) => output.push(t));
  workers.set(name, { child, output, hosts });
}

before(async () => {
  pg = await startPostgres();
  if (useNamespaces) {
    // Before any connection of ours: a restart cuts them.
    for (const [i, name] of ['w1', 'w2', 'w3'].entries()) namespaces.set(name, createNetworkNamespace(i + 1));
    await pg.restart({ listenAddresses: [...namespaces.values()].map((n) => n.hostAddress), trustNetwork: namespacesNetwork() });
  }
  url = await pg.createDatabase();
  state = await openStateDatabase({ url });
  server = new TaskRunner(state.db, { dispatch: false });
  await server.start();
  await publishPolicy(state.db, { limits: { host: { default: 1 } }, bandwidth: [{ direction: 'source-read', bytesPerSecond: 3 * MiB }], retry: { retries: 0 } });
  // Three hosts, each reachable from two workers.
  startWorker('w1', ['hv0', 'hv1']);
  startWorker('w2', ['hv1', 'hv2']);
  startWorker('w3', ['hv2', 'hv0']);
  const registry = new WorkerRegistry(state.db);
  // A second or two normally; a minute on a loaded machine (cluster-s3.integ once timed out at 30 s), then what the workers said.
  try {
    await waitFor('three workers registered', async () => ((await registry.list(10_000)).filter((w) => w.alive).length === 3 ? true : undefined), 60_000);
  } catch (error) {
    const registered = (await registry.list(10_000)).map((w) => `${w.name} (alive: ${w.alive})`).join(', ') || 'none';
    throw new Error(`${(error as Error).message}; registered: ${registered}\n${[...workers].map(([name, w]) => `== ${name}\n${w.output.join('')}`).join('\n')}`);
  }
});

after(async () => {
  if (process.env.COFFER_TEST_WORKER_LOG !== undefined) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(process.env.COFFER_TEST_WORKER_LOG, [...workers].map(([name, w]) => `== ${name}\n${w.output.join('')}`).join('\n'));
  }
  for (const { child } of workers.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await server?.close();
  await state?.close();
  await pg?.stop();
  removeNetworkNamespaces();
  await dir.remove();
});

async function taskRows(runId: string) {
  return state.db.selectFrom('tasks').selectAll().where('run_id', '=', runId).execute();
}

/** What the tasks of a run and the workers say, for a failure's message. */
async function whatHappened(runId: string): Promise<string> {
  const rows = (await taskRows(runId)).map((r) => `${r.vm} ${r.status} attempt ${r.attempt} on ${r.worker ?? '-'} progress ${r.progress}`).join('\n');
  return `${rows}\n${[...workers].map(([name, w]) => `== ${name}\n${w.output.join('')}`).join('\n')}`;
}

/** runEnded, with the tasks' rows and the workers' output in its error. */
async function runEndedOrExplain(runId: string, timeoutMs: number) {
  try {
    return await runEnded(server, runId, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${await whatHappened(runId)}`);
  }
}

function cli(args: string[]): { status: number | null; out: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

test('3 workers, 12 VMs on 3 hosts, each host reachable from two workers, per-host limit 1: never two backups of one host at once across workers; all complete', async () => {
  const vms = await makeVms(dir.path, repository, Array.from({ length: 12 }, (_, i) => ({ vm: `spread-${i}`, host: `hv${i % 3}` })), 512 * KiB);
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms });
  const ended = await runEndedOrExplain(run.id, 60_000);
  const tasks = (await server.listTasks({ runId: run.id, limit: 100 })).items;
  assert.equal(ended.status, 'succeeded', `${ended.detail ?? ''}\n${[...workers.values()].map((w) => w.output.join('')).join('\n')}`);
  assert.equal(tasks.length, 12);
  assert.ok(tasks.every((t) => t.status === 'succeeded' && t.attempt === 1));
  const rows = await taskRows(run.id);
  const origin = Math.min(...rows.map((r) => Number(r.started_at)));
  const timeline = (host: string) => rows.filter((r) => r.host === host).sort((x, y) => Number(x.started_at) - Number(y.started_at)).map((r) => `${r.vm} on ${r.worker}: ${Number(r.started_at) - origin}..${Number(r.ended_at) - origin} ms`).join('; ');
  for (const host of ['hv0', 'hv1', 'hv2']) assert.equal(maxOverlap(rows.filter((r) => r.host === host)), 1, `one backup at a time on ${host}: ${timeline(host)}`);
  assert.ok(maxOverlap(rows) >= 2, 'backups of different hosts ran at once');
  for (const row of rows) assert.ok(workers.get(row.worker ?? '')?.hosts.includes(row.host ?? ''), `${row.vm} on ${row.host} ran on ${row.worker}, which does not declare that host`);
  assert.ok(new Set(rows.map((r) => r.worker)).size >= 2, 'the work was spread over workers');
  const listed = await new WorkerRegistry(state.db).list(10_000);
  assert.equal(listed.reduce((n, w) => n + w.tasksDone, 0) >= 12 || listed.some((w) => w.tasksDone > 0), true);
});

test('kill -9 of a worker mid-backup: its task goes back to the queue when the lease expires and completes on another worker; every snapshot restores byte for byte, verify passes', async () => {
  const vms = await makeVms(dir.path, repository, [0, 1, 2].map((i) => ({ vm: `kill-${i}`, host: 'hv0' })), 3 * MiB);
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms });
  const victim = await waitFor('a backup under way', async () => (await taskRows(run.id)).find((r) => r.status === 'running' && Number(r.progress) > 0.1), 30_000);
  const killedWorker = victim.worker as string;
  workers.get(killedWorker)?.child.kill('SIGKILL');
  const ended = await runEndedOrExplain(run.id, 60_000);
  assert.equal(ended.status, 'succeeded', ended.detail ?? '');
  const after = (await taskRows(run.id)).find((r) => r.id === victim.id);
  assert.equal(after?.status, 'succeeded');
  assert.equal(Number(after?.attempt), 2, 'retried once, as attempt 2');
  assert.notEqual(after?.worker, killedWorker);
  const log = (await server.taskLog(victim.id)).items.map((l) => l.line).join('\n');
  assert.match(log, new RegExp(`lease of worker ${killedWorker} expired`));
  const repo = await openRepository(new LocalBackend(repository.url), { passphrase: 'pw', threads: 1 });
  try {
    for (const vm of vms) {
      const snapshots = await listSnapshots(repo, { vm: vm.vm });
      assert.equal(snapshots.length, 1, `${vm.vm}: one snapshot`);
      const out = join(dir.path, `${vm.vm}.restored`);
      const restored = cli(['restore', (snapshots[0] as { id: string }).id, '-r', repository.url, '--password-file', repository.passphraseFile, '--to', out]);
      assert.equal(restored.status, 0, restored.out);
      const source = (vm.source as { images: string[] }).images[0] as string;
      assert.ok((await readFile(out)).equals(await readFile(source)), `${vm.vm} restores byte for byte`);
    }
  } finally {
    await repo.close?.();
  }
  const verified = cli(['verify', '-r', repository.url, '--password-file', repository.passphraseFile, '--read-data']);
  assert.equal(verified.status, 0, verified.out);
  // Bring the third worker back for the next test, and wait until it takes part.
  startWorker(killedWorker, workers.get(killedWorker)?.hosts ?? []);
  const restartedAt = Date.now();
  const registry = new WorkerRegistry(state.db);
  await waitFor(`${killedWorker} back`, async () => ((await registry.list(10_000)).find((w) => w.name === killedWorker && w.alive && Date.parse(w.started) >= restartedAt - 1000) ? true : undefined), 20_000)
    .catch((error: Error) => assert.fail(`${error.message}: ${workers.get(killedWorker)?.output.join('')}`));
});

test('a worker cut off from the network mid-backup: its task completes on another worker; the cut worker stops it after a lease and its late writes change nothing', { skip: useNamespaces ? false : 'network namespaces cannot be made here' }, async () => {
  const vms = await makeVms(dir.path, repository, [0, 1, 2].map((i) => ({ vm: `cut-${i}`, host: 'hv1' })), 16 * MiB); // read 4 MiB at a time: progress passes 0.25 and 0.5 on its way
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms });
  const victim = await waitFor('a backup under way', async () => (await taskRows(run.id)).find((r) => r.status === 'running' && Number(r.progress) > 0.05 && Number(r.progress) < 0.5), 30_000);
  const cutWorker = victim.worker as string;
  const ns = namespaces.get(cutWorker) as NetworkNamespace;
  const output = workers.get(cutWorker)?.output as string[];
  ns.cut();
  try {
    // The cut may fall inside one of its hand-outs (holding the dispatch lock): PostgreSQL ends that session after a lease.
    const ended = await runEndedOrExplain(run.id, 60_000);
    assert.equal(ended.status, 'succeeded', ended.detail ?? '');
    await waitFor('the cut worker gives its task up', async () => (/no heartbeat for \d+ ms/.test(output.join('')) ? true : undefined), 20_000);
  } finally {
    ns.restore();
  }
  // Back on the network: it heartbeats again, and what it had not written yet changes nothing.
  const registry = new WorkerRegistry(state.db);
  const since = Date.now();
  await waitFor('the cut worker heartbeats again', async () => ((await registry.list(10_000)).find((w) => w.name === cutWorker && Date.parse(w.lastHeartbeat) > since) ? true : undefined), 30_000);
  const row = (await taskRows(run.id)).find((r) => r.id === victim.id);
  assert.equal(row?.status, 'succeeded');
  assert.equal(Number(row?.attempt), 2);
  assert.notEqual(row?.worker, cutWorker, 'the task\'s record is the new holder\'s');
  const verified = cli(['verify', '-r', repository.url, '--password-file', repository.passphraseFile, '--read-data']);
  assert.equal(verified.status, 0, verified.out);
  const latest = cli(['restore', `${victim.vm}:latest`, '-r', repository.url, '--password-file', repository.passphraseFile, '--to', join(dir.path, 'cut.restored')]);
  assert.equal(latest.status, 0, latest.out);
  const source = (vms.find((v) => v.vm === victim.vm)?.source as { images: string[] }).images[0] as string;
  assert.ok((await readFile(join(dir.path, 'cut.restored'))).equals(await readFile(source)), `${victim.vm} restores byte for byte`);
});

test('PostgreSQL restarted mid-run: the tasks resume, each VM gets exactly one snapshot', async () => {
  const vms = await makeVms(dir.path, repository, Array.from({ length: 6 }, (_, i) => ({ vm: `restart-${i}`, host: `hv${i % 3}` })), 1 * MiB);
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms });
  // Handed out, not "progress > 0": a 1 MiB disk is read in one group, its progress goes from 0 to done.
  await waitFor('backups under way', async () => ((await taskRows(run.id)).some((r) => r.status === 'running') ? true : undefined), 30_000);
  await pg.restart();
  // This process's pooled connections were cut too: its first reads may fail once.
  const ended = await waitFor('the run ends', async () => {
    const now = await server.getRun(run.id).catch(() => undefined);
    return now !== undefined && now.status !== 'running' ? now : undefined;
  }, 60_000);
  assert.equal(ended.status, 'succeeded', `${ended.detail ?? ''}\n${[...workers.values()].map((w) => w.output.join('')).join('\n')}`);
  const rows = await taskRows(run.id);
  assert.equal(rows.length, 6);
  assert.ok(rows.every((r) => r.status === 'succeeded'));
  const repo = await openRepository(new LocalBackend(repository.url), { passphrase: 'pw', threads: 1 });
  try {
    for (const vm of vms) assert.equal((await listSnapshots(repo, { vm: vm.vm })).length, 1, `${vm.vm}: exactly one snapshot`);
  } finally {
    await repo.close?.();
  }
});

test('drain: the worker takes nothing new and exits; the registry shows it stopped and draining', async () => {
  const drained = cli(['worker', 'drain', 'w2', '--database', url]);
  assert.equal(drained.status, 0, drained.out);
  const child = workers.get('w2')?.child as ChildProcess;
  await waitFor('w2 exits', async () => (child.exitCode !== null ? true : undefined), 15_000);
  const said = workers.get('w2')?.output.join('') ?? '';
  assert.equal(child.exitCode, 0, said);
  const w2 = (await new WorkerRegistry(state.db).list(10_000)).find((w) => w.name === 'w2');
  assert.equal(w2?.draining, true, said);
  assert.equal(w2?.alive, false, `${JSON.stringify(w2)}\n${said}`);
  assert.notEqual(w2?.stopped, null);
  assert.equal(cli(['worker', 'drain', 'nobody', '--database', url]).status, 2);
});

test('two servers with one schedule fire it once', async () => {
  let clock = new Date('2026-03-01T00:00:30Z');
  const now = () => clock;
  const job = { name: 'hourly', schedule: 'hourly', resolveVms: async () => [] };
  const schedulers = [0, 1].map((i) => {
    const runner = new TaskRunner(state.db, { dispatch: false, now });
    return new JobScheduler(state.db, runner, [job], { now, upSince: clock, claimFiring: (name, firing) => claimFiring(state.db, name, firing, `server-${i}`) });
  });
  await Promise.all(schedulers.map((s) => s.tick()));
  clock = new Date('2026-03-01T01:00:02Z');
  await Promise.all(schedulers.map((s) => s.tick()));
  await Promise.all(schedulers.map((s) => s.tick()));
  const runs = (await server.listRuns({ job: 'hourly' })).items;
  assert.equal(runs.length, 1, JSON.stringify(runs));
  assert.equal(runs[0]?.firing, '2026-03-01T01:00:00.000Z');
});
