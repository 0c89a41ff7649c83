/**
 * One VM backup, two ways in (issue #8: "the server calls the same code"): `coffer backup
 * --qemu` and a server task (TaskRunner, a real worker process) back up the same running guest
 * — a real Linux guest running qemu-ga under TCG (src/testing/agent-guest.ts) — into the same
 * S3 repository with Object Lock on a real Ceph RADOS Gateway (src/testing/ceph-s3.ts). Both
 * snapshots are application-consistent with the same record, both are locked, the task's
 * worker keeps the S3 chunk cache in its own cache directory, and the task's capture hooks
 * run with their output in the task's log.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openStateDatabase, TaskRunner, type StateDatabase } from '../server/index.js';
import { startAgentGuest, startCephS3, type AgentGuest, type CephS3 } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

interface Consistency {
  level: string;
  reason?: string;
  frozenFilesystems?: number;
  frozenMs?: number;
}
interface ParityBackupJson extends BackupJson {
  consistency?: Consistency;
  lock?: { lockedUntil: string };
  bottleneck?: string;
  timeBreakdown?: { wallMs: number };
}

const PASSPHRASE = 'parity test';
let s3: CephS3;
let guest: AgentGuest;
let work: string;
let repo: string;
let env: Record<string, string>;
let state: StateDatabase | undefined;
let runner: TaskRunner | undefined;
/** The variables this test sets in its own environment, with what they held. */
const saved = new Map<string, string | undefined>();

before(async () => {
  [s3, guest, work] = await Promise.all([startCephS3(), startAgentGuest(), makeWorkDir('server-parity')]);
  const bucket = await s3.createBucket('parity', undefined, { objectLock: true });
  repo = `s3:${s3.endpoint}/${bucket}/repo`;
  env = { ...s3.env, COFFER_PASSWORD: PASSPHRASE, XDG_CACHE_HOME: join(work, 'cli-cache') };
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--lock-days', '1', '--lock-mode', 'governance'], { env, timeoutMs: 60_000 }), 0);
  // The worker processes inherit the server's environment: the gateway's keys, and a cache of their own.
  for (const [name, value] of Object.entries({ ...s3.env, XDG_CACHE_HOME: join(work, 'server-cache') })) {
    saved.set(name, process.env[name]);
    process.env[name] = value;
  }
});
after(async () => {
  await runner?.close();
  await state?.close();
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await guest?.stop();
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

test('a task backup of a QEMU VM with an agent into a locked S3 repository: same consistency record as the CLI, locked, cached, hooks run', async () => {
  const cli = await cofferJson<ParityBackupJson>(['backup', '-r', repo, '--vm', 'guest-cli', '--qemu', guest.vm.qmpSocket, '--json'], { env, timeoutMs: 120_000 });
  assert.equal(cli.consistency?.level, 'application');
  assert.ok(cli.lock !== undefined, 'the CLI locked its snapshot');
  assert.ok(cli.bottleneck !== undefined && (cli.timeBreakdown?.wallMs ?? 0) > 0, 'the CLI reports where the time went');

  const passphraseFile = join(work, 'pass');
  await writeFile(passphraseFile, `${PASSPHRASE}\n`);
  const hookFile = join(work, 'hooks.txt');
  state = await openStateDatabase({ file: join(work, 'state.db') });
  runner = new TaskRunner(state.db, { threads: 1, tickMs: 100 });
  await runner.start();
  const task = await runner.backupNow({
    vm: 'guest-task', host: 'hv1',
    repository: { name: 's3', url: repo, passphraseFile },
    source: {
      qmp: guest.vm.qmpSocket,
      hooks: { pre: `echo hello from the pre hook; echo "$COFFER_HOOK $COFFER_VM" >> ${hookFile}`, post: `echo "$COFFER_HOOK $COFFER_VM" >> ${hookFile}` },
    },
  }, 'test');
  const ended = await runner.waitForTask(task.id, 120_000);
  assert.equal(ended.status, 'succeeded', JSON.stringify(ended.error));
  const result = ended.result;
  assert.ok(result !== null);

  // The same consistency: both froze the guest's one filesystem (only the frozen time differs).
  const { frozenMs: cliMs, ...cliRecord } = cli.consistency ?? { level: '' };
  const { frozenMs: taskMs, ...taskRecord } = result.consistencyRecord ?? { level: '' };
  assert.deepEqual(taskRecord, cliRecord);
  assert.ok(typeof cliMs === 'number' && typeof taskMs === 'number');
  assert.equal(result.consistency, 'application');
  const listed = await cofferJson<{ id: string; consistency?: Consistency }[]>(['snapshots', '-r', repo, '--vm', 'guest-task'], { env });
  assert.deepEqual(listed.map((s) => [s.id, s.consistency]), [[result.snapshot, result.consistencyRecord]], 'the repository records what the task reported');

  assert.ok(result.objectLock !== undefined && Date.parse(result.objectLock.lockedUntil) > Date.now(), 'the task locked its snapshot');
  const cached = (await readdir(join(work, 'server-cache', 'coffer'))).filter((name) => name !== 'block-fingerprints');
  assert.equal(cached.length, 1, 'the worker kept the chunk cache of the one repository');
  assert.ok((await readdir(join(work, 'server-cache', 'coffer'))).includes('block-fingerprints'), 'and the disk\'s block fingerprints');
  assert.ok((await readdir(join(work, 'server-cache', 'coffer', cached[0] as string))).includes('chunks'));

  assert.equal(await readFile(hookFile, 'utf8'), 'pre-capture guest-task\npost-capture guest-task\n');
  const log = (await runner.taskLog(task.id, { limit: 1000 })).items.map((l) => l.line);
  assert.ok(log.includes('hook: hello from the pre hook'), log.join('\n'));
});
