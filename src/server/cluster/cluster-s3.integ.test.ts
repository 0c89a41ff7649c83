/**
 * Scale-out onto object storage (issue #10: "workers write to repositories on S3 directly,
 * several at once into one repository safely"): three `coffer worker` processes, each in a
 * network namespace of its own (as in cluster.integ.test.ts), take tasks from a real PostgreSQL
 * and back VMs up into ONE repository of the default format (2, packs) on a real Ceph RADOS
 * Gateway (src/testing/ceph-s3.ts). The gateway listens on the first namespace's host-side
 * address too and every namespace routes to the host, so the workers' S3 traffic crosses their
 * veth links like their database traffic; the test process and the `coffer` CLI it runs use the
 * same URL. Where namespaces cannot be made, everything runs on loopback.
 *
 * Each host's reads are paced (a bandwidth rule per host, per-host limit 1), so a backup lasts
 * seconds and backups of different hosts, on different workers, overlap: the first test proves
 * that from the tasks' recorded times. The second kills a worker mid-backup (kill -9 of its
 * process group: the worker and its task's process, as when its machine dies) once its backup
 * has stored packs; the task completes on another worker. The third restores every snapshot
 * byte for byte, runs `verify --read-data`, prunes (the killed run's packs, which no index
 * names, go), verifies again and restores one VM of each host and the killed run's.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { listSnapshots, openRepository, parseS3Location, S3Backend } from '../../repo/index.js';
import { createNetworkNamespace, makeTempDir, namespacesNetwork, networkNamespacesWork, removeNetworkNamespaces, startCephS3, startPostgres, type CephS3, type NetworkNamespace, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { makeVms, runEnded, waitFor } from '../tasks/task-fixtures.js';
import { TaskRunner, type VmTarget } from '../tasks/index.js';
import { publishNightPolicy } from './night-run.js';
import { maxOverlap, mostWorkersAtOnce } from './task-timeline.js';
import { WorkerRegistry } from './worker-registry.js';

const MiB = 1024 * 1024;
const CLI = fileURLToPath(new URL('../../../../bin/coffer.js', import.meta.url));
/** Generous: a loaded 2-CPU machine must not let a living worker's lease expire. */
const LEASE_S = 6;
/** Each host's read rate: a 10 MiB disk takes ~2.5 s, long enough for backups to overlap. */
const READ_RATE = 4 * MiB;
const HOSTS = ['hv0', 'hv1', 'hv2'];
/** Each host reachable from two workers. */
const WORKER_HOSTS: Record<string, string[]> = { w1: ['hv0', 'hv1'], w2: ['hv1', 'hv2'], w3: ['hv2', 'hv0'] };
const PREFIX = 'vms';

const dir = await makeTempDir('coffer-cluster-s3');
const useNamespaces = networkNamespacesWork();
const namespaces = new Map<string, NetworkNamespace>();
const workers = new Map<string, { child: ChildProcess; output: string[] }>();
let pg: TestPostgres;
let url: string;
let s3: CephS3;
let client: S3Client;
let bucket: string;
let repository: { url: string; passphraseFile: string };
let env: Record<string, string>;
let state: StateDatabase;
let server: TaskRunner;
/** Every VM backed up, for the restores at the end. */
const backedUp: VmTarget[] = [];
/** The packs the killed run had stored (none of them named by an index). */
let killedRunPacks: string[] = [];

function startWorker(name: string): void {
  const ns = namespaces.get(name);
  const database = ns === undefined ? url : `postgres://postgres@${ns.hostAddress}:${pg.port}${new URL(url).pathname}`;
  const argv = [...(ns?.exec ?? []), process.execPath, CLI, 'worker', '--database', database, '--name', name, '--hosts', (WORKER_HOSTS[name] as string[]).join(','), '--tasks', '1', '--lease', String(LEASE_S), '--stop-timeout', '5'];
  // detached: a process group of its own (the worker and its tasks' processes), killed as one.
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, detached: true });
  const output: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (t: string) => output.push(t));
  child.stderr?.setEncoding('utf8').on('data', (t: string) => output.push(t));
  workers.set(name, { child, output });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function workerOutput(): string {
  return [...workers].map(([name, w]) => `== ${name}\n${w.output.join('')}`).join('\n');
}

before(async () => {
  pg = await startPostgres();
  if (useNamespaces) {
    for (const [i, name] of Object.keys(WORKER_HOSTS).entries()) namespaces.set(name, createNetworkNamespace(i + 1, { defaultRoute: true }));
    await pg.restart({ listenAddresses: [...namespaces.values()].map((n) => n.hostAddress), trustNetwork: namespacesNetwork() });
  }
  // The gateway's address for everyone: the first namespace's host side (reached by the others through the host).
  const s3Address = namespaces.get('w1')?.hostAddress;
  s3 = await startCephS3(s3Address === undefined ? {} : { listenAddresses: [s3Address] });
  const endpoint = s3Address === undefined ? s3.endpoint : s3.endpointAt(s3Address);
  client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials });
  bucket = await s3.createBucket('workers');
  env = { ...s3.env, XDG_CACHE_HOME: join(dir.path, 'cache') };
  repository = { url: `s3:${endpoint}/${bucket}/${PREFIX}`, passphraseFile: join(dir.path, 'pass') };
  await writeFile(repository.passphraseFile, 'pw\n');
  // As an administrator makes it: `coffer init`, the default format.
  const init = cli(['init', '-r', repository.url, '--password-file', repository.passphraseFile, '--json']);
  assert.equal(init.status, 0, init.out);
  assert.equal((JSON.parse(init.stdout) as { format: number }).format, 2, 'the default format is 2 (packs)');

  url = await pg.createDatabase();
  state = await openStateDatabase({ url });
  server = new TaskRunner(state.db, { dispatch: false });
  await server.start();
  await publishNightPolicy(state.db, HOSTS, READ_RATE);
  for (const name of Object.keys(WORKER_HOSTS)) startWorker(name);
  const registry = new WorkerRegistry(state.db);
  // Each worker starts node, connects from its namespace and registers: a second or two, but
  // CI once saw 30 s pass (a fresh machine, another test's backups and the gateway on the same
  // two cores). A minute, then what the workers said.
  try {
    await waitFor('three workers registered', async () => ((await registry.list(10_000)).filter((w) => w.alive).length === 3 ? true : undefined), 60_000);
  } catch (error) {
    const registered = (await registry.list(10_000)).map((w) => `${w.name} (alive: ${w.alive})`).join(', ') || 'none';
    throw new Error(`${(error as Error).message}; registered: ${registered}\n${workerOutput()}`);
  }
});

after(async () => {
  if (process.env.COFFER_TEST_WORKER_LOG !== undefined) await writeFile(process.env.COFFER_TEST_WORKER_LOG, workerOutput());
  for (const { child } of workers.values()) killGroup(child);
  await server?.close();
  await state?.close();
  await pg?.stop();
  client?.destroy();
  await s3?.stop();
  removeNetworkNamespaces();
  await dir.remove();
});

/** Runs `coffer`: `stdout` alone (for --json), `out` with stderr (for messages). */
function cli(args: string[]): { status: number | null; stdout: string; out: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, out: `${result.stdout}${result.stderr}` };
}

async function taskRows(runId: string) {
  return state.db.selectFrom('tasks').selectAll().where('run_id', '=', runId).execute();
}

/** The keys of the repository's packs on the gateway. */
async function packKeys(): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}/packs/`, ...(token === undefined ? {} : { ContinuationToken: token }) }));
    for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

/** Restores each VM's one snapshot with the `coffer` CLI and compares it with its source image, byte for byte. */
async function assertRestores(vms: readonly VmTarget[], label: string): Promise<void> {
  const repo = await openRepository(new S3Backend(parseS3Location(repository.url), { credentials: s3.credentials }), { passphrase: 'pw', threads: 1 });
  try {
    for (const vm of vms) {
      const snapshots = await listSnapshots(repo, { vm: vm.vm });
      assert.equal(snapshots.length, 1, `${vm.vm}: one snapshot`);
      const out = join(dir.path, `${vm.vm}.${label}.restored`);
      const restored = cli(['restore', (snapshots[0] as { id: string }).id, '-r', repository.url, '--password-file', repository.passphraseFile, '--to', out]);
      assert.equal(restored.status, 0, restored.out);
      const source = (vm.source as { images: string[] }).images[0] as string;
      assert.ok((await readFile(out)).equals(await readFile(source)), `${vm.vm} restores byte for byte (${label})`);
    }
  } finally {
    await repo.close?.();
  }
}

test('3 workers back up 9 VMs on 3 hosts into one S3 repository (format 2) at once: backups on different workers overlap, per-host limit 1 holds, all succeed', async () => {
  const vms = await makeVms(dir.path, repository, Array.from({ length: 9 }, (_, i) => ({ vm: `s3-${i}`, host: HOSTS[i % HOSTS.length] as string })), 10 * MiB);
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms });
  const ended = await runEnded(server, run.id, 120_000);
  assert.equal(ended.status, 'succeeded', `${ended.detail ?? ''}\n${workerOutput()}`);
  backedUp.push(...vms);
  const rows = await taskRows(run.id);
  assert.equal(rows.length, 9);
  assert.ok(rows.every((r) => r.status === 'succeeded' && Number(r.attempt) === 1), JSON.stringify(rows.map((r) => [r.vm, r.status, r.attempt])));
  const origin = Math.min(...rows.map((r) => Number(r.started_at)));
  const timeline = rows.sort((x, y) => Number(x.started_at) - Number(y.started_at)).map((r) => `${r.vm}@${r.host} on ${r.worker}: ${Number(r.started_at) - origin}..${Number(r.ended_at) - origin} ms`).join('; ');
  for (const host of HOSTS) assert.equal(maxOverlap(rows.filter((r) => r.host === host)), 1, `one backup at a time on ${host}: ${timeline}`);
  for (const row of rows) assert.ok(WORKER_HOSTS[row.worker ?? '']?.includes(row.host ?? ''), `${row.vm} on ${row.host} ran on ${row.worker}, which does not declare that host`);
  // The point of the test: writers in different processes, into one repository, at the same time.
  // One task per worker, so every backup running at an instant is another worker's. Not "3": a
  // worker may find both its hosts busy (w1 on hv0 and w2 on hv2 leave w3 nothing), by design.
  assert.ok(mostWorkersAtOnce(rows) >= 2, `backups of two workers overlapped in time: ${timeline}`);
  assert.ok(new Set(rows.map((r) => r.worker)).size >= 2, `the backups were spread over workers: ${timeline}`);
  process.stderr.write(`# ${useNamespaces ? 'in network namespaces' : 'on loopback'}: at most ${mostWorkersAtOnce(rows)} workers writing at once: ${timeline}\n`);
});

test('kill -9 of a worker (its process group) mid-backup into S3: the task completes on another worker', async () => {
  const vms = await makeVms(dir.path, repository, [0, 1].map((i) => ({ vm: `s3-kill-${i}`, host: 'hv0' })), 24 * MiB);
  const before = new Set(await packKeys());
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms });
  // Per-host limit 1 on hv0: one backup runs at a time, so the new packs are its own. Caught between packs (8 MiB each).
  const victim = await waitFor('a backup that stored a pack and is still reading', async () => {
    const running = (await taskRows(run.id)).find((r) => r.status === 'running' && Number(r.progress) < 0.8);
    if (running === undefined) return undefined;
    const stored = (await packKeys()).filter((k) => !before.has(k));
    return stored.length > 0 ? { row: running, stored } : undefined;
  }, 60_000);
  const killedWorker = victim.row.worker as string;
  killGroup(workers.get(killedWorker)?.child as ChildProcess);
  killedRunPacks = victim.stored;

  const ended = await runEnded(server, run.id, 120_000);
  assert.equal(ended.status, 'succeeded', `${ended.detail ?? ''}\n${workerOutput()}`);
  backedUp.push(...vms);
  const row = (await taskRows(run.id)).find((r) => r.id === victim.row.id);
  assert.equal(row?.status, 'succeeded');
  assert.equal(Number(row?.attempt), 2, 'retried once, as attempt 2');
  assert.notEqual(row?.worker, killedWorker);
  const log = (await server.taskLog(victim.row.id)).items.map((l) => l.line).join('\n');
  assert.match(log, new RegExp(`lease of worker ${killedWorker} expired`));
});

test('afterwards: every snapshot restores byte for byte and verify --read-data passes; prune removes the killed run\'s packs and harms no snapshot', async () => {
  assert.equal(backedUp.length, 11, 'the tests before ran');
  assert.ok(killedRunPacks.length > 0);
  await assertRestores(backedUp, 'before-prune');
  const verified = cli(['verify', '-r', repository.url, '--password-file', repository.passphraseFile, '--read-data']);
  assert.equal(verified.status, 0, verified.out);

  const packsBefore = await packKeys();
  for (const key of killedRunPacks) assert.ok(packsBefore.includes(key), `the killed run's pack ${key} is there before prune`);
  const pruned = cli(['prune', '-r', repository.url, '--password-file', repository.passphraseFile, '--wait', '0', '--json']);
  assert.equal(pruned.status, 0, pruned.out);
  const report = JSON.parse(pruned.stdout) as { packs: { packsDeleted: number; packsRepacked: number; packsWritten: number } };
  assert.ok(report.packs.packsDeleted >= killedRunPacks.length, pruned.out);
  process.stderr.write(`# prune: ${JSON.stringify(report.packs)}; the killed run had stored ${killedRunPacks.length} pack(s) when it was killed\n`);
  const packsAfter = new Set(await packKeys());
  for (const key of killedRunPacks) assert.ok(!packsAfter.has(key), `prune removed the killed run's pack ${key}`);
  assert.equal(packsAfter.size, packsBefore.length - report.packs.packsDeleted - report.packs.packsRepacked + report.packs.packsWritten, `what prune says it did is what the gateway holds: ${pruned.out}`);

  // verify --read-data reads every chunk of every snapshot: what prune removed no snapshot
  // needed. Restored again: one VM of each host, and both of the killed run's (their packs lay
  // beside the ones prune deleted).
  const again = cli(['verify', '-r', repository.url, '--password-file', repository.passphraseFile, '--read-data']);
  assert.equal(again.status, 0, again.out);
  await assertRestores([...backedUp.slice(0, HOSTS.length), ...backedUp.slice(9)], 'after-prune');
});
