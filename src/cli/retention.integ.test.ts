/**
 * Retention through the `coffer` binary: a history made with `backup --time` over tiny raw
 * disks (one per snapshot, so a restore shows which capture it is), then `forget --keep-daily
 * 3 --keep-weekly 2` checked against hand-computed expectations, dry run first, with a
 * protected snapshot that no forget removes.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import {
  assertExit,
  assertOneLineError,
  assertSameBytes,
  coffer,
  cofferJson,
  makeWorkDir,
  removeDir,
  type BackupJson,
  type ForgetPolicyJson,
  type SnapshotJson,
} from './cli-harness.js';

const ENV = { env: { COFFER_PASSWORD: 'retention' } };

/**
 * The history, with what `--keep-daily 3 --keep-weekly 2` must keep (UTC; ISO weeks run
 * Monday to Sunday: W46 is 9–15 November 2026, W47 16–22, W48 23–29):
 * - web, newest first: 24 Nov (newest, daily, weekly W48); 23 Nov 13:00 (daily); 23 Nov
 *   01:00 (same day and week: removed); 22 Nov, a Sunday, the last day of W47 (daily, the
 *   third, and weekly W47, the second: both counts are used up); everything older is removed,
 *   except 16 Nov 00:00:00, the first instant of W47, which is protected.
 * - db is counted on its own: 1 Nov (W44) and 24 Nov are both kept, though web's 24 Nov is newer.
 */
const HISTORY = [
  { name: 'w1', vm: 'web', time: '2026-11-09T22:00:00Z', keep: null },
  { name: 'w2', vm: 'web', time: '2026-11-15T23:59:59Z', keep: null },
  { name: 'w3', vm: 'web', time: '2026-11-16T00:00:00Z', keep: ['protected'] },
  { name: 'w4', vm: 'web', time: '2026-11-20T10:00:00Z', keep: null },
  { name: 'w5', vm: 'web', time: '2026-11-22T09:00:00Z', keep: ['daily 2026-11-22', 'weekly 2026-W47'] },
  { name: 'w6', vm: 'web', time: '2026-11-23T01:00:00Z', keep: null },
  { name: 'w7', vm: 'web', time: '2026-11-23T13:00:00Z', keep: ['daily 2026-11-23'] },
  { name: 'w8', vm: 'web', time: '2026-11-24T08:00:00Z', keep: ['newest', 'daily 2026-11-24', 'weekly 2026-W48'] },
  { name: 'd1', vm: 'db', time: '2026-11-01T00:00:00Z', keep: ['daily 2026-11-01', 'weekly 2026-W44'] },
  { name: 'd2', vm: 'db', time: '2026-11-24T03:00:00Z', keep: ['newest', 'daily 2026-11-24', 'weekly 2026-W48'] },
] as const;

let work: string;
let repo: string;
const ids = new Map<string, string>();
const images = new Map<string, string>();
const nameOf = (id: string) => [...ids].find(([, v]) => v === id)?.[0] ?? id;

before(async () => {
  work = await makeWorkDir('retention');
  repo = join(work, 'repo');
  await cofferJson(['init', '-r', repo, '--block-size', '64K'], ENV);
  // Three backups at a time (several backups may write to one repository at once): the
  // parent each one picks does not matter here, only the capture times.
  const queue = [...HISTORY.entries()];
  const worker = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const [i, entry] = next;
      const image = join(work, `${entry.name}.raw`);
      await writeFile(image, seededBytes(100 + i, 128 * 1024));
      images.set(entry.name, image);
      const backup = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', entry.vm, '--time', entry.time, image], ENV);
      ids.set(entry.name, backup.id);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
});
after(() => removeDir(work));

/** The snapshots left, by name, read from the repository's files (a `coffer` run costs a second on a loaded machine). */
const listed = async () => (await readdir(join(repo, 'snapshots'))).filter((file) => /^[0-9a-f]{64}$/.test(file)).map(nameOf).sort();

test('forget --keep-daily 3 --keep-weekly 2: dry run, then for real, per VM, protected kept; kept snapshots still restore', async () => {
  const w3 = ids.get('w3') as string;
  const protectedJson = await cofferJson<{ id: string; protected: boolean; reason: string }>(['protect', '-r', repo, w3.slice(0, 8), '--reason', 'audit 2026'], ENV);
  assert.deepEqual([protectedJson.id, protectedJson.protected, protectedJson.reason], [w3, true, 'audit 2026']);
  const shown = (await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV)).filter((s) => s.protected);
  assert.deepEqual(shown.map((s) => [nameOf(s.id), s.protection?.reason]), [['w3', 'audit 2026']]);

  const everything = HISTORY.map((h) => h.name).sort();
  const policy = ['forget', '-r', repo, '--keep-daily', '3', '--keep-weekly', '2'];
  const expected = (decisions: ForgetPolicyJson['vms']) =>
    Object.fromEntries(decisions.flatMap((g) => g.snapshots.map((s) => [nameOf(s.id), s.keep ? s.reasons : null])));
  const want = Object.fromEntries(HISTORY.map((h) => [h.name, h.keep === null ? null : [...h.keep]]));

  const dry = await cofferJson<ForgetPolicyJson>([...policy, '--dry-run'], ENV);
  assert.equal(dry.dryRun, true);
  assert.deepEqual(dry.policy, { daily: 3, weekly: 2 });
  assert.deepEqual(dry.vms.map((g) => g.vm), ['db', 'web']);
  assert.deepEqual(expected(dry.vms), want);
  assert.deepEqual(dry.removed.map((r) => nameOf(r.id)).sort(), ['w1', 'w2', 'w4', 'w6']);
  assert.deepEqual(await listed(), everything, 'a dry run removed something');

  const text = await coffer([...policy, '--dry-run'], ENV);
  assertExit(text, 0);
  const out = text.stdout.toString('utf8');
  assert.match(out, new RegExp(`would remove +${ids.get('w6')?.slice(0, 8)} +2026-11-23 01:00:00Z`));
  assert.match(out, new RegExp(`keep +${w3.slice(0, 8)} +2026-11-16 00:00:00Z +protected`));
  assert.match(out, /dry run: would remove 4 snapshot\(s\), kept 6, in 2 VM\(s\)/);
  assert.deepEqual(await listed(), everything);

  const real = await cofferJson<ForgetPolicyJson>(policy, ENV);
  assert.equal(real.dryRun, false);
  assert.deepEqual(expected(real.vms), want);
  assert.deepEqual(real.removed.map((r) => nameOf(r.id)).sort(), ['w1', 'w2', 'w4', 'w6']);
  assert.deepEqual(await listed(), ['d1', 'd2', 'w3', 'w5', 'w7', 'w8']);

  // The same policy again removes nothing more: what it keeps, it keeps.
  assert.deepEqual((await cofferJson<ForgetPolicyJson>(policy, ENV)).removed, []);

  for (const name of ['w5', 'w3']) {
    const restored = await coffer(['restore', '-r', repo, ids.get(name) as string, '--to', '-'], ENV);
    assertExit(restored, 0);
    await assertSameBytes(restored.stdout, images.get(name) as string, `restore of ${name}`);
  }

  // Named, the protected snapshot is refused (with another one: neither is removed), until unprotected.
  const refused = await coffer(['forget', '-r', repo, ids.get('w5') as string, w3], ENV);
  assertExit(refused, 2);
  assert.match(assertOneLineError(refused), /is protected; run 'coffer unprotect/);
  assert.deepEqual(await listed(), ['d1', 'd2', 'w3', 'w5', 'w7', 'w8']);
  assertExit(await coffer(['unprotect', '-r', repo, w3], ENV), 0);
  assert.deepEqual((await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV)).filter((s) => s.protected), []);
  const onlyWeb = await cofferJson<ForgetPolicyJson>(['forget', '-r', repo, '--vm', 'web', '--keep-last', '2'], ENV);
  assert.deepEqual(onlyWeb.vms.map((g) => g.vm), ['web']);
  assert.deepEqual(onlyWeb.removed.map((r) => nameOf(r.id)).sort(), ['w3', 'w5']);
  assert.deepEqual(await listed(), ['d1', 'd2', 'w7', 'w8']);
});

test('forget refuses a wrong command line with one line and exit 2, and a dry run by name removes nothing', async () => {
  const before = await listed();
  const cases: string[][] = [
    [],
    ['--keep-last', '0'],
    ['--keep-daily', 'three'],
    ['--keep-daily', '-1'],
    ['--keep-within', '2w'],
    ['--keep-tag', 'a,,b'],
    ['--keep-last', '1', 'latest'],
    ['--vm', 'web', 'latest'],
    ['--vm', 'nosuchvm', '--keep-last', '1'],
  ];
  for (const args of cases) {
    const result = await coffer(['forget', '-r', repo, ...args], ENV);
    assertExit(result, 2);
    assertOneLineError(result);
  }
  const named = await cofferJson<{ dryRun: boolean; removed: { id: string }[] }>(['forget', '-r', repo, '--dry-run', 'web:latest'], ENV);
  assert.deepEqual([named.dryRun, named.removed.map((r) => nameOf(r.id))], [true, ['w8']]);
  assertExit(await coffer(['protect', '-r', repo, 'latest', '--reason', 'x'.repeat(201)], ENV), 2);
  assertExit(await coffer(['protect', '-r', repo, 'ffff'], ENV), 2);
  assert.deepEqual(await listed(), before);
});
