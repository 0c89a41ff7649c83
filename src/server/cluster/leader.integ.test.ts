/**
 * Two real `coffer server` processes on one real PostgreSQL, both running the scheduler, with
 * a job that fires every 3 s and a webhook rule for `job.finished` (to a local HTTP receiver):
 *
 * - every firing starts exactly one run (firing_claims), across processes, not only schedulers;
 * - exactly one server leads (leader-lease.ts): each run's `job.finished` is recorded once and
 *   the webhook receives it once (without the leader, each server recorded and sent its own);
 * - a server still starting (not yet in the lease) hears the others' events and records none;
 * - kill -9 of the leader: the other server leads within the lease and a renewal
 *   (`--lease 3`: 4 s; asserted with 2 s to spare for a loaded machine), and the runs that end
 *   afterwards are still notified exactly once.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, startHttpReceiver, startPostgres, type HttpReceiver, type TestPostgres } from '../../testing/index.js';
import { ConfigStore } from '../config/index.js';
import { startServer, type ServerProcess } from '../http/server-harness.js';
import { RepositoryCatalog } from '../inventory/index.js';
import { startServiceParts } from '../service-parts.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { makeRepository, waitFor } from '../tasks/task-fixtures.js';
import { currentLeader, UPKEEP_ROLE } from './leader-lease.js';

const LEASE_S = 3;
const dir = await makeTempDir('coffer-leader');
let pg: TestPostgres;
let url: string;
let state: StateDatabase;
let hook: HttpReceiver;
const servers = new Map<string, ServerProcess>();

before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase();
  hook = await startHttpReceiver();
  const repository = await makeRepository(dir.path);
  const config = `repositories:
  - name: main
    url: ${repository.url}
    passphrase-file: ${repository.passphraseFile}
hosts:
  - name: hv0
jobs:
  - name: tick
    select: { tags: [nothing-has-this-tag] }
    repository: main
    schedule: "*:*:00/3"
notifications:
  targets:
    hook:
      type: webhook
      url: ${hook.url}/hook
  rules:
    - name: runs
      match: { types: [job.finished] }
      targets: [hook]
`;
  // Started one after the other: the first creates the database's tables.
  for (const name of ['s1', 's2']) {
    await mkdir(join(dir.path, name), { recursive: true });
    await writeFile(join(dir.path, name, 'coffer.yaml'), config);
    servers.set(name, await startServer(['--data', join(dir.path, name), '--listen', '127.0.0.1:0', '--database', url, '--no-local-worker', '--name', name, '--lease', String(LEASE_S)]));
  }
  state = await openStateDatabase({ url });
});

after(async () => {
  for (const s of servers.values()) await s.stop(5000);
  await state?.close();
  await hook?.close();
  await pg?.stop();
  await dir.remove();
});

const endedRuns = async () => (await state.db.selectFrom('runs').select(['id', 'firing', 'status', 'ended_at']).where('job', '=', 'tick').execute()).filter((r) => r.status !== 'running');
const finishedEvents = async () => state.db.selectFrom('notify_events').select(['run_id']).where('type', '=', 'job.finished').execute();
const output = () => [...servers].map(([name, s]) => `== ${name}\n${s.stdout()}${s.stderr()}`).join('\n');

/** Each run ended before `before` has exactly one job.finished event and one webhook request. */
async function notifiedOnce(runs: readonly { id: string }[]): Promise<void> {
  await waitFor('every run notified', async () => {
    const events = await finishedEvents();
    return runs.every((r) => events.some((e) => e.run_id === r.id)) && runs.every((r) => hook.requests.some((q) => q.body.includes(r.id))) ? true : undefined;
  }, 15_000).catch((error: Error) => assert.fail(`${error.message}\n${output()}`));
  await new Promise((resolve) => setTimeout(resolve, 1500)); // a second server's copy would come by now
  const events = await finishedEvents();
  for (const run of runs) {
    assert.equal(events.filter((e) => e.run_id === run.id).length, 1, `run ${run.id}: one job.finished recorded`);
    assert.equal(hook.requests.filter((q) => q.body.includes(run.id)).length, 1, `run ${run.id}: one webhook request`);
  }
}

test('two server processes, one schedule: each firing starts one run; one leader; each run notified once', async () => {
  const runs = await waitFor('two firings', async () => {
    const ended = await endedRuns();
    return ended.length >= 2 ? ended : undefined;
  }, 30_000).catch((error: Error) => assert.fail(`${error.message}\n${output()}`));
  const firings = new Map<number, number>();
  for (const r of runs) firings.set(Number(r.firing), (firings.get(Number(r.firing)) ?? 0) + 1);
  for (const [firing, count] of firings) assert.equal(count, 1, `firing ${new Date(firing).toISOString()}: one run`);
  const claimedBy = new Set((await state.db.selectFrom('firing_claims').select('claimed_by').where('job', '=', 'tick').execute()).map((c) => c.claimed_by));
  assert.ok([...claimedBy].every((name) => servers.has(name)));
  const leader = await currentLeader(state.db, UPKEEP_ROLE);
  assert.ok(leader !== undefined && servers.has(leader), `a leader: ${leader}\n${output()}`);
  assert.equal([...servers.values()].filter((s) => /: leader \(/.test(s.stdout())).length, 1, `one server says it leads\n${output()}`);
  await notifiedOnce(runs);
});

test('a server still starting (its parts open, not yet in the lease) hears the runs that end and records none of them', async () => {
  const configFile = join(dir.path, 's1', 'coffer.yaml');
  const { store: config } = await ConfigStore.open(state.db, configFile);
  const catalog = new RepositoryCatalog(() => config.config.repositories ?? [], state.db);
  const errors: string[] = [];
  const parts = await startServiceParts({
    db: state.db, config, catalog, print: () => {}, logError: (error, where) => errors.push(`${where}: ${(error as Error).message}`),
    requestApproval: () => Promise.reject(new Error('not in this test')),
    cluster: { url, name: 'starting', version: 'test', localWorker: false, leaseMs: LEASE_S * 1000 },
  });
  // What the starting server hears, and what it hands its notifier (nothing, not yet leading).
  const heard = new Set<string>();
  parts.runner.events.on('run', (run: { id: string; status: string }) => {
    if (run.status !== 'running') heard.add(run.id);
  });
  const emitted: string[] = [];
  const emit = parts.notifier.emit.bind(parts.notifier);
  parts.notifier.emit = (event) => {
    emitted.push(`${event.type} ${event.runId ?? ''}`);
    return emit(event);
  };
  try {
    const runs = await waitFor('two runs the starting server heard end', async () => {
      const ended = (await endedRuns()).filter((r) => heard.has(r.id));
      return ended.length >= 2 ? ended : undefined;
    }, 20_000).catch((error: Error) => assert.fail(`${error.message}\n${output()}`));
    await notifiedOnce(runs);
    assert.deepEqual(emitted, [], 'the starting server handed its notifier nothing');
    assert.notEqual(await currentLeader(state.db, UPKEEP_ROLE), 'starting');
  } finally {
    await parts.drain(5000);
    await catalog.close();
  }
  assert.deepEqual(errors, []);
});

test('kill -9 of the leader: the other server leads within the lease and a renewal; later runs are still notified once', async () => {
  const leader = await currentLeader(state.db, UPKEEP_ROLE) as string;
  const survivor = [...servers.keys()].find((name) => name !== leader) as string;
  const killedAt = Date.now();
  const victim = servers.get(leader) as ServerProcess;
  victim.child.kill('SIGKILL');
  await victim.stop();
  servers.delete(leader);
  await waitFor('the survivor leads', async () => ((await currentLeader(state.db, UPKEEP_ROLE)) === survivor ? true : undefined), (LEASE_S * 4 / 3 + 2) * 1000)
    .catch((error: Error) => assert.fail(`${error.message} (${Date.now() - killedAt} ms after the kill)\n${output()}`));
  const tookOverAt = Date.now();
  process.stderr.write(`leader ${leader} killed; ${survivor} leads ${tookOverAt - killedAt} ms later\n`);
  const later = await waitFor('two runs ended after the take-over', async () => {
    const ended = (await endedRuns()).filter((r) => Number(r.ended_at) > tookOverAt);
    return ended.length >= 2 ? ended : undefined;
  }, 20_000).catch((error: Error) => assert.fail(`${error.message}\n${output()}`));
  await notifiedOnce(later);
});
