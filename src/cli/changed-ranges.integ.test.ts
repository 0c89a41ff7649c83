/**
 * `coffer backup DISK --changed-ranges FILE --base SNAPSHOT [--verify-unchanged N%]`: change
 * tracking from anywhere, trusted but verified. The oracle is the changed disk itself
 * (restored bytes compared with it) and the bytes each run read.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExt4Disk, deriveDisk, requireTools, startDaemon, type PartitionedDisk } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const env = { COFFER_PASSWORD: 'ranges' };
let work: string;
let repo: string;
let base: PartitionedDisk;
let baseId: string;
const edits = [
  { offset: 2 * MiB + 4 * KiB, bytes: 4 * KiB, seed: 1 },
  { offset: 9 * MiB, bytes: 300 * KiB, seed: 2 },
  { offset: 30 * MiB + 100, bytes: 10, seed: 3 },
];

interface RangesBackupJson extends BackupJson {
  disks: { name: string; changeTracking?: { method: string; reason?: string } }[];
}

before(async () => {
  await requireTools('sfdisk', 'mke2fs', 'cp', 'qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo');
  work = await makeWorkDir('ranges');
  repo = join(work, 'repo');
  base = await buildExt4Disk({ name: 'ranges-base', size: 48 * MiB, label: 'gpt', partitionSizeMiB: 40, files: 'small' });
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  baseId = (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'db01', base.path], { env })).id;
});
after(() => removeDir(work));

async function rangesFile(name: string, ranges: [number, number][]): Promise<string> {
  const file = join(work, name);
  await writeFile(file, JSON.stringify(ranges));
  return file;
}

async function restoresTo(id: string, expected: string): Promise<void> {
  const out = join(work, `${id}.raw`);
  assertExit(await coffer(['restore', '-r', repo, id, '--to', out], { env }), 0);
  await assertSameBytes(out, expected);
  await removeDir(out);
}

test('only the ranges said to have changed are read; the restore equals the changed disk', async () => {
  const changed = await deriveDisk(base.path, 'ranges-changed', edits);
  const ranges = await rangesFile('all.json', edits.map((e) => [e.offset, e.bytes]));
  const result = await cofferJson<RangesBackupJson>(['backup', '-r', repo, '--vm', 'db01', changed, '--changed-ranges', ranges, '--base', baseId], { env });
  assert.equal(result.parent, baseId);
  assert.equal(result.disks[0]?.changeTracking?.method, 'changed-ranges');
  assert.equal(result.bytesRead, edits.reduce((sum, e) => sum + e.bytes, 0), 'exactly the changed bytes (the rest of their blocks comes from the base)');
  await restoresTo(result.id, changed);
});

test('a list that misses a change is caught by --verify-unchanged, and the disk is read in full', async () => {
  const changed = await deriveDisk(base.path, 'ranges-changed', edits);
  const lying = await rangesFile('lying.json', edits.slice(0, 2).map((e) => [e.offset, e.bytes]));
  const checked = await cofferJson<RangesBackupJson>(['backup', '-r', repo, '--vm', 'db01', changed, '--changed-ranges', lying, '--base', baseId, '--verify-unchanged', '100%'], { env });
  assert.equal(checked.disks[0]?.changeTracking?.method, 'none');
  assert.match(checked.disks[0]?.changeTracking?.reason ?? '', /--verify-unchanged: block 120 .*differs from the parent/);
  await restoresTo(checked.id, changed);

  // Without the check the lie goes through: this is what the option is for.
  const trusted = await cofferJson<RangesBackupJson>(['backup', '-r', repo, '--vm', 'db01', changed, '--changed-ranges', lying, '--base', baseId], { env });
  assert.equal(trusted.disks[0]?.changeTracking?.method, 'changed-ranges');
  const out = join(work, 'trusted.raw');
  assertExit(await coffer(['restore', '-r', repo, trusted.id, '--to', out], { env }), 0);
  await assert.rejects(assertSameBytes(out, changed), 'the missed change is missing from the snapshot');
});

test('changed ranges from a qemu:dirty-bitmap context over NBD (qemu-nbd -B)', async () => {
  // A qcow2 of the base with a bitmap recording from now, then guest-like writes into it.
  const image = join(work, 'tracked.qcow2');
  assert.equal((await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', base.path, image])).code, 0);
  assert.equal((await runTool('qemu-img', ['bitmap', '--add', image, 'since-base'])).code, 0);
  const io = await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x77 3M 4k', '-c', 'write -P 0x78 20M 100k', image]);
  assert.equal(io.code, 0, io.stderr);
  const changed = join(work, 'tracked.raw');
  assert.equal((await runTool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, changed])).code, 0);
  const socket = join(work, 'bitmap.sock');
  const server = await startDaemon('qemu-nbd', ['-t', '-r', '-f', 'qcow2', '-B', 'since-base', '-x', 'disk0', '-k', socket, image], socket);
  try {
    const uri = `nbd+unix:///disk0?socket=${socket}&bitmap=since-base`;
    const result = await cofferJson<RangesBackupJson>(['backup', '-r', repo, '--vm', 'db01', changed, '--changed-ranges', uri, '--base', baseId], { env });
    assert.equal(result.disks[0]?.changeTracking?.method, 'changed-ranges');
    assert.equal(result.bytesRead, 64 * KiB + 128 * KiB, 'the dirty 64 KiB granules: one for 4 KiB at 3M, two for 100 KiB at 20M');
    await restoresTo(result.id, changed);
  } finally {
    await server.stop();
  }
});

test('bad lists and missing --base are usage errors', async () => {
  const bad = await rangesFile('bad.json', [[1, -2]] as unknown as [number, number][]);
  const r1 = await coffer(['backup', '-r', repo, '--vm', 'db01', base.path, '--changed-ranges', bad, '--base', baseId], { env });
  assertExit(r1, 2);
  assert.match(assertOneLineError(r1), /entry 0/);
  const r2 = await coffer(['backup', '-r', repo, '--vm', 'db01', base.path, '--changed-ranges', bad], { env });
  assertExit(r2, 2);
  const beyond = await rangesFile('beyond.json', [[base.size - 10, 20]]);
  const r3 = await coffer(['backup', '-r', repo, '--vm', 'db01', base.path, '--changed-ranges', beyond, '--base', baseId], { env });
  assertExit(r3, 2);
  assert.match(assertOneLineError(r3), /past the end/);
});
