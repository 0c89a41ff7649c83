/**
 * Black-box damage and healing through the `coffer` binary: one byte flipped in one stored
 * chunk must be found by `verify --read-data`, named down to the snapshots, disk and byte
 * range it breaks, make restore fail loudly (never write wrong bytes), and be healed by the
 * next backup of the same data; prune then retires its quarantine marker.
 */
import assert from 'node:assert/strict';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExt4Disk, deriveDisk, requireTools } from '../testing/index.js';
import {
  assertExit,
  assertOneLineError,
  assertSameBytes,
  chunkIds,
  chunkPath,
  coffer,
  cofferJson,
  makeWorkDir,
  removeDir,
  type BackupJson,
  type VerifyJson,
} from './cli-harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;

let work: string;
before(async () => {
  await requireTools('sfdisk', 'mke2fs', 'e2fsck', 'cp');
  work = await makeWorkDir('damage');
});
after(() => removeDir(work));

const exists = (path: string) => access(path).then(() => true, () => false);

const cases = [
  { title: 'encrypted (the GCM tag fails)', init: [], env: { COFFER_PASSWORD: 'pw' } },
  { title: 'unencrypted (the content address fails)', init: ['--insecure-no-encryption'], env: {} },
];

for (const c of cases) {
  test(`a flipped byte in one chunk, ${c.title}: verify names it, restore refuses, the next backup heals`, async () => {
    const base = await buildExt4Disk({ name: 'cli-damage-base', size: 48 * MiB, label: 'gpt', partitionSizeMiB: 40, files: 'small', seed: 3 });
    // One aligned block of unique random data: the one chunk the derived disk adds.
    const damagedAt = 41 * MiB;
    const derived = await deriveDisk(base.path, 'cli-damage-derived', [{ offset: damagedAt, bytes: BLOCK, seed: 4040 }]);
    const dir = join(work, c.init.length === 0 ? 'encrypted' : 'plain');
    const repo = join(dir, 'repo');
    const env = { env: c.env };
    // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
    await cofferJson(['init', '--format', '1', '-r', repo, '--block-size', '64K', ...c.init], env);

    const s0 = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', '--time', '2024-01-01T00:00:00Z', base.path], env);
    const chunksBefore = new Set(await chunkIds(repo));
    const s1 = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', '--time', '2024-01-02T00:00:00Z', derived], env);
    const s2 = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'b', '--time', '2024-01-03T00:00:00Z', derived], env);
    assert.equal(s1.bytesNew, BLOCK);
    assert.equal(s2.bytesNew, 0);
    const added = (await chunkIds(repo)).filter((id) => !chunksBefore.has(id));
    assert.equal(added.length, 1, `expected exactly one new chunk, got ${added.join(', ')}`);
    const victim = added[0]!;
    assert.equal((await cofferJson<VerifyJson>(['verify', '-r', repo, '--read-data'], env)).ok, true);

    // Flip one byte in the middle of the payload (after the header and nonce, before the tag).
    const file = chunkPath(repo, victim);
    const blob = await readFile(file);
    const at = Math.floor((24 + blob.length - 16) / 2);
    blob[at] = blob[at]! ^ 0x01;
    await writeFile(file, blob);

    // Restore of an affected snapshot fails, names the chunk, and leaves no half-written file.
    const early = join(dir, 'early.raw');
    const refused = await coffer(['restore', '-r', repo, s1.id, '--to', early], env);
    assertExit(refused, 11);
    // The message names the chunk (by at least 16 hex digits of its id) and the bytes it held.
    const named = new RegExp(`${victim.slice(0, 16)}[\\s\\S]*\\b${damagedAt}\\b`);
    assert.match(assertOneLineError(refused), named);
    assert.equal(await exists(early), false, 'a failed restore left its target behind');

    const check = await coffer(['verify', '-r', repo, '--read-data', '--json'], env);
    assertExit(check, 13);
    const report = JSON.parse(check.stdout.toString('utf8')) as VerifyJson;
    assert.equal(report.ok, false);
    assert.equal(report.snapshots, 3);
    assert.deepEqual(report.damaged.map((d) => [d.kind, d.id, d.problem]), [['chunk', victim, 'corrupt']]);
    assert.match(report.damaged[0]!.message, new RegExp(victim));
    const affected = [...report.affected].sort((x, y) => x.time.localeCompare(y.time));
    assert.deepEqual(
      affected.map((a) => ({ snapshot: a.snapshot, vm: a.vm, disk: a.disk, ranges: a.ranges })),
      [
        { snapshot: s1.id, vm: 'a', disk: 'disk0', ranges: [{ start: damagedAt, end: damagedAt + BLOCK }] },
        { snapshot: s2.id, vm: 'b', disk: 'disk0', ranges: [{ start: damagedAt, end: damagedAt + BLOCK }] },
      ],
      `the snapshot of the base (${s0.id}) does not hold the block`,
    );
    for (const range of affected.flatMap((a) => a.ranges)) {
      assert.equal(range.start % BLOCK, 0);
      assert.ok(range.end <= base.size);
    }
    assert.equal(report.quarantined, 1);
    assert.equal(await exists(file), false, 'the damaged chunk is still in chunks/');
    assert.ok((await readdir(join(repo, 'quarantine'))).some((name) => name.startsWith(`${victim}.`)), 'nothing under quarantine/');

    // Verified again, the missing chunk is reported again but set aside once: no second marker.
    assertExit(await coffer(['verify', '-r', repo], env), 13);
    assert.equal((await readdir(join(repo, 'quarantine'))).filter((name) => name.startsWith(`${victim}.`)).length, 1, 'one marker per damaged chunk, however many verify runs');

    // Now the chunk is missing: restore still refuses and names it; the base is intact.
    const late = await coffer(['restore', '-r', repo, s2.id, '--to', join(dir, 'late.raw')], env);
    assertExit(late, 11);
    assert.match(assertOneLineError(late), new RegExp(victim.slice(0, 16)));
    const intact = join(dir, 'base.raw');
    assertExit(await coffer(['restore', '-r', repo, s0.id, '--to', intact], env), 0);
    await assertSameBytes(intact, base.path, 'the unaffected snapshot');

    // A new backup of the same data stores the block again and heals every old snapshot.
    const heal = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', '--time', '2024-01-04T00:00:00Z', derived], env);
    assert.equal(heal.parent, s1.id);
    assert.equal(heal.bytesNew, BLOCK);
    assert.equal(await exists(file), true);
    const healed = await cofferJson<VerifyJson>(['verify', '-r', repo, '--read-data'], env);
    assert.deepEqual([healed.ok, healed.damaged, healed.affected, healed.snapshots], [true, [], [], 4]);
    for (const [name, id] of [['s1', s1.id], ['s2', s2.id]] as const) {
      const out = join(dir, `${name}.raw`);
      assertExit(await coffer(['restore', '-r', repo, id, '--to', out], env), 0);
      await assertSameBytes(out, derived, `old snapshot ${name} after healing`);
    }

    // Prune retires the marker (the chunk reads again), and backups deduplicate against it again.
    const pruned = await cofferJson<{ quarantineRetired: number }>(['prune', '-r', repo], env);
    assert.equal(pruned.quarantineRetired, 1);
    assert.equal((await readdir(join(repo, 'quarantine'))).filter((name) => name.startsWith(`${victim}.`)).length, 0, 'the marker is retired');
    const after = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', '--time', '2024-01-05T00:00:00Z', derived], env);
    assert.equal(after.bytesNew, 0, 'the healed chunk is not stored once more');
  });
}
