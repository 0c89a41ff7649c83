/**
 * `coffer diff` of VM snapshots. An ext4 image made by mke2fs -d (the cached fixture) is
 * backed up, a copy of it is changed with debugfs (a file added, one removed, a mode and an
 * mtime changed, a folder made, a symlink replaced by a folder) and one block of big.bin
 * overwritten in place under its unchanged inode, and the copy is backed up too. The changed
 * disk ranges are checked against `cmp -l` of the two images, in both repository formats;
 * the files reported by `--files` against the edits made. A GPT disk holding ext4, FAT32,
 * NTFS and XFS, with one block of big.bin overwritten in place in each, has each volume's
 * files walked with its own reader: big.bin, and nothing else, is modified in each.
 */
import assert from 'node:assert/strict';
import { copyFile, writeFile, truncate, open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RawImage } from '../disk/index.js';
import { openFilesystem, resolvePath } from '../fs/index.js';
import { buildExtImage, buildFilesVmDisk, requireTools, seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const MiB = 1024 * 1024;
const BLOCK = 256 * 1024; // the repository's default block size
const env = { COFFER_PASSWORD: 'diff' };

interface Range {
  offset: number;
  length: number;
}
interface DiskDiffJson {
  name: string;
  change: 'added' | 'removed' | 'changed' | 'unchanged';
  sizeA?: number;
  sizeB?: number;
  changedBlocks?: number;
  changedBytes?: number;
  zeroedBlocks?: number;
  ranges?: Range[];
  pagesRead?: number;
  pagesSkipped?: number;
}
interface ChangeJson {
  change: string;
  path: string;
  type: string;
  was?: string;
}
interface VolumeJson {
  volume: string;
  disk: string;
  change: string;
  filesystem?: string;
  changedBytes: number;
  changes: ChangeJson[];
  counts?: Record<string, Record<string, number>>;
  checks?: { filesRead: number; bytesRead: number; unchecked: number };
  problems: unknown[];
  problem?: string;
}
interface DiffJson {
  kind: string;
  volumes?: VolumeJson[];
  a: { id: string };
  b: { id: string };
  disks: DiskDiffJson[];
  totals: { changedBlocks: number; changedBytes: number; disksChanged: number; disksAdded: number; disksRemoved: number; disksResized: number; pagesRead: number; pagesSkipped: number };
}

let work: string;
let imageA: string;
let imageB: string;
/** The byte ranges of whole repository blocks in which the two images differ, by cmp -l. */
let expected: Range[];
/** Snapshots of imageA, imageB, and imageB again (format 2). */
let snapshots: string[];

/** The blocks (of `BLOCK` bytes) holding the bytes `cmp -l` finds different, merged into ranges. */
async function cmpRanges(a: string, b: string, size: number): Promise<Range[]> {
  const result = await runTool('cmp', ['-l', a, b], 600_000);
  assert.ok(result.code === 0 || result.code === 1, result.stderr);
  const blocks = new Set<number>();
  for (const line of result.stdout.split('\n')) {
    const at = Number(line.trim().split(/\s+/)[0]);
    if (Number.isInteger(at) && at > 0) blocks.add(Math.floor((at - 1) / BLOCK));
  }
  const ranges: Range[] = [];
  for (const block of [...blocks].sort((x, y) => x - y)) {
    const offset = block * BLOCK;
    const length = Math.min(BLOCK, size - offset);
    const last = ranges.at(-1);
    if (last !== undefined && last.offset + last.length === offset) last.length += length;
    else ranges.push({ offset, length });
  }
  return ranges;
}

async function backup(repo: string, ...images: string[]): Promise<string> {
  return (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', ...images], { env })).id;
}

before(async () => {
  await requireTools('mke2fs', 'debugfs', 'cmp');
  work = await makeWorkDir('diff');
  const fixture = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  imageA = join(work, 'a.img');
  imageB = join(work, 'b.img');
  await copyFile(fixture, imageA);
  await copyFile(fixture, imageB);
  await writeFile(join(work, 'added.bin'), seededBytes(71, 100_000));
  await writeFile(join(work, 'inner.txt'), 'inside the new folder\n');
  const edits = [
    `write ${join(work, 'added.bin')} /docs/added.bin`,
    'rm /docs/private.key',
    'sif /docs/script.sh mode 0100700',
    'sif /docs/readme.txt mtime 20240101000000',
    'mkdir /newdir',
    `write ${join(work, 'inner.txt')} /newdir/inner.txt`,
    'rm /links/dangling',
    'mkdir /links/dangling',
  ];
  await writeFile(join(work, 'edits'), `${edits.join('\n')}\n`);
  const debugfs = await runTool('debugfs', ['-w', '-f', join(work, 'edits'), imageB]);
  assert.equal(debugfs.code, 0, debugfs.stderr);
  assert.doesNotMatch(debugfs.stderr, /rm: |write: |mkdir: |sif: /, debugfs.stderr);
  // One block of big.bin overwritten where it lies: its inode (size, times) stays as it was.
  const block = Number((await runTool('debugfs', ['-R', 'bmap /big.bin 100', imageB])).stdout.trim());
  assert.ok(block > 0, 'big.bin block 100 is mapped');
  const handle = await open(imageB, 'r+');
  await handle.write(seededBytes(72, 4096), 0, 4096, block * 4096);
  await handle.close();
  expected = await cmpRanges(imageA, imageB, 96 * MiB);
  assert.ok(expected.length >= 3, `debugfs changed several places: ${JSON.stringify(expected)}`);
  snapshots = await threeSnapshots('2');
});

/** A new repository of `format` holding snapshots of imageA, imageB and imageB again. */
async function threeSnapshots(format: string): Promise<string[]> {
  const repo = join(work, `repo-${format}`);
  assertExit(await coffer(['init', '-r', repo, '--format', format], { env }), 0);
  return [await backup(repo, imageA), await backup(repo, imageB), await backup(repo, imageB)];
}
after(() => removeDir(work));

for (const format of ['1', '2']) {
  test(`format ${format}: the changed ranges are the blocks cmp -l finds different, read from the index pages only`, async () => {
    const repo = join(work, `repo-${format}`);
    const [first, second, third] = (format === '2' ? snapshots : await threeSnapshots(format)) as [string, string, string];
    const diff = await cofferJson<DiffJson>(['diff', '-r', repo, first.slice(0, 8), second], { env });
    assert.equal(diff.kind, 'disks');
    assert.equal(diff.a.id, first);
    assert.equal(diff.disks.length, 1);
    const disk = diff.disks[0] as DiskDiffJson;
    assert.equal(disk.change, 'changed');
    assert.deepEqual(disk.ranges, expected);
    const bytes = expected.reduce((sum, r) => sum + r.length, 0);
    assert.equal(disk.changedBytes, bytes);
    assert.equal(disk.changedBlocks, bytes / BLOCK);
    assert.equal(diff.totals.changedBytes, bytes);

    const text = await coffer(['diff', '-r', repo, first, second], { env });
    assertExit(text, 0);
    const out = text.stdout.toString();
    assert.match(out, new RegExp(`M disk0: 96.0 MiB, .* changed in ${bytes / BLOCK} blocks of 256 KiB, ${expected.length} ranges:`));
    for (const r of expected) assert.ok(out.includes(`bytes ${r.offset}-${r.offset + r.length - 1}`), `${r.offset} listed:\n${out}`);

    // The same disk backed up again: every page is shared, none is read.
    const same = await cofferJson<DiffJson>(['diff', '-r', repo, second, third], { env });
    assert.equal(same.disks[0]?.change, 'unchanged');
    assert.equal(same.totals.pagesRead, 0);
    assert.equal(same.totals.changedBlocks, 0);
  });
}

test('disks matched by name: added, removed, resized (a grown disk\'s new data counts as changed, its zeros do not)', async () => {
  const repo = join(work, 'repo-disks');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const extra = join(work, 'extra.img');
  await writeFile(extra, seededBytes(73, 4 * MiB));
  const grown = join(work, 'grown.img');
  await copyFile(imageB, grown);
  await truncate(grown, 104 * MiB);
  const handle = await open(grown, 'r+');
  await handle.write(seededBytes(74, 64 * 1024), 0, 64 * 1024, 100 * MiB);
  await handle.close();
  const two = await backup(repo, imageA, extra);
  const one = await backup(repo, grown);

  const diff = await cofferJson<DiffJson>(['diff', '-r', repo, two, one], { env });
  assert.deepEqual(diff.disks.map((d) => [d.name, d.change]), [['disk0', 'changed'], ['disk1', 'removed']]);
  const disk0 = diff.disks[0] as DiskDiffJson;
  assert.equal(disk0.sizeA, 96 * MiB);
  assert.equal(disk0.sizeB, 104 * MiB);
  assert.deepEqual(disk0.ranges, [...expected, { offset: 100 * MiB, length: BLOCK }]);
  assert.equal(diff.totals.disksResized, 1);
  assert.equal(diff.totals.disksRemoved, 1);

  const back = await cofferJson<DiffJson>(['diff', '-r', repo, one, two], { env });
  assert.deepEqual(back.disks.map((d) => [d.name, d.change]), [['disk0', 'changed'], ['disk1', 'added']]);
  assert.equal(back.disks[0]?.zeroedBlocks, 1, 'the shrunk disk lost one block of data');

  const text = (await coffer(['diff', '-r', repo, two, one], { env })).stdout.toString();
  assert.match(text, /M disk0: resized from 96.0 MiB to 104 MiB, /);
  assert.match(text, /- disk1: removed \(4\.00 MiB\)/);

  const only = await cofferJson<DiffJson>(['diff', '-r', repo, two, one, '--disk', 'disk1'], { env });
  assert.deepEqual(only.disks.map((d) => [d.name, d.change]), [['disk1', 'removed']]);
  const missing = await coffer(['diff', '-r', repo, two, one, '--disk', 'disk7'], { env });
  assertExit(missing, 2);
  assert.match(assertOneLineError(missing), /has no disk disk7/);
});

test('an unknown snapshot, and a VM snapshot against a file snapshot, are usage errors', async () => {
  const repo = join(work, 'repo-kinds');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const vm = await backup(repo, imageA);
  const files = (await cofferJson<BackupJson>(['backup', '-r', repo, '--files', join(work, 'edits')], { env })).id;
  const unknown = await coffer(['diff', '-r', repo, vm, 'abcdef12'], { env });
  assertExit(unknown, 2);
  assert.match(assertOneLineError(unknown), /no snapshot abcdef12/);
  const kinds = await coffer(['diff', '-r', repo, vm, files], { env });
  assertExit(kinds, 2);
  assert.match(assertOneLineError(kinds), /is a VM snapshot and .* a file snapshot: compare snapshots of one kind/);
  const json = await coffer(['diff', '-r', repo, files, vm, '--json'], { env });
  assertExit(json, 2);
  assert.equal(JSON.parse(assertOneLineError(json)).code, 'E_USAGE');
});

test('--files: the files changed are those debugfs changed, and big.bin, overwritten under its unchanged inode, is M', async () => {
  // The oracle's view: big.bin's inode says the same in both images.
  const stat = async (image: string) => (await runTool('debugfs', ['-R', 'stat /big.bin', image])).stdout.split('\n').filter((l) => /^\s*(Size|mtime|Inode):/.test(l) || /Size: /.test(l));
  assert.deepEqual(await stat(imageB), await stat(imageA));
  const [first, second] = snapshots as [string, string, string];
  const diff = await cofferJson<DiffJson>(['diff', '-r', join(work, 'repo-2'), first, second, '--files'], { env });
  assert.deepEqual(diff.disks.map((d) => d.ranges), [expected], 'the disk-level part is there too');
  assert.equal(diff.volumes?.length, 1);
  const volume = diff.volumes?.[0] as VolumeJson;
  assert.equal(volume.volume, 'disk');
  assert.equal(volume.filesystem, 'ext4');
  assert.equal(volume.change, 'compared');
  assert.deepEqual(volume.changes.map((c) => [c.change, c.path, c.type, ...(c.was !== undefined ? [c.was] : [])]), [
    ['M', '/big.bin', 'file'],
    ['+', '/docs/added.bin', 'file'],
    ['-', '/docs/private.key', 'file'],
    ['U', '/docs/readme.txt', 'file'],
    ['U', '/docs/script.sh', 'file'],
    ['T', '/links/dangling', 'directory', 'symlink'],
    ['+', '/newdir', 'directory'],
    ['+', '/newdir/inner.txt', 'file'],
  ]);
  // Files sharing a changed 256 KiB block with a changed one were read and found equal.
  assert.ok((volume.checks?.filesRead ?? 0) > 1, JSON.stringify(volume.checks));
  assert.deepEqual(volume.problems, []);

  const text = await coffer(['diff', '-r', join(work, 'repo-2'), first, second, '--files'], { env });
  assertExit(text, 0);
  const out = text.stdout.toString();
  assert.match(out, /\nM volume disk on disk0 \(ext4\): 1\.\d+ MiB changed:\nM    \/big\.bin\n\+    \/docs\/added\.bin\n/);
  assert.match(out, /\nT    \/links\/dangling\/  \(was a symlink\)\n/);
  assert.match(out, /\n  Files: +2 added, 1 removed, 1 modified, 0 type changed, 2 metadata only\n/);
});

test('--files: a volume none of whose bytes changed is not opened', async () => {
  const [, second, third] = snapshots as [string, string, string];
  const diff = await cofferJson<DiffJson>(['diff', '-r', join(work, 'repo-2'), second, third, '--files'], { env });
  assert.deepEqual(diff.volumes?.map((v) => [v.volume, v.change, v.changes.length]), [['disk', 'unchanged', 0]]);
  const text = (await coffer(['diff', '-r', join(work, 'repo-2'), second, third, '--files'], { env })).stdout.toString();
  assert.match(text, /\n  volume disk on disk0: no byte changed \(not read\)\n/);
});

test('--files on ext4, FAT32, NTFS and XFS: content overwritten in place is found by each reader, and nothing else', async () => {
  await requireTools('sfdisk', 'mformat', 'mcopy', 'mkntfs', 'wimlib-imagex', 'mkfs.xfs');
  const disk = await buildFilesVmDisk({ table: 'gpt', bigFileBytes: 3_000_000 });
  const changed = join(work, 'four.img');
  assert.equal((await runTool('cp', ['--sparse=always', disk.path, changed])).code, 0);
  const handle = await open(changed, 'r+');
  for (const [i, f] of disk.filesystems.entries()) {
    // Where big.bin's data lies on the partition, from the partition's own image.
    const device = await RawImage.open(f.image);
    try {
      const fs = await openFilesystem(device);
      assert.ok(fs?.physicalExtents, f.type);
      const { node } = await resolvePath(fs, '/big.bin');
      let at: number | undefined;
      for await (const e of fs.physicalExtents(node)) if (e.kind === 'data' && e.length >= 2 * 4096 && at === undefined) at = e.deviceOffset + 4096;
      assert.ok(at !== undefined, `${f.type}: a data extent of big.bin`);
      await handle.write(seededBytes(80 + i, 4096), 0, 4096, f.offset + at);
    } finally {
      await device.close();
    }
  }
  await handle.close();
  const repo = join(work, 'repo-four');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const before = (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'four', disk.path], { env, timeoutMs: 300_000 })).id;
  const after = (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'four', changed], { env, timeoutMs: 300_000 })).id;
  const diff = await cofferJson<DiffJson>(['diff', '-r', repo, before, after, '--files'], { env, timeoutMs: 300_000 });
  assert.deepEqual(diff.disks[0]?.changedBlocks, 4, 'one block in each partition');
  assert.deepEqual(
    diff.volumes?.map((v) => [v.volume, v.filesystem, v.change, v.changes.map((c) => `${c.change} ${c.path}`)]),
    [['p1', 'ext4', 'compared', ['M /big.bin']], ['p2', 'fat32', 'compared', ['M /big.bin']], ['p3', 'ntfs', 'compared', ['M /big.bin']], ['p4', 'xfs', 'compared', ['M /big.bin']]],
  );
  for (const v of diff.volumes ?? []) assert.deepEqual(v.problems, [], v.volume);

  const one = await cofferJson<DiffJson>(['diff', '-r', repo, before, after, '--files', '--disk', 'disk0'], { env, timeoutMs: 300_000 });
  assert.equal(one.volumes?.length, 4);
});
