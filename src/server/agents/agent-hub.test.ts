/**
 * The hub's decisions, with a clock the test moves: when an agent is online, what a poll
 * answers (a task to take, one at a time; tasks to stop), how a cancel and an agent's end
 * settle the runner's handle, and when a handed-out task is lost.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { WorkerOutcome } from '../worker/index.js';
import { AgentHub } from './agent-hub.js';

let now = 1_000_000;
const hubs: AgentHub[] = [];
function makeHub(passphrase: () => Promise<string | null> = async () => 'secret'): AgentHub {
  const hub = new AgentHub({ offlineAfterMs: () => 3000, waitOfflineMs: () => 60_000, repoPort: () => 9443, passphraseFor: passphrase, now: () => now });
  hubs.push(hub);
  return hub;
}
after(() => hubs.forEach((h) => h.close()));

const spec = (agent: string) => ({ vm: 'web01-files', host: 'web01', job: 'nightly', tags: ['t'], repository: { url: '/r' }, source: { agent, files: { paths: ['/etc'], exclude: ['*.tmp'] } } });
const never = new AbortController().signal;
const ID = (n: number) => `00000000-0000-4000-8000-00000000000${n}`;
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('an agent is online while polling and for offline-after since; never-seen agents are offline', async () => {
  const hub = makeHub();
  assert.equal(hub.agentOf(spec('web01')), 'web01');
  assert.equal(hub.agentOf({ source: { images: ['/x'] } }), undefined);
  assert.equal(hub.online('web01'), false);
  assert.match(hub.offlineError('web01').message, /never connected/);
  const closing = new AbortController();
  const polling = hub.poll('web01', [], 30_000, closing.signal);
  now += 10_000;
  assert.equal(hub.online('web01'), true, 'a poll is open');
  closing.abort();
  assert.deepEqual(await polling, { cancel: [] });
  now += 2999;
  assert.equal(hub.online('web01'), true);
  now += 2;
  assert.equal(hub.online('web01'), false);
  assert.match(hub.offlineError('web01').message, /offline since/);
  assert.equal(hub.waitDeadline(5), 60_005);
});

test('a task is taken by one poll of its agent, with its key and paths; the agent\'s end is the runner\'s result', async () => {
  const hub = makeHub();
  const logs: string[] = [];
  const handle = hub.start({ taskId: ID(1), spec: spec('web01'), repository: 'main', rates: { repositoryWrite: 1000 } }, { onLog: (_l, line) => logs.push(line) });
  await tick();
  const other = await hub.poll('db01', [], 0, never);
  assert.equal(other.assign, undefined, 'another agent does not get it');
  const answer = await hub.poll('web01', [], 0, never);
  assert.deepEqual(answer.assign, {
    taskId: ID(1), vm: 'web01-files', host: 'web01', job: 'nightly', tags: ['t', 'job:nightly'], paths: ['/etc'], exclude: ['*.tmp'],
    repository: { port: 9443, name: 'main', passphrase: 'secret' }, rates: { repositoryWrite: 1000 },
  });
  assert.equal((await hub.poll('web01', [ID(1)], 0, never)).assign, undefined, 'taken once');
  assert.equal(hub.events('web01', ID(1), { log: [{ level: 'info', line: 'reading' }] }), true);
  assert.equal(hub.events('db01', ID(1), {}), false, 'only its agent reports on it');
  assert.deepEqual(logs, ['reading']);
  now += 5000;
  assert.equal(hub.end('web01', ID(1), { result: { snapshot: 'a'.repeat(64), parent: null, snapshotTime: new Date(now).toISOString(), entries: 3, bytesLogical: 10, bytesRead: 10, bytesNew: 10, bytesStored: 12, durationMs: 900, warnings: ['/etc/x: changed while read'] } }), true);
  const outcome = await handle.ended;
  assert.equal(outcome.kind, 'result');
  const result = (outcome as Extract<WorkerOutcome, { kind: 'result' }>).result as { snapshot: string; vm: string; mode: string; warnings: string[]; durationMs: number };
  assert.equal(result.snapshot, 'a'.repeat(64));
  assert.equal(result.vm, 'web01-files');
  assert.equal(result.mode, 'full');
  assert.equal(result.durationMs, 5000);
  assert.deepEqual(result.warnings, ['/etc/x: changed while read']);
  assert.equal(hub.end('web01', ID(1), { error: { code: 'E_X', message: 'late' } }), false, 'ended once');
  assert.deepEqual((await hub.poll('web01', [ID(1)], 0, never)).cancel, [ID(1)], 'a task the server no longer counts on is stopped');
});

test('a waiting poll is answered at once when a task comes, and one task at a time', async () => {
  const hub = makeHub();
  const waiting = hub.poll('web01', [], 30_000, never);
  hub.start({ taskId: ID(2), spec: spec('web01'), repository: 'main', rates: {} }, {});
  hub.start({ taskId: ID(3), spec: spec('web01'), repository: 'main', rates: {} }, {});
  assert.equal((await waiting).assign?.taskId, ID(2));
  assert.equal((await hub.poll('web01', [ID(2)], 0, never)).assign, undefined, 'busy with the first');
  hub.end('web01', ID(2), { error: { code: 'E_INTERRUPTED', message: 'x' } });
  assert.equal((await hub.poll('web01', [], 0, never)).assign?.taskId, ID(3));
});

test('cancel: before delivery it ends at once; after, the agent is told in its poll and its end settles the handle', async () => {
  const hub = makeHub();
  const early = hub.start({ taskId: ID(4), spec: spec('web01'), repository: 'main', rates: {} }, {});
  early.cancel();
  assert.equal((await early.ended).kind, 'crashed');
  const late = hub.start({ taskId: ID(5), spec: spec('web01'), repository: 'main', rates: {} }, {});
  await tick();
  assert.equal((await hub.poll('web01', [], 0, never)).assign?.taskId, ID(5));
  const waiting = hub.poll('web01', [ID(5)], 30_000, never);
  late.cancel();
  assert.deepEqual((await waiting).cancel, [ID(5)]);
  hub.end('web01', ID(5), { error: { code: 'E_INTERRUPTED', message: 'interrupted' } });
  assert.deepEqual(await late.ended, { kind: 'error', code: 'E_INTERRUPTED', message: 'interrupted' });
});

test('a handed-out task is lost when its agent goes offline, or polls again without it', async () => {
  const hub = makeHub();
  const silent = hub.start({ taskId: ID(6), spec: spec('web01'), repository: 'main', rates: {} }, {});
  await tick();
  await hub.poll('web01', [], 0, never);
  now += 2000;
  hub.checkLiveness();
  now += 1500;
  hub.checkLiveness();
  const outcome = await silent.ended;
  assert.equal(outcome.kind === 'error' && outcome.code, 'E_AGENT_LOST');
  assert.match((outcome as { message: string }).message, /stopped answering while it ran the backup/);

  const forgotten = hub.start({ taskId: ID(7), spec: spec('db01'), repository: 'main', rates: {} }, {});
  await tick();
  await hub.poll('db01', [], 0, never);
  now += 6000;
  await hub.poll('db01', [], 0, never);
  const gone = await forgotten.ended;
  assert.equal(gone.kind === 'error' && gone.code, 'E_AGENT_LOST');
  assert.match((gone as { message: string }).message, /no longer runs the task/);
});

test('a key that cannot be made fails the task with the reason; revoking ends the agent\'s tasks', async () => {
  const hub = makeHub(async () => {
    throw Object.assign(new Error('cannot read its passphrase file /x'), { code: 'E_NO_PASSPHRASE' });
  });
  const failed = hub.start({ taskId: ID(8), spec: spec('web01'), repository: 'main', rates: {} }, {});
  const outcome = await failed.ended;
  assert.equal(outcome.kind === 'error' && outcome.code, 'E_NO_PASSPHRASE');
  const ok = makeHub();
  const running = ok.start({ taskId: ID(9), spec: spec('web01'), repository: 'main', rates: {} }, {});
  await tick();
  await ok.poll('web01', [], 0, never);
  ok.revoke('web01');
  const revoked = await running.ended;
  assert.equal(revoked.kind === 'error' && revoked.code, 'E_AGENT_REFUSED');
  assert.equal(ok.online('web01'), false);
});
